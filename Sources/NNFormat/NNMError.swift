import NNCore

/// Why a `.nnm` file could not be read or written. Every message starts with the file's path.
public enum NNMError: Error, Equatable, CustomStringConvertible, Sendable {
    case cannotOpen(path: String, reason: String)
    case empty(path: String)
    /// The file ends before a structure it declares (`what`) is complete.
    case truncated(path: String, what: String, expectedBytes: Int, foundBytes: Int)
    case wrongMagic(path: String)
    case unsupportedVersion(path: String, major: Int, minor: Int)
    case unknownFlags(path: String, flags: UInt32)
    case preambleChecksumMismatch(path: String)
    case headerTooLarge(path: String, bytes: UInt64, limit: Int)
    case headerChecksumMismatch(path: String)
    case invalidJSON(path: String, detail: String)
    /// The preamble's sizes do not describe the file (declared length vs actual, bad offsets).
    case badLayout(path: String, detail: String)
    /// An entry of the tensor table is malformed.
    case badTensorEntry(path: String, location: String, detail: String)
    case overlappingTensors(path: String, first: String, second: String)
    case nonZeroPadding(path: String, offset: Int)
    case checksumMismatch(path: String, tensor: String, expected: UInt32, found: UInt32)
    /// The metadata or tensors are inconsistent (shapes that do not chain, missing tensors, ...).
    case invalidModel(path: String, problem: ModelError)
    /// The output file could not be created (a missing directory, no permission).
    case cannotCreate(path: String, reason: String)
    /// Writing failed part-way (a full disk, a file size limit); the previous file is untouched.
    case writeFailed(path: String, reason: String)

    public var description: String {
        switch self {
        case let .cannotOpen(path, reason): return "\(path): cannot open: \(reason)"
        case let .empty(path): return "\(path): the file is empty"
        case let .truncated(path, what, expected, found):
            return "\(path): truncated: \(what) needs \(expected) bytes, the file has \(found)"
        case let .wrongMagic(path): return "\(path): not an .nnm model file (wrong magic bytes)"
        case let .unsupportedVersion(path, major, minor):
            return "\(path): format version \(major).\(minor) is not supported (this reader understands \(NNMFormat.majorVersion).x); use a newer nnconv"
        case let .unknownFlags(path, flags):
            return "\(path): the file uses features this reader does not know (flags 0x\(String(flags, radix: 16)))"
        case let .preambleChecksumMismatch(path): return "\(path): corrupt: the preamble checksum does not match"
        case let .headerTooLarge(path, bytes, limit):
            return "\(path): the metadata header is \(bytes) bytes, more than the limit of \(limit)"
        case let .headerChecksumMismatch(path): return "\(path): corrupt: the metadata header checksum does not match"
        case let .invalidJSON(path, detail): return "\(path): the metadata header is not valid JSON: \(detail)"
        case let .badLayout(path, detail): return "\(path): corrupt layout: \(detail)"
        case let .badTensorEntry(path, location, detail): return "\(path): \(location): \(detail)"
        case let .overlappingTensors(path, first, second):
            return "\(path): tensors '\(first)' and '\(second)' overlap or are out of order"
        case let .nonZeroPadding(path, offset): return "\(path): corrupt: padding byte at offset \(offset) is not zero"
        case let .checksumMismatch(path, tensor, expected, found):
            return "\(path): corrupt: tensor '\(tensor)' fails its checksum (stored crc32 \(hex8(expected)), computed \(hex8(found)))"
        case let .invalidModel(path, problem): return "\(path): \(problem)"
        case let .cannotCreate(path, reason): return "\(path): cannot write: \(reason)"
        case let .writeFailed(path, reason): return "\(path): write failed: \(reason); the previous file, if any, is unchanged"
        }
    }
}

private func hex8(_ v: UInt32) -> String {
    let s = String(v, radix: 16)
    return String(repeating: "0", count: 8 - s.count) + s
}
