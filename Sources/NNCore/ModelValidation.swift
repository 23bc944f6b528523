/// Something suspicious about a model that does not stop it from being used.
public struct ModelWarning: Equatable, CustomStringConvertible, Sendable {
    public var tensor: String
    public var message: String
    public var description: String { "tensor '\(tensor)': \(message)" }
}

extension Model {
    /// Checks that the architecture and the tensors fit together (`validateStructure()`) and
    /// returns warnings (NaN or infinite values, `nonFiniteWarnings()`) that do not make the
    /// model unusable.
    @discardableResult
    public func validate() throws(ModelError) -> [ModelWarning] {
        try validateStructure()
        return nonFiniteWarnings()
    }

    /// Checks that layers chain from the input to the output and every named tensor exists with
    /// the shape its role needs and a float dtype, without reading tensor values: cheap even for
    /// a large memory-mapped model.
    public func validateStructure() throws(ModelError) {
        let meta = metadata
        guard !meta.layers.isEmpty else { throw .noLayers }
        var previous = meta.input.features
        for (i, layer) in meta.layers.enumerated() {
            if layer.inputSize != previous {
                throw .layersDoNotChain(location: i == 0 ? "layers[0] (after input \(ShapeMath.describe(meta.input.shape)))" : "layers[\(i)]",
                                        expected: previous, found: layer.inputSize)
            }
            try requireFloatTensor(layer.weight, location: "layers[\(i)].weight", shape: [layer.inputSize, layer.outputSize])
            if let bias = layer.bias {
                try requireFloatTensor(bias, location: "layers[\(i)].bias", shape: [layer.outputSize])
            }
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

    /// One warning per tensor holding NaN or infinite values. Reads every value.
    public func nonFiniteWarnings() -> [ModelWarning] {
        tensors.compactMap { t in
            t.tensor.firstNonFiniteIndex().map {
                ModelWarning(tensor: t.name, message: "holds NaN or infinite values (first at element \($0))")
            }
        }
    }

    private func requireFloatTensor(_ name: String, location: String, shape: [Int]) throws(ModelError) {
        guard let t = tensor(name) else { throw .missingTensor(location: location, name: name) }
        guard t.dtype.isFloatingPoint else { throw .unsupportedDType(tensor: name, dtype: t.dtype.rawValue) }
        guard t.shape == shape else { throw .shapeMismatch(tensor: name, expected: shape, found: t.shape) }
    }
}
