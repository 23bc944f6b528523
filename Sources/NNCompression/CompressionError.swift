import NNSystem
/// The container around deflate data.
public enum CompressionFormat: Sendable, Equatable, CustomStringConvertible {
    /// RFC 1952 gzip (`.gz` files), possibly several members back to back.
    case gzip
    /// RFC 1950 zlib (a 2-byte header and an Adler-32 trailer).
    case zlib
    /// RFC 1951 deflate without any header, as zip and `.npz` members store it.
    case rawDeflate
    /// gzip or zlib, told apart by the first bytes (only for decompression).
    case gzipOrZlib

    public var description: String {
        switch self {
        case .gzip: return "gzip"
        case .zlib: return "zlib"
        case .rawDeflate: return "deflate"
        case .gzipOrZlib: return "gzip/zlib"
        }
    }

    /// zlib's `windowBits` argument that selects this container.
    var windowBits: Int32 {
        switch self {
        case .gzip: return 15 + 16
        case .zlib: return 15
        case .rawDeflate: return -15
        case .gzipOrZlib: return 15 + 32
        }
    }
}

/// Errors from reading files and from compressing or decompressing data.
///
/// Every message is one line that starts with the name the caller gave (usually the file path),
/// so a command-line tool can print it as it is.
public enum CompressionError: Error, Equatable, CustomStringConvertible, Sendable {
    /// Opening or reading the file failed (missing, unreadable, a directory, an I/O error):
    /// the system's error, with its errno.
    case system(SystemError)
    /// The compressed data ended before the end of the stream: a truncated download or copy.
    case truncated(name: String, format: CompressionFormat, compressedBytes: Int)
    /// zlib rejected the data; `message` is zlib's own explanation.
    case corrupt(name: String, format: CompressionFormat, message: String)
    /// Bytes that are not another gzip member follow a complete stream.
    case trailingGarbage(name: String, format: CompressionFormat, offset: Int)
    /// The data is larger than the limit the caller set.
    case tooLarge(name: String, limit: Int, decompressed: Bool)
    /// zlib could not allocate its state.
    case outOfMemory(name: String)
    /// zlib returned a code it should not return here (a bug in the caller or in zlib).
    case zlibFailure(name: String, operation: String, code: Int32)

    public var description: String {
        switch self {
        case let .system(error):
            return error.description
        case let .truncated(name, format, compressedBytes):
            return "\(name): unexpected end of \(format) stream after \(compressedBytes) compressed bytes (the file is truncated)"
        case let .corrupt(name, format, message):
            return "\(name): corrupt \(format) data: \(message)"
        case let .trailingGarbage(name, format, offset):
            return "\(name): unexpected data after the end of the \(format) stream at compressed byte \(offset)"
        case let .tooLarge(name, limit, decompressed):
            let what = decompressed ? "the decompressed data is" : "the file is"
            return "\(name): \(what) larger than the limit of \(limit) bytes"
        case let .outOfMemory(name):
            return "\(name): zlib ran out of memory"
        case let .zlibFailure(name, operation, code):
            return "\(name): zlib \(operation) failed with code \(code)"
        }
    }
}
