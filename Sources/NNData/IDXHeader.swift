/// The element types an IDX file can hold, keyed by the header's type code.
public enum IDXElementType: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case u8 = 0x08
    case i8 = 0x09
    case i16 = 0x0B
    case i32 = 0x0C
    case f32 = 0x0D
    case f64 = 0x0E

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .u8, .i8: return 1
        case .i16: return 2
        case .i32, .f32: return 4
        case .f64: return 8
        }
    }

    /// Whether the elements are integers (usable as labels).
    public var isInteger: Bool {
        switch self {
        case .u8, .i8, .i16, .i32: return true
        case .f32, .f64: return false
        }
    }

    /// The short name messages use: `u8`, `i8`, `i16`, `i32`, `f32`, `f64`.
    public var description: String {
        switch self {
        case .u8: return "u8"
        case .i8: return "i8"
        case .i16: return "i16"
        case .i32: return "i32"
        case .f32: return "f32"
        case .f64: return "f64"
        }
    }
}

/// A validated IDX header: the element type and the dimensions, whose sizes are known to fit.
public struct IDXHeader: Sendable, Equatable, CustomStringConvertible {
    /// The largest rank accepted. The format allows 255, but no real data set needs more than a
    /// few, and a bound keeps a garbage header from describing absurd shapes.
    public static let maximumRank = 8

    public let elementType: IDXElementType
    /// The dimensions, outermost first (`[10000, 28, 28]` for the MNIST test images).
    public let dims: [Int]
    /// The product of the dimensions.
    public let elementCount: Int
    /// The number of data bytes after the header.
    public let dataByteCount: Int

    /// The number of dimensions.
    public var rank: Int { dims.count }
    /// The size of the header in bytes: the magic number and one 32-bit size per dimension.
    public var headerByteCount: Int { 4 + 4 * dims.count }

    /// `10000x28x28 u8`.
    public var description: String { "\(dimsText(dims)) \(elementType)" }

    /// Builds a header for writing, checking the same limits a reader checks.
    ///
    /// - Parameter path: the name errors mention.
    public init(elementType: IDXElementType, dims: [Int], path: String) throws {
        if dims.isEmpty { throw IDXError.rankZero(path: path) }
        if dims.count > IDXHeader.maximumRank {
            throw IDXError.rankTooLarge(path: path, rank: dims.count, maximum: IDXHeader.maximumRank)
        }
        if dims.contains(where: { $0 < 0 || UInt64($0) > UInt64(UInt32.max) }) {
            throw IDXError.dimensionOutOfRange(path: path, dims: dims)
        }
        try self.init(validatedType: elementType, dims: dims, path: path)
    }

    /// Checks that the byte size fits; the dimensions are already known to be 32-bit.
    ///
    /// The product is taken over the non-zero dimensions, so that every partial product (the size
    /// of one image, `IDXImageLayout`) fits too: `0x4294967295x4294967295x4294967295` holds no
    /// data but describes images too large to count, and is refused.
    private init(validatedType elementType: IDXElementType, dims: [Int], path: String) throws {
        var product = elementType.size
        for d in dims where d != 0 {
            let (next, overflow) = product.multipliedReportingOverflow(by: d)
            if overflow { throw IDXError.dimensionOverflow(path: path, dims: dims) }
            product = next
        }
        let count = dims.contains(0) ? 0 : product / elementType.size
        self.elementType = elementType
        self.dims = dims
        self.elementCount = count
        self.dataByteCount = count * elementType.size
    }

    /// Parses and validates the header at the start of `bytes`.
    ///
    /// `bytes` may hold the whole file or just the header; checks go in the order of the
    /// bytes (magic, type, rank, sizes) so the error names the first thing wrong.
    public static func parse(_ bytes: UnsafeRawBufferPointer, path: String) throws -> IDXHeader {
        let count = bytes.count
        if count == 0 { throw IDXError.emptyFile(path: path) }
        let b = bytes.bindMemory(to: UInt8.self)
        if b[0] != 0 || (count > 1 && b[1] != 0) {
            throw IDXError.wrongMagic(path: path, found: Array(b.prefix(4)))
        }
        if count < 3 { throw IDXError.truncatedHeader(path: path, expectedBytes: 4, foundBytes: count) }
        guard let type = IDXElementType(rawValue: b[2]) else {
            throw IDXError.unknownTypeCode(path: path, found: b[2])
        }
        if count < 4 { throw IDXError.truncatedHeader(path: path, expectedBytes: 4, foundBytes: count) }
        let rank = Int(b[3])
        if rank == 0 { throw IDXError.rankZero(path: path) }
        if rank > maximumRank { throw IDXError.rankTooLarge(path: path, rank: rank, maximum: maximumRank) }
        let headerSize = 4 + 4 * rank
        if count < headerSize {
            throw IDXError.truncatedHeader(path: path, expectedBytes: headerSize, foundBytes: count)
        }
        var dims: [Int] = []
        dims.reserveCapacity(rank)
        for i in 0..<rank {
            let raw = bytes.baseAddress!.loadUnaligned(fromByteOffset: 4 + 4 * i, as: UInt32.self)
            dims.append(Int(UInt32(bigEndian: raw)))
        }
        return try IDXHeader(validatedType: type, dims: dims, path: path)
    }

    /// Parses and validates the header at the start of `bytes`.
    public static func parse(_ bytes: [UInt8], path: String) throws -> IDXHeader {
        try bytes.withUnsafeBytes { try parse($0, path: path) }
    }

    /// The header's bytes as they are stored: the magic number, then the big-endian sizes.
    public func encoded() -> [UInt8] {
        var out: [UInt8] = [0, 0, elementType.rawValue, UInt8(dims.count)]
        for d in dims {
            let v = UInt32(d)
            out += [UInt8(v >> 24), UInt8((v >> 16) & 0xff), UInt8((v >> 8) & 0xff), UInt8(v & 0xff)]
        }
        return out
    }

    /// Checks that `foundBytes` of data follow the header, naming both counts if not.
    func checkDataSize(_ foundBytes: Int, path: String) throws {
        if foundBytes < dataByteCount {
            throw IDXError.truncated(path: path, dims: dims, type: elementType,
                                     expectedBytes: dataByteCount, foundBytes: foundBytes)
        }
        if foundBytes > dataByteCount {
            throw IDXError.trailingBytes(path: path, dims: dims, type: elementType,
                                         expectedBytes: dataByteCount, foundBytes: foundBytes)
        }
    }
}
