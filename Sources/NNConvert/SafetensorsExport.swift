import NNCore
import NNSafetensors
import NNSystem

/// The safetensors file `nnconv export` writes: what PyTorch loads into an `nn.Sequential` of
/// `nn.Linear` layers and activation modules, plus everything needed to rebuild the `.nnm` bit for
/// bit.
///
///     from safetensors.torch import load_file
///     model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10), nn.Softmax(dim=1))
///     model.load_state_dict(load_file("model.safetensors"), strict=False)
///
/// Layer `i` is stored as `<k>.weight` (out, in) and `<k>.bias`, where `k` is the index of its
/// `nn.Linear` in that `nn.Sequential` (activation modules take the indices between; identity
/// layers have none). Other tensors (z-score statistics, optimizer state) keep their `.nnm` names
/// and dtypes, which is why `strict=False` is needed. `__metadata__` holds `format` (`pt`),
/// `pytorch_module` (the `nn.Sequential` above, for people), `nnm_metadata` (the full `.nnm`
/// metadata JSON) and `nnm_tensors` (a JSON object mapping each `.nnm` tensor name, in file
/// order, to its key).
public enum SafetensorsExport {
    /// The key under `__metadata__` that holds the `.nnm` metadata JSON.
    public static let metadataKey = "nnm_metadata"
    /// The key under `__metadata__` mapping `.nnm` tensor names (in file order) to safetensors keys.
    static let tensorNamesKey = "nnm_tensors"

    /// Writes `model` to `path` atomically.
    public static func write(_ model: Model, to path: String) throws {
        let (header, tensors) = try layout(model, path: path)
        // Streamed: a large model is not copied into one more buffer.
        let writer = try AtomicFileWriter(path: path)
        try writer.write(header)
        for t in tensors { try writer.write(t.bytes) }
        try writer.commit()
    }

    /// The keys the layers' weights and biases are stored under, by `.nnm` tensor name.
    public static func keys(for metadata: ModelMetadata) -> [String: String] {
        var keys: [String: String] = [:]
        var index = 0
        for layer in metadata.layers {
            guard let weight = layer.weight else { continue }
            keys[weight] = "\(index).weight"
            if let bias = layer.bias { keys[bias] = "\(index).bias" }
            index += layer.activation == .identity ? 1 : 2
        }
        return keys
    }

    /// `nn.Sequential(nn.Linear(784, 256), nn.ReLU(), ...)`.
    public static func pytorchModule(for metadata: ModelMetadata) -> String {
        var parts: [String] = []
        for layer in metadata.layers {
            parts.append("nn.Linear(\(layer.inputSize), \(layer.outputSize)\(layer.bias == nil ? ", bias=False" : ""))")
            switch layer.activation {
            case .identity: break
            case .relu: parts.append("nn.ReLU()")
            case .sigmoid: parts.append("nn.Sigmoid()")
            case .tanh: parts.append("nn.Tanh()")
            case .softmax: parts.append("nn.Softmax(dim=1)")
            case let .leakyRelu(alpha): parts.append("nn.LeakyReLU(negative_slope=\(alpha))")
            case let .elu(alpha): parts.append("nn.ELU(alpha=\(alpha))")
            case .selu: parts.append("nn.SELU()")
            case .gelu(.exact): parts.append("nn.GELU()")
            case .gelu(.tanh): parts.append("nn.GELU(approximate='tanh')")
            case .softplus: parts.append("nn.Softplus()")
            case .swish: parts.append("nn.SiLU()")
            case .hardSigmoid: parts.append("nn.Hardsigmoid()")
            case .relu6: parts.append("nn.ReLU6()")
            case let .clippedRelu(maxValue): parts.append("nn.Hardtanh(min_val=0.0, max_val=\(maxValue))")
            case .logSoftmax: parts.append("nn.LogSoftmax(dim=1)")
            }
        }
        return "nn.Sequential(\(parts.joined(separator: ", ")))"
    }

    /// The length-prefixed header, and the tensors whose bytes follow it in order.
    static func layout(_ model: Model, path: String) throws -> (header: [UInt8], tensors: [Tensor]) {
        try requireDenseLayers(model, path: path, format: "safetensors")
        let meta = model.metadata
        let layerKeys = keys(for: meta)
        let weights = Set(meta.layers.compactMap(\.weight))
        var stored: [(key: String, tensor: Tensor)] = []
        var names: [(String, JSONValue)] = []
        var taken = Set<String>()
        for t in model.tensors {
            let key = layerKeys[t.name] ?? t.name
            // A statistics tensor named like a layer key ("2.weight") would make the file ambiguous.
            guard taken.insert(key).inserted, key != "__metadata__" else {
                throw InteropError.badConfig(path: path, detail: "tensor '\(t.name)' would be stored under the key '\(key)', which is already used")
            }
            stored.append((key, weights.contains(t.name) ? t.tensor.transposed() : t.tensor))
            names.append((t.name, .string(key)))
        }
        var header = JSONObject()
        header["__metadata__"] = .object(JSONObject([
            ("format", .string("pt")),
            ("pytorch_module", .string(pytorchModule(for: meta))),
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
        return (bytes + text, stored.map(\.tensor))
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
