import NNCore
import NNSystem

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
        try readHeader(try ReadOnlyFile(path: path))
    }

    /// Reads and validates the header of an open file; no tensor bytes are read.
    public static func readHeader(_ file: ReadOnlyFile) throws -> Header {
        let path = file.path
        let fileSize = file.size
        let head = try file.read(at: 0, count: 8)
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
        let text = try file.read(at: 8, count: headerLength)
        guard text.count == headerLength else {
            throw fail(path, "the file ended while reading the \(headerLength)-byte header")
        }
        return try parseHeader(text, fileSize: fileSize, path: path)
    }

    /// Validates the JSON header `text` of a file of `fileSize` bytes.
    public static func parseHeader(_ text: [UInt8], fileSize: Int, path: String) throws -> Header {
        guard text.first == UInt8(ascii: "{") else {
            throw fail(path, "the header does not start with '{'")
        }
        var entries: [Entry] = []
        var metadata: [(key: String, value: String)] = []
        do {
            // Read straight into entries: a header may list 100,000 tensors, and a tree of JSON
            // values for them costs more than the checks.
            try text.withUnsafeBytes { raw in
                var scanner = JSONScanner(raw)
                var members = try scanner.beginObject()
                while let name = try scanner.nextMember(&members) {
                    if name == "__metadata__" {
                        let value = try scanner.readValue()
                        guard let map = value.objectValue else { throw fail(path, "__metadata__ must be an object of strings, found \(value.kindName)") }
                        for (key, v) in map {
                            guard let s = v.stringValue else {
                                throw fail(path, "__metadata__ '\(key)' must be a string, found \(v.kindName)")
                            }
                            metadata.append((key, s))
                        }
                    } else {
                        entries.append(try entry(name, &scanner, path: path))
                    }
                }
                try scanner.readEnd()
            }
        } catch let error as JSONParseError {
            if error.message.hasPrefix("duplicate member name ") {
                // The reference keeps the last of two equal names; we refuse to guess which is meant.
                let name = error.message.dropFirst("duplicate member name ".count)
                let what = ["\"dtype\"", "\"shape\"", "\"data_offsets\""].contains(String(name)) ? "member" : "tensor name"
                throw fail(path, "header: duplicate \(what) \(name) (at byte \(error.offset))")
            }
            throw fail(path, "header: \(error)")
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

    static func entry(_ name: String, _ scanner: inout JSONScanner, path: String) throws -> Entry {
        let location = "tensor '\(name)'"
        var dtypeValue: JSONValue?, shape: [Int]?, offsets: [JSONValue]?
        var members: JSONScanner.ObjectState
        do {
            members = try scanner.beginObject()
        } catch {
            throw fail(path, "\(location): expected an object, found \(try scanner.readValue().kindName)")
        }
        // Members other than these three are read and ignored, as the reference does.
        while let key = try scanner.nextMember(&members) {
            switch key {
            case "dtype": dtypeValue = try scanner.readValue()
            case "shape":
                guard var elements = try? scanner.beginArray() else { _ = try scanner.readValue(); shape = nil; continue }
                var dims: [Int] = []
                while try scanner.nextElement(&elements) {
                    let d = try scanner.readValue()
                    guard let v = d.intValue, v >= 0 else { throw fail(path, "\(location): shape must hold non-negative integers, found \(d.kindName == "a number" ? "\(d.doubleValue!)" : d.kindName)") }
                    dims.append(v)
                }
                shape = dims
            case "data_offsets":
                guard var elements = try? scanner.beginArray() else { _ = try scanner.readValue(); offsets = nil; continue }
                var values: [JSONValue] = []
                while try scanner.nextElement(&elements) {
                    values.append(try scanner.readValue())
                    guard values.count <= 2 else { break }
                }
                offsets = values.count == 2 ? values : nil
                if values.count > 2 { throw fail(path, "\(location): data_offsets must be two non-negative integers [begin, end]") }
            default: _ = try scanner.readValue()
            }
        }
        guard let dtypeName = dtypeValue?.stringValue else { throw fail(path, "\(location): missing the string dtype") }
        guard let type = ElementType(rawValue: dtypeName) else {
            throw fail(path, "\(location): unknown dtype '\(dtypeName)' (known: \(ElementType.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        guard let shape else { throw fail(path, "\(location): missing the shape array") }
        guard let offsets, let begin = offsets[0].intValue, let end = offsets[1].intValue, begin >= 0 else {
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
    public static func tensor(_ e: Entry, header: Header, file: ReadOnlyFile) throws -> Tensor {
        guard let dtype = e.type.dtype else {
            throw SafetensorsError.unsupportedType(path: file.path, name: e.name, type: e.type.rawValue)
        }
        let storage = TensorStorage(allocating: e.byteCount)
        let got = try file.read(at: header.dataOffset + e.begin, into: storage.mutableBytes)
        guard got == e.byteCount else { throw fail(file.path, "the file ended inside tensor '\(e.name)'") }
        return Tensor(dtype: dtype, shape: e.shape, storage: storage, byteOffset: 0)
    }

    static func fail(_ path: String, _ detail: String) -> SafetensorsError {
        SafetensorsError.malformed(path: path, detail: detail)
    }
}


/// Why a safetensors file was refused: one line that starts with the file.
public enum SafetensorsError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The header or the layout of the file breaks a rule of the format.
    case malformed(path: String, detail: String)
    /// A tensor's element type has no `.nnm` equivalent (F8, F4, complex, unsigned 16-64 bits).
    case unsupportedType(path: String, name: String, type: String)

    public var description: String {
        switch self {
        case let .malformed(path, detail): return "\(path): \(detail)"
        case let .unsupportedType(path, name, type):
            return "\(path): \(name): expected floating-point or integer weights, found \(type) (a safetensors type with no .nnm equivalent)"
        }
    }
}

extension SafetensorsError: CategorizedError {
    public var category: ErrorCategory { .badInput }
}
