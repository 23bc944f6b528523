internal import CZlib
internal import NNKernels

/// CRC-32 (ISO-HDLC, the one zlib, gzip, zip and PNG use; Python's `zlib.crc32`).
public struct CRC32: Sendable {
    public private(set) var value: UInt32 = 0

    public init() {}

    /// Feeds bytes into the running checksum.
    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard var base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return }
        var remaining = bytes.count
        var crc = UInt(value)
        // With PCLMULQDQ, the bulk is folded by carry-less multiplication (about 3x zlib's tables
        // here) into a 64-byte block that zlib finishes, as the remainder is the same.
        var block = (UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        let folded = withUnsafeMutableBytes(of: &block) { b in
            nn_crc32_fold(UInt32(truncatingIfNeeded: crc), base, remaining, b.baseAddress!.assumingMemoryBound(to: UInt8.self))
        }
        if folded > 0 {
            crc = withUnsafeBytes(of: &block) { b in crc32(0xFFFF_FFFF, b.baseAddress!.assumingMemoryBound(to: UInt8.self), 64) }
            base += folded
            remaining -= folded
        }
        // zlib takes a 32-bit length; feed large buffers in chunks.
        while remaining > 0 {
            let n = min(remaining, 1 << 30)
            crc = crc32(crc, base, uInt(n))
            base += n
            remaining -= n
        }
        value = UInt32(truncatingIfNeeded: crc)
    }

    /// The CRC-32 of `bytes`.
    public static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var c = CRC32()
        c.update(bytes)
        return c.value
    }

    /// The CRC-32 of `bytes`.
    public static func checksum(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0) }
    }
}
