import NNCore
import NNEngine
import Testing

/// The int8 and bf16 batch kernels (NNKernels/LowPrecisionGEMM.c) against references computed
/// here, on the odd shapes of `MatrixKernelTests` (1, 3, 17, 255 and 1023 rows; depths and widths
/// that are not multiples of the vector widths, 2 or 4). Every kernel this CPU runs is tested by
/// name, so an AVX-512 machine tests the AVX2 int8 kernel too; the portable ones run everywhere.
@Suite struct LowPrecisionKernelTests {
    /// Plus a row of 3,001 depths on two threads: its packed rows outgrow the one-row stack
    /// buffer (32 KB), so the helper and the caller pack into allocated memory.
    static let shapes = MatrixKernelTests.shapes + [(m: 12, k: 4, n: 32), (m: 7, k: 5, n: 1), (m: 1, k: 3001, n: 40)]

    /// Deterministic integers in `range`, from a formula rather than a generator under test.
    static func integers(_ count: Int, seed: Int, _ range: ClosedRange<Int>) -> [Int] {
        let width = range.upperBound - range.lowerBound + 1
        return (0..<count).map { i in range.lowerBound + Int((UInt64(i &* 2_654_435_761 &+ seed &* 40_503) >> 3) % UInt64(width)) }
    }

    /// int8: the int32 sums of u8 rows times an int8 matrix must equal the exact products, at
    /// the extremes too (rows of the largest activation, 255 or for 7-bit weights 127, times
    /// `extreme(p, j)` for depth p of column j, by default columns of -127 and of 127, the
    /// largest sums, on the first shape of each run); the other shapes' weights are drawn from
    /// `weights`, their activations from 0 to the largest. With `extremeRuns`, the extreme
    /// matrix's packing must have chosen that kernel.
    static func checkIntegerSums(_ kernel: Int8Kernel, threads: Int, weights: ClosedRange<Int> = -127...127,
                                 extreme: (Int, Int) -> Int = { _, j in j % 2 == 0 ? -127 : 127 }, extremeRuns: Int8Kernel? = nil) {
        for (index, shape) in shapes.enumerated() {
            let (m, k, n) = shape
            let extremes = index == 0
            let b = extremes ? (0..<(k * n)).map { extreme($0 / n, $0 % n) } : integers(k * n, seed: 50 + index, weights)
            guard let packed = PackedInt8Matrix(b.map { Int8($0) }, scales: [Float](repeating: 1, count: n), rows: k, columns: n, kernel: kernel) else {
                Issue.record("\(kernel.rawValue): packing failed")
                return
            }
            if extremes, let extremeRuns, packed.kernel != extremeRuns {
                Issue.record("\(kernel.rawValue), m \(m) k \(k) n \(n): packed for \(packed.kernel.rawValue), not \(extremeRuns.rawValue)")
                return
            }
            let top = packed.activationBits == 7 ? 127 : 255
            let a = extremes ? [Int](repeating: top, count: m * k) : integers(m * k, seed: index, 0...top)
            var c = [Int32](repeating: -1, count: m * n)
            let a8 = a.map { UInt8($0) }
            let done = a8.withUnsafeBufferPointer { pa in
                c.withUnsafeMutableBufferPointer { packed.integerProduct(pa.baseAddress!, m: m, into: $0.baseAddress!, threads: threads) }
            }
            #expect(done)
            for i in 0..<m {
                for j in 0..<n {
                    var exact = 0
                    for p in 0..<k { exact += a[i * k + p] * b[p * n + j] }
                    if Int(c[i * n + j]) != exact {
                        Issue.record("\(kernel.rawValue), \(threads) thread(s), m \(m) k \(k) n \(n): c[\(i)][\(j)] = \(c[i * n + j]), exact \(exact)")
                        return
                    }
                }
            }
        }
    }

    /// int8 end to end: f32 rows quantized per row, dequantized, bias and ReLU, against the f32
    /// product of the rows and the dequantized weight. The bound is the activation rounding:
    /// each value moves by at most half its row's step s = (max(x, 0) - min(x, 0)) / 255 (/ 127
    /// with 7-bit weights, whose activations get 7 bits; computed here), so |c - exact| <= s / 2 * sum_p |w_pj| (+ f32
    /// rounding, 1e-5 relative).
    static func checkDequantized(_ kernel: Int8Kernel, threads: Int, weights: ClosedRange<Int> = -127...127) {
        for (index, shape) in shapes.enumerated() {
            let (m, k, n) = shape
            let a = MatrixKernelTests.values(m * k, seed: index).map { $0 * 3 }
            let q = integers(k * n, seed: 70 + index, weights)
            let scales = (0..<n).map { Float(1 + $0 % 7) / 500 }
            let bias = MatrixKernelTests.values(n, seed: 300 + index)
            guard let packed = PackedInt8Matrix(q.map { Int8($0) }, scales: scales, rows: k, columns: n, kernel: kernel) else {
                Issue.record("\(kernel.rawValue): packing failed")
                return
            }
            for relu in [false, true] {
                var c = [Float](repeating: .nan, count: m * n)
                let done = a.withUnsafeBufferPointer { pa in
                    bias.withUnsafeBufferPointer { pb in
                        c.withUnsafeMutableBufferPointer {
                            packed.multiply(pa.baseAddress!, m: m, bias: pb.baseAddress!, relu: relu, into: $0.baseAddress!, threads: threads)
                        }
                    }
                }
                #expect(done)
                for i in 0..<m {
                    let row = a[(i * k)..<(i * k + k)]
                    let step = Double(max(row.max()!, 0) - min(row.min()!, 0)) / (packed.activationBits == 7 ? 127 : 255)
                    for j in 0..<n {
                        var exact = Double(bias[j]), weights = 0.0, magnitude = abs(Double(bias[j]))
                        for p in 0..<k {
                            let w = Double(q[p * n + j]) * Double(scales[j])
                            exact += Double(a[i * k + p]) * w
                            weights += abs(w)
                            magnitude += abs(Double(a[i * k + p]) * w)
                        }
                        if relu { exact = max(exact, 0) }
                        let bound = step / 2 * weights * 1.0001 + 1e-5 * magnitude + 1e-6
                        if !(abs(Double(c[i * n + j]) - exact) <= bound) {
                            Issue.record("\(kernel.rawValue), \(threads) thread(s), m \(m) k \(k) n \(n), relu \(relu): c[\(i)][\(j)] = \(c[i * n + j]), exact \(exact), bound \(bound)")
                            return
                        }
                    }
                }
            }
        }
    }

    /// int8 with a calibrated input quantization (format 1.4): every value becomes
    /// clamp(round(x / s) + z, 0, 255) with the given s and z, whatever its row holds. Reference:
    /// the product of the rows clipped to the calibrated range [-z s, (255 - z) s] (about a third of
    /// the values fall outside it) and the dequantized weight, within s / 2 * sum_p |w_pj|. Fails
    /// when the kernel ignores the zero point or measures the rows instead.
    static func checkCalibrated(_ kernel: Int8Kernel, threads: Int, weights: ClosedRange<Int> = -127...127) {
        let input = InputQuantization(range: -1.5, 2)  // scale 3.5 / 255, zero point 109
        let step = Double(input.scale), low = -Double(input.zeroPoint) * step, high = Double(255 - input.zeroPoint) * step
        for (index, shape) in shapes.enumerated() {
            let (m, k, n) = shape
            let a = MatrixKernelTests.values(m * k, seed: index).map { $0 * 3 }
            let q = integers(k * n, seed: 90 + index, weights)
            let scales = (0..<n).map { Float(1 + $0 % 5) / 300 }
            guard let packed = PackedInt8Matrix(q.map { Int8($0) }, scales: scales, rows: k, columns: n, kernel: kernel, input: input) else {
                Issue.record("\(kernel.rawValue): packing failed")
                return
            }
            var c = [Float](repeating: .nan, count: m * n)
            let done = a.withUnsafeBufferPointer { pa in
                c.withUnsafeMutableBufferPointer { packed.multiply(pa.baseAddress!, m: m, bias: nil, relu: false, into: $0.baseAddress!, threads: threads) }
            }
            #expect(done)
            for i in 0..<m {
                for j in 0..<n {
                    var exact = 0.0, weights = 0.0
                    for p in 0..<k {
                        let w = Double(q[p * n + j]) * Double(scales[j])
                        exact += min(max(Double(a[i * k + p]), low), high) * w
                        weights += abs(w)
                    }
                    let bound = step / 2 * weights * 1.0001 + 1e-5 * weights * 3 + 1e-6
                    if !(abs(Double(c[i * n + j]) - exact) <= bound) {
                        Issue.record("\(kernel.rawValue) calibrated, \(threads) thread(s), m \(m) k \(k) n \(n): c[\(i)][\(j)] = \(c[i * n + j]), exact \(exact), bound \(bound)")
                        return
                    }
                }
            }
        }
    }

    /// bf16: the product of the bf16-rounded rows and weight (rounded here, to nearest even) in
    /// Double, within the f32 summation bound gamma(k + 2) * sum |a b| (the products are exact).
    static func checkBFloat16(_ kernel: BFloat16Kernel, threads: Int) {
        func rounded(_ x: Float) -> Double {
            let bits = x.bitPattern, lower = bits & 0xFFFF, upper = bits & 0xFFFF_0000
            let up = lower > 0x8000 || (lower == 0x8000 && (upper >> 16) & 1 == 1)
            return Double(Float(bitPattern: up ? upper &+ 0x1_0000 : upper))
        }
        for (index, shape) in shapes.enumerated() {
            let (m, k, n) = shape
            let a = MatrixKernelTests.values(m * k, seed: index), b = MatrixKernelTests.values(k * n, seed: 100 + index)
            let bias = MatrixKernelTests.values(n, seed: 200 + index)
            let packed = b.withUnsafeBufferPointer { PackedBFloat16Matrix($0.baseAddress!, rows: k, columns: n, kernel: kernel)! }
            var c = [Float](repeating: .nan, count: m * n)
            let done = a.withUnsafeBufferPointer { pa in
                bias.withUnsafeBufferPointer { pb in
                    c.withUnsafeMutableBufferPointer {
                        packed.multiply(pa.baseAddress!, m: m, bias: pb.baseAddress!, relu: true, into: $0.baseAddress!, threads: threads)
                    }
                }
            }
            #expect(done)
            let u = 1.0 / Double(1 << 24), gamma = Double(k + 2) * u / (1 - Double(k + 2) * u)
            for i in 0..<m {
                for j in 0..<n {
                    var exact = Double(bias[j]), magnitude = abs(Double(bias[j]))
                    for p in 0..<k {
                        let t = rounded(a[i * k + p]) * rounded(b[p * n + j])
                        exact += t
                        magnitude += abs(t)
                    }
                    exact = max(exact, 0)
                    if !(abs(Double(c[i * n + j]) - exact) <= gamma * magnitude) {
                        Issue.record("\(kernel.rawValue), \(threads) thread(s), m \(m) k \(k) n \(n): c[\(i)][\(j)] = \(c[i * n + j]), exact \(exact)")
                        return
                    }
                }
            }
        }
    }

    @Test(arguments: Int8Kernel.allCases.filter(\.isSupported))
    func int8IntegerSumsAreExact(_ kernel: Int8Kernel) throws {
        Self.checkIntegerSums(kernel, threads: 1)
        Self.checkIntegerSums(kernel, threads: 2)
    }

    /// AVX2's byte kernel (`vpmaddubsw`, int16 pair sums that saturate) runs only on weights
    /// whose pairs of depths have |w0| + |w1| <= 128: exact on 7-bit weights and at that edge
    /// (255 x (127 + 1), 255 x (64 + 64), 255 x -(64 + 64) = +-32,640); a matrix with one pair at
    /// 129 (255 x 129 = 32,895 would saturate) is packed for the pairs kernel instead, still exact.
    /// On 7-bit weights (-63...63) with 7-bit activations it adds two steps' pair sums in int16:
    /// exact at that edge too (127 x 63 x 4 = +-32,004 per lane), on every shape (odd numbers of
    /// steps among them).
    @Test(.enabled(if: Int8Kernel.avx2Maddubs.isSupported))
    func avx2ByteKernelOnlyWhereExact() throws {
        for (index, (_, k, n)) in Self.shapes.enumerated() {
            let q = Self.integers(k * n, seed: 50 + index, -63...63).map { Int8($0) }
            let packed = try #require(PackedInt8Matrix(q, scales: [Float](repeating: 1, count: n), rows: k, columns: n, kernel: .avx2))
            #expect(packed.kernel == .avx2Maddubs, "k \(k) n \(n)")
        }
        for threads in [1, 2] {
            Self.checkIntegerSums(.avx2, threads: threads, weights: -63...63, extreme: { p, _ in p % 2 == 0 ? 127 : 1 }, extremeRuns: .avx2Maddubs)
            Self.checkIntegerSums(.avx2, threads: threads, weights: -63...63, extreme: { p, j in (p / 2 + j) % 2 == 0 ? 64 : -64 },
                                  extremeRuns: .avx2Maddubs)
            Self.checkIntegerSums(.avx2Maddubs, threads: threads, extreme: { p, _ in p % 2 == 0 ? 127 : 2 }, extremeRuns: .avx2)
            Self.checkIntegerSums(.avx2Maddubs, threads: threads, extreme: { p, j in p == 0 && j == 0 ? -65 : -64 }, extremeRuns: .avx2)
            Self.checkIntegerSums(.avx2, threads: threads, weights: -63...63, extreme: { _, j in j % 2 == 0 ? 63 : -63 }, extremeRuns: .avx2Maddubs)
        }
        Self.checkDequantized(.avx2, threads: 2, weights: -63...63)
        Self.checkCalibrated(.avx2, threads: 2, weights: -63...63)
    }

    @Test(arguments: Int8Kernel.allCases.filter(\.isSupported))
    func int8DequantizedProducts(_ kernel: Int8Kernel) throws {
        Self.checkDequantized(kernel, threads: 2)
    }

    @Test(arguments: Int8Kernel.allCases.filter(\.isSupported))
    func int8CalibratedInputs(_ kernel: Int8Kernel) throws {
        Self.checkCalibrated(kernel, threads: 1)
        Self.checkCalibrated(kernel, threads: 2)
    }

    @Test(arguments: BFloat16Kernel.allCases.filter(\.isSupported))
    func bfloat16Products(_ kernel: BFloat16Kernel) throws {
        Self.checkBFloat16(kernel, threads: 1)
        Self.checkBFloat16(kernel, threads: 2)
    }

    /// Every int8 kernel gives the portable kernel's outputs to the bit: the same bytes for the
    /// rows, exact int32 sums, and an epilogue (AVX-512, AVX2 or portable) of the same operations
    /// in the same order. Per row and calibrated, with and without ReLU, on odd shapes; on 8-bit
    /// and on 7-bit weights (which AVX2 runs on its byte kernel).
    @Test(arguments: Int8Kernel.allCases.filter { $0 != .scalar && $0.isSupported }, [-127...127, -63...63])
    func int8KernelsMatchThePortableOne(_ kernel: Int8Kernel, weights: ClosedRange<Int>) throws {
        for (index, shape) in Self.shapes.enumerated() {
            let (m, k, n) = shape
            let a = MatrixKernelTests.values(m * k, seed: index).map { $0 * 3 }
            let q = Self.integers(k * n, seed: 70 + index, weights).map { Int8($0) }
            let scales = (0..<n).map { Float(1 + $0 % 7) / 500 }
            let bias = MatrixKernelTests.values(n, seed: 300 + index)
            for input in [nil, InputQuantization(scale: 0.02, zeroPoint: 100)] {
                let matrices = [Int8Kernel.scalar, kernel].map {
                    PackedInt8Matrix(q, scales: scales, rows: k, columns: n, kernel: $0, input: input)
                }
                guard let portable = matrices[0], let vector = matrices[1] else {
                    Issue.record("\(kernel.rawValue): packing failed")
                    return
                }
                for relu in [false, true] {
                    let outputs = [portable, vector].map { packed in
                        var c = [Float](repeating: .nan, count: m * n)
                        _ = a.withUnsafeBufferPointer { pa in
                            bias.withUnsafeBufferPointer { pb in
                                c.withUnsafeMutableBufferPointer {
                                    packed.multiply(pa.baseAddress!, m: m, bias: pb.baseAddress!, relu: relu, into: $0.baseAddress!, threads: 1)
                                }
                            }
                        }
                        return c.map(\.bitPattern)
                    }
                    if let i = outputs[0].indices.first(where: { outputs[0][$0] != outputs[1][$0] }) {
                        let (ours, portable) = (Float(bitPattern: outputs[1][i]), Float(bitPattern: outputs[0][i]))
                        Issue.record("\(kernel.rawValue), m \(m) k \(k) n \(n), calibrated \(input != nil), relu \(relu): c[\(i / n)][\(i % n)] = \(ours), portable \(portable)")
                        return
                    }
                }
            }
        }
    }

    /// The per-row quantization of every kernel (each quantizes on its own vector width: 16, 8,
    /// or portable C): zero maps to the zero point exactly, the range's ends to 0 and 255, values
    /// round to nearest (1.7 steps -> 2, -1.6 -> -2), NaN and -inf to 0, +inf to 255; values
    /// computed by hand. The 12 values repeated to lengths around one and two vectors of 8 and
    /// of 16 and the AVX-512 form's blocks of 64 (the range, so the bytes, stay those of the
    /// 12), with the range's ends in the tail.
    @Test(arguments: Int8Kernel.allCases.filter(\.isSupported))
    func rowQuantization(_ kernel: Int8Kernel) {
        let values: [Float] = [0.5, 0, 0.5, 0.5, .nan, 0.017, -0.016, 0.026, 0.5, .infinity, -.infinity, 0.004]
        let bytes: [UInt8] = [150, 100, 150, 150, 0, 102, 98, 103, 150, 255, 0, 100]
        for length in [12, 15, 16, 17, 31, 32, 33, 40, 63, 64, 65, 129, 200] {
            // The row's ends, -1 and 1.55, go last: a vector's masked tail must still count them.
            let row = (0..<length - 2).map { values[$0 % 12] } + [-1, 1.55]
            let (q, scale, zero) = PackedInt8Matrix.quantizeRow(row, kernel: kernel)
            #expect(abs(scale - 2.55 / 255) < 1e-7, "\(kernel) length \(length)")
            #expect(zero == 100, "\(kernel) length \(length)")  // round(1 / 0.01)
            #expect(q == (0..<length - 2).map { bytes[$0 % 12] } + [0, 255], "\(kernel) length \(length)")
        }
        let (q2, _, zero2) = PackedInt8Matrix.quantizeRow([0, 0, 0], kernel: kernel)
        #expect(q2 == [0, 0, 0] && zero2 == 0)
    }

    /// 7-bit activations for the layers whose weights all lie in -63...63, quantized per row:
    /// [-1, 1.55] onto 0...127, scale 2.55 / 127, zero point round(127 / 2.55) = 50, each value
    /// round(x * 127 / 2.55) + 50 (0.5 -> 24.9 -> 75, 0.017 -> 0.85 -> 51, -0.016 -> -0.80 -> 49,
    /// 0.026 -> 1.29 -> 51, 0.004 -> 0.2 -> 50, +inf -> 127), computed by hand; one weight at 64
    /// or -64, or a calibrated input, keeps 8 bits.
    @Test(arguments: Int8Kernel.allCases.filter(\.isSupported))
    func sevenBitActivations(_ kernel: Int8Kernel) throws {
        let values: [Float] = [0.5, 0, 0.5, 0.5, .nan, 0.017, -0.016, 0.026, 0.5, .infinity, -.infinity, 0.004]
        let bytes: [UInt8] = [75, 50, 75, 75, 0, 51, 49, 51, 75, 127, 0, 50]
        for length in [12, 17, 33, 65, 200] {
            let row = (0..<length - 2).map { values[$0 % 12] } + [-1, 1.55]
            let (q, scale, zero) = PackedInt8Matrix.quantizeRow(row, kernel: kernel, bits: 7)
            #expect(abs(scale - 2.55 / 127) < 1e-7 && zero == 50, "\(kernel) length \(length)")
            #expect(q == (0..<length - 2).map { bytes[$0 % 12] } + [0, 127], "\(kernel) length \(length)")
        }
        let sevenBit = Self.integers(64 * 10, seed: 3, -63...63).map { Int8($0) }
        let bits = { (values: [Int8], input: InputQuantization?) in
            try #require(PackedInt8Matrix(values, scales: [Float](repeating: 1, count: 10), rows: 64, columns: 10, kernel: kernel, input: input)).activationBits
        }
        #expect(try bits(sevenBit, nil) == 7)
        #expect(try bits(sevenBit, InputQuantization(scale: 0.02, zeroPoint: 100)) == 8)
        for outlier: Int8 in [64, -64] {
            var values = sevenBit
            values[333] = outlier
            #expect(try bits(values, nil) == 8)
        }
    }

    /// The int8 and bf16 kernels follow the f32 kernel family (so NNM_KERNELS chooses all three).
    @Test func engineChoosesTheMatchingKernels() throws {
        #expect(Int8Kernel.matching(.openblas) == nil)
        #expect(Int8Kernel.matching(.scalar) == .scalar)
        if MatrixKernel.avx2.isSupported {
            #expect(Int8Kernel.matching(.avx2) == (Int8Kernel.avxVNNI.isSupported ? .avxVNNI : .avx2))
        }
        #expect(BFloat16Kernel.matching(.avx2) == nil)
        if BFloat16Kernel.avx512.isSupported {
            #expect(BFloat16Kernel.matching(.avx512) == (BFloat16Kernel.amx.isSupported ? .amx : .avx512))
        }
    }
}
