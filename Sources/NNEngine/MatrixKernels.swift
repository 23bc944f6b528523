internal import NNKernels
import NNCore

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

    /// The widest product (in columns) this kernel runs in its narrow form (one vector: no
    /// packing of A, convolutions straight from the input): 16 for AVX-512, 8 for AVX2, else 0.
    public var narrowWidth: Int { code.map { nn_gemm_narrow_width($0) } ?? 0 }

    /// How reports name this kernel running products on up to `threads` threads: "avx512 (ours,
    /// 2 threads)" (ours use at most two), or "OpenBLAS (Haswell, 4 threads)" (loading OpenBLAS
    /// to ask its core). `detail` goes inside the parentheses, after the threads.
    public func productsDescription(threads: Int, detail: String = "") -> String {
        let count = { (n: Int) in "\(n) thread\(n == 1 ? "" : "s")" }
        if self == .openblas { return "OpenBLAS (\(BLAS.coreName), \(count(threads))\(detail))" }
        return "\(rawValue) (ours, \(count(min(threads, 2)))\(detail))"
    }

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
        if f & UInt32(nn_cpu_amx_int8) != 0 { names.append("amx_int8") }
        if f & UInt32(nn_cpu_amx_bf16) != 0 { names.append("amx_bf16") }
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
public final class PackedMatrix: Sendable {
    public let kernel: MatrixKernel
    /// The packed B, with its `rows` (k) and `columns` (n).
    public let panels: PackedPanels<Float>

    /// Packs the row-major `rows` x `columns` matrix at `b` for `kernel` (not `.openblas`).
    /// Nil when the memory cannot be allocated.
    public init?(_ b: UnsafePointer<Float>, rows: Int, columns: Int, kernel: MatrixKernel) {
        // 16 floats of slack past the panels, which the kernels' last loads may touch.
        guard let code = kernel.code,
              let panels = PackedPanels<Float>(rows: rows, columns: columns, count: nn_gemm_packed_size(code, rows, columns) + 16)
        else { return nil }
        self.kernel = kernel
        self.panels = panels
        nn_gemm_pack(code, b, columns, rows, columns, panels.pointer)
    }

    /// c[m][columns] = a[m][rows] B (+ bias, then ReLU when `relu`), rows of a and c contiguous.
    /// On two threads when `threads` >= 2 and the product is large enough. False, with nothing
    /// written, when the kernels' scratch memory cannot be allocated.
    public func multiply(_ a: UnsafePointer<Float>, m: Int, bias: UnsafePointer<Float>?, relu: Bool,
                         into c: UnsafeMutablePointer<Float>, threads: Int) -> Bool {
        multiply(a, m: m, bias: bias, relu: relu, into: c, threads: threads, preprocessing: nil)
    }

    /// As `multiply`, each row of `a` preprocessed by `preprocessing` as it is packed (a first
    /// layer fed raw features; rows of bytes with `byteScale`, see `withPrologue`). False, with
    /// nothing written, for a product no wider than `narrowWidth` (its kernels read `a` in place)
    /// when `preprocessing` or `byteScale` is given. `then`: rows of the same form this thread
    /// multiplies next (their first, their count), whose first block the last unit prefetches.
    func multiply(_ a: UnsafeRawPointer, m: Int, bias: UnsafePointer<Float>?, relu: Bool,
                  into c: UnsafeMutablePointer<Float>, threads: Int, preprocessing: RowPreprocessing?, byteScale: Float? = nil,
                  then: (UnsafeRawPointer, Int)? = nil) -> Bool {
        RowPreprocessing.withPrologue(preprocessing, byteScale: byteScale) { prologue in
            nn_gemm(kernel.code!, m, panels.columns, panels.rows, a, panels.rows, prologue, panels.pointer, c, panels.columns, bias, relu,
                    Int32(threads), then?.0, then?.1 ?? 0)
        }
    }

    /// The convolution of `count` HWC samples at `input` with geometry `g` (B is its weight in
    /// im2col form), into `output` ([count][positions][columns]), bit for bit what `multiply`
    /// gives on the samples' im2col rows, without writing them: B at most one vector of the kernel
    /// wide reads the windows in place (`nn_conv_skinny`); a wider one reads the groups of windows
    /// that lie inside their samples in place and gathers the others as it packs its rows
    /// (`nn_conv_gemm`). False, with nothing written, when memory is short, or with `pool`
    /// for a B wider than a vector. With `pool`, max pooling of that geometry follows on each
    /// sample as soon as it is convolved, bit for bit what `SpatialKernels.maxPool` gives on the
    /// convolution's output, which is then never written out: `output` is the pooled
    /// [count][pool positions][columns].
    public func convolve(_ input: UnsafePointer<Float>, count: Int, geometry g: SpatialGeometry, bias: UnsafePointer<Float>?,
                         relu: Bool, pool: SpatialGeometry? = nil, into output: UnsafeMutablePointer<Float>, threads: Int) -> Bool {
        var geometry = SpatialKernels.kernelGeometry(g)
        guard var pooling = pool.map(SpatialKernels.kernelGeometry) else {
            return nn_conv_skinny(kernel.code!, count, &geometry, input, panels.pointer, panels.columns, bias, relu, nil, output, Int32(threads))
                || nn_conv_gemm(kernel.code!, count, &geometry, input, panels.pointer, panels.columns, bias, relu, output, Int32(threads))
        }
        return nn_conv_skinny(kernel.code!, count, &geometry, input, panels.pointer, panels.columns, bias, relu, &pooling, output, Int32(threads))
    }

    /// c[columns] = a[rows] B (+ bias, then ReLU when `relu`) for one row, bit for bit what
    /// `multiply` computes for that row in any batch. On two threads when `threads` >= 2 and B
    /// is large enough. Allocates nothing.
    public func multiplyRow(_ a: UnsafePointer<Float>, bias: UnsafePointer<Float>?, relu: Bool,
                            into c: UnsafeMutablePointer<Float>, threads: Int) {
        nn_gemm_row(kernel.code!, panels.columns, panels.rows, a, panels.pointer, c, bias, relu, Int32(threads))
    }
}

/// Which code multiplies batches by int8 weights: the portable C kernel, AVX2 (`vpmaddwd` on
/// int16 pairs), AVX2 on bytes (`vpmaddubsw`, for 7-bit weights), AVX512-VNNI (`vpdpbusd` on
/// ZMM), AVX-VNNI (`vpdpbusd` on YMM, the VNNI of CPUs without AVX-512) or AMX (`tdpbusd` on
/// tiles, Intel Xeon since Sapphire Rapids). Each row of activations is quantized to u8 with its
/// own scale and zero point as it is packed; sums are exact in int32, so every kernel gives the
/// same results.
public enum Int8Kernel: String, CaseIterable, Sendable {
    case scalar
    case avx2
    /// AVX2 without widening: `vpmaddubsw` multiplies u8 x s8 bytes and adds pairs into int16
    /// with saturation, which cannot happen when each pair of depths of a column has
    /// |w0| + |w1| <= 128 (weights in -64...64: `nnconv quantize --weight-bits 7`). Matrices get
    /// it through `exact(for:rows:columns:)`, never for weights it would saturate on.
    case avx2Maddubs = "avx2_maddubs"
    case vnni = "avx512_vnni"
    case avxVNNI = "avx_vnni"
    case amx = "amx_int8"

    var code: Int32 {
        switch self {
        case .scalar: Int32(nn_i8_scalar)
        case .avx2: Int32(nn_i8_avx2)
        case .avx2Maddubs: Int32(nn_i8_avx2_maddubs)
        case .vnni: Int32(nn_i8_vnni)
        case .avxVNNI: Int32(nn_i8_avx_vnni)
        case .amx: Int32(nn_i8_amx)
        }
    }

    /// Whether this CPU (and its operating system) runs the kernel.
    public var isSupported: Bool { nn_i8_supported(code) }

    /// The kernel of this one's family that multiplies the row-major `rows` x `columns` int8
    /// `values` exactly and fastest: for `avx2` and `avx2Maddubs`, `avx2Maddubs` when its pair
    /// sums cannot saturate on these values, else `avx2`; every other kernel as it is.
    public func exact(for values: UnsafeBufferPointer<Int8>, rows: Int, columns: Int) -> Int8Kernel {
        guard self == .avx2 || self == .avx2Maddubs else { return self }
        precondition(values.count == rows * columns, "int8 matrix and its shape do not match")
        return nn_i8_maddubs_exact(values.baseAddress, columns, rows, columns) ? .avx2Maddubs : .avx2
    }

    /// The int8 kernel of the same family as the f32 `kernel` the engine runs, the first this
    /// CPU has: for `avx512` AMX, AVX512-VNNI, AVX-VNNI, AVX2; for `avx2` AVX-VNNI, AVX2 (which
    /// runs as `avx2Maddubs` on weights that allow it, `exact(for:rows:columns:)`); `scalar`;
    /// nil for OpenBLAS (int8 weights then run as their f32 values), so `NNM_KERNELS` chooses both.
    public static func matching(_ kernel: MatrixKernel) -> Int8Kernel? {
        let family: [Int8Kernel]
        switch kernel {
        case .openblas: return nil
        case .scalar: family = []
        case .avx2: family = [.avxVNNI, .avx2]
        case .avx512: family = [.amx, .vnni, .avxVNNI, .avx2]
        }
        return family.first { $0.isSupported } ?? .scalar
    }
}

/// Which code multiplies batches by bf16 weights: AVX512_BF16 (`vdpbf16ps`: activations rounded
/// to bf16, exact products, f32 sums), AMX-BF16 (`tdpbf16ps` on tiles, the same rounding of the
/// activations) or the portable C kernel of the same arithmetic (for tests). Where the CPU
/// lacks AVX512_BF16 the engine widens bf16 weights to f32 instead.
public enum BFloat16Kernel: String, CaseIterable, Sendable {
    case scalar
    case avx512 = "avx512_bf16"
    case amx = "amx_bf16"

    var code: Int32 {
        switch self {
        case .scalar: Int32(nn_bf16_scalar)
        case .avx512: Int32(nn_bf16_avx512)
        case .amx: Int32(nn_bf16_amx)
        }
    }

    /// Whether this CPU (and its operating system) runs the kernel.
    public var isSupported: Bool { nn_bf16_supported(code) }

    /// For the engine's f32 kernel `avx512`: `amx` where the CPU has AMX-BF16, else `avx512`
    /// where it has AVX512_BF16; nil otherwise (bf16 weights are widened to f32 and run on the
    /// f32 kernel).
    public static func matching(_ kernel: MatrixKernel) -> BFloat16Kernel? {
        guard kernel == .avx512 else { return nil }
        return [BFloat16Kernel.amx, .avx512].first { $0.isSupported }
    }
}

/// An int8 matrix B[k][n] with one f32 scale per column, packed once for an `Int8Kernel`.
public final class PackedInt8Matrix: Sendable {
    public let kernel: Int8Kernel
    /// The packed B, with its `rows` (k) and `columns` (n).
    public let panels: PackedPanels<Int8>
    private let scales: [Float]
    /// How rows of activations are quantized: with this calibrated scale and zero point, or (nil)
    /// each with its own.
    public let inputQuantization: InputQuantization?
    /// The bits of the activations each row is quantized to (0...255 or 0...127): 7 when every
    /// weight lies in -63...63 (`nnconv quantize --weight-bits 7`) and the rows are quantized
    /// per row, on every kernel, so that sums of four products fit int16 on AVX2
    /// (`nn_i8_activation_bits`); 8 otherwise.
    public let activationBits: Int

    /// Packs the row-major `rows` x `columns` int8 matrix `values` (each in -127...127 for the
    /// exactness bound) with `scales[columns]` for `kernel`, or the kernel of its family that is
    /// exact on these values (`Int8Kernel.exact(for:rows:columns:)`; `self.kernel` says which);
    /// `input` fixes the activations' quantization (format 1.4) instead of measuring each row.
    /// Nil when memory cannot be allocated or `rows` exceeds the depth whose int32 sums are exact
    /// (65,536).
    public init?(_ values: [Int8], scales: [Float], rows: Int, columns: Int, kernel: Int8Kernel, input: InputQuantization? = nil) {
        precondition(values.count == rows * columns && scales.count == columns, "int8 matrix and scales do not match")
        let kernel = values.withUnsafeBufferPointer { kernel.exact(for: $0, rows: rows, columns: columns) }
        guard rows <= Int(nn_i8_max_depth),
              let panels = PackedPanels<Int8>(rows: rows, columns: columns, count: nn_i8_packed_bytes(kernel.code, rows, columns))
        else { return nil }
        self.kernel = kernel
        self.panels = panels
        self.scales = scales
        inputQuantization = input
        activationBits = Self.activationBits(for: values, input: input)
        values.withUnsafeBufferPointer { nn_i8_pack(kernel.code, $0.baseAddress, columns, rows, columns, panels.pointer) }
    }

    /// The bits of the activations that multiply `values` (see `activationBits`): 8 with a
    /// calibrated `input`, else 7 for weights in -63...63 and 8 for others.
    public static func activationBits(for values: [Int8], input: InputQuantization?) -> Int {
        input != nil ? 8 : Int(values.withUnsafeBufferPointer { nn_i8_activation_bits($0.baseAddress, $0.count) })
    }

    /// c[m][columns] = dequantized(quantized(a) B) (+ bias, then ReLU when `relu`), the rows of
    /// `a` quantized as `inputQuantization` says. False, with nothing written, when scratch
    /// memory cannot be allocated.
    public func multiply(_ a: UnsafePointer<Float>, m: Int, bias: UnsafePointer<Float>?, relu: Bool,
                         into c: UnsafeMutablePointer<Float>, threads: Int) -> Bool {
        multiply(a, m: m, bias: bias, relu: relu, into: c, threads: threads, preprocessing: nil)
    }

    /// As `multiply`, each row of `a` preprocessed by `preprocessing` as it is quantized (a first
    /// layer fed raw features; rows of bytes with `byteScale`, see `withPrologue`): the values
    /// `Preprocessor` would have written, never stored.
    func multiply(_ a: UnsafeRawPointer, m: Int, bias: UnsafePointer<Float>?, relu: Bool,
                  into c: UnsafeMutablePointer<Float>, threads: Int, preprocessing: RowPreprocessing?, byteScale: Float? = nil) -> Bool {
        scales.withUnsafeBufferPointer { scales in
            withKernelInput(inputQuantization) { input in
                RowPreprocessing.withPrologue(preprocessing, byteScale: byteScale) { prologue in
                    nn_i8_gemm(kernel.code, Int32(activationBits), m, panels.columns, panels.rows, a, panels.rows, panels.pointer, scales.baseAddress,
                               input, prologue, c, panels.columns, bias, relu, Int32(threads))
                }
            }
        }
    }

    /// Quantizes `count` samples of `size` values (x[count][size]) to u8, each as a whole (8 bits):
    /// with `inputQuantization`'s scale and zero point when it is set, else with the sample's own
    /// range; `scales` and `zeroPoints` get one value per sample. What a convolution's samples go
    /// through once, before their windows become rows of `multiply(quantized:)`.
    public func quantizeSamples(_ x: UnsafePointer<Float>, count: Int, size: Int, into q: UnsafeMutablePointer<UInt8>,
                                scales: UnsafeMutablePointer<Float>, zeroPoints: UnsafeMutablePointer<Int32>) {
        withKernelInput(inputQuantization) { input in
            nn_i8_quantize_samples(kernel.code, x, count, size, input, q, scales, zeroPoints)
        }
    }

    /// c[m][columns] = dequantized(a B) (+ bias, then ReLU when `relu`) for u8 rows `a[m][rows]`
    /// already quantized with 8 bits, row i with `rowScales[i / rowsPerScale]` and
    /// `rowZeroPoints[i / rowsPerScale]` (a convolution's windows, `rowsPerScale` to a sample).
    /// False, with nothing written, when scratch memory cannot be allocated.
    public func multiply(quantized a: UnsafePointer<UInt8>, m: Int, rowScales: UnsafePointer<Float>, rowZeroPoints: UnsafePointer<Int32>,
                         rowsPerScale: Int, bias: UnsafePointer<Float>?, relu: Bool, into c: UnsafeMutablePointer<Float>, threads: Int) -> Bool {
        scales.withUnsafeBufferPointer { scales in
            nn_i8_gemm_u8(kernel.code, m, panels.columns, panels.rows, a, panels.rows, panels.pointer, scales.baseAddress,
                          rowScales, rowZeroPoints, rowsPerScale, c, panels.columns, bias, relu, Int32(threads))
        }
    }

    /// The exact int32 sums c[m][columns] = a B for u8 rows `a[m][rows]`, each value at most
    /// 2^activationBits - 1 (what tests compare).
    public func integerProduct(_ a: UnsafePointer<UInt8>, m: Int, into c: UnsafeMutablePointer<Int32>, threads: Int) -> Bool {
        nn_i8_gemm_s32(kernel.code, Int32(activationBits), m, panels.columns, panels.rows, a, panels.rows, panels.pointer, c, panels.columns, Int32(threads))
    }

    /// The quantization of one row as `kernel`'s products do it with `bits` (8 or 7) bits: u8
    /// values, scale and zero point (for tests and references; every kernel gives the same).
    public static func quantizeRow(_ x: [Float], kernel: Int8Kernel, bits: Int = 8) -> (values: [UInt8], scale: Float, zeroPoint: Int32) {
        var q = [UInt8](repeating: 0, count: x.count), scale: Float = 0, zero: Int32 = 0
        x.withUnsafeBufferPointer { nn_i8_quantize_row(kernel.code, Int32(bits), $0.baseAddress, x.count, &q, &scale, &zero) }
        return (q, scale, zero)
    }
}

/// An int8 convolution of one input channel (stride 1, a window at most 8 wide, at most 16
/// filters) packed for the direct kernel (`nn_i8_conv`: AVX512-VNNI, or AVX2 on bytes for 7-bit
/// weights and on int16 pairs for others): each sample is quantized once, not window by window, so
/// a small CNN's first convolution gains from int8 instead of running as f32.
public final class PackedInt8Convolution: Sendable {
    /// The direct kernel that runs it: `vnni`, `avx2Maddubs` or `avx2` (int16 pairs).
    public let kernel: Int8Kernel
    private let packed: PackedPanels<Int8>
    private let scales: [Float]
    private let filters: Int
    /// The calibrated quantization of the samples (format 1.4), or nil: each sample its own.
    public let inputQuantization: InputQuantization?

    /// Packs `values` ([kh][kw][1][filters], cross-correlation form, each in -127...127) with
    /// one scale per filter for the direct kernel of the int8 `family` (`kernel(for:geometry:family:)`);
    /// nil when there is none or memory cannot be allocated.
    public init?(_ values: [Int8], scales: [Float], geometry g: SpatialGeometry, family: Int8Kernel, input: InputQuantization? = nil) {
        let kh = g.window[0], kw = g.window[1], filters = g.outputShape[2]
        precondition(values.count == kh * kw * g.inputShape[2] * filters && scales.count == filters, "int8 kernel and scales do not match")
        guard let kernel = Self.kernel(for: values, geometry: g, family: family),
              let packed = PackedPanels<Int8>(rows: kh * kw, columns: filters, count: nn_i8_conv_packed_bytes(kh, kw, filters))
        else { return nil }
        self.kernel = kernel
        self.packed = packed
        self.scales = scales
        self.filters = filters
        inputQuantization = input
        values.withUnsafeBufferPointer { nn_i8_conv_pack($0.baseAddress, kh, kw, filters, packed.pointer) }
    }

    /// The direct kernel that convolves `values` with geometry `g` for the engine's int8 `family`,
    /// or nil: AVX512-VNNI for `vnni` and `amx` (at most 16 filters); for `avx2` (at most 8
    /// filters), AVX2 on bytes when the weights allow its `vpmaddubsw` (`nn_i8_conv_maddubs_exact`:
    /// 7-bit weights), else on int16 pairs (`vpmaddwd`). All take one input channel, stride 1, a
    /// window at most 8 wide and 64 high, and run only where the CPU has them.
    public static func kernel(for values: [Int8], geometry g: SpatialGeometry, family: Int8Kernel?) -> Int8Kernel? {
        let kh = g.window[0], kw = g.window[1], filters = g.outputShape[2]
        guard g.inputShape[2] == 1, g.strides == [1, 1], nn_i8_conv_packed_bytes(kh, kw, filters) > 0,
              values.count == kh * kw * filters else { return nil }
        let kernel: Int8Kernel
        switch family {
        case .vnni?, .amx?: kernel = .vnni
        case .avx2?, .avx2Maddubs?:
            let bytes = values.withUnsafeBufferPointer { nn_i8_conv_maddubs_exact($0.baseAddress, kh, kw, filters) }
            kernel = bytes ? .avx2Maddubs : .avx2
        default: return nil
        }
        return nn_i8_conv_supported(kernel.code, filters) ? kernel : nil
    }

    /// The convolution of `count` samples (+ bias, then ReLU when `relu`; with `pool`, that max
    /// pooling of each sample), HWC, into `output`. False, with nothing written, when the
    /// geometry is not the one packed or memory cannot be allocated.
    public func convolve(_ input: UnsafePointer<Float>, count: Int, geometry g: SpatialGeometry, bias: UnsafePointer<Float>?,
                         relu: Bool, pool: SpatialGeometry? = nil, into output: UnsafeMutablePointer<Float>, threads: Int) -> Bool {
        var geometry = SpatialKernels.kernelGeometry(g)
        var pooling = pool.map(SpatialKernels.kernelGeometry) ?? nn_spatial()
        return scales.withUnsafeBufferPointer { scales in
            withKernelInput(inputQuantization) { fixed in
                withUnsafePointer(to: &pooling) { pooling in
                    nn_i8_conv(kernel.code, count, &geometry, input, packed.pointer, filters, scales.baseAddress, fixed,
                               bias, relu, pool == nil ? nil : pooling, output, Int32(threads))
                }
            }
        }
    }
}

/// `body` given the kernels' form of a calibrated input quantization, or nil for none (each row or
/// sample then measured on its own).
private func withKernelInput<R>(_ quantization: InputQuantization?, _ body: (UnsafePointer<nn_i8_input>?) -> R) -> R {
    guard let quantization else { return body(nil) }
    var input = nn_i8_input(scale: quantization.scale, zero: Int32(quantization.zeroPoint))
    return withUnsafePointer(to: &input) { body($0) }
}

/// An f32 matrix B[k][n] rounded to bf16 and packed once for a `BFloat16Kernel`.
public final class PackedBFloat16Matrix: Sendable {
    public let kernel: BFloat16Kernel
    /// The packed B (bf16 bit patterns), with its `rows` (k) and `columns` (n).
    public let panels: PackedPanels<UInt16>

    /// Packs the row-major `rows` x `columns` matrix at `b` (rounded to bf16). Nil when the
    /// memory cannot be allocated.
    public init?(_ b: UnsafePointer<Float>, rows: Int, columns: Int, kernel: BFloat16Kernel) {
        // 32 values of slack past the panels, which the kernels' last loads may touch.
        guard let panels = PackedPanels<UInt16>(rows: rows, columns: columns, count: nn_bf16_packed_count(kernel.code, rows, columns) + 32)
        else { return nil }
        self.kernel = kernel
        self.panels = panels
        nn_bf16_pack(kernel.code, b, columns, rows, columns, panels.pointer)
    }

    /// c[m][columns] = bf16(a) B (+ bias, then ReLU when `relu`). False, with nothing written,
    /// when scratch memory cannot be allocated.
    public func multiply(_ a: UnsafePointer<Float>, m: Int, bias: UnsafePointer<Float>?, relu: Bool,
                         into c: UnsafeMutablePointer<Float>, threads: Int) -> Bool {
        nn_bf16_gemm(kernel.code, m, panels.columns, panels.rows, a, panels.rows, panels.pointer, c, panels.columns, bias, relu, Int32(threads))
    }
}

/// A weight matrix B[rows][columns] packed into a kernel's panels: memory aligned to 64 bytes
/// (a cache line and an AVX-512 vector), rounded up to whole 64-byte lines, owned and freed
/// with it. The f32, int8 and bf16 matrices each keep one.
public final class PackedPanels<Element>: @unchecked Sendable {
    // Sendable: written once, by the packing in its owner's initializer; only read afterwards.
    public let rows: Int
    public let columns: Int
    let pointer: UnsafeMutablePointer<Element>

    /// Room for `count` elements (the panels and the kernel's slack); nil when it cannot be
    /// allocated.
    init?(rows: Int, columns: Int, count: Int) {
        let (bytes, overflow) = max(count, 1).multipliedReportingOverflow(by: MemoryLayout<Element>.stride)
        guard !overflow, bytes <= Int.max - 63, let raw = aligned_alloc(64, (bytes + 63) / 64 * 64) else { return nil }
        self.rows = rows
        self.columns = columns
        pointer = raw.bindMemory(to: Element.self, capacity: count)
    }

    deinit { free(pointer) }
}

extension RowPreprocessing {
    /// Calls `body` with the kernels' form of `preprocessing`, or nil. With `byteScale`, the rows
    /// are bytes, each read as `Float(byte) * byteScale` first (then no preprocessing is x * 1).
    static func withPrologue<R>(_ preprocessing: RowPreprocessing?, byteScale: Float? = nil,
                                _ body: (UnsafePointer<nn_prologue>?) -> R) -> R {
        var prologue: nn_prologue
        switch preprocessing ?? (byteScale == nil ? nil : .scale(factor: 1, offset: 0)) {
        case nil: return body(nil)
        case let .scale(factor, offset)?:
            prologue = nn_prologue(mean: nil, divisor: nil, factor: factor, offset: offset, bytes: false, byte_scale: 1)
        case let .zscore(mean, divisor)?:
            prologue = nn_prologue(mean: mean, divisor: divisor, factor: 1, offset: 0, bytes: false, byte_scale: 1)
        }
        if let byteScale {
            prologue.bytes = true
            prologue.byte_scale = byteScale
        }
        return withUnsafePointer(to: &prologue) { body($0) }
    }
}
