/// Floating-point types the engine and trainer compute in, with their BLAS routines.
///
/// Matrices are row-major. This is the only place the project calls CBLAS (OpenBLAS, loaded on
/// first use: see `OpenBLAS`).
public protocol BLASScalar: BinaryFloatingPoint, Sendable where Self.RawSignificand: FixedWidthInteger {
    /// C = alpha * op(A) * op(B) + beta * C, with op(A) m x k and op(B) k x n.
    static func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Self,
                     a: UnsafePointer<Self>, lda: Int, b: UnsafePointer<Self>, ldb: Int,
                     beta: Self, c: UnsafeMutablePointer<Self>, ldc: Int)
    /// `gemm` on `kernel`: for f32 our kernels (`nn_sgemm`, on up to `threads` threads, at most
    /// two) unless `kernel` is `.openblas` or their scratch memory cannot be allocated; f64 always
    /// on OpenBLAS. The trainer's products: on a CPU that Debian's OpenBLAS 0.3.21 does not know
    /// (Emerald Rapids), it runs its SSE3 kernels.
    static func gemm(on kernel: MatrixKernel, threads: Int, transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
                     alpha: Self, a: UnsafePointer<Self>, lda: Int, b: UnsafePointer<Self>, ldb: Int,
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

internal import NNKernels
import NNCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

// CBLAS's enumerations (cblas.h: CblasRowMajor, CblasNoTrans, CblasTrans), passed as C ints.
private let cblasRowMajor: Int32 = 101
@inline(__always) private func cblasTranspose(_ t: Bool) -> Int32 { t ? 112 : 111 }

extension Float: BLASScalar {
    @inlinable public static var dtype: DType { .float32 }
    public static func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                            a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                            beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        OpenBLAS.library.sgemm(cblasRowMajor, cblasTranspose(transposeA), cblasTranspose(transposeB), Int32(m), Int32(n), Int32(k),
                               alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
    public static func gemm(on kernel: MatrixKernel, threads: Int, transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
                            alpha: Float, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                            beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        if let code = kernel.code,
           nn_sgemm(code, transposeA, transposeB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, Int32(min(threads, 2))) { return }
        gemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
             beta: beta, c: c, ldc: ldc)
    }
    public static func gemv(transpose: Bool, rows: Int, cols: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int,
                            x: UnsafePointer<Float>, beta: Float, y: UnsafeMutablePointer<Float>) {
        OpenBLAS.library.sgemv(cblasRowMajor, cblasTranspose(transpose), Int32(rows), Int32(cols), alpha, a, Int32(lda), x, 1, beta, y, 1)
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
        OpenBLAS.library.dgemm(cblasRowMajor, cblasTranspose(transposeA), cblasTranspose(transposeB), Int32(m), Int32(n), Int32(k),
                               alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
    public static func gemm(on kernel: MatrixKernel, threads: Int, transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
                            alpha: Double, a: UnsafePointer<Double>, lda: Int, b: UnsafePointer<Double>, ldb: Int,
                            beta: Double, c: UnsafeMutablePointer<Double>, ldc: Int) {
        gemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
             beta: beta, c: c, ldc: ldc)
    }
    public static func gemv(transpose: Bool, rows: Int, cols: Int, alpha: Double, a: UnsafePointer<Double>, lda: Int,
                            x: UnsafePointer<Double>, beta: Double, y: UnsafeMutablePointer<Double>) {
        OpenBLAS.library.dgemv(cblasRowMajor, cblasTranspose(transpose), Int32(rows), Int32(cols), alpha, a, Int32(lda), x, 1, beta, y, 1)
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
    /// Sets how many threads matrix products may use: OpenBLAS's (now, or when it loads) and the
    /// engine's own kernels (at most 2: the caller and one helper).
    public static func setThreadCount(_ n: Int) {
        threads.withLock { state in
            state.count = n
            if state.loaded { OpenBLAS.library.setThreadCount(Int32(n)) }
        }
    }
    /// How many threads matrix products may use: `setThreadCount`'s, else OpenBLAS's own default,
    /// computed here as OpenBLAS does so that asking does not load it.
    public static var threadCount: Int { threads.withLock { $0.count } }
    /// The kernel OpenBLAS chose for this CPU (e.g. "Haswell"); loads OpenBLAS.
    public static var coreName: String { OpenBLAS.library.coreName().map { String(cString: $0) } ?? "unknown" }
    /// What OpenBLAS reports about its build and the kernel it chose for this CPU; loads OpenBLAS.
    public static var configuration: String {
        "OpenBLAS \(OpenBLAS.library.configuration().map { String(cString: $0) } ?? "unknown"), core \(coreName)"
    }

    struct ThreadSetting { var count: Int; var loaded: Bool }
    static let threads = Mutex(ThreadSetting(count: defaultThreadCount(), loaded: false))

    /// OpenBLAS's rule (`blas_get_cpu_number` in its driver/others/init.c): OPENBLAS_NUM_THREADS,
    /// GOTO_NUM_THREADS or OMP_NUM_THREADS if positive, at most the CPUs this process may run on,
    /// at most the 64 of Debian's build.
    private static func defaultThreadCount() -> Int {
        let cpus = Int(nn_available_cpus())
        let requested = ["OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS"].lazy
            .compactMap { (variable: String) in getenv(variable).flatMap { Int(String(cString: $0).filter { !$0.isWhitespace }) } }
            .first { $0 > 0 }
        return max(1, min(requested ?? cpus, cpus, 64))
    }
}

/// The system's OpenBLAS, loaded with `dlopen` on first use rather than linked. Loading it cost
/// every process about 3 ms (12,000 symbol relocations, its CPU detection, and a worker thread
/// polling for work with `sched_yield` for its first 0.1 s, on one of our two CPUs), although
/// nn-infer's, nnconv's and nn-serve's f32 products run on our kernels (`MatrixKernel`). f64
/// products, the trainer and `NNM_KERNELS=openblas` load it. A system without it gets one line and
/// status 69 (EX_UNAVAILABLE) at that first use; linked, no program of ours would start.
struct OpenBLAS: @unchecked Sendable {
    // cblas.h's signatures; its enumerations are C ints.
    typealias SGEMM = @convention(c) (Int32, Int32, Int32, Int32, Int32, Int32, Float, UnsafePointer<Float>, Int32,
                                      UnsafePointer<Float>, Int32, Float, UnsafeMutablePointer<Float>, Int32) -> Void
    typealias DGEMM = @convention(c) (Int32, Int32, Int32, Int32, Int32, Int32, Double, UnsafePointer<Double>, Int32,
                                      UnsafePointer<Double>, Int32, Double, UnsafeMutablePointer<Double>, Int32) -> Void
    typealias SGEMV = @convention(c) (Int32, Int32, Int32, Int32, Float, UnsafePointer<Float>, Int32, UnsafePointer<Float>, Int32,
                                      Float, UnsafeMutablePointer<Float>, Int32) -> Void
    typealias DGEMV = @convention(c) (Int32, Int32, Int32, Int32, Double, UnsafePointer<Double>, Int32, UnsafePointer<Double>, Int32,
                                      Double, UnsafeMutablePointer<Double>, Int32) -> Void
    typealias CString = @convention(c) () -> UnsafeMutablePointer<CChar>?
    let sgemm: SGEMM, dgemm: DGEMM, sgemv: SGEMV, dgemv: DGEMV
    let setThreadCount: @convention(c) (Int32) -> Void
    let coreName: CString, configuration: CString

    /// `NNM_OPENBLAS` when set (a path or soname: an OpenBLAS of one's own, say one built for a
    /// CPU that Debian's does not know); else its soname in Debian's libopenblas0 packages, then
    /// the development link.
    static var names: [String] {
        if let chosen = getenv("NNM_OPENBLAS").map({ String(cString: $0) }), !chosen.isEmpty { return [chosen] }
        return ["libopenblas.so.0", "libopenblas.so"]
    }

    private struct MissingSymbol: Error { var name: String }

    /// Loaded once, by the first thread that needs it, with the thread count set so far.
    static let library: OpenBLAS = {
        var reasons: [String] = []
        for name in names {
            guard let handle = dlopen(name, RTLD_NOW | RTLD_LOCAL) else {
                reasons.append(dlerror().map { String(cString: $0) } ?? "\(name): cannot be loaded")
                continue
            }
            func symbol<F>(_ symbol: String) throws -> F {
                guard let pointer = dlsym(handle, symbol) else { throw MissingSymbol(name: symbol) }
                return unsafeBitCast(pointer, to: F.self)
            }
            do {
                let library = try OpenBLAS(sgemm: symbol("cblas_sgemm"), dgemm: symbol("cblas_dgemm"), sgemv: symbol("cblas_sgemv"),
                                           dgemv: symbol("cblas_dgemv"), setThreadCount: symbol("openblas_set_num_threads"),
                                           coreName: symbol("openblas_get_corename"), configuration: symbol("openblas_get_config"))
                BLAS.threads.withLock { state in
                    library.setThreadCount(Int32(state.count))
                    state.loaded = true
                }
                return library
            } catch {
                reasons.append("\(name) has no \((error as? MissingSymbol)?.name ?? "\(error)")")
                dlclose(handle)
            }
        }
        // No caller can go on without its product: the one line a tool prints for it, and its status.
        let program = CommandLine.arguments.first.map { String($0.split(separator: "/").last ?? "") } ?? "nnm"
        let line = "\(program): OpenBLAS is needed (f64 products, NNM_KERNELS=openblas, weights too large to pack) but cannot be loaded: "
            + "\(reasons.joined(separator: "; ")) (Debian: apt-get install libopenblas0)\n"
        _ = line.withCString { write(2, $0, strlen($0)) }
        exit(69)
    }()
}

/// The floating-point type computations run in.
public enum Precision: String, CaseIterable, Sendable {
    case float32 = "f32"
    case float64 = "f64"

    public var dtype: DType { self == .float32 ? .float32 : .float64 }
}
