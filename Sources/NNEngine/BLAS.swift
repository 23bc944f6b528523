internal import COpenBLAS

/// Floating-point types the engine and trainer compute in, with their BLAS routines.
///
/// Matrices are row-major. This is the only place the project calls CBLAS.
public protocol BLASScalar: BinaryFloatingPoint, Sendable where Self.RawSignificand: FixedWidthInteger {
    /// C = alpha * op(A) * op(B) + beta * C, with op(A) m x k and op(B) k x n.
    static func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Self,
                     a: UnsafePointer<Self>, lda: Int, b: UnsafePointer<Self>, ldb: Int,
                     beta: Self, c: UnsafeMutablePointer<Self>, ldc: Int)
    /// y = alpha * op(A) * x + beta * y, with A rows x cols.
    static func gemv(transpose: Bool, rows: Int, cols: Int, alpha: Self, a: UnsafePointer<Self>, lda: Int,
                     x: UnsafePointer<Self>, beta: Self, y: UnsafeMutablePointer<Self>)
    static func exponential(_ x: Self) -> Self
    static func hyperbolicTangent(_ x: Self) -> Self
    static func logarithm(_ x: Self) -> Self
    /// exp(x) - 1, accurate near 0 (libm's expm1).
    static func exponentialMinusOne(_ x: Self) -> Self
    /// log(1 + x), accurate near 0 (libm's log1p).
    static func logarithmOnePlus(_ x: Self) -> Self
    /// The error function (libm's erf).
    static func errorFunction(_ x: Self) -> Self
    /// The model's tensor data converted to this type.
    static func values(of tensor: Tensor) -> [Self]
    static var dtype: DType { get }
}

import NNCore
#if canImport(Glibc)
import Glibc
#endif

@inline(__always) private func cblasTranspose(_ t: Bool) -> CBLAS_TRANSPOSE { t ? CblasTrans : CblasNoTrans }

extension Float: BLASScalar {
    @inlinable public static var dtype: DType { .float32 }
    public static func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                            a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                            beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        cblas_sgemm(CblasRowMajor, cblasTranspose(transposeA), cblasTranspose(transposeB), blasint(m), blasint(n), blasint(k),
                    alpha, a, blasint(lda), b, blasint(ldb), beta, c, blasint(ldc))
    }
    public static func gemv(transpose: Bool, rows: Int, cols: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int,
                            x: UnsafePointer<Float>, beta: Float, y: UnsafeMutablePointer<Float>) {
        cblas_sgemv(CblasRowMajor, cblasTranspose(transpose), blasint(rows), blasint(cols), alpha, a, blasint(lda), x, 1, beta, y, 1)
    }
    @inline(__always) public static func exponential(_ x: Float) -> Float { expf(x) }
    @inline(__always) public static func hyperbolicTangent(_ x: Float) -> Float { tanhf(x) }
    @inline(__always) public static func logarithm(_ x: Float) -> Float { logf(x) }
    @inline(__always) public static func exponentialMinusOne(_ x: Float) -> Float { expm1f(x) }
    @inline(__always) public static func logarithmOnePlus(_ x: Float) -> Float { log1pf(x) }
    @inline(__always) public static func errorFunction(_ x: Float) -> Float { erff(x) }
    public static func values(of tensor: Tensor) -> [Float] { tensor.floats() }
}

extension Double: BLASScalar {
    @inlinable public static var dtype: DType { .float64 }
    public static func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Double,
                            a: UnsafePointer<Double>, lda: Int, b: UnsafePointer<Double>, ldb: Int,
                            beta: Double, c: UnsafeMutablePointer<Double>, ldc: Int) {
        cblas_dgemm(CblasRowMajor, cblasTranspose(transposeA), cblasTranspose(transposeB), blasint(m), blasint(n), blasint(k),
                    alpha, a, blasint(lda), b, blasint(ldb), beta, c, blasint(ldc))
    }
    public static func gemv(transpose: Bool, rows: Int, cols: Int, alpha: Double, a: UnsafePointer<Double>, lda: Int,
                            x: UnsafePointer<Double>, beta: Double, y: UnsafeMutablePointer<Double>) {
        cblas_dgemv(CblasRowMajor, cblasTranspose(transpose), blasint(rows), blasint(cols), alpha, a, blasint(lda), x, 1, beta, y, 1)
    }
    @inline(__always) public static func exponential(_ x: Double) -> Double { exp(x) }
    @inline(__always) public static func hyperbolicTangent(_ x: Double) -> Double { tanh(x) }
    @inline(__always) public static func logarithm(_ x: Double) -> Double { log(x) }
    @inline(__always) public static func exponentialMinusOne(_ x: Double) -> Double { expm1(x) }
    @inline(__always) public static func logarithmOnePlus(_ x: Double) -> Double { log1p(x) }
    @inline(__always) public static func errorFunction(_ x: Double) -> Double { erf(x) }
    public static func values(of tensor: Tensor) -> [Double] { tensor.doubles() }
}

/// Process-wide BLAS settings and facts.
public enum BLAS {
    /// Sets the number of threads OpenBLAS uses for large products.
    public static func setThreadCount(_ n: Int) { openblas_set_num_threads(Int32(n)) }
    /// OpenBLAS's thread count.
    public static var threadCount: Int { Int(openblas_get_num_threads()) }
    /// Ends OpenBLAS's worker threads, if this OpenBLAS has them; its next threaded product
    /// starts them again. Right after the library loads, its workers poll for work for about
    /// 0.1 s (2^28 cycles) and yield the CPU in a loop: a short process whose products run on our
    /// kernels (nn-infer over 10,000 images takes about 40 ms) then shares a core with them, and
    /// its helper thread lost that race in 4 of 6 runs measured (forward pass 50-61 ms instead of
    /// 30-35). Call it only while no other thread uses OpenBLAS, e.g. first thing in `main`.
    public static func stopIdleWorkers() {
        // Looked up at run time: the serial and OpenMP builds of OpenBLAS may not have it.
        guard let symbol = dlsym(nil, "blas_thread_shutdown_") else { return }
        _ = unsafeBitCast(symbol, to: (@convention(c) () -> Int32).self)()
    }
    /// The kernel OpenBLAS chose for this CPU (e.g. "Haswell").
    public static var coreName: String { openblas_get_corename().map { String(cString: $0) } ?? "unknown" }
    /// What OpenBLAS reports about its build and the kernel it chose for this CPU.
    public static var configuration: String {
        let config = openblas_get_config().map { String(cString: $0) } ?? "unknown"
        let core = openblas_get_corename().map { String(cString: $0) } ?? "unknown"
        return "OpenBLAS \(config), core \(core)"
    }
}

/// The floating-point type computations run in.
public enum Precision: String, CaseIterable, Sendable {
    case float32 = "f32"
    case float64 = "f64"

    public var dtype: DType { self == .float32 ? .float32 : .float64 }
}
