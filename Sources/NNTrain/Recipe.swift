import NNCore

/// The loss a network is trained on.
public enum Loss: String, CaseIterable, Sendable {
    /// Categorical cross-entropy over a softmax output, `-mean(sum(y * log(a + 1e-15)))`;
    /// the output delta is `a - y` (seeds 000 and 002).
    case crossEntropy = "cross-entropy"
    /// The quadratic cost `1/(2m) * sum((a - y)^2)`; the output delta is `(a - y) * f'(z)`
    /// (Nielsen's cost in seed 001, and the square loss of seed 003, which is the same function).
    case quadratic
    /// The negative log-likelihood of a log-softmax output `a` (log-probabilities, PyTorch's
    /// `NLLLoss` after `LogSoftmax`), `-mean(sum(y * a))`; the output delta is `exp(a) - y`. The
    /// same function as cross-entropy over softmax, without its `1e-15` guard.
    case nll
}

/// How weights and biases start.
public enum Initialization: String, CaseIterable, Sendable {
    /// Seeds 000 and 002: `randn(in, out) * 0.01`, zero biases.
    case blog
    /// Seed 001: `randn(out, in) / sqrt(in)` for every layer, then `randn(out, 1)` biases.
    case nielsen
    /// Seed 003: `randn(out, in) / sqrt(in)`, zero biases.
    case course
    /// He: `randn(in, out) * sqrt(2 / in)`, zero biases.
    case he
    /// Glorot/Xavier normal: `randn(in, out) * sqrt(2 / (in + out))`, zero biases.
    case xavier
}

/// How dropout is applied to hidden activations.
public enum DropoutMode: String, CaseIterable, Sendable {
    /// Standard inverted dropout: kept activations are divided by the keep probability, and the
    /// mask also gates the backward pass.
    case inverted
    /// Exactly the capstone (seed 002): the output comes from the forward pass without dropout,
    /// masks `binomial(1, keep)` multiply the hidden activations without rescaling, the hidden
    /// pre-activations are recomputed from the masked activations, and the masks do not gate
    /// the deltas. For parity with the blog code only.
    case blog
}

/// Everything that defines a training run except the data.
public struct TrainingRecipe: Sendable, Equatable {
    /// Convolution and pooling stages before the dense layers; empty for an MLP.
    public var featureStages: [FeatureStage] = []
    /// Dense layer widths from input to output, e.g. [784, 256, 10]. With feature stages the
    /// first width is the number of features they produce (checked against the images).
    public var layerSizes: [Int]
    /// One activation per layer after the input.
    public var activations: [Activation]
    public var loss: Loss
    public var epochs: Int
    public var batchSize: Int
    public var learningRate: Double
    /// Momentum coefficient `mu` in `v = mu * v - lr * g; W += v`; 0 is plain SGD.
    public var momentum: Double
    /// L2 strength `lambda`: the penalty `lambda * sum(W^2)` adds `2 * lambda * W` to weight
    /// gradients (biases are not penalized).
    public var l2: Double
    /// Keep probability for hidden activations; nil or 1 means no dropout.
    public var dropoutKeep: Double?
    public var dropoutMode: DropoutMode
    public var initialization: Initialization
    /// Seed of the NumPy-compatible random stream (initial weights, shuffles, dropout masks).
    public var seed: UInt32
    /// Batch normalization's moving averages, Keras's convention: after each training batch
    /// `moving = momentum * moving + (1 - momentum) * batch statistic`, the variance being the
    /// biased one the batch was normalized with (Keras; PyTorch's running variance uses the
    /// unbiased estimate and its `momentum` is this one's `1 - momentum`; not used here).
    public var batchNormMomentum = 0.99
    /// Whether every hidden dense layer is followed by batch normalization (per feature): the
    /// dense layer then applies no activation and the normalization applies the layer's one
    /// (Keras's Dense -> BatchNormalization -> Activation).
    public var denseBatchNorm = false
    /// Epsilon of the batch normalizations after dense layers, and of `bn` stages that do not
    /// state theirs: Keras's 1e-3.
    public static let batchNormEpsilon = 1e-3

    public init(layerSizes: [Int], activations: [Activation], loss: Loss, epochs: Int, batchSize: Int,
                learningRate: Double, momentum: Double = 0, l2: Double = 0, dropoutKeep: Double? = nil,
                dropoutMode: DropoutMode = .inverted, initialization: Initialization = .blog, seed: UInt32 = 0) {
        self.layerSizes = layerSizes
        self.activations = activations
        self.loss = loss
        self.epochs = epochs
        self.batchSize = batchSize
        self.learningRate = learningRate
        self.momentum = momentum
        self.l2 = l2
        self.dropoutKeep = dropoutKeep
        self.dropoutMode = dropoutMode
        self.initialization = initialization
        self.seed = seed
    }

    /// The seed 000 recipe: 784-256-10, ReLU + softmax, cross-entropy, lr 0.1, batch 64.
    public static let blog2Layer = TrainingRecipe(layerSizes: [784, 256, 10], activations: [.relu, .softmax],
                                                  loss: .crossEntropy, epochs: 20, batchSize: 64, learningRate: 0.1)

    /// The features the feature stages produce for images of `imageShape` (all features
    /// when there are no stages): the size of the first dense layer's input.
    public func flattenedFeatures(imageShape: [Int]) throws(TrainingError) -> Int {
        if featureStages.isEmpty { return imageShape.reduce(1, *) }
        var probe = self
        probe.layerSizes[0] = 0
        let layers = try probe.modelLayers(imageShape: imageShape, checkingDenseInput: false)
        return layers.first(where: { $0.kind == .flatten })!.outputSize
    }

    /// The model's layers for images of `imageShape` ([height, width] or [height, width,
    /// channels]): the feature stages, a flatten, then the dense layers; standard tensor names.
    public func modelLayers(imageShape: [Int]) throws(TrainingError) -> [Layer] {
        try modelLayers(imageShape: imageShape, checkingDenseInput: true)
    }

    func modelLayers(imageShape: [Int], checkingDenseInput: Bool) throws(TrainingError) -> [Layer] {
        var layers: [Layer] = []
        let features = imageShape.reduce(1, *)
        if featureStages.isEmpty {
            guard layerSizes[0] == features else {
                throw .badData("--layers starts with \(layerSizes[0]) inputs, but the training images are \(ShapeMath.describe(imageShape)) (\(features) features)")
            }
        } else {
            guard imageShape.count == 2 || imageShape.count == 3 else {
                throw .badData("convolution stages need images of [height, width] or [height, width, channels], found \(ShapeMath.describe(imageShape))")
            }
            var shape = imageShape.count == 2 ? imageShape + [1] : imageShape
            do {
                for stage in featureStages {
                    // Keras's conventions where a stage leaves them open: padded cells not
                    // counted in averages, epsilon 1e-3.
                    let layer = try stage.layer(index: layers.count, inputShape: shape, countIncludePad: false, epsilon: Self.batchNormEpsilon)
                    shape = layer.spatial!.outputShape
                    layers.append(layer)
                }
            } catch {
                throw .invalidOption("--cnn: \(error)")
            }
            layers.append(.flatten(inputShape: shape))
            if checkingDenseInput, layerSizes[0] != layers.last!.outputSize {
                throw .invalidOption("--layers starts with \(layerSizes[0]) inputs, but the convolution stages produce \(ShapeMath.describe(shape)) = \(layers.last!.outputSize) features")
            }
        }
        if checkingDenseInput { layers += denseLayers(firstIndex: layers.count) }
        return layers
    }

    /// The dense layers from `layerSizes` and `activations`, numbered from `firstIndex`; with
    /// `denseBatchNorm`, each hidden one followed by a batch normalization that takes over its
    /// activation.
    public func denseLayers(firstIndex: Int) -> [Layer] {
        var layers: [Layer] = []
        for l in 0..<(layerSizes.count - 1) {
            let normalized = denseBatchNorm && l < layerSizes.count - 2
            layers.append(.dense(index: firstIndex + layers.count, inputSize: layerSizes[l], outputSize: layerSizes[l + 1],
                                 activation: normalized ? .identity : activations[l]))
            if normalized {
                // [features] is always a valid shape to normalize (validate bounds the widths).
                layers.append(try! .batchNorm(index: firstIndex + layers.count, inputShape: [layerSizes[l + 1]],
                                              epsilon: Self.batchNormEpsilon, activation: activations[l]))
            }
        }
        return layers
    }

    /// Whether dropout is on.
    public var usesDropout: Bool { (dropoutKeep ?? 1) < 1 }

    /// Checks the recipe, naming the option that is wrong.
    public func validate() throws(TrainingError) {
        guard layerSizes.count >= 2 else { throw .invalidOption("--layers needs at least an input and an output size") }
        // With feature stages the first width follows from the images (`flattenedFeatures`).
        guard layerSizes.dropFirst(featureStages.isEmpty ? 0 : 1).allSatisfy({ $0 > 0 && $0 <= 1 << 24 }) else {
            throw .invalidOption("--layers sizes must be between 1 and 16777216")
        }
        guard activations.count == layerSizes.count - 1 else {
            throw .invalidOption("--activations needs \(layerSizes.count - 1) entries (one per layer after the input), found \(activations.count)")
        }
        if let i = activations.dropLast().firstIndex(where: { $0 == .softmax || $0 == .logSoftmax }) {
            throw .invalidOption("--activations: \(activations[i]) is only supported on the output layer, not layer \(i + 1)")
        }
        let output = activations.last!
        switch loss {
        case .crossEntropy where output != .softmax:
            throw .invalidOption("--loss cross-entropy needs a softmax output layer, but the output activation is \(output); use --activations ...,softmax or --loss quadratic")
        case .nll where output != .logSoftmax:
            throw .invalidOption("--loss nll needs a log_softmax output layer, but the output activation is \(output); use --activations ...,log_softmax or --loss cross-entropy")
        case .nll where layerSizes.last! < 2:
            throw .invalidOption("--loss nll needs at least 2 outputs (a log_softmax over one output is always 0)")
        case .quadratic where output == .softmax || output == .logSoftmax:
            throw .invalidOption("--loss quadratic does not fit a \(output) output (its Jacobian is not element-wise); use --loss \(output == .softmax ? "cross-entropy" : "nll") or a sigmoid output")
        default: break
        }
        guard (0..<1).contains(batchNormMomentum) else { throw .invalidOption("--bn-momentum must be in [0, 1), found \(batchNormMomentum)") }
        if denseBatchNorm, layerSizes.count < 3 { throw .invalidOption("--dense-bn needs a hidden dense layer (--layers with at least one hidden width)") }
        guard epochs >= 0 else { throw .invalidOption("--epochs must be at least 0") }
        guard batchSize >= 1 else { throw .invalidOption("--batch must be at least 1, found \(batchSize)") }
        guard learningRate > 0, learningRate.isFinite else { throw .invalidOption("--lr must be a positive number, found \(learningRate)") }
        guard (0..<1).contains(momentum) else { throw .invalidOption("--momentum must be in [0, 1), found \(momentum)") }
        guard l2 >= 0, l2.isFinite else { throw .invalidOption("--l2 must be non-negative, found \(l2)") }
        if let keep = dropoutKeep, !(keep > 0 && keep <= 1) {
            throw .invalidOption("--dropout-keep must be in (0, 1], found \(keep)")
        }
        for stage in featureStages {
            if stage.activation == .softmax || stage.activation == .logSoftmax {
                throw .invalidOption("--cnn: \(stage.activation) is only supported on the output layer")
            }
            if case let .conv(filters, _, _, _, _) = stage, !(1...65536).contains(filters) {
                throw .invalidOption("--cnn: a convolution needs 1 to 65536 filters, found \(filters)")
            }
        }
        if let i = featureStages.firstIndex(where: { if case .globalPool = $0 { return true } else { return false } }), i < featureStages.count - 1 {
            throw .invalidOption("--cnn: a global pooling stage (gap, gmp) leaves one value per channel, so it must be the last stage")
        }
        if !featureStages.isEmpty || denseBatchNorm, usesDropout, dropoutMode == .blog {
            throw .invalidOption("--dropout-mode blog is the capstone MLP's own scheme; with --cnn or --dense-bn use inverted dropout")
        }
    }
}

/// Why training could not start or go on. Messages are one line and name the file or option.
public enum TrainingError: Error, Equatable, CustomStringConvertible, Sendable {
    case invalidOption(String)
    /// The data does not fit the network or is inconsistent.
    case badData(String)
    /// A data file does not exist.
    case missingData(String)
    /// The loss became NaN or infinite.
    case diverged(epoch: Int, batch: Int, lastCheckpoint: String?)
    /// A checkpoint to resume from does not fit the recipe.
    case cannotResume(path: String, reason: String)

    public var description: String {
        switch self {
        case let .invalidOption(message): return message
        case let .badData(message), let .missingData(message): return message
        case let .diverged(epoch, batch, checkpoint):
            var s = "training diverged: the loss became NaN or infinite in epoch \(epoch), batch \(batch); try a smaller --lr"
            if let checkpoint { s += "; the last good checkpoint is \(checkpoint)" }
            return s
        case let .cannotResume(path, reason): return "\(path): cannot resume: \(reason)"
        }
    }
}
