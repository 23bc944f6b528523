import NNCompression
import NNSystem

/// The Swift types that IDX elements map to one-to-one: `UInt8`, `Int8`, `Int16`, `Int32`,
/// `Float`, `Double`. Other types must not conform; values are copied by their bytes.
public protocol IDXElement: Sendable {
    /// The IDX type code this Swift type is stored as.
    static var idxType: IDXElementType { get }
}

extension UInt8: IDXElement { public static var idxType: IDXElementType { .u8 } }
extension Int8: IDXElement { public static var idxType: IDXElementType { .i8 } }
extension Int16: IDXElement { public static var idxType: IDXElementType { .i16 } }
extension Int32: IDXElement { public static var idxType: IDXElementType { .i32 } }
extension Float: IDXElement { public static var idxType: IDXElementType { .f32 } }
extension Double: IDXElement { public static var idxType: IDXElementType { .f64 } }

/// A whole IDX file (the MNIST format) in memory, plain or gzip-compressed on disk.
///
/// Reading checks everything before handing out data: the magic number, the type code, the rank
/// (1...`IDXHeader.maximumRank`), that the size in bytes fits in 64 bits, and that exactly the
/// declared number of data bytes follows the header. Memory is allocated for the bytes actually
/// in the file, never for a size the header merely claims.
///
/// For files too large to hold at once, use `IDXImageStream`.
public struct IDXFile: Sendable {
    /// A ceiling on the decompressed size that keeps a hostile or mistaken file from exhausting
    /// memory: 4 GiB, more than five times the 60,000-image MNIST training set as f64.
    public static let defaultMaxBytes = 1 << 32

    /// The path or display name that errors mention.
    public let path: String
    public let header: IDXHeader
    /// The file's (decompressed) bytes, header included.
    private let storage: [UInt8]

    /// The element type.
    public var elementType: IDXElementType { header.elementType }
    /// The dimensions, outermost first.
    public var dims: [Int] { header.dims }
    /// The number of elements.
    public var elementCount: Int { header.elementCount }

    /// Reads and validates the IDX file at `path`, gunzipping it when it starts with 1f 8b.
    ///
    /// - Parameters:
    ///   - maxBytes: the most (decompressed) bytes to accept; larger files throw.
    ///   - displayName: the name errors mention; `path` when `nil`.
    /// - Throws: `IDXError`.
    public init(path: String, maxBytes: Int = IDXFile.defaultMaxBytes, displayName: String? = nil) throws {
        let bytes = try wrappingCompressionErrors {
            try readMaybeGzip(path: path, maxBytes: maxBytes, displayName: displayName)
        }
        try self.init(bytes: bytes, name: displayName ?? path)
    }

    /// Validates an IDX file already in memory (not compressed); `name` is used in errors.
    public init(bytes: [UInt8], name: String) throws {
        let header = try IDXHeader.parse(bytes, path: name)
        try header.checkDataSize(bytes.count - header.headerByteCount, path: name)
        self.path = name
        self.header = header
        self.storage = bytes
    }

    /// Calls `body` with the data bytes as stored: big-endian, after the header.
    public func withUnsafeDataBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try storage.withUnsafeBytes { raw in
            try body(UnsafeRawBufferPointer(rebasing: raw[header.headerByteCount...]))
        }
    }

    /// The elements as `Float`, each multiplied by `scale` (1/255 turns u8 pixels into 0...1).
    public func floats(scale: Float = 1) -> [Float] {
        decoded { decodeReals($0, type: $1, count: $2, scale: scale, into: $3) }
    }

    /// The elements as `Double`, each multiplied by `scale`.
    public func doubles(scale: Double = 1) -> [Double] {
        decoded { decodeReals($0, type: $1, count: $2, scale: scale, into: $3) }
    }

    /// Every element through `decode(data, type, count, destination)`, into a new array.
    private func decoded<T>(_ decode: (UnsafeRawPointer, IDXElementType, Int, UnsafeMutablePointer<T>) -> Void) -> [T] {
        let count = elementCount
        let type = elementType
        return withUnsafeDataBytes { data in
            [T](unsafeUninitializedCapacity: count) { buffer, initialized in
                if count > 0 { decode(data.baseAddress!, type, count, buffer.baseAddress!) }
                initialized = count
            }
        }
    }

    /// The elements as `Int`, for labels and other integer data.
    ///
    /// - Throws: `IDXError.notInteger` for f32 and f64 files.
    public func ints() throws -> [Int] {
        guard elementType.isInteger else { throw IDXError.notInteger(path: path, found: elementType) }
        let count = elementCount
        let type = elementType
        return withUnsafeDataBytes { data in
            [Int](unsafeUninitializedCapacity: count) { buffer, initialized in
                if count > 0 { decodeInts(data.baseAddress!, type: type, count: count, into: buffer.baseAddress!) }
                initialized = count
            }
        }
    }

    /// The elements as the Swift type that matches the file's type exactly, without conversion.
    ///
    /// - Throws: `IDXError.typeMismatch` when `T` is not the file's element type.
    public func values<T: IDXElement>(as _: T.Type = T.self) throws -> [T] {
        guard T.idxType == elementType else {
            throw IDXError.typeMismatch(path: path, requested: T.idxType, found: elementType)
        }
        precondition(MemoryLayout<T>.size == elementType.size, "\(T.self) cannot be an IDX element")
        let count = elementCount
        let size = elementType.size
        return withUnsafeDataBytes { data in
            [T](unsafeUninitializedCapacity: count) { buffer, initialized in
                if count > 0 {
                    swapBytes(data.baseAddress!, into: UnsafeMutableRawPointer(buffer.baseAddress!),
                              count: count, elementSize: size)
                }
                initialized = count
            }
        }
    }

    /// Writes this file to `path` atomically, gzip-compressed when `gzip` is true.
    ///
    /// - Throws: `IDXError`, or NNCore's `FileWriteError` when the file cannot be written.
    public func write(to path: String, gzip: Bool = false, level: Int = 6) throws {
        try storage.withUnsafeBytes { raw in
            try IDXWriter.writeEncoded(header: UnsafeRawBufferPointer(rebasing: raw[..<header.headerByteCount]),
                                       data: UnsafeRawBufferPointer(rebasing: raw[header.headerByteCount...]),
                                       to: path, gzip: gzip, level: level)
        }
    }
}
