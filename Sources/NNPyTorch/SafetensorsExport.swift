import NNConvert
import NNCore
import NNSafetensors
import NNSystem

/// The safetensors file `nnconv export` writes: the state dict of the `nn.Sequential` that
/// computes the model (`PyTorchLayout`: Linear, Conv2d, BatchNorm, pooling and activation
/// modules, in PyTorch's layouts), plus everything needed to rebuild the `.nnm` bit for bit.
///
///     from safetensors.torch import load_file
///     model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10), nn.Softmax(dim=1))
///     model.load_state_dict(load_file("model.safetensors"), strict=False)
///
/// Other tensors (z-score statistics, optimizer state) keep their `.nnm` names and dtypes, which
/// is why `strict=False` is needed when the model has them. `__metadata__` holds `format` (`pt`),
/// `pytorch_module` (the `nn.Sequential` above, for people), `nnm_metadata` (the full `.nnm`
/// metadata JSON) and `nnm_tensors` (a JSON object mapping each `.nnm` tensor name, in file
/// order, to its key).
public enum SafetensorsExport {
    /// The key under `__metadata__` that holds the `.nnm` metadata JSON.
    public static let metadataKey = "nnm_metadata"
    /// The key under `__metadata__` mapping `.nnm` tensor names (in file order) to safetensors keys.
    static let tensorNamesKey = "nnm_tensors"

    /// Writes `model` to `path` atomically; returns the PyTorch layout it used.
    @discardableResult
    public static func write(_ model: Model, to path: String) throws -> PyTorchLayout {
        let (header, tensors, layout) = try layout(model, path: path)
        // Streamed: a large model is not copied into one more buffer.
        let writer = try AtomicFileWriter(path: path)
        try writer.write(header)
        for t in tensors { try writer.write(t.bytes) }
        try writer.commit()
        return layout
    }

    /// The length-prefixed header, and the tensors whose bytes follow it in order.
    static func layout(_ model: Model, path: String) throws -> (header: [UInt8], tensors: [Tensor], layout: PyTorchLayout) {
        let meta = model.metadata
        let layout = try PyTorchLayout(meta, path: path)
        let layerKeys = layout.keys
        var stored: [(key: String, tensor: Tensor)] = []
        var names: [(String, JSONValue)] = []
        var taken = Set<String>()
        func store(_ key: String, _ tensor: Tensor, name: String) throws {
            // A statistics tensor named like a layer key ("2.weight") would make the file ambiguous.
            guard taken.insert(key).inserted, key != "__metadata__" else {
                throw InteropError.badConfig(path: path, detail: "tensor '\(name)' would be stored under the key '\(key)', which is already used")
            }
            stored.append((key, tensor))
        }
        // The state dict first, in module order; then the model's other tensors under their names.
        for (key, tensor) in layout.stateDict(model) { try store(key, tensor, name: key) }
        for t in model.tensors {
            if let key = layerKeys[t.name] {
                names.append((t.name, .string(key)))
            } else {
                try store(t.name, t.tensor, name: t.name)
                names.append((t.name, .string(t.name)))
            }
        }
        var header = JSONObject()
        header["__metadata__"] = .object(JSONObject([
            ("format", .string("pt")),
            ("pytorch_module", .string(layout.sequential)),
            (metadataKey, .string(JSONValue.object(meta.json).serialized())),
            (tensorNamesKey, .string(JSONValue.object(JSONObject(names)).serialized())),
        ]))
        var offset = 0
        for s in stored {
            let end = offset + s.tensor.byteCount
            header[s.key] = .object(JSONObject([
                ("dtype", .string(Safetensors.ElementType(s.tensor.dtype).rawValue)),
                ("shape", .array(s.tensor.shape.map { .integer(Int64($0)) })),
                ("data_offsets", .array([.integer(Int64(offset)), .integer(Int64(end))])),
            ]))
            offset = end
        }
        var text = Array(JSONValue.object(header).serialized().utf8)
        // The reference writer pads with spaces so that the data buffer starts 8-byte aligned.
        text += [UInt8](repeating: UInt8(ascii: " "), count: (8 - text.count % 8) % 8)
        guard text.count <= Safetensors.maximumHeaderBytes else {
            throw InteropError.badConfig(path: path, detail: "the header would have \(text.count) bytes, more than the safetensors limit of \(Safetensors.maximumHeaderBytes)")
        }
        var n = UInt64(text.count)
        var bytes: [UInt8] = []
        for _ in 0..<8 {
            bytes.append(UInt8(truncatingIfNeeded: n))
            n >>= 8
        }
        return (bytes + text, stored.map(\.tensor), layout)
    }
}

// MARK: - Inspection

extension Inspection {
    /// The tensors and metadata of a safetensors file, from its header alone.
    static func inspectSafetensors(_ path: String) throws -> Inspection {
        let header = try Safetensors.readHeader(path: path)
        var tree = InspectionNode(name: "tensors", kind: "group")
        tree.attributes = header.metadata.map { ($0.key, abbreviate($0.value)) }
        for e in header.entries.sorted(by: { $0.begin < $1.begin }) {
            var node = InspectionNode(name: e.name, kind: "tensor", dtype: e.type.rawValue, shape: e.shape)
            node.attributes = [("data_offsets", "[\(e.begin), \(e.end)]")]
            tree.children.append(node)
        }
        var summary = ["\(header.fileSize) bytes: header \(header.headerLength) bytes, \(header.entries.count) tensors, data \(header.fileSize - header.dataOffset) bytes"]
        if let json = header.metadata(SafetensorsExport.metadataKey),
           let meta = try? ModelMetadata(json: try JSONValue.parse(json)) {
            summary += describe(meta)
        }
        return Inspection(path: path, format: "safetensors", tree: tree, summary: summary)
    }
}
