import NNCompression
import NNCore

/// The safetensors format (Hugging Face): an 8-byte little-endian header length `n`, `n` bytes of
/// JSON, then the data buffer.
///
/// The header maps each tensor name to `{"dtype": "F32", "shape": [256, 784], "data_offsets":
/// [begin, end]}` (offsets relative to the data buffer) and may hold `"__metadata__"`, a map
/// from strings to strings. The checks are those of the reference implementation, so a file
/// this reader accepts is one the `safetensors` package accepts and the other way round: the
/// header is at most 100 MB and lies inside the file, starts with `{`, has no duplicate names;
/// sorted by offset, the tensors are contiguous from byte 0 and cover the data buffer exactly;
/// each tensor's byte length is its element count times its element size, computed with
/// overflow checks.
public enum Safetensors {
    /// The reference implementation's limit on the JSON header (`MAX_HEADER_SIZE`).
    public static let maximumHeaderBytes = 100_000_000
    /// The key under `__metadata__` that `nnconv export` stores the `.nnm` metadata JSON in.
    public static let metadataKey = "nnm_metadata"
    /// The key under `__metadata__` mapping `.nnm` tensor names (in file order) to safetensors keys.
    static let tensorNamesKey = "nnm_tensors"

    /// An element type of the format; `bits` is its size (F4 and F6 types pack several per byte).
    public enum ElementType: String, CaseIterable, Sendable {
        case bool = "BOOL", u8 = "U8", i8 = "I8", f8E5M2 = "F8_E5M2", f8E4M3 = "F8_E4M3", f8E8M0 = "F8_E8M0"
        case f8E4M3FNUZ = "F8_E4M3FNUZ", f8E5M2FNUZ = "F8_E5M2FNUZ"
        case i16 = "I16", u16 = "U16", f16 = "F16", bf16 = "BF16"
        case i32 = "I32", u32 = "U32", f32 = "F32"
        case f64 = "F64", i64 = "I64", u64 = "U64", c64 = "C64"
        case f4 = "F4", f6E2M3 = "F6_E2M3", f6E3M2 = "F6_E3M2"

        /// Bits per element.
        public var bits: Int {
            switch self {
            case .f4: return 4
            case .f6E2M3, .f6E3M2: return 6
            case .bool, .u8, .i8, .f8E5M2, .f8E4M3, .f8E8M0, .f8E4M3FNUZ, .f8E5M2FNUZ: return 8
            case .i16, .u16, .f16, .bf16: return 16
            case .i32, .u32, .f32: return 32
            case .f64, .i64, .u64, .c64: return 64
            }
        }

        /// The `.nnm` dtype that holds these values exactly, if there is one.
        public var dtype: DType? {
            switch self {
            case .u8: return .uint8
            case .i8: return .int8
            case .i16: return .int16
            case .f16: return .float16
            case .bf16: return .bfloat16
            case .i32: return .int32
            case .f32: return .float32
            case .f64: return .float64
            case .i64: return .int64
            default: return nil
            }
        }

        /// The safetensors name of a `.nnm` dtype (every `.nnm` dtype has one).
        public init(_ dtype: DType) {
            switch dtype {
            case .float16: self = .f16
            case .bfloat16: self = .bf16
            case .float32: self = .f32
            case .float64: self = .f64
            case .uint8: self = .u8
            case .int8: self = .i8
            case .int16: self = .i16
            case .int32: self = .i32
            case .int64: self = .i64
            }
        }
    }

    /// One tensor of the header.
    public struct Entry: Sendable {
        /// The tensor's key, e.g. `0.weight`.
        public var name: String
        /// Its element type.
        public var type: ElementType
        /// Its dimensions, row-major (`[]` for a scalar).
        public var shape: [Int]
        /// Where its bytes are, relative to the start of the data buffer.
        public var begin: Int
        /// Where its bytes end (exclusive), relative to the start of the data buffer.
        public var end: Int
        /// Bytes the tensor occupies: `end - begin`.
        public var byteCount: Int { end - begin }
    }

    /// A validated header.
    public struct Header: Sendable {
        /// The JSON header's length `n` (padding included).
        public var headerLength: Int
        /// Tensors in the order the header lists them (writers usually sort names alphabetically).
        public var entries: [Entry]
        /// `__metadata__`, in file order.
        public var metadata: [(key: String, value: String)]
        /// The size of the file the header was read from.
        public var fileSize: Int
        /// Where the data buffer starts in the file.
        public var dataOffset: Int { 8 + headerLength }

        /// The metadata value stored under `key`.
        public func metadata(_ key: String) -> String? { metadata.first(where: { $0.key == key })?.value }
    }

    /// Reads and validates the header of the file at `path`; no tensor bytes are read.
    public static func readHeader(path: String) throws -> Header {
        let file = try FileByteSource(path: path)
        return try readHeader(file, path: path)
    }

    static func readHeader(_ file: FileByteSource, path: String) throws -> Header {
        guard let fileSize = file.fileSize else {
            throw InteropError.unknownFormat(path: path, detail: "not a regular file")
        }
        let head = try file.readBytes(atOffset: 0, count: 8)
        guard head.count == 8 else {
            throw fail(path, "the file has \(fileSize) bytes, fewer than the 8-byte header length")
        }
        let n = head.reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        guard n <= UInt64(maximumHeaderBytes) else {
            throw fail(path, "header length \(n) bytes exceeds the safetensors limit of \(maximumHeaderBytes) bytes")
        }
        let headerLength = Int(n)
        guard headerLength <= fileSize - 8 else {
            throw fail(path, "header length \(headerLength) bytes is larger than the \(fileSize - 8) bytes that follow it (a truncated or non-safetensors file)")
        }
        let text = try file.readBytes(atOffset: 8, count: headerLength)
        guard text.count == headerLength else {
            throw fail(path, "the file ended while reading the \(headerLength)-byte header")
        }
        return try parseHeader(text, fileSize: fileSize, path: path)
    }

    /// Validates the JSON header `text` of a file of `fileSize` bytes.
    static func parseHeader(_ text: [UInt8], fileSize: Int, path: String) throws -> Header {
        guard text.first == UInt8(ascii: "{") else {
            throw fail(path, "the header does not start with '{'")
        }
        let root: JSONObject
        do {
            guard let object = try JSONValue.parse(text).objectValue else { throw fail(path, "the header is not a JSON object") }
            root = object
        } catch let error as JSONParseError {
            if error.message.hasPrefix("duplicate member name ") {
                // The reference keeps the last of two equal names; we refuse to guess which is meant.
                let name = error.message.dropFirst("duplicate member name ".count)
                let what = ["\"dtype\"", "\"shape\"", "\"data_offsets\""].contains(String(name)) ? "member" : "tensor name"
                throw fail(path, "header: duplicate \(what) \(name) (at byte \(error.offset))")
            }
            throw fail(path, "header: \(error)")
        }
        var entries: [Entry] = []
        var metadata: [(key: String, value: String)] = []
        for (name, value) in root {
            if name == "__metadata__" {
                guard let map = value.objectValue else { throw fail(path, "__metadata__ must be an object of strings, found \(value.kindName)") }
                for (key, v) in map {
                    guard let s = v.stringValue else {
                        throw fail(path, "__metadata__ '\(key)' must be a string, found \(v.kindName)")
                    }
                    metadata.append((key, s))
                }
                continue
            }
            entries.append(try entry(name, value, path: path))
        }
        // As the reference does: sorted by offsets, tensors follow each other with no gap and no
        // overlap, from the start of the data buffer to its end.
        let sorted = entries.sorted { ($0.begin, $0.end) < ($1.begin, $1.end) }
        var position = 0
        var previous: Entry?
        for e in sorted {
            if e.begin < position {
                throw fail(path, "tensor '\(e.name)': data_offsets [\(e.begin), \(e.end)] overlap tensor '\(previous!.name)' [\(previous!.begin), \(previous!.end)]")
            }
            if e.begin > position {
                throw fail(path, "tensor '\(e.name)': data_offsets [\(e.begin), \(e.end)] leave bytes \(position)..<\(e.begin) of the data buffer to no tensor (tensors must be contiguous)")
            }
            position = e.end
            previous = e
        }
        let dataLength = fileSize - 8 - text.count
        if position != dataLength {
            if position > dataLength {
                throw fail(path, "tensor '\(previous!.name)' ends at byte \(position) of the data buffer, which has only \(dataLength) bytes (a truncated file)")
            }
            throw fail(path, "the tensors cover \(position) bytes of the \(dataLength)-byte data buffer: \(dataLength - position) bytes at its end belong to no tensor")
        }
        return Header(headerLength: text.count, entries: entries, metadata: metadata, fileSize: fileSize)
    }

    static func entry(_ name: String, _ value: JSONValue, path: String) throws -> Entry {
        let location = "tensor '\(name)'"
        guard let info = value.objectValue else { throw fail(path, "\(location): expected an object, found \(value.kindName)") }
        guard let dtypeName = info["dtype"]?.stringValue else { throw fail(path, "\(location): missing the string dtype") }
        guard let type = ElementType(rawValue: dtypeName) else {
            throw fail(path, "\(location): unknown dtype '\(dtypeName)' (known: \(ElementType.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        guard let dims = info["shape"]?.arrayValue else { throw fail(path, "\(location): missing the shape array") }
        var shape: [Int] = []
        for d in dims {
            guard let v = d.intValue, v >= 0 else { throw fail(path, "\(location): shape must hold non-negative integers, found \(d.kindName == "a number" ? "\(d.doubleValue!)" : d.kindName)") }
            shape.append(v)
        }
        guard let offsets = info["data_offsets"]?.arrayValue, offsets.count == 2,
              let begin = offsets[0].intValue, let end = offsets[1].intValue, begin >= 0 else {
            throw fail(path, "\(location): data_offsets must be two non-negative integers [begin, end]")
        }
        guard end >= begin else {
            throw fail(path, "\(location): data_offsets [\(begin), \(end)] end before they begin")
        }
        // Element count and bits with overflow checks; sub-byte types must fill whole bytes.
        guard let bits = ShapeMath.byteCount(shape, elementSize: type.bits) else {
            throw fail(path, "\(location): shape \(ShapeMath.describe(shape)) is too large (its size overflows)")
        }
        guard bits % 8 == 0 else {
            throw fail(path, "\(location): \(ShapeMath.describe(shape)) elements of \(type.rawValue) do not fill whole bytes")
        }
        guard bits / 8 == end - begin else {
            throw fail(path, "\(location): shape \(ShapeMath.describe(shape)) of \(type.rawValue) needs \(bits / 8) bytes, but data_offsets [\(begin), \(end)] hold \(end - begin)")
        }
        return Entry(name: name, type: type, shape: shape, begin: begin, end: end)
    }

    /// Reads one tensor's bytes as a `.nnm` tensor (the header must come from the same file).
    static func tensor(_ e: Entry, header: Header, file: FileByteSource, path: String) throws -> Tensor {
        guard let dtype = e.type.dtype else {
            throw InteropError.badDType(path: path, name: e.name, found: "\(e.type.rawValue) (a safetensors type with no .nnm equivalent)")
        }
        let bytes = try file.readBytes(atOffset: header.dataOffset + e.begin, count: e.byteCount)
        guard bytes.count == e.byteCount else { throw fail(path, "the file ended inside tensor '\(e.name)'") }
        return bytes.withUnsafeBytes { Tensor(dtype: dtype, shape: e.shape, copying: $0) }
    }

    static func fail(_ path: String, _ detail: String) -> InteropError {
        InteropError.badConfig(path: path, detail: detail)
    }
}

// MARK: - Import

extension ModelImporter {
    /// A model from a safetensors file: our own export (metadata under `nnm_metadata`) rebuilt
    /// exactly, or PyTorch `nn.Linear` state dicts (`0.weight` (out, in), `0.bias`, ...).
    static func importSafetensors(path: String, options: ImportOptions) throws -> ImportResult {
        let file = try FileByteSource(path: path)
        let header = try Safetensors.readHeader(file, path: path)
        if let json = header.metadata(Safetensors.metadataKey) {
            return try importOwnSafetensors(header, json: json, file: file, path: path)
        }
        return try importPyTorchLinear(header, file: file, path: path, options: options)
    }

    /// Rebuilds the model `SafetensorsExport` wrote, bit for bit.
    static func importOwnSafetensors(_ header: Safetensors.Header, json: String, file: FileByteSource, path: String) throws -> ImportResult {
        let metadata: ModelMetadata
        let names: JSONObject
        do {
            metadata = try ModelMetadata(json: try JSONValue.parse(json))
            guard let map = try JSONValue.parse(header.metadata(Safetensors.tensorNamesKey) ?? "").objectValue else {
                throw InteropError.badConfig(path: path, detail: "__metadata__ \(Safetensors.tensorNamesKey) must be a JSON object")
            }
            names = map
        } catch let error as ModelError {
            throw InteropError.badConfig(path: path, detail: "__metadata__ \(Safetensors.metadataKey): \(error)")
        } catch let error as JSONParseError {
            throw InteropError.badConfig(path: path, detail: "__metadata__ \(Safetensors.metadataKey) or \(Safetensors.tensorNamesKey): \(error)")
        }
        var byKey: [String: Safetensors.Entry] = [:]
        for e in header.entries { byKey[e.name] = e }
        let weights = Set(metadata.layers.map(\.weight))
        var tensors: [NamedTensor] = []
        var used = Set<String>()
        for (name, keyValue) in names {
            guard let key = keyValue.stringValue, let e = byKey[key] else {
                throw InteropError.missingTensor(path: path, name: keyValue.stringValue ?? name, detail: "listed in __metadata__ \(Safetensors.tensorNamesKey) for '\(name)'")
            }
            used.insert(key)
            let t = try Safetensors.tensor(e, header: header, file: file, path: path)
            if weights.contains(name) {
                // Stored (out, in) as nn.Linear keeps it; the transpose back is exact.
                guard t.shape.count == 2 else {
                    throw InteropError.badShape(path: path, name: key, detail: "expected a 2-D weight (out, in), found \(ShapeMath.describe(t.shape))")
                }
                tensors.append(NamedTensor(name, t.transposed()))
            } else {
                tensors.append(NamedTensor(name, t))
            }
        }
        if let extra = header.entries.first(where: { !used.contains($0.name) }) {
            throw InteropError.unexpectedTensor(path: path, name: extra.name, detail: "not listed in __metadata__ \(Safetensors.tensorNamesKey)")
        }
        let model = Model(metadata: metadata, tensors: tensors)
        do { try model.validate() } catch { throw InteropError.badConfig(path: path, detail: "\(error)") }
        return ImportResult(model: model, format: "nnm safetensors export", notes: [])
    }

    /// PyTorch `nn.Linear` parameters: `<module>.weight` (out, in) and an optional `<module>.bias`.
    static func importPyTorchLinear(_ header: Safetensors.Header, file: FileByteSource, path: String, options: ImportOptions) throws -> ImportResult {
        guard !header.entries.isEmpty else {
            throw InteropError.badConfig(path: path, detail: "the file holds no tensors")
        }
        var modules: [String: (weight: Safetensors.Entry?, bias: Safetensors.Entry?)] = [:]
        var moduleNames: [String] = []
        for e in header.entries {
            let (module, role): (String, String)
            if e.name.hasSuffix(".weight") {
                (module, role) = (String(e.name.dropLast(".weight".count)), "weight")
            } else if e.name.hasSuffix(".bias") {
                (module, role) = (String(e.name.dropLast(".bias".count)), "bias")
            } else {
                throw InteropError.unexpectedTensor(path: path, name: e.name, detail: "expected PyTorch nn.Linear parameters named <module>.weight and <module>.bias")
            }
            if modules[module] == nil { moduleNames.append(module) }
            if role == "weight" { modules[module, default: (nil, nil)].weight = e } else { modules[module, default: (nil, nil)].bias = e }
        }
        var layers: [(name: String, weight: Safetensors.Entry, bias: Safetensors.Entry?)] = []
        for name in moduleNames {
            let m = modules[name]!
            guard let w = m.weight else {
                throw InteropError.unexpectedTensor(path: path, name: "\(name).bias", detail: "a bias without \(name).weight")
            }
            guard w.shape.count == 2 else {
                throw InteropError.badShape(path: path, name: w.name, detail: "expected a 2-D nn.Linear weight (out, in), found \(ShapeMath.describe(w.shape))")
            }
            if let b = m.bias, b.shape != [w.shape[0]] {
                throw InteropError.badShape(path: path, name: b.name, detail: "expected \(w.shape[0]) values for \(w.name) \(ShapeMath.describe(w.shape)) (out, in), found \(ShapeMath.describe(b.shape))")
            }
            for e in [w] + (m.bias.map { [$0] } ?? []) where !(e.type.dtype?.isFloatingPoint ?? false) {
                throw InteropError.badDType(path: path, name: e.name, found: e.type.rawValue)
            }
            layers.append((name, w, m.bias))
        }
        var notes: [String] = []
        let order = try linearOrder(layers.map { ($0.name, $0.weight.shape[1], $0.weight.shape[0]) }, path: path,
                                    given: options.layerOrder, notes: &notes)
        layers = order.map { i in layers[i] }
        for (a, b) in zip(layers, layers.dropFirst()) where a.weight.shape[0] != b.weight.shape[1] {
            throw InteropError.badShape(path: path, name: "\(a.weight.name), \(b.weight.name)",
                                        detail: "\(a.name) has \(a.weight.shape[0]) outputs but \(b.name) takes \(b.weight.shape[1]) inputs (weights are (out, in))")
        }
        let activations: [Activation]
        if let given = options.activations {
            activations = given
        } else {
            let output = layers.last!.weight.shape[0]
            activations = Array(repeating: .relu, count: layers.count - 1) + [output == 1 ? .sigmoid : .softmax]
            notes.append("activations \(activations.map(\.rawValue).joined(separator: ", ")): a PyTorch state dict does not record them; this is the default (ReLU hidden, \(output == 1 ? "sigmoid for the single output" : "softmax output")); --activations overrides")
        }
        // nn.Linear keeps W (out, in) and computes x @ W.T + b: transposed, it is our [in, out].
        let weights = try layers.map { try Safetensors.tensor($0.weight, header: header, file: file, path: path).transposed() }
        let biases = try layers.map { l in try l.bias.map { try Safetensors.tensor($0, header: header, file: file, path: path) } }
        var result = try assemble(weights: weights, biases: biases, activations: activations, path: path,
                                  sourceFormat: "safetensors-pytorch", inputShape: nil, options: options, notes: &notes)
        result.format = "safetensors (PyTorch nn.Linear: \(layers.map(\.name).joined(separator: ", ")))"
        return result
    }

    /// The order of the layers `(name, in, out)`, as indices: given by `--layer-order`; by the
    /// number of `<prefix>.<n>` names (the file sorts keys as text, so `10` comes before `2`);
    /// else the only order in which the shapes chain.
    static func linearOrder(_ layers: [(name: String, inputs: Int, outputs: Int)], path: String, given: [String]?,
                            notes: inout [String]) throws -> [Int] {
        let names = layers.map(\.name)
        if let given {
            guard given.count == names.count, Set(given) == Set(names) else {
                throw InteropError.badOption("--layer-order: \(path) has the layers \(names.sorted().joined(separator: ", ")), but \(given.joined(separator: ",")) was given")
            }
            return given.map { names.firstIndex(of: $0)! }
        }
        if layers.count == 1 { return [0] }
        if let indices = numericIndices(names) {
            let order = names.indices.sorted { indices[$0] < indices[$1] }
            return order
        }
        let found = chainOrders(layers.map { ($0.inputs, $0.outputs) }, limit: 2)
        switch found.count {
        case 1:
            notes.append("layer order \(found[0].map { names[$0] }.joined(separator: ", ")): the only order in which the shapes chain; --layer-order overrides")
            return found[0]
        case 0:
            throw InteropError.badShape(path: path, name: names.joined(separator: ", "),
                                        detail: "the weights \(layers.map { "\($0.name) \($0.outputs)x\($0.inputs)" }.joined(separator: ", ")) (out, in) chain in no order")
        default:
            throw InteropError.ambiguous(path: path, detail: "the layers \(names.joined(separator: ", ")) chain in more than one order (e.g. \(found[0].map { names[$0] }.joined(separator: ", ")) and \(found[1].map { names[$0] }.joined(separator: ", ")))",
                                         flag: "--layer-order \(names.joined(separator: ","))")
        }
    }

    /// The `n` of names `<prefix>.<n>` or `<n>` that share one prefix and have distinct numbers.
    static func numericIndices(_ names: [String]) -> [Int]? {
        var prefix: Substring?
        var numbers: [Int] = []
        for name in names {
            let dot = name.lastIndex(of: ".")
            let last = dot.map { name[name.index(after: $0)...] } ?? name[...]
            let head = dot.map { name[..<$0] } ?? ""
            guard !last.isEmpty, last.count <= 9, last.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int(last) else { return nil }
            if let prefix, prefix != head { return nil }
            prefix = head
            numbers.append(n)
        }
        return Set(numbers).count == numbers.count ? numbers : nil
    }

    /// Up to `limit` orders of the layers `(in, out)` in which each layer's outputs feed the next
    /// one's inputs. The search is bounded: past the budget, what was found is returned with an
    /// extra order marker so that the caller reports ambiguity rather than searching for ever.
    static func chainOrders(_ layers: [(inputs: Int, outputs: Int)], limit: Int) -> [[Int]] {
        var found: [[Int]] = []
        var path: [Int] = []
        var used = [Bool](repeating: false, count: layers.count)
        var budget = 200_000
        func extend() {
            guard found.count < limit, budget > 0 else { return }
            budget -= 1
            if path.count == layers.count { found.append(path); return }
            for i in layers.indices where !used[i] {
                if let last = path.last, layers[last].outputs != layers[i].inputs { continue }
                used[i] = true
                path.append(i)
                extend()
                path.removeLast()
                used[i] = false
            }
        }
        extend()
        if budget <= 0, found.count < limit {
            // Too many partial chains to decide: as good as ambiguous.
            while found.count < limit { found.append(found.first ?? Array(layers.indices)) }
        }
        return found
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
        if let json = header.metadata(Safetensors.metadataKey),
           let meta = try? ModelMetadata(json: try JSONValue.parse(json)) {
            summary += describe(meta)
        }
        return Inspection(path: path, format: "safetensors", tree: tree, summary: summary)
    }
}
