import NNCore
import NNEngine
import Testing

/// The direct int8 convolutions of one input channel (`PackedInt8Convolution`, `nn_i8_conv`:
/// AVX512-VNNI, AVX2 on bytes for 7-bit weights and on int16 pairs for others) against a reference computed here: each sample quantized by the formula of
/// `nn_i8_quantize_row` written out again (range [min(x, 0), max(x, 0)] onto 0...255, round to
/// nearest even), the padding as the zero point, the int32 sums of the windows exact, then
/// dequantized in Double with the bias and ReLU; with a pool, the maxima of its windows over
/// those outputs. Shapes: the cnn preset (28 x 28, 3 x 3, 8 filters, 2 x 2 pooling in
/// registers), "same" padding on odd sizes, a 5 x 5 window (two quads a row) with 3 filters, 16
/// filters (one pixel a vector; pooling after the sample), a 1 x 8 window with 9 filters, and 5
/// filters pooled from an odd output width (AVX2: the cases of at most 8 filters; on bytes weights
/// in -63...63 with a column pair at 64 + 64 = 128, the most `vpmaddubsw` takes; on pairs weights
/// in -127...127 with a column pair at 127 + 127, which it would saturate on). Tolerance: the f32 rounding of the dequantization,
/// 1e-5 relative to the largest term.
@Suite struct Int8ConvolutionTests {
    struct Case: CustomStringConvertible {
        let h, w, kh, kw, filters: Int
        let padding: Padding
        let pooled: Bool
        var description: String { "\(h)x\(w), \(kh)x\(kw) window, \(filters) filters, \(padding)\(pooled ? ", pooled" : "")" }
    }

    static let cases = [
        Case(h: 28, w: 28, kh: 3, kw: 3, filters: 8, padding: .valid, pooled: true),
        Case(h: 9, w: 11, kh: 3, kw: 3, filters: 8, padding: .same, pooled: false),
        Case(h: 7, w: 13, kh: 5, kw: 5, filters: 3, padding: .valid, pooled: false),
        Case(h: 6, w: 10, kh: 2, kw: 2, filters: 16, padding: .valid, pooled: true),
        Case(h: 5, w: 9, kh: 1, kw: 8, filters: 9, padding: .same, pooled: false),
        Case(h: 11, w: 11, kh: 3, kw: 3, filters: 5, padding: .same, pooled: true),
    ]

    /// The quantization of one sample, as the kernels' formula says.
    static func quantize(_ x: [Float]) -> (q: [Int], scale: Float, zero: Int) {
        let lo = min(x.min()!, 0), hi = max(x.max()!, 0)
        var s = (hi - lo) / 255
        if !(s > 0) { s = 1 }
        let zero = min(max((-lo / s).rounded(.toNearestOrEven), 0), 255)
        let inverse = 1 / s
        let q = x.map { Int(min(max(($0 * inverse).rounded(.toNearestOrEven) + zero, 0), 255)) }
        return (q, s, Int(zero))
    }

    @Test(arguments: cases, [Int8Kernel.vnni, .avx2Maddubs, .avx2])
    func matchesTheReference(_ c: Case, kernel: Int8Kernel) throws {
        guard kernel.isSupported, kernel == .vnni || c.filters <= 8 else { return }
        for threads in [1, 2] { try Self.check(c, kernel: kernel, threads: threads) }
    }

    static func check(_ c: Case, kernel: Int8Kernel, threads: Int) throws {
        let conv = try Layer.conv2d(index: 0, inputShape: [c.h, c.w, 1], filters: c.filters, kernel: [c.kh, c.kw], padding: c.padding,
                                    activation: .relu).spatial!
        let (oh, ow) = (conv.outputShape[0], conv.outputShape[1])
        let pool = c.pooled ? try Layer.maxPool2d(index: 1, inputShape: conv.outputShape, pool: [2, 2]).spatial! : nil
        var weights = LowPrecisionKernelTests.integers(c.kh * c.kw * c.filters, seed: c.h * 31 + c.kw, kernel == .avx2Maddubs ? -63...63 : -127...127)
        if kernel == .avx2Maddubs && c.kw >= 2 { (weights[0], weights[c.filters]) = (64, -64) }  // filter 0's first pair of columns
        if kernel == .avx2 { (weights[0], weights[c.kw >= 2 ? c.filters : 0]) = (127, 127) }  // past what vpmaddubsw takes
        let scales = (0..<c.filters).map { Float(1 + $0 % 5) / 300 }
        let bias = MatrixKernelTests.values(c.filters, seed: 7).map { $0 * 0.5 }
        let count = 3
        let samples = MatrixKernelTests.values(count * c.h * c.w, seed: c.filters).map { $0 * 2 - 0.3 }
        let packed = try #require(PackedInt8Convolution(weights.map { Int8($0) }, scales: scales, geometry: conv,
                                                        family: kernel == .vnni ? .vnni : .avx2))
        #expect(packed.kernel == kernel)
        let outSize = pool.map { $0.outputShape.reduce(1, *) } ?? oh * ow * c.filters
        var out = [Float](repeating: .nan, count: count * outSize)
        let done = samples.withUnsafeBufferPointer { x in
            bias.withUnsafeBufferPointer { b in
                out.withUnsafeMutableBufferPointer {
                    packed.convolve(x.baseAddress!, count: count, geometry: conv, bias: b.baseAddress, relu: true, pool: pool,
                                    into: $0.baseAddress!, threads: threads)
                }
            }
        }
        #expect(done)
        let (top, left) = conv.paddingBefore
        for n in 0..<count {
            let (q, s, zero) = Self.quantize(Array(samples[(n * c.h * c.w)..<((n + 1) * c.h * c.w)]))
            // Reference outputs [oh][ow][filters] and each one's tolerance.
            var reference = [Double](repeating: 0, count: oh * ow * c.filters), tolerance = reference
            for oy in 0..<oh {
                for ox in 0..<ow {
                    for f in 0..<c.filters {
                        var sum = 0, weightSum = 0
                        for u in 0..<c.kh {
                            for v in 0..<c.kw {
                                let iy = oy + u - top, ix = ox + v - left
                                let value = iy >= 0 && iy < c.h && ix >= 0 && ix < c.w ? q[iy * c.w + ix] : zero
                                let weight = weights[(u * c.kw + v) * c.filters + f]
                                sum += value * weight
                                weightSum += weight
                            }
                        }
                        let term = Double(s) * Double(scales[f]) * Double(sum - zero * weightSum)
                        let index = (oy * ow + ox) * c.filters + f
                        reference[index] = max(term + Double(bias[f]), 0)
                        tolerance[index] = 1e-5 * max(abs(term), abs(Double(bias[f])), 1e-3)
                    }
                }
            }
            let got = Array(out[(n * outSize)..<((n + 1) * outSize)])
            if let pool {
                let (ph, pw) = (pool.outputShape[0], pool.outputShape[1])
                for py in 0..<ph {
                    for px in 0..<pw {
                        for f in 0..<c.filters {
                            let cells = [(0, 0), (0, 1), (1, 0), (1, 1)].map { ((2 * py + $0.0) * ow + 2 * px + $0.1) * c.filters + f }
                            let expected = cells.map { reference[$0] }.max()!, bound = cells.map { tolerance[$0] }.max()!
                            let value = Double(got[(py * pw + px) * c.filters + f])
                            #expect(abs(value - expected) <= bound, "\(c), sample \(n), pooled (\(py), \(px)) filter \(f): \(value) vs \(expected)")
                            if abs(value - expected) > bound { return }
                        }
                    }
                }
            } else {
                for index in 0..<reference.count where !(abs(Double(got[index]) - reference[index]) <= tolerance[index]) {
                    Issue.record("\(c), sample \(n), output \(index): \(got[index]) vs \(reference[index])")
                    return
                }
            }
        }
    }

    /// Shapes the direct kernels do not take are left to the other paths, and so are, on AVX2,
    /// more than 8 filters; weights `vpmaddubsw` would saturate on (a pair of columns at 65 + 64)
    /// go to AVX2's pairs form.
    @Test(arguments: [Int8Kernel.vnni, .avx2])
    func declinesOtherShapes(_ family: Int8Kernel) throws {
        guard family.isSupported else { return }
        let strided = try Layer.conv2d(index: 0, inputShape: [8, 8, 1], filters: 4, kernel: [3, 3], strides: [2, 2], activation: .relu).spatial!
        let channels = try Layer.conv2d(index: 0, inputShape: [8, 8, 2], filters: 4, kernel: [3, 3], activation: .relu).spatial!
        let wide = try Layer.conv2d(index: 0, inputShape: [8, 12, 1], filters: 4, kernel: [3, 9], activation: .relu).spatial!
        let many = try Layer.conv2d(index: 0, inputShape: [8, 8, 1], filters: family == .vnni ? 17 : 9, kernel: [3, 3], activation: .relu).spatial!
        for g in [strided, channels, wide, many] {
            let values = [Int8](repeating: 1, count: g.window[0] * g.window[1] * g.inputShape[2] * g.outputShape[2])
            #expect(PackedInt8Convolution(values, scales: [Float](repeating: 1, count: g.outputShape[2]), geometry: g, family: family) == nil)
        }
        let preset = try Layer.conv2d(index: 0, inputShape: [28, 28, 1], filters: 8, kernel: [3, 3], activation: .relu).spatial!
        var values = [Int8](repeating: 64, count: 72)
        #expect(PackedInt8Convolution(values, scales: [Float](repeating: 1, count: 8), geometry: preset, family: family)?.kernel
                == (family == .vnni ? .vnni : .avx2Maddubs))
        values[8] = 65  // column 1 of filter 0's first row: its pair with column 0 is 129
        #expect(PackedInt8Convolution(values, scales: [Float](repeating: 1, count: 8), geometry: preset, family: family)?.kernel
                == (family == .vnni ? .vnni : .avx2))
    }
}
