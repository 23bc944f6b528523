/// Something suspicious about a model that does not stop it from being used.
public struct ModelWarning: Equatable, CustomStringConvertible, Sendable {
    public var tensor: String
    public var message: String
    public var description: String { "tensor '\(tensor)': \(message)" }
}

extension Model {
    /// Checks that the architecture and the tensors fit together (`validateStructure()`) and
    /// returns warnings (NaN or infinite values, negative variances: `valueWarnings()`) that do
    /// not make the model unusable.
    @discardableResult
    public func validate() throws(ModelError) -> [ModelWarning] {
        try validateStructure()
        return valueWarnings()
    }

    /// Checks that layers chain from the input to the output and every named tensor exists with
    /// the shape its role needs and a float dtype, without reading tensor values: cheap even for
    /// a large memory-mapped model.
    public func validateStructure() throws(ModelError) {
        let meta = metadata
        guard !meta.layers.isEmpty else { throw .noLayers }
        var previous = meta.input.features
        var previousShape: [Int]? = nil
        for (i, layer) in meta.layers.enumerated() {
            let location = "layers[\(i)]"
            if layer.inputSize != previous {
                throw .layersDoNotChain(location: i == 0 ? "layers[0] (after input \(ShapeMath.describe(meta.input.shape)))" : location,
                                        expected: previous, found: layer.inputSize)
            }
            if let g = layer.spatial, let previousShape, g.inputShape != previousShape {
                throw .invalidField(location: "\(location).input_shape", expected: ShapeMath.describe(previousShape) + " (the previous layer's output)",
                                    found: ShapeMath.describe(g.inputShape))
            }
            switch layer.kind {
            case .dense:
                guard layer.spatial == nil, layer.weight != nil else {
                    throw .invalidField(location: location, expected: "a dense layer with a weight and no spatial geometry", found: "something else")
                }
                try requireWeight(of: layer, location: location, shape: [layer.inputSize, layer.outputSize])
                if let bias = layer.bias {
                    try requireFloatTensor(bias, location: "\(location).bias", shape: [layer.outputSize])
                }
                previousShape = nil
            case .conv2d:
                guard let g = layer.spatial, g.window.count == 2, layer.weight != nil, let shape = layer.weightShape else {
                    throw .invalidField(location: location, expected: "a conv2d layer with a geometry and a weight", found: "something else")
                }
                try requireWeight(of: layer, location: location, shape: shape)
                if let bias = layer.bias {
                    try requireFloatTensor(bias, location: "\(location).bias", shape: [g.outputShape[2]])
                }
                previousShape = g.outputShape
            case .maxPool2d, .avgPool2d:
                guard let g = layer.spatial, g.window.count == 2, layer.weight == nil, layer.bias == nil else {
                    throw .invalidField(location: location, expected: "a \(layer.kind.rawValue) layer with a geometry and no parameters", found: "something else")
                }
                previousShape = g.outputShape
            case .flatten:
                guard layer.spatial != nil, layer.weight == nil, layer.bias == nil, layer.inputSize == layer.outputSize else {
                    throw .invalidField(location: location, expected: "a flatten layer with in == out and no parameters", found: "something else")
                }
                previousShape = nil
            case .globalAvgPool2d, .globalMaxPool2d:
                guard let g = layer.spatial, g.inputShape.count == 3, g.outputShape == [g.inputShape[2]], layer.weight == nil, layer.bias == nil else {
                    throw .invalidField(location: location, expected: "a \(layer.kind.rawValue) layer from [height, width, channels] to [channels] without parameters",
                                        found: "something else")
                }
                previousShape = nil
            case .batchNorm:
                guard let g = layer.spatial, let bn = layer.batchNorm, let channels = g.inputShape.last, g.outputShape == g.inputShape,
                      layer.weight == nil, layer.bias == nil else {
                    throw .invalidField(location: location, expected: "a batch_norm layer with a sample shape, statistics and no weight", found: "something else")
                }
                guard bn.epsilon > 0, bn.epsilon.isFinite else {
                    throw .invalidField(location: "\(location).epsilon", expected: "a finite number > 0", found: "\(bn.epsilon)")
                }
                for (key, name) in [("gamma", bn.gamma), ("beta", bn.beta), ("moving_mean", bn.movingMean), ("moving_variance", bn.movingVariance)] {
                    if let name { try requireChannelTensor(name, location: "\(location).\(key)", channels: channels) }
                }
                previousShape = g.inputShape.count == 3 ? g.inputShape : nil
            }
            try Self.checkParameters(of: layer.activation, location: "\(location).activation")
            previous = layer.outputSize
        }
        if !meta.classes.isEmpty, meta.classes.count != meta.outputSize {
            throw .invalidField(location: "classes", expected: "\(meta.outputSize) names (one per output)", found: "\(meta.classes.count)")
        }
        for (i, step) in meta.preprocessing.enumerated() {
            switch step {
            case let .scale(factor, offset):
                guard factor.isFinite, offset.isFinite else {
                    throw .invalidField(location: "preprocessing[\(i)]", expected: "finite factor and offset", found: "\(factor), \(offset)")
                }
            case let .zscore(mean, std):
                try requireFloatTensor(mean, location: "preprocessing[\(i)].mean", shape: [meta.input.features])
                try requireFloatTensor(std, location: "preprocessing[\(i)].std", shape: [meta.input.features])
            }
        }
        if let training = meta.training {
            for (parameter, stateName) in training.optimizerState {
                guard let p = tensor(parameter) else {
                    throw .missingTensor(location: "training.optimizer_state.tensors", name: parameter)
                }
                try requireFloatTensor(stateName, location: "training.optimizer_state.tensors.\(parameter)", shape: p.shape)
            }
        }
    }

    /// What a scan of the values finds: `nonFiniteWarnings()`, then `negativeVarianceWarnings()`.
    public func valueWarnings() -> [ModelWarning] {
        nonFiniteWarnings() + negativeVarianceWarnings()
    }

    /// One warning per tensor holding NaN or infinite values. Reads every value.
    public func nonFiniteWarnings() -> [ModelWarning] {
        tensors.compactMap { t in
            t.tensor.firstNonFiniteIndex().map {
                ModelWarning(tensor: t.name, message: "holds NaN or infinite values (first at element \($0))")
            }
        }
    }

    /// A batch_norm variance below 0 cannot come from training; where `variance + epsilon` is
    /// negative the layer's outputs are NaN. A warning, not an error: the other channels work.
    public func negativeVarianceWarnings() -> [ModelWarning] {
        metadata.layers.enumerated().compactMap { i, layer in
            guard let bn = layer.batchNorm, let t = tensor(bn.movingVariance), t.dtype.isFloatingPoint,
                  let first = t.doubles().firstIndex(where: { $0 < 0 }) else { return nil }
            return ModelWarning(tensor: bn.movingVariance,
                                message: "layers[\(i)] (batch_norm) has a negative moving variance (first at element \(first))")
        }
    }

    /// A per-channel tensor of batch normalization: named by the layer when its shape is wrong.
    private func requireChannelTensor(_ name: String, location: String, channels: Int) throws(ModelError) {
        guard let t = tensor(name) else { throw .missingTensor(location: location, name: name) }
        guard t.dtype.isFloatingPoint else { throw .unsupportedDType(tensor: name, dtype: t.dtype.rawValue) }
        guard t.shape == [channels] else {
            throw .invalidField(location: location, expected: "tensor '\(name)' of shape [\(channels)] (one value per channel)",
                                found: "shape [\(t.shape.map(String.init).joined(separator: ", "))]")
        }
    }

    /// Parameters of an activation must be finite (a model built in code could hold anything;
    /// JSON cannot), and a ReLU's cap positive.
    static func checkParameters(of activation: Activation, location: String) throws(ModelError) {
        for (key, value) in activation.numericParameters {
            guard value.isFinite else { throw .invalidField(location: "\(location).\(key)", expected: "a finite number", found: "\(value)") }
        }
        if case let .clippedRelu(maxValue) = activation, !(maxValue > 0) {
            throw .invalidField(location: "\(location).max_value", expected: "a number > 0", found: "\(maxValue)")
        }
    }

    /// A dense or conv2d weight: a float tensor of `shape`, or (format 1.3) an `i8` one with a
    /// `weight_scale` naming an f32 tensor of one finite value > 0 per output. The scales are read
    /// here (one value per output, cheap): a zero, negative or NaN scale would make every output
    /// of its channel meaningless.
    private func requireWeight(of layer: Layer, location: String, shape: [Int]) throws(ModelError) {
        guard let weight = layer.weight else { return }
        if let q = layer.inputQuantization {
            guard layer.weightScale != nil else {
                throw .invalidField(location: "\(location).input_quantization", expected: "an i8 weight with a weight_scale (it quantizes that layer's inputs)",
                                    found: "a layer with a float weight")
            }
            guard q.scale > 0, q.scale.isFinite else {
                throw .invalidField(location: "\(location).input_quantization.scale", expected: "a finite number > 0", found: "\(q.scale)")
            }
            guard (0...255).contains(q.zeroPoint) else {
                throw .invalidField(location: "\(location).input_quantization.zero_point", expected: "an integer in 0...255", found: "\(q.zeroPoint)")
            }
        }
        guard let scaleName = layer.weightScale else {
            try requireFloatTensor(weight, location: "\(location).weight", shape: shape)
            return
        }
        guard let w = tensor(weight) else { throw .missingTensor(location: "\(location).weight", name: weight) }
        guard w.dtype == .int8 else {
            throw .invalidField(location: "\(location).weight", expected: "an i8 tensor (the layer has a weight_scale)", found: "'\(weight)' of dtype \(w.dtype.rawValue)")
        }
        guard w.shape == shape else { throw .shapeMismatch(tensor: weight, expected: shape, found: w.shape) }
        guard let s = tensor(scaleName) else { throw .missingTensor(location: "\(location).weight_scale", name: scaleName) }
        guard s.dtype == .float32 else { throw .unsupportedDType(tensor: scaleName, dtype: s.dtype.rawValue + " (a weight scale is f32)") }
        guard s.shape == [shape.last ?? 0] else { throw .shapeMismatch(tensor: scaleName, expected: [shape.last ?? 0], found: s.shape) }
        if let bad = s.floats().firstIndex(where: { !($0 > 0) || !$0.isFinite }) {
            throw .invalidField(location: "\(location).weight_scale", expected: "finite scales > 0",
                                found: "'\(scaleName)'[\(bad)] = \(s.floats()[bad])")
        }
    }

    private func requireFloatTensor(_ name: String, location: String, shape: [Int]) throws(ModelError) {
        guard let t = tensor(name) else { throw .missingTensor(location: location, name: name) }
        guard t.dtype.isFloatingPoint else { throw .unsupportedDType(tensor: name, dtype: t.dtype.rawValue) }
        guard t.shape == shape else { throw .shapeMismatch(tensor: name, expected: shape, found: t.shape) }
    }
}

/// A model whose architecture and tensors are known to fit (`Model.validateStructure()`), and
/// what the scan of its values found (`warnings`). Writers take this type, so a model is
/// validated once between reading it and writing it, and its warnings travel with it to be
/// reported.
public struct ValidatedModel: Sendable {
    public let model: Model
    /// NaN or infinite values and negative variances, found when the model was validated.
    public let warnings: [ModelWarning]

    /// Validates `model` (structure, then a scan of every value).
    public init(_ model: Model) throws(ModelError) {
        self.warnings = try model.validate()
        self.model = model
    }

    /// For readers in this package that have just checked the structure and scanned the values.
    package init(checked model: Model, warnings: [ModelWarning]) {
        self.model = model
        self.warnings = warnings
    }
}
