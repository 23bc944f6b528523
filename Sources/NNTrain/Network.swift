import NNCore
import NNEngine
import NNRandom

/// A dense network's trainable parameters in compute precision.
///
/// Weights are row-major `[in, out]` (`Z = X @ W + b`, samples as rows), the orientation of the
/// `.nnm` format, so a network converts to a model without transposing.
public struct Network<Scalar: BLASScalar>: Sendable {
    public var layerSizes: [Int]
    public var activations: [Activation]
    /// weights[l] has layerSizes[l] * layerSizes[l + 1] elements.
    public var weights: [[Scalar]]
    /// biases[l] has layerSizes[l + 1] elements.
    public var biases: [[Scalar]]

    public var layerCount: Int { weights.count }

    public init(layerSizes: [Int], activations: [Activation], weights: [[Scalar]], biases: [[Scalar]]) {
        self.layerSizes = layerSizes
        self.activations = activations
        self.weights = weights
        self.biases = biases
    }

    /// Draws initial parameters from `random` in the order and orientation the NumPy code draws
    /// them, so the same seed gives the same network as the blog code.
    public init(recipe: TrainingRecipe, random: inout NumPyRandomState) {
        layerSizes = recipe.layerSizes
        activations = recipe.activations
        weights = []
        biases = []
        let pairs = Array(zip(recipe.layerSizes.dropLast(), recipe.layerSizes.dropFirst()))
        switch recipe.initialization {
        case .blog, .he, .xavier:
            for (fanIn, fanOut) in pairs {
                let scale: Double
                switch recipe.initialization {
                case .blog: scale = 0.01
                case .he: scale = (2.0 / Double(fanIn)).squareRoot()
                default: scale = (2.0 / Double(fanIn + fanOut)).squareRoot()
                }
                // randn(in, out) * scale: drawn row-major in [in, out] order already.
                weights.append(random.randn(count: fanIn * fanOut).map { Scalar($0 * scale) })
                biases.append([Scalar](repeating: 0, count: fanOut))
            }
        case .nielsen, .course:
            for (fanIn, fanOut) in pairs {
                // randn(out, in) / sqrt(in), then stored transposed as [in, out].
                let root = Double(fanIn).squareRoot()
                let drawn = random.randn(count: fanOut * fanIn)
                var w = [Scalar](repeating: 0, count: fanIn * fanOut)
                for o in 0..<fanOut {
                    for i in 0..<fanIn { w[i * fanOut + o] = Scalar(drawn[o * fanIn + i] / root) }
                }
                weights.append(w)
            }
            for (_, fanOut) in pairs {
                if recipe.initialization == .nielsen {
                    biases.append(random.randn(count: fanOut).map { Scalar($0) })
                } else {
                    biases.append([Scalar](repeating: 0, count: fanOut))
                }
            }
        }
    }

    /// The network as model layers and tensors (weights stored in `dtype`).
    public func layersAndTensors() -> (layers: [Layer], tensors: [NamedTensor]) {
        var layers: [Layer] = []
        var tensors: [NamedTensor] = []
        for l in 0..<layerCount {
            let layer = Layer.dense(index: l, inputSize: layerSizes[l], outputSize: layerSizes[l + 1], activation: activations[l])
            layers.append(layer)
            tensors.append(NamedTensor(layer.weight, Self.tensor(weights[l], shape: [layerSizes[l], layerSizes[l + 1]])))
            tensors.append(NamedTensor(layer.bias!, Self.tensor(biases[l], shape: [layerSizes[l + 1]])))
        }
        return (layers, tensors)
    }

    /// A tensor of this precision holding `values`.
    public static func tensor(_ values: [Scalar], shape: [Int]) -> Tensor {
        values.withUnsafeBytes { Tensor(dtype: Scalar.dtype, shape: shape, copying: $0) }
    }

    /// Reads the parameters of a model's dense layers (any float dtype, converted).
    public init(model: Model) throws(ModelError) {
        try model.validate()
        let meta = model.metadata
        layerSizes = [meta.input.features] + meta.layers.map(\.outputSize)
        activations = meta.layers.map(\.activation)
        weights = meta.layers.map { Scalar.values(of: model.tensor($0.weight)!) }
        biases = meta.layers.map { layer in
            layer.bias.map { Scalar.values(of: model.tensor($0)!) } ?? [Scalar](repeating: 0, count: layer.outputSize)
        }
    }
}
