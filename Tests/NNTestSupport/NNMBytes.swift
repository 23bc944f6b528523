import NNCompression
import NNCore
import NNFormat

/// `.nnm` bytes assembled by hand from parts, straight from the spec (Schemas/nnm-v1.md), so
/// tests can craft valid files independently of the writer and break any field of them.
public struct NNMBytes: Sendable {
    public var major: UInt16 = 1
    public var minor: UInt16 = 0
    public var flags: UInt32 = 0
    public var header: [UInt8]
    public var data: [UInt8]
    /// Values written instead of the true header length, data offset and data length.
    public var headerLength: UInt64?
    public var dataOffset: UInt64?
    public var dataLength: UInt64?
    public var fixPreambleCRC = true
    public var fixHeaderCRC = true

    public init(header: [UInt8], data: [UInt8]) {
        self.header = header
        self.data = data
    }

    public init(header: String, data: [UInt8]) {
        self.init(header: Array(header.utf8), data: data)
    }

    public init(header: JSONObject, data: [UInt8]) {
        self.init(header: Array(JSONValue.object(header).serialized(indent: 1).utf8), data: data)
    }

    /// Where the data section starts for this header.
    public var alignedDataOffset: Int { (48 + header.count + 63) / 64 * 64 }

    public func bytes() -> [UInt8] {
        var out = NNMFormat.magic
        func le<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
        le(major)
        le(minor)
        le(flags)
        le(headerLength ?? UInt64(header.count))
        le(dataOffset ?? UInt64(alignedDataOffset))
        le(dataLength ?? UInt64(data.count))
        le(fixHeaderCRC ? CRC32.checksum(header) : 0)
        le(fixPreambleCRC ? CRC32.checksum(out) : 0)
        out += header
        out += [UInt8](repeating: 0, count: alignedDataOffset - out.count)
        out += data
        return out
    }
}
