import NNData
import Testing

@Suite struct IDXDecodeTests {
    /// u8 to f32 runs on our C's vectors (16 or 8 a step, then a scalar tail): every byte value,
    /// every length around the vector widths and starts that are not aligned give the float of
    /// the byte times the scale, rounded once, as Swift's own loop computes it.
    @Test func bytesWidenToTheirScaledFloats() {
        let bytes = (0..<600).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ $0 / 256) }
        #expect(Set(bytes).count == 256)
        for scale: Float in [1 / 255, 1, 0.5, -3.25, .infinity] {
            for offset in [0, 1, 7] {
                for count in [0, 1, 7, 8, 9, 15, 16, 17, 31, 33, 255, 256 + 257] {
                    var out = [Float](repeating: .nan, count: count + 1)
                    bytes.withUnsafeBytes { raw in
                        decodeReals(raw.baseAddress! + offset, type: .u8, count: count, scale: scale, into: &out)
                    }
                    let expected = bytes[offset..<(offset + count)].map { Float($0) * scale }
                    #expect(out.prefix(count).elementsEqual(expected) { $0 == $1 || ($0.isNaN && $1.isNaN) },
                            "scale \(scale), offset \(offset), count \(count)")
                    #expect(out[count].isNaN, "wrote past \(count) values")
                }
            }
        }
    }
}
