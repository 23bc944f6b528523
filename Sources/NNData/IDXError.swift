import NNCompression

/// Errors from reading and writing IDX files.
///
/// Every message is a single line that starts with the file path (or the display name the
/// caller gave), so a command-line tool can print it as it is.
public enum IDXError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The file has no bytes at all.
    case emptyFile(path: String)
    /// The file ends inside the header; `expectedBytes` is the header size so far as known.
    case truncatedHeader(path: String, expectedBytes: Int, foundBytes: Int)
    /// The first two bytes are not zero; `found` holds up to the first four bytes.
    case wrongMagic(path: String, found: [UInt8])
    /// The third byte is not one of the six IDX type codes.
    case unknownTypeCode(path: String, found: UInt8)
    /// The fourth byte (the rank) is zero.
    case rankZero(path: String)
    /// The rank is larger than `IDXHeader.maximumRank`.
    case rankTooLarge(path: String, rank: Int, maximum: Int)
    /// The product of the (non-zero) dimensions, in bytes, does not fit in 64 bits.
    case dimensionOverflow(path: String, dims: [Int])
    /// Fewer data bytes than the header declares.
    case truncated(path: String, dims: [Int], type: IDXElementType, expectedBytes: Int, foundBytes: Int)
    /// More data bytes than the header declares.
    case trailingBytes(path: String, dims: [Int], type: IDXElementType, expectedBytes: Int, foundBytes: Int)
    /// Opening, reading or decompressing the file failed.
    case compression(CompressionError)
    /// The elements were asked for as one type but the file holds another.
    case typeMismatch(path: String, requested: IDXElementType, found: IDXElementType)
    /// Integers (labels) were asked for but the file holds floating-point numbers.
    case notInteger(path: String, found: IDXElementType)
    /// A label file must be rank 1 with an integer type.
    case notLabels(path: String, dims: [Int], type: IDXElementType)
    /// Writing: the dimensions do not describe the number of values given.
    case shapeMismatch(path: String, dims: [Int], valueCount: Int)
    /// Writing: a dimension is negative or does not fit the header's 32 bits.
    case dimensionOutOfRange(path: String, dims: [Int])
    /// Streaming: the header declares images of no values (a zero dimension after the first),
    /// which a stream would hand out by the billion from a 16-byte file.
    case imagesWithoutValues(path: String, dims: [Int], type: IDXElementType)

    public var description: String {
        switch self {
        case let .emptyFile(path):
            return "\(path): empty file: an IDX file starts with a 4-byte magic number"
        case let .truncatedHeader(path, expected, found):
            return "\(path): truncated header: the header needs \(expected) bytes, the file has \(found)"
        case let .wrongMagic(path, found):
            let hex = found.map { hexByte($0) }.joined(separator: " ")
            return "\(path): not an IDX file: it starts with \(hex), an IDX file starts with 00 00, a type code and a rank"
        case let .unknownTypeCode(path, found):
            let known = IDXElementType.allCases.map { "0x\(hexByte($0.rawValue).uppercased()) \($0)" }
            return "\(path): unknown IDX type code 0x\(hexByte(found).uppercased()) (known: \(known.joined(separator: ", ")))"
        case let .rankZero(path):
            return "\(path): IDX rank 0: a file needs at least one dimension"
        case let .rankTooLarge(path, rank, maximum):
            return "\(path): IDX rank \(rank) is larger than the supported maximum of \(maximum)"
        case let .dimensionOverflow(path, dims):
            return "\(path): the dimensions \(dimsText(dims)) overflow: their size in bytes does not fit in 64 bits"
        case let .truncated(path, dims, type, expected, found):
            return "\(path): truncated: the header declares \(dimsText(dims)) \(type) (\(expected) bytes of data), the file has \(found)"
        case let .trailingBytes(path, dims, type, expected, found):
            return "\(path): trailing bytes: the header declares \(dimsText(dims)) \(type) (\(expected) bytes of data), the file has \(found) (\(found - expected) too many)"
        case let .compression(error):
            return error.description
        case let .typeMismatch(path, requested, found):
            return "\(path): the elements are \(found), not \(requested)"
        case let .notInteger(path, found):
            return "\(path): the elements are \(found), not integers"
        case let .notLabels(path, dims, type):
            return "\(path): not a label file: labels are a rank-1 integer IDX file (u8 in MNIST), this one is \(dimsText(dims)) \(type)"
        case let .shapeMismatch(path, dims, valueCount):
            return "\(path): cannot write: the dimensions \(dimsText(dims)) do not hold \(valueCount) values"
        case let .dimensionOutOfRange(path, dims):
            return "\(path): cannot write: the dimensions \(dimsText(dims)) are not all in 0...\(UInt32.max)"
        case let .imagesWithoutValues(path, dims, type):
            return "\(path): the header declares \(dimsText(dims)) \(type): images of 0 values, which cannot be read as images"
        }
    }
}

/// `[10000, 28, 28]` as `10000x28x28`, the way the error messages show shapes.
func dimsText(_ dims: [Int]) -> String {
    dims.map(String.init).joined(separator: "x")
}

private func hexByte(_ byte: UInt8) -> String {
    let digits = Array("0123456789abcdef")
    return String([digits[Int(byte >> 4)], digits[Int(byte & 0xf)]])
}

/// Runs `body`, reporting NNCompression's errors as `IDXError.compression`.
@inline(__always)
func wrappingCompressionErrors<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as CompressionError {
        throw IDXError.compression(error)
    }
}
