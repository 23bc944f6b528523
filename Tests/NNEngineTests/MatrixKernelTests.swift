import NNCore
import NNEngine
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Our f32 GEMM kernels (NNKernels/GEMM.c) against a product computed here in Double, on odd
/// shapes: 1, 3, 17, 255 and 1023 rows (fewer than a tile, not a multiple of 6 or 12, more than
/// one block of rows), depths and widths that are not multiples of 8 or 16, with and without
/// bias and ReLU, on one and two threads. Every kernel this CPU runs is tested by name, so on an
/// AVX-512 machine the AVX2 kernel is tested too.
///
/// Tolerance: the standard bound for a sum of k products in f32, |c - exact| <= gamma(k + 2) *
/// (sum_p |a_ip b_pj| + |bias_j|), gamma(n) = n u / (1 - n u), u = 2^-24 (two more roundings for
/// the bias and the block sums). Any indexing or packing error is far outside it.
@Suite struct MatrixKernelTests {
    /// Deterministic values in [-1, 1], a few exactly zero.
    static func values(_ count: Int, seed: Int) -> [Float] {
        (0..<count).map { i in
            let x = sin(Double(i &* 7919 &+ seed &* 104_729) * 0.0137)
            return abs(x) < 0.01 ? 0 : Float(x)
        }
    }

    /// (rows, depth, columns) triples: every row count above, widths around the 16- and
    /// 32-column panels, depths around the kc blocks (192 and 256).
    static let shapes: [(m: Int, k: Int, n: Int)] = [
        (1, 3, 10), (1, 784, 256), (3, 1, 33), (3, 37, 17), (17, 100, 255), (17, 257, 31),
        (255, 193, 47), (255, 9, 8), (1023, 37, 129), (1023, 600, 10),
    ]

    /// Checks `kernel` on every shape; returns the largest error as a fraction of its bound.
    @discardableResult
    static func check(_ kernel: MatrixKernel, threads: Int) -> Double {
        var worst = 0.0
        for (index, shape) in shapes.enumerated() {
            let (m, k, n) = shape
            let a = values(m * k, seed: index), b = values(k * n, seed: 100 + index), bias = values(n, seed: 200 + index)
            for (useBias, relu) in [(false, false), (true, true), (true, false)] {
                let packed = b.withUnsafeBufferPointer { PackedMatrix($0.baseAddress!, rows: k, columns: n, kernel: kernel)! }
                var c = [Float](repeating: .nan, count: m * n)
                let done = a.withUnsafeBufferPointer { pa in
                    bias.withUnsafeBufferPointer { pb in
                        c.withUnsafeMutableBufferPointer { pc in
                            packed.multiply(pa.baseAddress!, m: m, bias: useBias ? pb.baseAddress! : nil, relu: relu,
                                            into: pc.baseAddress!, threads: threads)
                        }
                    }
                }
                #expect(done)
                let u = 1.0 / Double(1 << 24), gamma = Double(k + 2) * u / (1 - Double(k + 2) * u)
                for i in 0..<m {
                    for j in 0..<n {
                        var exact = useBias ? Double(bias[j]) : 0, magnitude = useBias ? abs(Double(bias[j])) : 0
                        for p in 0..<k {
                            let t = Double(a[i * k + p]) * Double(b[p * n + j])
                            exact += t
                            magnitude += abs(t)
                        }
                        if relu { exact = max(exact, 0) }
                        let error = abs(Double(c[i * n + j]) - exact), bound = gamma * magnitude
                        if !(error <= bound) {
                            Issue.record("\(kernel.rawValue), \(threads) thread(s), m \(m) k \(k) n \(n), bias \(useBias) relu \(relu): c[\(i)][\(j)] = \(c[i * n + j]), exact \(exact), error \(error) > bound \(bound)")
                            return .infinity
                        }
                        if bound > 0 { worst = max(worst, error / bound) }
                    }
                }
            }
        }
        return worst
    }

    @Test func portableKernel() {
        Self.check(.scalar, threads: 1)
        Self.check(.scalar, threads: 2)
    }

    @Test(.enabled(if: MatrixKernel.avx2.isSupported, "this CPU lacks AVX2 and FMA"))
    func avx2Kernel() {
        Self.check(.avx2, threads: 1)
        Self.check(.avx2, threads: 2)
    }

    @Test(.enabled(if: MatrixKernel.avx512.isSupported, "this CPU lacks AVX-512 F/BW/VL (or the OS does not save ZMM state)"))
    func avx512Kernel() {
        Self.check(.avx512, threads: 1)
        Self.check(.avx512, threads: 2)
    }

    /// A packing made for the AVX-512 kernel (32-column panels, 12-row tiles) on a CPU without
    /// AVX-512 runs the portable kernel of the same width instead of faulting: this also tests
    /// the 32-wide packing and edge tiles wherever the tests run.
    @Test func avx512PackingRunsEverywhere() {
        Self.check(.avx512, threads: 2)
    }

    @Test func kernelChoiceFromTheEnvironment() {
        #expect(MatrixKernel.choose(requested: nil).kernel == MatrixKernel.best)
        #expect(MatrixKernel.choose(requested: "auto").note == nil)
        #expect(MatrixKernel.choose(requested: "openblas").kernel == .openblas)
        #expect(MatrixKernel.choose(requested: "openblas").note == nil)
        #expect(MatrixKernel.choose(requested: "scalar").kernel == .scalar)
        let unknown = MatrixKernel.choose(requested: "avx3")
        #expect(unknown.kernel == MatrixKernel.best)
        #expect(unknown.note?.contains("NNM_KERNELS=avx3 is not one of openblas, scalar, avx2, avx512, auto") == true)
        let avx512 = MatrixKernel.choose(requested: "avx512")
        if MatrixKernel.avx512.isSupported {
            #expect(avx512.kernel == .avx512 && avx512.note == nil)
        } else {
            #expect(avx512.kernel == MatrixKernel.best)
            #expect(avx512.note?.contains("this CPU lacks avx512") == true)
        }
    }

    /// The engine's batch path on each kernel agrees with OpenBLAS (a dense model with every
    /// activation the kernels fuse or not, and a CNN), to f32 rounding of the products.
    @Test func engineAgreesAcrossKernels() throws {
        let models = [OneSampleTests.model(zscore: true, hidden: .tanh, output: .softmax),
                      OneSampleTests.model(zscore: false, hidden: .relu, output: .identity),
                      try handModel(convention: .convolution, padding: .same)]
        let count = 67
        for model in models {
            let x = (0..<(count * model.metadata.input.features)).map { Float(($0 * 37) % 256) }
            let reference = try InferenceEngine<Float>(model: model, kernel: .openblas)
            #expect(reference.matrixKernel == .openblas)
            let expected = reference.predict(raw: x, count: count)
            for kernel in MatrixKernel.allCases where kernel != .openblas {
                let engine = try InferenceEngine<Float>(model: model, kernel: kernel)
                #expect(engine.matrixKernel == (kernel.isSupported ? kernel : MatrixKernel.best))
                #expect(engine.kernelDescription.contains("\(engine.matrixKernel.rawValue) (ours"))
                let got = engine.predict(raw: x, count: count)
                let worst = zip(got, expected).map { abs($0 - $1) }.max() ?? 0
                #expect(worst < 1e-5, "\(kernel.rawValue): largest difference \(worst)")
            }
        }
        #expect(try InferenceEngine<Double>(model: models[0], kernel: .avx2).matrixKernel == .openblas)
    }

    /// Convolutions read their windows from the input (`PackedMatrix.convolve`): narrow ones in
    /// place, wider ones as their rows are packed, or in place for groups of windows inside the
    /// samples. Bit for bit what the product of the im2col rows gives, with and without padding
    /// (13 x 29 samples: with 'same' padding a block has groups of both kinds), strides of 1 and
    /// 2, 1 to 32 channels (32 x 3 x 3 = 288 values a window: two depth blocks that split a window
    /// row), 1 to 64 filters, bias and ReLU or neither, on one and two threads.
    @Test func convolutionsAreTheirIm2colProducts() throws {
        var checked = 0
        for kernel in MatrixKernel.allCases where kernel != .openblas && kernel.isSupported {
            for (index, (channels, filters, stride, padding)) in [(1, 8, 1, Padding.valid), (1, 7, 1, .same), (3, 16, 2, .same),
                                                                   (3, 1, 2, .valid), (2, 5, 1, .same), (1, 9, 1, .valid),
                                                                   (3, 40, 1, .same), (32, 20, 1, .same), (5, 33, 2, .valid),
                                                                   (32, 64, 2, .same), (32, 40, 1, .valid), (16, 33, 1, .valid),
                                                                   (8, 48, 1, .same), (1, 20, 1, .valid)].enumerated() {
                let layer = try Layer.conv2d(index: 0, inputShape: [13, 29, channels], filters: filters, kernel: [3, 3],
                                             strides: [stride, stride], padding: padding, activation: .identity)
                let g = layer.spatial!, count = 3
                let k = SpatialKernels.patchSize(g), rows = count * SpatialKernels.positions(g)
                let input = Self.values(count * 13 * 29 * channels, seed: index).map { $0 * 255 }
                let weight = Self.values(k * filters, seed: 40 + index), bias = Self.values(filters, seed: 80 + index)
                let packed = try #require(weight.withUnsafeBufferPointer { PackedMatrix($0.baseAddress!, rows: k, columns: filters, kernel: kernel) })
                var columns = [Float](repeating: .nan, count: rows * k)
                input.withUnsafeBufferPointer { i in columns.withUnsafeMutableBufferPointer { SpatialKernels.im2col(i.baseAddress!, count: count, geometry: g, into: $0.baseAddress!) } }
                for (relu, threads) in [(true, 2), (false, 1)] {
                    var want = [Float](repeating: .nan, count: rows * filters), got = want
                    let (multiplied, convolved) = bias.withUnsafeBufferPointer { biasValues in
                        let b = relu ? biasValues.baseAddress : nil
                        let multiplied = columns.withUnsafeBufferPointer { a in
                            want.withUnsafeMutableBufferPointer { packed.multiply(a.baseAddress!, m: rows, bias: b, relu: relu, into: $0.baseAddress!, threads: threads) }
                        }
                        let convolved = input.withUnsafeBufferPointer { i in
                            got.withUnsafeMutableBufferPointer { packed.convolve(i.baseAddress!, count: count, geometry: g, bias: b, relu: relu, into: $0.baseAddress!, threads: threads) }
                        }
                        return (multiplied, convolved)
                    }
                    #expect(multiplied)
                    #expect(convolved && got == want, "\(kernel.rawValue), case \(index), relu \(relu), \(threads) thread(s)")
                    checked += 1
                }
            }
        }
        if MatrixKernel.avx2.isSupported { #expect(checked >= 40) }
    }

    /// A narrow convolution with the max pooling after it (`convolve(pool:)`, each sample pooled
    /// as soon as it is convolved): bit for bit `SpatialKernels.maxPool` of `convolve`'s output.
    /// 2x2 and 3x3 pools, strides 1 and 2, windows clipped by 'same' padding; 5 filters (the
    /// portable pooling), 8, 12 (a vector and a rest) and 16; ReLU or not; one and two threads.
    @Test func narrowConvolutionsPooledAsTheyArePooledAfter() throws {
        var checked = 0
        for kernel in MatrixKernel.allCases where kernel != .openblas && kernel.isSupported && kernel != .scalar {
            let cases: [(channels: Int, filters: Int, stride: Int, pool: [Int], poolStride: Int, padding: Padding)] = [
                (1, 8, 1, [2, 2], 2, .valid), (2, 5, 1, [2, 2], 2, .same), (3, 12, 2, [3, 3], 2, .same),
                (1, 16, 1, [2, 2], 1, .valid), (1, 8, 1, [3, 3], 2, .same),
            ]
            for (index, c) in cases.enumerated() where c.filters <= kernel.narrowWidth {
                let conv = try Layer.conv2d(index: 0, inputShape: [13, 11, c.channels], filters: c.filters, kernel: [3, 3],
                                            strides: [c.stride, c.stride], padding: .same, activation: .identity)
                let g = conv.spatial!
                let pool = try Layer.maxPool2d(index: 1, inputShape: g.outputShape, pool: c.pool, strides: [c.poolStride, c.poolStride],
                                               padding: c.padding).spatial!
                let count = 5, k = SpatialKernels.patchSize(g)
                let input = Self.values(count * 13 * 11 * c.channels, seed: 90 + index).map { $0 * 255 }
                let weight = Self.values(k * c.filters, seed: 140 + index), bias = Self.values(c.filters, seed: 180 + index)
                let packed = try #require(weight.withUnsafeBufferPointer { PackedMatrix($0.baseAddress!, rows: k, columns: c.filters, kernel: kernel) })
                for (relu, threads) in [(true, 2), (false, 1), (true, 1)] {
                    var convolved = [Float](repeating: .nan, count: count * g.outputFeatures)
                    var want = [Float](repeating: .nan, count: count * pool.outputFeatures), got = want
                    let done = input.withUnsafeBufferPointer { i in
                        bias.withUnsafeBufferPointer { b in
                            let plain = convolved.withUnsafeMutableBufferPointer {
                                packed.convolve(i.baseAddress!, count: count, geometry: g, bias: b.baseAddress, relu: relu, into: $0.baseAddress!, threads: threads)
                            }
                            let fused = got.withUnsafeMutableBufferPointer {
                                packed.convolve(i.baseAddress!, count: count, geometry: g, bias: b.baseAddress, relu: relu, pool: pool,
                                                into: $0.baseAddress!, threads: threads)
                            }
                            return plain && fused
                        }
                    }
                    #expect(done)
                    convolved.withUnsafeBufferPointer { x in
                        want.withUnsafeMutableBufferPointer { SpatialKernels.maxPool(x.baseAddress!, count: count, geometry: pool, into: $0.baseAddress!, argmax: nil) }
                    }
                    #expect(got.map(\.bitPattern) == want.map(\.bitPattern), "\(kernel.rawValue), case \(index), relu \(relu), \(threads) thread(s)")
                    checked += 1
                }
            }
        }
        if MatrixKernel.avx2.isSupported { #expect(checked >= 9) }
    }
}
