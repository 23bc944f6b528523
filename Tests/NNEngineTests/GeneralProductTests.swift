import NNCore
import NNEngine
import Testing

/// BLAS's sgemm on our kernels (`Float.gemm(on:)`, the trainer's products): C = alpha op(A)
/// op(B) + beta C for every transposition of A and B, against the product computed here in
/// Double. Leading dimensions are wider than the matrices (so a stride mixed up with a width
/// shows), shapes are odd (1, 3, 17 rows; 255 rows of 9 steps, fewer steps than a chunk; 1023
/// rows) and include the trainer's (64 samples, 100 x 255 weights; the weight gradient, 100 rows
/// over 64 steps), with widths of one vector or less (the narrow kernels) and of several panels,
/// and both ways of packing: A whole for a small A (at most 2^17 values), else B whole (600 x 230).
/// beta 0 starts from C full of NaN, which BLAS does not read.
///
/// Tolerance: as `MatrixKernelTests`, gamma(k + 4) (alpha's product with B, the sum, beta's
/// product and its addition) times |alpha| sum_p |a_ip b_pj| + |beta c_ij|.
@Suite struct GeneralProductTests {
    /// (m, k, n)
    static let shapes: [(m: Int, k: Int, n: Int)] = [
        (1, 3, 10), (3, 37, 17), (17, 257, 31), (64, 100, 255), (100, 64, 255), (255, 9, 8), (1023, 20, 40), (600, 230, 37),
    ]
    /// (alpha, beta)
    static let scalings: [(Float, Float)] = [(1, 0), (-0.37, 0.9), (1, 1)]

    struct Case {
        let m, k, n: Int
        let transposeA, transposeB: Bool
        let alpha, beta: Float
        let a, b, c0: [Float]
        let lda, ldb, ldc: Int
        /// The exact result and its error bound, per element of C (ldc columns).
        let exact, bound: [Double]
    }

    static let cases: [Case] = {
        var cases: [Case] = []
        for (index, (m, k, n)) in shapes.enumerated() {
            for transposeA in [false, true] {
                for transposeB in [false, true] {
                    for (alpha, beta) in scalings {
                        // Stored shapes: A m x k or k x m, B k x n or n x k, each row 3 values wider.
                        let (aRows, aColumns) = transposeA ? (k, m) : (m, k), (bRows, bColumns) = transposeB ? (n, k) : (k, n)
                        let lda = aColumns + 3, ldb = bColumns + 3, ldc = n + 3
                        let a = MatrixKernelTests.values(aRows * lda, seed: index), b = MatrixKernelTests.values(bRows * ldb, seed: 50 + index)
                        let c0 = beta == 0 ? [Float](repeating: .nan, count: m * ldc) : MatrixKernelTests.values(m * ldc, seed: 90 + index)
                        var exact = [Double](repeating: 0, count: m * ldc), bound = exact
                        let u = 1.0 / Double(1 << 24), gamma = Double(k + 4) * u / (1 - Double(k + 4) * u)
                        for i in 0..<m {
                            for j in 0..<n {
                                var sum = 0.0, magnitude = 0.0
                                for p in 0..<k {
                                    let x = Double(transposeA ? a[p * lda + i] : a[i * lda + p])
                                    let y = Double(transposeB ? b[j * ldb + p] : b[p * ldb + j])
                                    sum += x * y
                                    magnitude += abs(x * y)
                                }
                                let old = beta == 0 ? 0 : Double(beta) * Double(c0[i * ldc + j])
                                exact[i * ldc + j] = Double(alpha) * sum + old
                                bound[i * ldc + j] = gamma * (abs(Double(alpha)) * magnitude + abs(old))
                            }
                        }
                        cases.append(Case(m: m, k: k, n: n, transposeA: transposeA, transposeB: transposeB, alpha: alpha, beta: beta,
                                          a: a, b: b, c0: c0, lda: lda, ldb: ldb, ldc: ldc, exact: exact, bound: bound))
                    }
                }
            }
        }
        return cases
    }()

    /// Every case on `kernel`; the padding columns of C must keep their values.
    static func check(_ kernel: MatrixKernel, threads: Int) {
        for t in cases {
            var c = t.c0
            t.a.withUnsafeBufferPointer { a in
                t.b.withUnsafeBufferPointer { b in
                    c.withUnsafeMutableBufferPointer { c in
                        Float.gemm(on: kernel, threads: threads, transposeA: t.transposeA, transposeB: t.transposeB, m: t.m, n: t.n, k: t.k,
                                   alpha: t.alpha, a: a.baseAddress!, lda: t.lda, b: b.baseAddress!, ldb: t.ldb, beta: t.beta,
                                   c: c.baseAddress!, ldc: t.ldc)
                    }
                }
            }
            let name = "\(kernel.rawValue), \(threads) thread(s), m \(t.m) k \(t.k) n \(t.n), transposed A \(t.transposeA) B \(t.transposeB), alpha \(t.alpha) beta \(t.beta)"
            for i in 0..<t.m {
                for j in 0..<t.ldc {
                    let index = i * t.ldc + j
                    if j >= t.n {
                        let kept = c[index] == t.c0[index] || (c[index].isNaN && t.c0[index].isNaN)
                        if !kept {
                            Issue.record("\(name): padding c[\(i)][\(j)] changed to \(c[index])")
                            return
                        }
                        continue
                    }
                    let error = abs(Double(c[index]) - t.exact[index])
                    if !(error <= t.bound[index]) {
                        Issue.record("\(name): c[\(i)][\(j)] = \(c[index]), exact \(t.exact[index]), error \(error) > bound \(t.bound[index])")
                        return
                    }
                }
            }
        }
    }

    /// Every kernel this CPU runs (AVX2 on AVX-512 machines too), and OpenBLAS: the fallback,
    /// and the test's own check.
    @Test(arguments: MatrixKernel.allCases.filter(\.isSupported), [1, 2])
    func onEachKernel(_ kernel: MatrixKernel, threads: Int) {
        Self.check(kernel, threads: threads)
    }
}
