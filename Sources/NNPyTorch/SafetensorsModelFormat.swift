import NNConvert
import NNCore
import NNSafetensors

/// safetensors files: our own export rebuilt exactly, or PyTorch `nn.Linear` state dicts.
public struct SafetensorsModelFormat: ModelFileFormat {
    public init() {}
    public var displayName: String { "safetensors (.safetensors)" }
    public var exportSuffixes: [String] { [".safetensors"] }

    /// safetensors has no magic: its name says so, or a plausible header does (a length that
    /// fits in the file, then JSON that starts with '{'); its own checks then give the details.
    public func recognize(_ probe: FileProbe) -> FormatEvidence? {
        if probe.hasSuffix([".safetensors"]) { return .name }
        guard probe.head.count >= 9 else { return nil }
        let length = probe.head[0..<8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return length >= 2 && length <= UInt64(max(0, probe.size - 8)) && probe.head[8] == UInt8(ascii: "{") ? .plausibleContent : nil
    }

    public func importModel(path: String, options: ImportOptions) throws -> ImportResult {
        let container = try SafetensorsContainer(path: path)
        if let json = container.header.metadata(SafetensorsExport.metadataKey) {
            let metadata = try OwnExport.metadata(json, path: path, source: "__metadata__ \(SafetensorsExport.metadataKey)")
            let names: JSONObject
            do {
                guard let map = try JSONValue.parse(container.header.metadata(SafetensorsExport.tensorNamesKey) ?? "").objectValue else {
                    throw InteropError.badConfig(path: path, detail: "__metadata__ \(SafetensorsExport.tensorNamesKey) must be a JSON object")
                }
                names = map
            } catch let error as JSONParseError {
                throw InteropError.badConfig(path: path, detail: "__metadata__ \(SafetensorsExport.metadataKey) or \(SafetensorsExport.tensorNamesKey): \(error)")
            }
            var keys: [String: String] = [:]
            for (name, value) in names {
                guard let key = value.stringValue else {
                    throw InteropError.missingTensor(path: path, name: name, detail: "listed in __metadata__ \(SafetensorsExport.tensorNamesKey) for '\(name)'")
                }
                keys[name] = key
            }
            return try OwnExport.rebuild(container, metadata: metadata, pytorch: try PyTorchLayout(metadata, path: path),
                                         order: names.keys, key: { keys[$0] }, format: "nnm safetensors export")
        }
        // safetensors sorts its keys: the module order is not the file's.
        var result = try PyTorchStateDict.model(try container.arrays(), path: path, inModuleOrder: false,
                                                sourceFormat: "safetensors-pytorch", options: options)
        result.format = "safetensors, \(result.format)"
        return result
    }

    public func inspect(path: String) throws -> Inspection { try Inspection.inspectSafetensors(path) }

    public func export(_ model: ValidatedModel, to path: String, options: ExportOptions) throws -> ExportResult {
        let layout = try SafetensorsExport.write(model.model, to: path)
        return ExportResult(summary: "PyTorch \(layout.sequential) on inputs \(layout.inputDescription); .nnm metadata in __metadata__")
    }
}

extension OwnExport {
    /// Rebuilds the model from an export in PyTorch's layout (`PyTorchLayout`, the safetensors
    /// export): layer tensors are checked against the shape the layout gives them and turned
    /// back; tensors the layout adds (`num_batches_tracked`, a missing batch-norm scale) are
    /// allowed and not read.
    static func rebuild(_ container: any TensorContainer, metadata: ModelMetadata, pytorch layout: PyTorchLayout, order: [String],
                        key: (String) -> String?, format: String) throws -> ImportResult {
        var arrangements: [String: PyTorchLayout.Arrangement] = [:], added = Set<String>()
        for e in layout.entries {
            switch e.source {
            case let .tensor(name, arrangement): arrangements[name] = arrangement
            case .filled, .batchCounter: added.insert(e.key)
            }
        }
        var shapes: [String: [Int]] = [:]
        for layer in metadata.layers {
            if let w = layer.weight, let shape = layer.weightShape { shapes[w] = shape }
            if let b = layer.bias, let n = layer.biasCount { shapes[b] = [n] }
            if let bn = layer.batchNorm, let n = layer.spatial?.inputShape.last {
                for name in [bn.gamma, bn.beta, bn.movingMean, bn.movingVariance].compactMap({ $0 }) {
                    shapes[name] = [layer.spatial!.inputShape.count == 1 ? layer.inputSize : n]
                }
            }
        }
        return try rebuild(container, metadata: metadata, order: order, key: key, format: format, ignoring: added, check: { name, shape in
            guard let arrangement = arrangements[name], let own = shapes[name] else { return nil }
            let expected = PyTorchLayout.storedShape(own, arrangement)
            return shape == expected ? nil : "expected \(ShapeMath.describe(expected)) in PyTorch's layout, found \(ShapeMath.describe(shape))"
        }, loaded: { name, t in
            guard let arrangement = arrangements[name], let shape = shapes[name] else { return t }
            return PyTorchLayout.loaded(t, arrangement, shape: shape)
        })
    }

}
