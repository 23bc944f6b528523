internal import NNKernels

#if canImport(Glibc)
import Glibc
#endif

/// Which f32 matrix-product code the engine's batch path runs: our own kernels
/// (`NNKernels/GEMM.c`) or the system's OpenBLAS. f64 always runs on OpenBLAS.
///
/// The default is the fastest kernel this CPU runs (checked with CPUID and XGETBV); the
/// environment variable `NNM_KERNELS` (`openblas`, `scalar`, `avx2`, `avx512`, `auto`) forces one,
/// so that tests and benchmarks can compare them. A kernel the CPU lacks is never run.
public enum MatrixKernel: String, CaseIterable, Sendable {
    /// The system's OpenBLAS (`cblas_sgemm`), the fallback.
    case openblas
    /// Our blocking on plain C loops: any CPU.
    case scalar
    /// Our AVX2/FMA micro-kernel (6 x 16 tiles).
    case avx2
    /// Our AVX-512 micro-kernel (12 x 32 tiles).
    case avx512

    /// NNKernels' code for our kernels; nil for OpenBLAS.
    var code: Int32? {
        switch self {
        case .openblas: nil
        case .scalar: Int32(nn_gemm_scalar)
        case .avx2: Int32(nn_gemm_avx2)
        case .avx512: Int32(nn_gemm_avx512)
        }
    }

    /// Whether this CPU (and its operating system) runs the kernel.
    public var isSupported: Bool { code.map { nn_gemm_supported($0) } ?? true }

    /// The fastest of our kernels this CPU runs.
    public static var best: MatrixKernel {
        switch Int(nn_gemm_best()) {
        case Int(nn_gemm_avx512): .avx512
        case Int(nn_gemm_avx2): .avx2
        default: .scalar
        }
    }

    /// The kernel for `requested` (the value of `NNM_KERNELS`, or nil), and a note when the
    /// request could not be followed (an unknown name, or a kernel this CPU lacks: then `best`).
    public static func choose(requested: String?) -> (kernel: MatrixKernel, note: String?) {
        guard let requested, !requested.isEmpty, requested != "auto" else { return (best, nil) }
        guard let kernel = MatrixKernel(rawValue: requested) else {
            let names = (allCases.map(\.rawValue) + ["auto"]).joined(separator: ", ")
            return (best, "NNM_KERNELS=\(requested) is not one of \(names); using \(best.rawValue)")
        }
        guard kernel.isSupported else {
            return (best, "NNM_KERNELS=\(requested): this CPU lacks \(requested); using \(best.rawValue)")
        }
        return (kernel, nil)
    }

    /// What engines use unless told otherwise: `NNM_KERNELS`, read once per process.
    public static let selected: (kernel: MatrixKernel, note: String?) = {
        choose(requested: getenv("NNM_KERNELS").map { String(cString: $0) })
    }()

    /// The instruction-set extensions this CPU has that the kernels choose by, e.g.
    /// "avx2 fma avx512f/bw/vl avx512_vnni".
    public static var cpuFlags: String {
        let f = nn_cpu_features()
        var names: [String] = []
        if f & UInt32(nn_cpu_avx2_fma) != 0 { names.append("avx2 fma") }
        if f & UInt32(nn_cpu_avx512) != 0 { names.append("avx512f/bw/vl") }
        if f & UInt32(nn_cpu_avx512_vnni) != 0 { names.append("avx512_vnni") }
        if f & UInt32(nn_cpu_avx_vnni) != 0 { names.append("avx_vnni") }
        if f & UInt32(nn_cpu_avx512_bf16) != 0 { names.append("avx512_bf16") }
        return names.isEmpty ? "none" : names.joined(separator: " ")
    }

    /// The register-only f32 FMA peak in GFLOP/s of `threads` threads on this kernel's vector
    /// width (0 for OpenBLAS, scalar, or a kernel the CPU lacks): the benchmark's ceiling.
    public func fmaPeak(threads: Int, iterations: Int = 50_000_000) -> Double {
        guard let code, isSupported else { return 0 }
        return nn_fma_peak(code, Int32(threads), iterations)
    }
}

/// An f32 matrix B[k][n] packed once for one of our kernels, in 64-byte aligned memory it owns.
public final class PackedMatrix: @unchecked Sendable {
    // Sendable: never mutated after init.
    public let kernel: MatrixKernel
    public let rows: Int
    public let columns: Int
    private let storage: UnsafeMutablePointer<Float>

    /// Packs the row-major `rows` x `columns` matrix at `b` for `kernel` (not `.openblas`).
    /// Nil when the memory cannot be allocated.
    public init?(_ b: UnsafePointer<Float>, rows: Int, columns: Int, kernel: MatrixKernel) {
        guard let code = kernel.code else { return nil }
        self.kernel = kernel
        self.rows = rows
        self.columns = columns
        let count = (nn_gemm_packed_size(code, rows, columns) + 16) / 16 * 16
        guard let raw = aligned_alloc(64, count * MemoryLayout<Float>.stride) else { return nil }
        storage = raw.bindMemory(to: Float.self, capacity: count)
        nn_gemm_pack(code, b, columns, rows, columns, storage)
    }

    deinit { free(storage) }

    /// c[m][columns] = a[m][rows] B (+ bias, then ReLU when `relu`), rows of a and c contiguous.
    /// On two threads when `threads` >= 2 and the product is large enough. False, with nothing
    /// written, when the kernels' scratch memory cannot be allocated.
    public func multiply(_ a: UnsafePointer<Float>, m: Int, bias: UnsafePointer<Float>?, relu: Bool,
                         into c: UnsafeMutablePointer<Float>, threads: Int) -> Bool {
        nn_gemm(kernel.code!, m, columns, rows, a, rows, storage, c, columns, bias, relu, Int32(threads))
    }
}
