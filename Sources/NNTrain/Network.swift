import NNCore
import NNEngine
import NNRandom

/// A network's layers and trainable parameters in compute precision.
///
/// Dense weights are row-major `[in, out]` (`Z = X @ W + b`, samples as rows) and convolution
/// kernels `[height, width, in channels, filters]` applied as cross-correlation: the
/// orientations of the `.nnm` format, so a network converts to a model without transposing.
/// Layers without parameters (pooling, flatten) have empty weight and bias arrays.
///
/// A batch normalization layer keeps its trained scale `gamma` in `weights[l]` and its shift
/// `beta` in `biases[l]` (one per channel), so the optimizer treats them as any other weight and
/// bias (without the L2 penalty, as Keras's default); its moving mean and variance, which are
/// statistics and not trained by gradient, are in `movingMeans[l]` and `movingVariances[l]`.
public struct Network<Scalar: BLASScalar>: Sendable {
    /// The layers, with their geometry, activations and tensor names.
    public var layers: [Layer]
    /// weights[l] holds layer l's weight tensor (gamma for batch normalization; empty without parameters).
    public var weights: [[Scalar]]
    /// biases[l] holds layer l's bias (beta for batch normalization; zeros for a layer stored
    /// without one; empty without parameters).
    public var biases: [[Scalar]]
    /// Per batch normalization layer: the moving mean and (biased) variance per channel, what
    /// inference normalizes with; empty for other layers.
    public var movingMeans: [[Scalar]]
    public var movingVariances: [[Scalar]]

    public var layerCount: Int { layers.count }
    /// Features per sample from the input to the output of every layer.
    public var layerSizes: [Int] { [layers.first?.inputSize ?? 0] + layers.map(\.outputSize) }
    public var activations: [Activation] { layers.map(\.activation) }
    /// Whether any layer is spatial (convolution, pooling, flatten).
    public var isConvolutional: Bool { layers.contains { $0.kind != .dense && $0.spatial?.inputShape.count == 3 } }

    /// A network from its parts; batch normalization layers start with moving mean 0 and
    /// variance 1 (Keras's initial values).
    public init(layers: [Layer], weights: [[Scalar]], biases: [[Scalar]]) {
        precondition(weights.count == layers.count && biases.count == layers.count, "one weight and bias array per layer")
        if let problem = Self.unsupported(layers) { preconditionFailure(problem.description) }
        self.layers = layers
        self.weights = weights
        self.biases = biases
        (movingMeans, movingVariances) = Self.initialMovingStatistics(layers)
    }

    /// The channels a batch normalization layer normalizes (the last axis of its input).
    static func channels(_ layer: Layer) -> Int { layer.spatial?.inputShape.last ?? layer.inputSize }

    /// Moving means 0 and variances 1 for every batch normalization layer, empty for the others.
    static func initialMovingStatistics(_ layers: [Layer]) -> ([[Scalar]], [[Scalar]]) {
        let means = layers.map { $0.kind == .batchNorm ? [Scalar](repeating: 0, count: channels($0)) : [] }
        let variances = layers.map { $0.kind == .batchNorm ? [Scalar](repeating: 1, count: channels($0)) : [] }
        return (means, variances)
    }

    /// Whether layer `l` has trained parameters (weights and biases, or gamma and beta).
    public func hasParameters(_ l: Int) -> Bool { !weights[l].isEmpty }

    /// The tensor names of layer `l`'s trained parameters as a model stores them (weight and
    /// bias, or gamma and beta), nil for a layer without parameters.
    public func parameterNames(_ l: Int) -> (weight: String, bias: String)? {
        let layer = layers[l]
        if let bn = layer.batchNorm { return (bn.gamma ?? "layers.\(l).gamma", bn.beta ?? "layers.\(l).beta") }
        guard let weight = layer.weight else { return nil }
        return (weight, layer.bias ?? "layers.\(l).bias")
    }

    /// A dense network with standard tensor names.
    public init(layerSizes: [Int], activations: [Activation], weights: [[Scalar]], biases: [[Scalar]]) {
        let layers = (0..<(layerSizes.count - 1)).map {
            Layer.dense(index: $0, inputSize: layerSizes[$0], outputSize: layerSizes[$0 + 1], activation: activations[$0])
        }
        self.init(layers: layers, weights: weights, biases: biases)
    }

    /// Draws initial parameters from `random` in the order and orientation the NumPy code draws
    /// them, so the same seed gives the same network as the blog code. Convolution kernels are
    /// drawn in `[height, width, in, out]` order with fan-in `height * width * in`.
    public init(recipe: TrainingRecipe, layers: [Layer], random: inout NumPyRandomState) {
        self.layers = layers
        weights = Array(repeating: [], count: layers.count)
        biases = Array(repeating: [], count: layers.count)
        (movingMeans, movingVariances) = Self.initialMovingStatistics(layers)
        // Batch normalization starts as Keras's: gamma 1, beta 0 (nothing drawn from `random`,
        // so the weights of the other layers are those of the same network without it).
        for l in layers.indices where layers[l].kind == .batchNorm {
            weights[l] = [Scalar](repeating: 1, count: Self.channels(layers[l]))
            biases[l] = [Scalar](repeating: 0, count: Self.channels(layers[l]))
        }
        // (layer, fan-in, fan-out) of the layers with weights drawn at random, in order.
        let parameterized: [(Int, Int, Int)] = layers.indices.compactMap { l in
            let layer = layers[l]
            switch layer.kind {
            case .dense: return (l, layer.inputSize, layer.outputSize)
            case .conv2d:
                let g = layer.spatial!, area = g.window[0] * g.window[1]
                return (l, area * g.inputShape[2], area * g.outputShape[2])
            case .maxPool2d, .flatten, .batchNorm, .avgPool2d, .globalAvgPool2d, .globalMaxPool2d: return nil
            }
        }
        func count(_ l: Int) -> Int { layers[l].weightShape!.reduce(1, *) }
        func outputs(_ l: Int) -> Int { layers[l].biasCount! }
        switch recipe.initialization {
        case .blog, .he, .xavier:
            for (l, fanIn, fanOut) in parameterized {
                let scale: Double
                switch recipe.initialization {
                case .blog: scale = 0.01
                case .he: scale = (2.0 / Double(fanIn)).squareRoot()
                default: scale = (2.0 / Double(fanIn + fanOut)).squareRoot()
                }
                // randn(in, out) * scale: drawn row-major in [in, out] order already.
                weights[l] = random.randn(count: count(l)).map { Scalar($0 * scale) }
                biases[l] = [Scalar](repeating: 0, count: outputs(l))
            }
        case .nielsen, .course:
            for (l, fanIn, _) in parameterized {
                let root = Double(fanIn).squareRoot()
                if layers[l].kind == .conv2d {
                    weights[l] = random.randn(count: count(l)).map { Scalar($0 / root) }
                    continue
                }
                // randn(out, in) / sqrt(in), then stored transposed as [in, out].
                let fanOut = layers[l].outputSize
                let drawn = random.randn(count: fanOut * fanIn)
                var w = [Scalar](repeating: 0, count: fanIn * fanOut)
                for o in 0..<fanOut {
                    for i in 0..<fanIn { w[i * fanOut + o] = Scalar(drawn[o * fanIn + i] / root) }
                }
                weights[l] = w
            }
            for (l, _, _) in parameterized {
                if recipe.initialization == .nielsen {
                    biases[l] = random.randn(count: outputs(l)).map { Scalar($0) }
                } else {
                    biases[l] = [Scalar](repeating: 0, count: outputs(l))
                }
            }
        }
    }

    /// Draws a dense network for `recipe` (which must have no feature stages).
    public init(recipe: TrainingRecipe, random: inout NumPyRandomState) {
        precondition(recipe.featureStages.isEmpty, "a recipe with feature stages needs the image shape: use init(recipe:layers:random:)")
        self.init(recipe: recipe, layers: recipe.denseLayers(firstIndex: 0), random: &random)
    }

    /// The shape of layer `l`'s weight tensor (`[channels]` for batch normalization's gamma,
    /// `[0]` for a layer without parameters).
    public func weightShape(_ l: Int) -> [Int] {
        layers[l].kind == .batchNorm ? [weights[l].count] : layers[l].weightShape ?? [0]
    }

    /// The network as model layers and tensors (weights stored in `dtype`); every layer with
    /// parameters gets a bias tensor.
    public func layersAndTensors() -> (layers: [Layer], tensors: [NamedTensor]) {
        var out: [Layer] = []
        var tensors: [NamedTensor] = []
        for l in 0..<layerCount {
            var layer = layers[l]
            if layer.kind == .batchNorm {
                let (gamma, beta) = parameterNames(l)!
                layer.batchNorm!.gamma = gamma
                layer.batchNorm!.beta = beta
                let c = [weights[l].count]
                tensors += [NamedTensor(gamma, Self.tensor(weights[l], shape: c)), NamedTensor(beta, Self.tensor(biases[l], shape: c)),
                            NamedTensor(layer.batchNorm!.movingMean, Self.tensor(movingMeans[l], shape: c)),
                            NamedTensor(layer.batchNorm!.movingVariance, Self.tensor(movingVariances[l], shape: c))]
            } else if let weight = layer.weight {
                if layer.bias == nil { layer.bias = "layers.\(l).bias" }
                if layer.kind == .conv2d { layer.spatial!.convention = .crossCorrelation }
                tensors.append(NamedTensor(weight, Self.tensor(weights[l], shape: weightShape(l))))
                tensors.append(NamedTensor(layer.bias!, Self.tensor(biases[l], shape: [biases[l].count])))
            }
            out.append(layer)
        }
        return (out, tensors)
    }

    /// A tensor of this precision holding `values`.
    public static func tensor(_ values: [Scalar], shape: [Int]) -> Tensor {
        values.withUnsafeBytes { Tensor(dtype: Scalar.dtype, shape: shape, copying: $0) }
    }

    /// Why the trainer cannot train `layers`, or nil when it can. Every layer kind and
    /// activation of format 1.2 has a backward pass; what is refused: softmax or log-softmax
    /// before the output layer (their Jacobian is not element-wise; the loss absorbs the
    /// output's), and a batch normalization stored without gamma or beta (Keras's `scale=False`
    /// or `center=False`: the trainer trains both).
    public static func unsupported(_ layers: [Layer]) -> ModelError? {
        for (i, layer) in layers.enumerated() {
            if i < layers.count - 1, layer.activation == .softmax || layer.activation == .logSoftmax {
                return .invalidField(location: "layers[\(i)].activation",
                                     expected: "softmax or log_softmax only on the output layer (the trainer differentiates them through the loss)",
                                     found: layer.activation.description)
            }
            if let bn = layer.batchNorm, bn.gamma == nil || bn.beta == nil {
                return .invalidField(location: "layers[\(i)]",
                                     expected: "a batch_norm with gamma and beta (the trainer trains both)",
                                     found: bn.gamma == nil ? "no gamma" : "no beta")
            }
        }
        return nil
    }

    /// Reads a model's layers and parameters (any float dtype, converted). Kernels stored as
    /// true convolutions are flipped into the cross-correlation form the trainer computes.
    /// Throws for layers or activations the trainer does not support (`unsupported`).
    public init(model: Model) throws(ModelError) {
        try model.validate()
        if let problem = Self.unsupported(model.metadata.layers) { throw problem }
        layers = model.metadata.layers
        weights = []
        biases = []
        (movingMeans, movingVariances) = Self.initialMovingStatistics(layers)
        for (l, layer) in layers.enumerated() {
            if let bn = layer.batchNorm {
                weights.append(Scalar.values(of: model.tensor(bn.gamma!)!))
                biases.append(Scalar.values(of: model.tensor(bn.beta!)!))
                movingMeans[l] = Scalar.values(of: model.tensor(bn.movingMean)!)
                movingVariances[l] = Scalar.values(of: model.tensor(bn.movingVariance)!)
                continue
            }
            guard let weightName = layer.weight else {
                weights.append([])
                biases.append([])
                continue
            }
            var w = Scalar.values(of: model.floatWeight(of: layer) ?? model.tensor(weightName)!)
            if layer.kind == .conv2d, let g = layer.spatial, g.convention == .convolution {
                w = SpatialGeometry.flippedKernel(w, shape: layer.weightShape!)
                layers[l].spatial!.convention = .crossCorrelation
            }
            weights.append(w)
            let outputs = layer.biasCount!
            biases.append(layer.bias.map { Scalar.values(of: model.tensor($0)!) } ?? [Scalar](repeating: 0, count: outputs))
        }
    }

}
