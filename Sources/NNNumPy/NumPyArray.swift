import NNCore
import NNCompression
import NNZip
import NNSystem

// MARK: - Errors

/// Where an array came from: a `.npy` file, or a member of an `.npz` archive.
public struct NumPyLocation: Equatable, Sendable, CustomStringConvertible {
    /// The file path (or display name) messages start with.
    public var file: String
    /// The zip member, for arrays inside an `.npz`.
    public var member: String?

    /// A location in `file`, inside `member` when given.
    public init(file: String, member: String? = nil) {
        self.file = file
        self.member = member
    }

    /// "model.npz: member 'W1.npy'", or just the file.
    public var description: String {
        member.map { "\(file): member '\($0)'" } ?? file
    }
}

/// Why a `.npy` array or an `.npz` archive could not be read or written.
///
/// Every message is one line that starts with the file path (and the member, inside an `.npz`).
/// Zip-level damage in an `.npz` is reported as `ZipError` instead.
public enum NumPyFileError: Error, Equatable, CustomStringConvertible, Sendable {
    /// Opening or reading failed; `message` is e.g. "cannot open: No such file or directory".
    case io(NumPyLocation, message: String)
    /// The data does not start with the `\x93NUMPY` magic string.
    case notNumPy(NumPyLocation)
    /// A format version other than 1.0, 2.0 or 3.0.
    case unsupportedVersion(NumPyLocation, major: Int, minor: Int)
    /// The header runs past the end of the data.
    case truncatedHeader(NumPyLocation, headerEnd: Int, size: Int)
    /// The header is longer than the limit (NumPy's own default is 10,000).
    case headerTooLarge(NumPyLocation, length: Int, limit: Int)
    /// The header is not the Python dict literal NumPy writes.
    case malformedHeader(NumPyLocation, reason: String)
    /// Object arrays hold pickles, and unpickling runs arbitrary code.
    case pickledObjects(NumPyLocation, descr: String)
    /// A structured (record) dtype, given as a list of fields.
    case structuredDType(NumPyLocation)
    /// A dtype this reader does not convert (complex, datetime, bytes, ...).
    case unsupportedDType(NumPyLocation, descr: String, reason: String?)
    /// The shape's byte count does not fit in an Int.
    case shapeOverflow(NumPyLocation, shape: [Int], descr: String)
    /// The array is larger than the caller's limit.
    case arrayTooLarge(NumPyLocation, bytes: Int, limit: Int)
    /// Fewer bytes follow the header than the shape and dtype need.
    case truncatedData(NumPyLocation, shape: [Int], descr: String, needed: Int, available: Int)
    /// More bytes follow the header than the shape and dtype need.
    case trailingData(NumPyLocation, expected: Int, extra: Int)
    /// A `<u8` element above Int64.max, which an i64 tensor cannot hold.
    case valueOutOfRange(NumPyLocation, descr: String, index: Int)
    /// A unicode (`<U`) array holding a value that is not a Unicode scalar.
    case invalidString(NumPyLocation, descr: String)
    /// Two members of an `.npz` give the same array name ("W1" and "W1.npy").
    case duplicateArray(file: String, name: String, firstMember: String, secondMember: String)
    /// The arrays of an `.npz` together exceed the caller's limit.
    case archiveTooLarge(file: String, bytes: Int, limit: Int)
    /// A tensor whose element type NumPy has no dtype for (bf16); `file` is the file being
    /// written, when there is one.
    case unsupportedTensorType(file: String?, name: String, dtype: DType)

    /// The one-line message, starting with the file (and member).
    public var description: String {
        switch self {
        case let .io(location, message):
            return "\(location): \(message)"
        case let .notNumPy(location):
            return "\(location): not a NumPy .npy array (it does not start with the magic string \\x93NUMPY)"
        case let .unsupportedVersion(location, major, minor):
            return "\(location): unsupported .npy format version \(major).\(minor) (1.0, 2.0 and 3.0 are supported)"
        case let .truncatedHeader(location, headerEnd, size):
            return "\(location): truncated .npy header: it needs \(headerEnd) bytes but there are only \(size)"
        case let .headerTooLarge(location, length, limit):
            return "\(location): the .npy header is \(length) bytes long, more than the limit of \(limit)"
        case let .malformedHeader(location, reason):
            return "\(location): malformed .npy header: \(reason)"
        case let .pickledObjects(location, descr):
            return "\(location): refusing to read pickled object arrays (dtype '\(descr)'): they can run code"
        case let .structuredDType(location):
            return "\(location): structured (record) dtypes are not supported"
        case let .unsupportedDType(location, descr, reason):
            return "\(location): unsupported dtype '\(descr)'" + (reason.map { ": \($0)" } ?? "")
        case let .shapeOverflow(location, shape, descr):
            return "\(location): the shape \(numpyShapeText(shape)) with dtype '\(descr)' is too large to address"
        case let .arrayTooLarge(location, bytes, limit):
            return "\(location): the array is \(bytes) bytes, more than the limit of \(limit) bytes"
        case let .truncatedData(location, shape, descr, needed, available):
            return "\(location): truncated array data: shape \(numpyShapeText(shape)) of '\(descr)' needs \(needed) bytes but only \(available) follow the header"
        case let .trailingData(location, expected, extra):
            return "\(location): \(extra) unexpected bytes follow the \(expected) bytes of array data"
        case let .valueOutOfRange(location, descr, index):
            return "\(location): element \(index) of the '\(descr)' array is larger than \(Int64.max) and does not fit in i64"
        case let .invalidString(location, descr):
            return "\(location): the '\(descr)' array holds a value that is not a Unicode character"
        case let .duplicateArray(file, name, first, second):
            return "\(file): two members hold the array '\(name)' ('\(first)' and '\(second)')"
        case let .archiveTooLarge(file, bytes, limit):
            return "\(file): the arrays total \(bytes) bytes, more than the limit of \(limit) bytes"
        case let .unsupportedTensorType(file, name, dtype):
            return (file.map { "\($0): " } ?? "") + "cannot store tensor '\(name)' as a NumPy array: NumPy has no \(dtype.rawValue) dtype"
        }
    }
}

/// Python's repr of a shape tuple: "()", "(3,)", "(12, 6)".
public func numpyShapeText(_ shape: [Int]) -> String {
    switch shape.count {
    case 0: return "()"
    case 1: return "(\(shape[0]),)"
    default: return "(" + shape.map(String.init).joined(separator: ", ") + ")"
    }
}

// MARK: - Values

/// What a `.npy` array holds once read: a numeric tensor, or a 0-d unicode string (how the
/// converter stores JSON metadata in an `.npz` without resorting to pickle).
public enum NumPyValue: Sendable {
    /// A numeric array.
    case tensor(Tensor)
    /// A 0-d unicode array (`<U{n}`).
    case string(String)
}

/// An array read from a `.npy` file or an `.npz` member.
public struct NumPyArray: Sendable {
    /// The converted value: little-endian, C order, with the element type mapped as
    /// `NumPyFile` documents.
    public let value: NumPyValue
    /// The dtype as the file states it, e.g. "<f4", ">f8", "|b1".
    public let descr: String
    /// The shape as stored (also the tensor's shape).
    public let shape: [Int]
    /// Whether the file stored the data column-major (it has been reordered to C order).
    public let fortranOrder: Bool
    /// The format version, e.g. "1.0".
    public let formatVersion: String

    /// The tensor, for numeric arrays.
    public var tensor: Tensor? {
        if case let .tensor(t) = value { return t }
        return nil
    }

    /// The text, for 0-d unicode arrays.
    public var string: String? {
        if case let .string(s) = value { return s }
        return nil
    }
}

/// Bounds on what a file may make the reader allocate, checked before allocating.
public struct NumPyLimits: Sendable {
    /// The longest header accepted (NumPy's `max_header_size` default is 10,000).
    public var maxHeaderBytes: Int
    /// The largest array accepted, in stored bytes.
    public var maxArrayBytes: Int
    /// The largest total of all arrays in one `.npz`.
    public var maxTotalBytes: Int
    /// Bounds for the `.npz` container.
    public var zip: ZipLimits

    /// Limits with defaults of 16 GiB per array and 64 GiB per archive.
    public init(maxHeaderBytes: Int = 10_000, maxArrayBytes: Int = 1 << 34,
                maxTotalBytes: Int = 1 << 36, zip: ZipLimits = .default) {
        self.maxHeaderBytes = maxHeaderBytes
        self.maxArrayBytes = maxArrayBytes
        self.maxTotalBytes = maxTotalBytes
        self.zip = zip
    }

    /// The default limits.
    public static let `default` = NumPyLimits()
}

// MARK: - Reading and writing .npy

/// Reads and writes NumPy `.npy` files.
///
/// Reading accepts format versions 1.0, 2.0 and 3.0 and these dtypes, in either byte order
/// (big-endian data is swapped to little-endian):
///
/// | descr | tensor |
/// |---|---|
/// | `<f2` `<f4` `<f8` | f16, f32, f64 |
/// | `|i1` `<i2` `<i4` `<i8` | i8, i16, i32, i64 |
/// | `|u1`, `|b1` (bool, as 0/1) | u8 |
/// | `<u2`, `<u4` | i32, i64 (widened) |
/// | `<u8` | i64 (values above Int64.max are rejected) |
/// | `<U{n}`, shape `()` only | a string |
///
/// Fortran-ordered data is reordered to C order. Object arrays (`|O`) are refused: they are
/// pickles, and loading a pickle runs code.
public enum NumPyFile {
    /// The magic string every `.npy` file starts with.
    public static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]

    /// Reads a `.npy` file.
    ///
    /// The data is read with `pread` straight into the tensor's storage.
    ///
    /// - Parameter displayName: the name messages start with; `path` when nil.
    public static func read(path: String, displayName: String? = nil,
                            limits: NumPyLimits = .default) throws -> NumPyArray {
        let location = NumPyLocation(file: displayName ?? path)
        let file: FileByteSource
        do {
            file = try FileByteSource(path: path, displayName: location.file)
        } catch let error as CompressionError {
            throw npyTranslate(error, location)
        }
        if let size = file.fileSize {
            return try NPYDecoder.decode(source: file, length: size, location: location, limits: limits)
        }
        // A pipe or device: its length is unknown until it is read, so read it (bounded) first.
        let bytes: [UInt8]
        do {
            let (bound, overflow) = limits.maxArrayBytes.addingReportingOverflow(limits.maxHeaderBytes + 12)
            bytes = try file.readAll(maxBytes: overflow ? Int.max : bound)
        } catch let error as CompressionError {
            throw npyTranslate(error, location)
        }
        return try NPYDecoder.decode(source: MemoryByteSource(bytes, name: location.file),
                                     length: bytes.count, location: location, limits: limits)
    }

    /// Decodes a `.npy` image held in memory; messages start with `name`.
    public static func decode(_ bytes: [UInt8], name: String, limits: NumPyLimits = .default) throws -> NumPyArray {
        try NPYDecoder.decode(source: MemoryByteSource(bytes, name: name), length: bytes.count,
                              location: NumPyLocation(file: name), limits: limits)
    }

    /// The NumPy descr for a tensor element type; nil for bf16, which NumPy lacks.
    public static func descr(for dtype: DType) -> String? {
        switch dtype {
        case .float16: return "<f2"
        case .float32: return "<f4"
        case .float64: return "<f8"
        case .uint8: return "|u1"
        case .int8: return "|i1"
        case .int16: return "<i2"
        case .int32: return "<i4"
        case .int64: return "<i8"
        case .bfloat16: return nil
        }
    }

    /// The bytes before the data, exactly as `np.save` writes them: magic, version, header
    /// length, the dict literal, the spare spaces NumPy leaves for growing the first axis, and
    /// padding so that the data starts on a 64-byte boundary. Version 2.0 is used only when
    /// the header does not fit version 1.0's 16-bit length.
    public static func header(descr: String, shape: [Int]) -> [UInt8] {
        var text = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(numpyShapeText(shape)), }"
        if let first = shape.first {
            // NumPy's GROWTH_AXIS_MAX_DIGITS (21) less the digits already used.
            text += String(repeating: " ", count: max(0, 21 - String(first).count))
        }
        let body = Array(text.utf8)
        let headerLength = body.count + 1                    // the final "\n"
        for (major, lengthBytes) in [(UInt8(1), 2), (UInt8(2), 4)] {
            let padding = 64 - ((8 + lengthBytes + headerLength) % 64)
            let total = headerLength + padding
            if lengthBytes == 2 && total > 0xFFFF { continue }
            var out = magic + [major, 0]
            out.reserveCapacity(8 + lengthBytes + total)
            if lengthBytes == 2 {
                out.appendZip16(UInt16(total))
            } else {
                out.appendZip32(UInt32(total))
            }
            out += body
            out += [UInt8](repeating: 0x20, count: padding)
            out.append(0x0A)
            return out
        }
        fatalError("a .npy header cannot exceed 4 GiB")
    }

    /// The complete `.npy` image of a value.
    ///
    /// - Parameter name: the tensor's name, for the error about bf16.
    public static func encode(_ value: NumPyValue, name: String = "array") throws -> [UInt8] {
        try withParts(of: value, name: name, file: nil) { parts in
            var out: [UInt8] = []
            out.reserveCapacity(parts.reduce(0) { $0 + $1.count })
            for part in parts { out.append(contentsOf: part) }
            return out
        }
    }

    /// Writes a `.npy` file atomically (temporary file, fsync, rename), streaming the tensor's
    /// bytes from its storage.
    public static func write(_ value: NumPyValue, to path: String, name: String = "array") throws {
        let writer = try AtomicFileWriter(path: path)
        try withParts(of: value, name: name, file: path) { parts in
            for part in parts where part.count > 0 { try writer.write(part) }
        }
        try writer.commit()
    }

    /// Calls `body` with the header and the data as separate buffers, so writers can stream a
    /// large tensor without copying it.
    static func withParts<R>(of value: NumPyValue, name: String, file: String?,
                             _ body: ([UnsafeRawBufferPointer]) throws -> R) throws -> R {
        switch value {
        case let .tensor(tensor):
            guard let descr = descr(for: tensor.dtype) else {
                throw NumPyFileError.unsupportedTensorType(file: file, name: name, dtype: tensor.dtype)
            }
            let head = header(descr: descr, shape: tensor.shape)
            return try withExtendedLifetime(tensor) {
                try head.withUnsafeBytes { try body([$0, tensor.bytes]) }
            }
        case let .string(text):
            // NumPy's str arrays are UTF-32 with a fixed width of at least one character.
            let scalars = Array(text.unicodeScalars)
            let width = max(1, scalars.count)
            var data: [UInt8] = []
            data.reserveCapacity(width * 4)
            for scalar in scalars { data.appendZip32(scalar.value) }
            data += [UInt8](repeating: 0, count: (width - scalars.count) * 4)
            let head = header(descr: "<U\(width)", shape: [])
            return try head.withUnsafeBytes { h in try data.withUnsafeBytes { try body([h, $0]) } }
        }
    }
}

func npyTranslate(_ error: CompressionError, _ location: NumPyLocation) -> NumPyFileError {
    switch error {
    case let .system(error): return .io(location, message: "\(error.operation.failure): \(error.reason)")
    case let .tooLarge(_, limit, _): return .arrayTooLarge(location, bytes: limit + 1, limit: limit)
    default:
        let text = error.description
        let prefix = location.file + ": "
        return .io(location, message: text.hasPrefix(prefix) ? String(text.dropFirst(prefix.count)) : text)
    }
}

// MARK: - Decoding

/// How one element is stored, from the descr.
struct NPYElement {
    enum Kind { case float, signed, unsigned, bool, unicode }
    var kind: Kind
    /// Bytes per element as stored.
    var size: Int
    var bigEndian: Bool

    /// The tensor type the element becomes (unused for unicode).
    var tensorType: DType {
        switch (kind, size) {
        case (.float, 2): return .float16
        case (.float, 4): return .float32
        case (.float, 8): return .float64
        case (.signed, 1): return .int8
        case (.signed, 2): return .int16
        case (.signed, 4): return .int32
        case (.signed, _): return .int64
        case (.unsigned, 1), (.bool, _): return .uint8
        case (.unsigned, 2): return .int32
        default: return .int64
        }
    }

    /// Interprets a descr string such as "<f4", "|b1", ">u8", "<U12".
    static func parse(_ descr: String, _ location: NumPyLocation) throws -> NPYElement {
        let bytes = Array(descr.utf8)
        var i = 0
        var bigEndian = false
        if let first = bytes.first, "<>|=".utf8.contains(first) {
            // '|' (not applicable) and '=' (native) both mean little-endian on the hosts this
            // code runs on.
            bigEndian = first == UInt8(ascii: ">")
            i = 1
        }
        guard i < bytes.count else {
            throw NumPyFileError.unsupportedDType(location, descr: descr, reason: nil)
        }
        let kindCharacter = bytes[i]
        if kindCharacter == UInt8(ascii: "O") {
            throw NumPyFileError.pickledObjects(location, descr: descr)
        }
        let digits = bytes[(i + 1)...]
        guard !digits.isEmpty, digits.count <= 9, digits.allSatisfy({ (0x30...0x39).contains($0) }) else {
            throw NumPyFileError.unsupportedDType(location, descr: descr, reason: nil)
        }
        let number = digits.reduce(0) { $0 * 10 + Int($1 - 0x30) }
        switch (kindCharacter, number) {
        case (UInt8(ascii: "f"), 2), (UInt8(ascii: "f"), 4), (UInt8(ascii: "f"), 8):
            return NPYElement(kind: .float, size: number, bigEndian: bigEndian)
        case (UInt8(ascii: "i"), 1), (UInt8(ascii: "i"), 2), (UInt8(ascii: "i"), 4), (UInt8(ascii: "i"), 8):
            return NPYElement(kind: .signed, size: number, bigEndian: bigEndian)
        case (UInt8(ascii: "u"), 1), (UInt8(ascii: "u"), 2), (UInt8(ascii: "u"), 4), (UInt8(ascii: "u"), 8):
            return NPYElement(kind: .unsigned, size: number, bigEndian: bigEndian)
        case (UInt8(ascii: "b"), 1):
            return NPYElement(kind: .bool, size: 1, bigEndian: false)
        case (UInt8(ascii: "U"), _):
            return NPYElement(kind: .unicode, size: number * 4, bigEndian: bigEndian)
        default:
            throw NumPyFileError.unsupportedDType(location, descr: descr, reason: nil)
        }
    }
}

/// Reads `.npy` data front to back from any byte source whose length is known in advance (a
/// file, a zip member, memory), checking every size before allocating for it.
/// What a `.npy` header declares, checked against the length of the data that follows it and
/// against the limits, before any data is read.
public struct NumPyDeclaration: Sendable {
    /// The NumPy type string, e.g. "<f4".
    public let descr: String
    public let shape: [Int]
    public let fortranOrder: Bool
    /// "1.0", "2.0" or "3.0".
    public let formatVersion: String
    /// The tensor type the data will be read as; nil for a string (a 0-d unicode array).
    public let dtype: DType?
    /// Bytes of array data after the header.
    public let byteCount: Int
    let element: NPYElement
    /// Bytes per element as stored.
    public var itemSize: Int { element.size }
    /// Whether the elements are stored big-endian (descr `>...`).
    public var isBigEndian: Bool { element.bigEndian && element.size > 1 }
}

extension NumPyFile {
    /// Reads and checks the header of `.npy` data arriving on a stream of unknown length (a
    /// pipe): the same checks as `read`, except the data size, which the caller checks as the
    /// data comes (the limit on an array's size does not apply: nothing is held). The source is
    /// left at the first byte of data.
    public static func streamDeclaration(from source: any ByteSource, name: String,
                                         limits: NumPyLimits = .default) throws -> NumPyDeclaration {
        try NPYDecoder.declaration(source: source, length: nil, location: NumPyLocation(file: name), limits: limits)
    }
}

enum NPYDecoder {
    static func decode(source: any ByteSource, length: Int, location: NumPyLocation,
                       limits: NumPyLimits) throws -> NumPyArray {
        let declaration = try declaration(source: source, length: length, location: location, limits: limits)
        return try data(source: source, declaration, location: location)
    }

    /// Reads and checks the header: everything up to the first byte of data.
    /// `length` is the bytes the source holds from here on, nil when unknown (a stream): the
    /// data size is then not checked, and the caller reads the data as it comes.
    static func declaration(source: any ByteSource, length: Int?, location: NumPyLocation,
                            limits: NumPyLimits) throws -> NumPyDeclaration {
        var consumed = 0
        func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
            do {
                let n = try source.read(into: buffer)
                consumed += n
                return n
            } catch let error as CompressionError {
                throw npyTranslate(error, location)
            }
        }
        func readBytes(_ count: Int) throws -> [UInt8] {
            try [UInt8](unsafeUninitializedCapacity: count) { buffer, got in
                got = 0
                got = try read(into: UnsafeMutableRawBufferPointer(buffer))
            }
        }

        let lead = try readBytes(min(length ?? 10, 10))
        guard lead.count >= 6, Array(lead[0..<6]) == NumPyFile.magic else {
            throw NumPyFileError.notNumPy(location)
        }
        guard lead.count >= 8 else { throw NumPyFileError.truncatedHeader(location, headerEnd: 10, size: length ?? consumed) }
        let major = Int(lead[6])
        let minor = Int(lead[7])
        guard (1...3).contains(major), minor == 0 else {
            throw NumPyFileError.unsupportedVersion(location, major: major, minor: minor)
        }
        let prefixLength = major == 1 ? 10 : 12
        guard (length ?? prefixLength) >= prefixLength, lead.count == 10 else {
            throw NumPyFileError.truncatedHeader(location, headerEnd: prefixLength, size: length ?? consumed)
        }
        let headerLength: Int
        if major == 1 {
            headerLength = Int(zipLoad16(lead, 8))
        } else {
            let rest = try readBytes(2)
            guard rest.count == 2 else {
                throw NumPyFileError.truncatedHeader(location, headerEnd: prefixLength, size: consumed)
            }
            headerLength = Int(zipLoad32(lead + rest, 8))
        }
        guard headerLength <= limits.maxHeaderBytes else {
            throw NumPyFileError.headerTooLarge(location, length: headerLength, limit: limits.maxHeaderBytes)
        }
        let dataOffset = prefixLength + headerLength
        if let length, dataOffset > length {
            throw NumPyFileError.truncatedHeader(location, headerEnd: dataOffset, size: length)
        }
        let headerBytes = try readBytes(headerLength)
        guard headerBytes.count == headerLength else {
            throw NumPyFileError.truncatedHeader(location, headerEnd: dataOffset, size: consumed)
        }

        let header = try NPYHeader.parse(headerBytes, version: major, location: location)
        let element = try NPYElement.parse(header.descr, location)
        guard let byteCount = ShapeMath.byteCount(header.shape, elementSize: element.size) else {
            throw NumPyFileError.shapeOverflow(location, shape: header.shape, descr: header.descr)
        }
        if let length {
            let available = length - dataOffset
            if byteCount > available {
                throw NumPyFileError.truncatedData(location, shape: header.shape, descr: header.descr,
                                                   needed: byteCount, available: available)
            }
            if byteCount < available {
                throw NumPyFileError.trailingData(location, expected: byteCount, extra: available - byteCount)
            }
        }
        guard length == nil || byteCount <= limits.maxArrayBytes else {
            throw NumPyFileError.arrayTooLarge(location, bytes: byteCount, limit: limits.maxArrayBytes)
        }
        if element.kind == .unicode {
            guard header.shape.isEmpty else {
                throw NumPyFileError.unsupportedDType(location, descr: header.descr,
                                                      reason: "string arrays are only read as 0-d scalars (shape ())")
            }
        }
        return NumPyDeclaration(descr: header.descr, shape: header.shape, fortranOrder: header.fortranOrder,
                                formatVersion: "\(major).0", dtype: element.kind == .unicode ? nil : element.tensorType,
                                byteCount: byteCount, element: element)
    }

    /// Reads the data `declaration` describes, which starts at the source's position.
    static func data(source: any ByteSource, _ declaration: NumPyDeclaration, location: NumPyLocation) throws -> NumPyArray {
        let header = (descr: declaration.descr, shape: declaration.shape, fortranOrder: declaration.fortranOrder)
        let element = declaration.element
        let byteCount = declaration.byteCount
        func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
            do {
                var got = 0
                while got < buffer.count {
                    let n = try source.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[got...]))
                    if n == 0 { break }
                    got += n
                }
                return got
            } catch let error as CompressionError {
                throw npyTranslate(error, location)
            }
        }
        var raw = NPYBuffer(byteCount: byteCount)
        let got = try read(into: raw.bytes)
        guard got == byteCount else {
            throw NumPyFileError.truncatedData(location, shape: header.shape, descr: header.descr,
                                               needed: byteCount, available: got)
        }
        let version = declaration.formatVersion

        if element.kind == .unicode {
            let text = try decodeUnicode(UnsafeRawBufferPointer(raw.bytes), bigEndian: element.bigEndian,
                                         descr: header.descr, location: location)
            return NumPyArray(value: .string(text), descr: header.descr, shape: header.shape,
                              fortranOrder: header.fortranOrder, version: version)
        }

        let count = byteCount / max(element.size, 1)
        if element.bigEndian && element.size > 1 {
            npyByteSwap(raw.bytes, size: element.size)
        }
        if header.fortranOrder && header.shape.filter({ $0 > 1 }).count > 1 {
            let reordered = NPYBuffer(byteCount: byteCount)
            npyFortranToC(UnsafeRawBufferPointer(raw.bytes), reordered.bytes, shape: header.shape, itemSize: element.size)
            raw = reordered
        }
        switch (element.kind, element.size) {
        case (.bool, _):
            for i in 0..<count where raw.bytes[i] > 1 { raw.bytes[i] = 1 }
        case (.unsigned, 2):
            let wide = NPYBuffer(byteCount: count * 4)
            let from = raw.bytes.bindMemory(to: UInt16.self)
            let to = wide.bytes.bindMemory(to: Int32.self)
            for i in 0..<count { to[i] = Int32(from[i]) }
            raw = wide
        case (.unsigned, 4):
            let wide = NPYBuffer(byteCount: count * 8)
            let from = raw.bytes.bindMemory(to: UInt32.self)
            let to = wide.bytes.bindMemory(to: Int64.self)
            for i in 0..<count { to[i] = Int64(from[i]) }
            raw = wide
        case (.unsigned, 8):
            let values = raw.bytes.bindMemory(to: UInt64.self)
            if let bad = values.firstIndex(where: { $0 > UInt64(Int64.max) }) {
                throw NumPyFileError.valueOutOfRange(location, descr: header.descr, index: bad)
            }
        default:
            break
        }
        let tensor = Tensor(dtype: element.tensorType, shape: header.shape, storage: raw.release(), byteOffset: 0)
        return NumPyArray(value: .tensor(tensor), descr: header.descr, shape: header.shape,
                          fortranOrder: header.fortranOrder, version: version)
    }

    private static func decodeUnicode(_ bytes: UnsafeRawBufferPointer, bigEndian: Bool, descr: String,
                                      location: NumPyLocation) throws -> String {
        var units: [UInt32] = []
        units.reserveCapacity(bytes.count / 4)
        for i in stride(from: 0, to: bytes.count, by: 4) {
            let value = bytes.loadUnaligned(fromByteOffset: i, as: UInt32.self)
            units.append(bigEndian ? value.byteSwapped : value)
        }
        // NumPy pads short strings with NULs and drops them when it reads the value back.
        while units.last == 0 { units.removeLast() }
        var scalars = String.UnicodeScalarView()
        for unit in units {
            guard let scalar = Unicode.Scalar(unit) else {
                throw NumPyFileError.invalidString(location, descr: descr)
            }
            scalars.append(scalar)
        }
        return String(scalars)
    }
}

extension NumPyArray {
    init(value: NumPyValue, descr: String, shape: [Int], fortranOrder: Bool, version: String) {
        self.value = value
        self.descr = descr
        self.shape = shape
        self.fortranOrder = fortranOrder
        self.formatVersion = version
    }
}

/// A 64-byte-aligned heap buffer that frees itself unless handed over to a `TensorStorage`,
/// so every error path after an allocation releases it.
private final class NPYBuffer {
    let bytes: UnsafeMutableRawBufferPointer
    private let base: UnsafeMutableRawBufferPointer
    private var owned = true

    init(byteCount: Int) {
        // One byte at least, so an empty array still has a real address to point at.
        base = .allocate(byteCount: max(byteCount, 1), alignment: 64)
        bytes = UnsafeMutableRawBufferPointer(rebasing: base[0..<byteCount])
    }

    /// Hands the memory to a tensor storage that frees it when the last tensor goes.
    func release() -> TensorStorage {
        owned = false
        return TensorStorage(bytes: UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(base)[0..<bytes.count])) { b in
            UnsafeMutableRawPointer(mutating: b.baseAddress)?.deallocate()
        }
    }

    deinit {
        if owned { base.deallocate() }
    }
}

/// Reverses the bytes of every `size`-byte element in place.
private func npyByteSwap(_ bytes: UnsafeMutableRawBufferPointer, size: Int) {
    switch size {
    case 2:
        let p = bytes.bindMemory(to: UInt16.self)
        for i in p.indices { p[i] = p[i].byteSwapped }
    case 4:
        let p = bytes.bindMemory(to: UInt32.self)
        for i in p.indices { p[i] = p[i].byteSwapped }
    case 8:
        let p = bytes.bindMemory(to: UInt64.self)
        for i in p.indices { p[i] = p[i].byteSwapped }
    default:
        break
    }
}

/// Copies column-major (Fortran) data into row-major (C) order: a strided gather whose strides
/// make the first index vary fastest.
private func npyFortranToC(_ source: UnsafeRawBufferPointer, _ destination: UnsafeMutableRawBufferPointer,
                           shape: [Int], itemSize: Int) {
    guard !shape.isEmpty, !shape.contains(0), let base = source.baseAddress else { return }
    var strides = [Int](repeating: 1, count: shape.count)
    for k in 1..<shape.count { strides[k] = strides[k - 1] * shape[k - 1] }
    // Any type of the element's width moves the same bytes.
    let carrier: DType = itemSize == 1 ? .uint8 : itemSize == 2 ? .int16 : itemSize == 4 ? .int32 : .int64
    let reordered = Tensor.gathering(dtype: carrier, shape: shape, strides: strides, from: base)
    destination.copyMemory(from: reordered.bytes)
}

// MARK: - Header literal

/// The three keys of a `.npy` header, parsed from its Python dict literal.
///
/// Only the literal subset NumPy writes is accepted: a dict with string keys; string values in
/// single or double quotes (no escapes); `True`, `False`; non-negative integers (with Python 2's
/// `L` suffix in versions 1.0 and 2.0, as NumPy accepts); tuples; and lists, which only serve to
/// recognise structured dtypes.
struct NPYHeader {
    var descr: String
    var fortranOrder: Bool
    var shape: [Int]

    /// NumPy's NPY_MAXDIMS.
    static let maximumRank = 64

    indirect enum Literal {
        case string(String)
        case bool(Bool)
        /// nil when the digits do not fit in an Int.
        case integer(Int?, text: String)
        case tuple([Literal])
        case list([Literal])
        case dict([(String, Literal)])
        case none
    }

    static func parse(_ bytes: [UInt8], version: Int, location: NumPyLocation) throws -> NPYHeader {
        var parser = NPYLiteralParser(bytes: bytes, latin1: version < 3, allowLongSuffix: version < 3, location: location)
        let top = try parser.parseDocument()
        guard case let .dict(items) = top else {
            throw NumPyFileError.malformedHeader(location, reason: "the header is not a dictionary")
        }
        var descr: Literal? = nil
        var fortran: Literal? = nil
        var shape: Literal? = nil
        for (key, value) in items {
            switch key {
            case "descr" where descr == nil: descr = value
            case "fortran_order" where fortran == nil: fortran = value
            case "shape" where shape == nil: shape = value
            case "descr", "fortran_order", "shape":
                throw NumPyFileError.malformedHeader(location, reason: "the key '\(key)' appears twice")
            default:
                throw NumPyFileError.malformedHeader(location, reason: "unexpected key '\(key)'")
            }
        }
        guard let descr, let fortran, let shape else {
            let missing = [("descr", descr == nil), ("fortran_order", fortran == nil), ("shape", shape == nil)]
                .first { $0.1 }!.0
            throw NumPyFileError.malformedHeader(location, reason: "the key '\(missing)' is missing")
        }
        let descrText: String
        switch descr {
        case let .string(s): descrText = s
        case .list: throw NumPyFileError.structuredDType(location)
        default: throw NumPyFileError.malformedHeader(location, reason: "'descr' is not a string")
        }
        guard case let .bool(fortranOrder) = fortran else {
            throw NumPyFileError.malformedHeader(location, reason: "'fortran_order' is not True or False")
        }
        guard case let .tuple(dimensions) = shape else {
            throw NumPyFileError.malformedHeader(location, reason: "'shape' is not a tuple (a one-element tuple needs a trailing comma)")
        }
        guard dimensions.count <= maximumRank else {
            throw NumPyFileError.malformedHeader(location, reason: "'shape' has \(dimensions.count) dimensions, more than NumPy's \(maximumRank)")
        }
        var dims: [Int] = []
        for dimension in dimensions {
            guard case let .integer(value, text) = dimension else {
                throw NumPyFileError.malformedHeader(location, reason: "'shape' holds something other than integers")
            }
            guard let value else {
                throw NumPyFileError.malformedHeader(location, reason: "the dimension \(text.prefix(40)) in 'shape' is too large")
            }
            guard value >= 0 else {
                throw NumPyFileError.malformedHeader(location, reason: "'shape' has the negative dimension \(value)")
            }
            dims.append(value)
        }
        return NPYHeader(descr: descrText, fortranOrder: fortranOrder, shape: dims)
    }
}

/// A recursive-descent parser for the header's Python literal, with bounded nesting.
private struct NPYLiteralParser {
    let bytes: [UInt8]
    let latin1: Bool
    let allowLongSuffix: Bool
    let location: NumPyLocation
    var position = 0
    var depth = 0

    static let maximumDepth = 16

    init(bytes: [UInt8], latin1: Bool, allowLongSuffix: Bool, location: NumPyLocation) {
        self.bytes = bytes
        self.latin1 = latin1
        self.allowLongSuffix = allowLongSuffix
        self.location = location
    }

    func fail(_ reason: String) -> NumPyFileError {
        .malformedHeader(location, reason: "\(reason) at byte \(position) of the header")
    }

    var current: UInt8? { position < bytes.count ? bytes[position] : nil }

    mutating func skipSpace() {
        while let c = current, c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D || c == 0x0C {
            position += 1
        }
    }

    mutating func expect(_ character: Character) throws {
        skipSpace()
        guard current == character.asciiValue else {
            throw fail("expected '\(character)'")
        }
        position += 1
    }

    /// The whole header: one literal, then only the padding NumPy adds.
    mutating func parseDocument() throws -> NPYHeader.Literal {
        let value = try parseValue()
        skipSpace()
        guard position == bytes.count else { throw fail("unexpected text after the dictionary") }
        return value
    }

    mutating func parseValue() throws -> NPYHeader.Literal {
        skipSpace()
        guard let c = current else { throw fail("unexpected end of the header") }
        switch c {
        case UInt8(ascii: "{"):
            return try nested { p in .dict(try p.parseDict()) }
        case UInt8(ascii: "("):
            return try nested { p in try p.parseSequence(close: UInt8(ascii: ")"), isTuple: true) }
        case UInt8(ascii: "["):
            return try nested { p in try p.parseSequence(close: UInt8(ascii: "]"), isTuple: false) }
        case UInt8(ascii: "'"), UInt8(ascii: "\""):
            return .string(try parseString())
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return try parseInteger()
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "_"):
            let start = position
            while let d = current, d == UInt8(ascii: "_") || (0x30...0x39).contains(d)
                    || (0x41...0x5A).contains(d) || (0x61...0x7A).contains(d) {
                position += 1
            }
            let word = String(decoding: bytes[start..<position], as: UTF8.self)
            switch word {
            case "True": return .bool(true)
            case "False": return .bool(false)
            case "None": return .none
            default:
                position = start
                throw fail("unexpected name '\(word.prefix(40))'")
            }
        default:
            throw fail("unexpected character \(describe(c))")
        }
    }

    private mutating func nested(_ body: (inout NPYLiteralParser) throws -> NPYHeader.Literal) throws -> NPYHeader.Literal {
        depth += 1
        guard depth <= NPYLiteralParser.maximumDepth else { throw fail("nesting is too deep") }
        defer { depth -= 1 }
        return try body(&self)
    }

    private mutating func parseDict() throws -> [(String, NPYHeader.Literal)] {
        position += 1                                     // "{"
        var items: [(String, NPYHeader.Literal)] = []
        while true {
            skipSpace()
            if current == UInt8(ascii: "}") {
                position += 1
                return items
            }
            guard current == UInt8(ascii: "'") || current == UInt8(ascii: "\"") else {
                throw fail(current == nil ? "unexpected end of the header" : "expected a quoted key")
            }
            let key = try parseString()
            try expect(":")
            let value = try parseValue()
            items.append((key, value))
            skipSpace()
            if current == UInt8(ascii: ",") {
                position += 1
            } else if current != UInt8(ascii: "}") {
                throw fail(current == nil ? "unexpected end of the header" : "expected ',' or '}'")
            }
        }
    }

    /// A tuple or list; "(x)" without a comma is just x in parentheses, as in Python.
    private mutating func parseSequence(close: UInt8, isTuple: Bool) throws -> NPYHeader.Literal {
        position += 1
        var items: [NPYHeader.Literal] = []
        var sawComma = false
        while true {
            skipSpace()
            if current == close {
                position += 1
                if isTuple && items.count == 1 && !sawComma { return items[0] }
                return isTuple ? .tuple(items) : .list(items)
            }
            items.append(try parseValue())
            skipSpace()
            if current == UInt8(ascii: ",") {
                position += 1
                sawComma = true
            } else if current != close {
                throw fail(current == nil ? "unexpected end of the header" : "expected ',' or '\(Character(Unicode.Scalar(close)))'")
            }
        }
    }

    private mutating func parseString() throws -> String {
        let quote = bytes[position]
        position += 1
        let start = position
        while let c = current, c != quote {
            if c == UInt8(ascii: "\\") { throw fail("escape sequences in strings are not supported") }
            if c == 0x0A || c == 0x0D { throw fail("unterminated string") }
            position += 1
        }
        guard current == quote else { throw fail("unterminated string") }
        let content = bytes[start..<position]
        position += 1
        if latin1 {
            // Versions 1.0 and 2.0 are latin-1: every byte is the code point of the same value.
            return String(String.UnicodeScalarView(content.map { Unicode.Scalar($0) }))
        }
        guard let text = String(validating: content, as: UTF8.self) else {
            throw fail("a string is not valid UTF-8")
        }
        return text
    }

    private mutating func parseInteger() throws -> NPYHeader.Literal {
        let start = position
        if current == UInt8(ascii: "-") { position += 1 }
        let digitsStart = position
        while let c = current, (0x30...0x39).contains(c) { position += 1 }
        guard position > digitsStart else { throw fail("expected digits") }
        let text = String(decoding: bytes[start..<position], as: UTF8.self)
        if allowLongSuffix && (current == UInt8(ascii: "L") || current == UInt8(ascii: "l")) {
            position += 1
        }
        if let c = current, c == UInt8(ascii: ".") || c == UInt8(ascii: "e") || c == UInt8(ascii: "E")
            || c == UInt8(ascii: "_") || c == UInt8(ascii: "x") || ((0x41...0x5A).contains(c) || (0x61...0x7A).contains(c)) {
            throw fail("only plain integers are allowed here")
        }
        return .integer(Int(text), text: text)
    }

    private func describe(_ c: UInt8) -> String {
        (0x21...0x7E).contains(c) ? "'\(Character(Unicode.Scalar(c)))'" : "0x" + String(c, radix: 16)
    }
}
