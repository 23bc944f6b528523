// nn-bench: in-process measurements for Benchmarks/bench.py (`make bench`). The measuring
// commands print one JSON object on standard output. Not part of the test suite and not installed.
//
//   nn-bench info                       OpenBLAS build, core and threads
//   nn-bench infer MODEL.nnm IMAGES.idx [--reps R] [--batch-reps R] [--single N] [--precision f32|f64]
//   nn-bench train-gemm --layers 784,256,10 [--batch 64] [--samples 60000] [--reps R] [--f64] [--recompute]
//   nn-bench load MODEL.nnm [--reps R] [--no-verify]
//   nn-bench peak [--iterations N]      the register-only f32 FMA peak, 1 and 2 threads
//   nn-bench gemm --shape M,N,K [--reps R] [--threads T]   our kernels vs OpenBLAS on one product
// and for working on the engine and the trainer (NN_BENCH_CLOCK=cpu times CPU seconds):
//   nn-bench train [--recipe blog|capstone] [--epochs E] [--f64] [--limit N]
//   nn-bench outputs MODEL.nnm IMAGES.idx OUT.bin [--batch N] [--precision f32|f64]   raw outputs, to compare builds
//   nn-bench classify MODEL.nnm IMAGES.idx   nn-infer's one-image work without the argument parser
import NNCore
import NNData
import NNEngine
import NNFormat
import NNRandom
import NNTrain
#if canImport(Glibc)
import Glibc
#endif

// MARK: Helpers

/// Wall-clock seconds; with NN_BENCH_CLOCK=cpu, the process's CPU seconds instead (for
/// comparing code changes on a busy machine, with OPENBLAS_NUM_THREADS=1).
let useCPUClock = getenv("NN_BENCH_CLOCK").map { String(cString: $0) == "cpu" } ?? false
func now() -> Double {
    guard useCPUClock else { return Clock.monotonicSeconds() }
    var ts = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    guard !s.isEmpty else { return .nan }
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

func printError(_ message: String) {
    let line = "nn-bench: \(message)\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
}

func fail(_ message: String) -> Never {
    printError(message)
    exit(64)
}

/// Minimal JSON object printer: keys in insertion order, numbers, strings, number arrays.
struct JSONOut {
    var fields: [(String, String)] = []
    mutating func set(_ key: String, _ value: Double) { fields.append((key, value.isFinite ? "\(value)" : "null")) }
    mutating func set(_ key: String, _ value: Int) { fields.append((key, "\(value)")) }
    mutating func set(_ key: String, _ value: String) { fields.append((key, quote(value))) }
    mutating func set(_ key: String, _ values: [Double]) { fields.append((key, "[" + values.map { "\($0)" }.joined(separator: ", ") + "]")) }
    func quote(_ s: String) -> String {
        var out = "\""
        for c in s.unicodeScalars {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(c)
            }
        }
        return out + "\""
    }
    func emit() { print("{" + fields.map { "\(quote($0.0)): \($0.1)" }.joined(separator: ", ") + "}") }
}

struct Options {
    var positional: [String] = []
    var values: [String: String] = [:]
    var flags: Set<String> = []
    init(_ args: ArraySlice<String>, flags known: Set<String>) {
        var it = args.makeIterator()
        while let a = it.next() {
            if a.hasPrefix("--") {
                if known.contains(a) { flags.insert(a) } else if let v = it.next() { values[a] = v } else { fail("\(a) needs a value") }
            } else {
                positional.append(a)
            }
        }
    }
    func int(_ key: String, _ fallback: Int) -> Int { values[key].flatMap(Int.init) ?? fallback }
}

/// A 64-byte-aligned buffer of `count` scalars filled with a deterministic pattern.
final class Buffer<S: BinaryFloatingPoint> {
    let pointer: UnsafeMutablePointer<S>
    let count: Int
    init(_ count: Int, fill: Bool = true) {
        self.count = max(count, 1)
        let raw = UnsafeMutableRawPointer.allocate(byteCount: self.count * MemoryLayout<S>.stride, alignment: 64)
        pointer = raw.bindMemory(to: S.self, capacity: self.count)
        for i in 0..<self.count { pointer[i] = fill ? S(Double((i &* 7919) % 1000) / 1000 - 0.5) * S(0.05) : 0 }
    }
    deinit { UnsafeMutableRawPointer(pointer).deallocate() }
}

/// Raw CBLAS products with row-major storage, for the "raw OpenBLAS" reference timings.
extension BLASScalar {
    static func rawGemm(_ ta: Bool, _ tb: Bool, _ m: Int, _ n: Int, _ k: Int, _ a: UnsafePointer<Self>, _ lda: Int,
                        _ b: UnsafePointer<Self>, _ ldb: Int, _ c: UnsafeMutablePointer<Self>, _ ldc: Int) {
        gemm(transposeA: ta, transposeB: tb, m: m, n: n, k: k, alpha: 1, a: a, lda: lda, b: b, ldb: ldb, beta: 0, c: c, ldc: ldc)
    }
    /// y = W^T x with W stored [rows = in, cols = out].
    static func rawGemv(_ rows: Int, _ cols: Int, _ a: UnsafePointer<Self>, _ x: UnsafePointer<Self>, _ y: UnsafeMutablePointer<Self>) {
        gemv(transpose: true, rows: rows, cols: cols, alpha: 1, a: a, lda: cols, x: x, beta: 0, y: y)
    }
}

// MARK: info

func info() {
    var out = JSONOut()
    out.set("openblas_config", BLAS.configuration)
    out.set("openblas_core", BLAS.coreName)
    out.set("openblas_threads", BLAS.threadCount)
    out.set("OPENBLAS_CORETYPE", getenv("OPENBLAS_CORETYPE").map { String(cString: $0) } ?? "(unset)")
    out.set("OPENBLAS_L2_SIZE", getenv("OPENBLAS_L2_SIZE").map { String(cString: $0) } ?? "(unset)")
    out.set("cpu_flags", MatrixKernel.cpuFlags)
    out.set("best_kernel", MatrixKernel.best.rawValue)
    out.set("selected_kernel", MatrixKernel.selected.kernel.rawValue)
    out.emit()
}

// MARK: infer

/// Engine throughput at batch = every image, and per-call latency at batch 1, with the raw
/// BLAS products of the same shapes for comparison (dense models; for a CNN only the engine).
func infer<S: BLASScalar>(_: S.Type, model: Model, images: IDXImages, reps: Int, batchReps: Int, singles: Int) throws {
    // OpenBLAS loads (and its workers start polling) with the first raw product, after the engine's
    // batch timings.
    let engine = try InferenceEngine<S>(model: model)
    let n = images.count, features = images.featureCount
    let classes = engine.outputSize
    let input: [S] = images.features.map { S($0) }
    var output = [S](repeating: 0, count: n * classes)
    let sizes = [model.metadata.input.features] + model.metadata.layers.map(\.outputSize)
    let dense = model.metadata.layers.allSatisfy { $0.kind == .dense }
    let flopsPerImage = zip(sizes, sizes.dropFirst()).reduce(0.0) { $0 + 2 * Double($1.0) * Double($1.1) }

    // Warm up (grows the engine's buffers, faults pages in).
    input.withUnsafeBufferPointer { x in
        output.withUnsafeMutableBufferPointer { y in engine.predict(raw: x.baseAddress!, count: n, into: y.baseAddress!) }
    }
    var batchTimes: [Double] = []
    for _ in 0..<batchReps {
        let t0 = now()
        input.withUnsafeBufferPointer { x in
            output.withUnsafeMutableBufferPointer { y in engine.predict(raw: x.baseAddress!, count: n, into: y.baseAddress!) }
        }
        batchTimes.append(now() - t0)
    }

    // Raw products of the same shapes (weights copied into plain buffers, same input).
    let weights: [Buffer<S>] = !dense ? [] : model.metadata.layers.map { layer in
        let values = S.values(of: model.floatWeight(of: layer)!)
        let b = Buffer<S>(values.count, fill: false)
        for i in 0..<values.count { b.pointer[i] = values[i] }
        return b
    }
    // Only the dense models' raw forward uses them: a CNN's widest map times 10k images would
    // fill gigabytes (the pages' clearing then filled a CNN's profile).
    let widest = dense ? sizes.max()! : 0
    let bufA = Buffer<S>(n * widest), bufB = Buffer<S>(n * widest)
    func rawForward(count: Int, from x: UnsafePointer<S>) {
        var src = UnsafePointer(x), dst = bufB.pointer
        for l in 0..<weights.count {
            let k = sizes[l], m = sizes[l + 1]
            if count == 1 {
                S.rawGemv(k, m, weights[l].pointer, src, dst)
            } else {
                S.rawGemm(false, false, count, m, k, src, k, weights[l].pointer, m, dst, m)
            }
            src = UnsafePointer(dst)
            dst = dst == bufB.pointer ? bufA.pointer : bufB.pointer
        }
    }
    let rawInput = Buffer<S>(n * features)
    input.withUnsafeBufferPointer { x in rawInput.pointer.update(from: x.baseAddress!, count: n * features) }
    if dense { rawForward(count: n, from: rawInput.pointer) }
    var rawBatchTimes: [Double] = []
    for _ in 0..<(dense ? batchReps : 0) {
        let t0 = now()
        rawForward(count: n, from: rawInput.pointer)
        rawBatchTimes.append(now() - t0)
    }

    // Batch 1: `singles` calls on consecutive images, timed as a block per repetition.
    // As anchor.py: let the BLAS workers left polling by the batch runs go to sleep first.
    usleep(300_000)
    let calls = min(singles, n)
    var singleTimes: [Double] = [], rawSingleTimes: [Double] = []
    input.withUnsafeBufferPointer { x in
        output.withUnsafeMutableBufferPointer { y in
            for i in 0..<min(calls, 200) { engine.predict(raw: x.baseAddress! + i * features, count: 1, into: y.baseAddress! + i * classes) }
            for _ in 0..<reps {
                let t0 = now()
                for i in 0..<calls { engine.predict(raw: x.baseAddress! + i * features, count: 1, into: y.baseAddress! + i * classes) }
                singleTimes.append((now() - t0) / Double(calls))
            }
        }
    }
    for _ in 0..<(dense ? reps : 0) {
        let t0 = now()
        for i in 0..<calls { rawForward(count: 1, from: rawInput.pointer + i * features) }
        rawSingleTimes.append((now() - t0) / Double(calls))
    }

    let tb = median(batchTimes), t1 = median(singleTimes)
    var out = JSONOut()
    out.set("images", n)
    out.set("architecture", sizes.map(String.init).joined(separator: "-"))
    out.set("precision", S.dtype.rawValue)
    out.set("batch_seconds", batchTimes)
    out.set("batch_median_s", tb)
    out.set("batch_images_per_s", Double(n) / tb)
    if dense {
        let tr = median(rawBatchTimes)
        out.set("engine_gflops", flopsPerImage * Double(n) / tb / 1e9)
        out.set("raw_gemm_median_s", tr)
        out.set("raw_gemm_gflops", flopsPerImage * Double(n) / tr / 1e9)
        out.set("engine_vs_raw_gemm", tr / tb)
    }
    out.set("single_calls", calls)
    out.set("single_us", singleTimes.map { $0 * 1e6 })
    out.set("single_median_us", t1 * 1e6)
    out.set("single_images_per_s", 1 / t1)
    if dense { out.set("raw_gemv_median_us", median(rawSingleTimes) * 1e6) }
    out.set("openblas_core", BLAS.coreName)
    out.set("kernels", engine.kernelDescription)
    out.emit()
}

// MARK: peak and gemm

/// The register-only FMA peak of the engine's vector kernel's width (the best, or the one
/// `NNM_KERNELS` names: avx2 measures the 256-bit peak on an AVX-512 CPU), on 1 and 2 threads:
/// the ceiling the GEMM numbers are a fraction of.
func peak(iterations: Int) {
    let selected = MatrixKernel.selected.kernel
    let kernel = selected == .avx2 || selected == .avx512 ? selected : MatrixKernel.best
    var out = JSONOut()
    out.set("kernel", kernel.rawValue)
    out.set("cpu_flags", MatrixKernel.cpuFlags)
    for threads in [1, 2] {
        out.set("peak_gflops_\(threads)", kernel.fmaPeak(threads: threads, iterations: iterations))
    }
    out.emit()
}

/// One product C[m][n] = A[m][k] B[k][n], timed on each of our kernels this CPU runs (B packed
/// once, as the engine does) and on OpenBLAS, with the same thread count; with `bestOnly`, on
/// the kernel the engine picks alone (`MatrixKernel.selected`: the best, or `NNM_KERNELS`'s).
func gemm(m: Int, n: Int, k: Int, reps: Int, threads: Int, bestOnly: Bool) {
    let a = Buffer<Float>(m * k), b = Buffer<Float>(k * n), c = Buffer<Float>(m * n, fill: false)
    let flops = 2 * Double(m) * Double(n) * Double(k)
    var out = JSONOut()
    out.set("shape", "\(m)x\(k) . \(k)x\(n)")
    if bestOnly { out.set("kernel", MatrixKernel.selected.kernel.rawValue) }
    out.set("threads", threads)
    func time(_ body: () -> Void) -> Double {
        body()
        var times: [Double] = []
        let inner = max(1, Int(2e8 / flops))
        for _ in 0..<reps {
            let t0 = now()
            for _ in 0..<inner { body() }
            times.append((now() - t0) / Double(inner))
        }
        return flops / median(times) / 1e9
    }
    for kernel in MatrixKernel.allCases where kernel != .openblas && kernel.isSupported && (!bestOnly || kernel == MatrixKernel.selected.kernel) {
        guard let packed = PackedMatrix(b.pointer, rows: k, columns: n, kernel: kernel) else { continue }
        out.set("\(kernel.rawValue)_gflops", time { _ = packed.multiply(a.pointer, m: m, bias: nil, relu: false, into: c.pointer, threads: threads) })
    }
    if !bestOnly {
        let saved = BLAS.threadCount
        BLAS.setThreadCount(threads)
        out.set("openblas_gflops", time { Float.rawGemm(false, false, m, n, k, a.pointer, k, b.pointer, n, c.pointer, n) })
        BLAS.setThreadCount(saved)
        out.set("openblas_core", BLAS.coreName)
    }
    out.emit()
}

// MARK: train-gemm

/// The products of one training epoch (forward, weight gradients, deltas), back to back on raw
/// BLAS: what the trainer's time would be if everything but the products were free.
func trainGemm<S: BLASScalar>(_: S.Type, sizes: [Int], batch: Int, samples: Int, reps: Int, recompute: Bool) {
    let layers = sizes.count - 1
    let w = (0..<layers).map { Buffer<S>(sizes[$0] * sizes[$0 + 1]) }
    let g = (0..<layers).map { Buffer<S>(sizes[$0] * sizes[$0 + 1], fill: false) }
    let x = Buffer<S>(batch * sizes[0])
    let a = (0..<layers).map { Buffer<S>(batch * sizes[$0 + 1]) }
    let z = (0..<layers).map { Buffer<S>(batch * sizes[$0 + 1], fill: false) }
    let d = (0..<layers).map { Buffer<S>(batch * sizes[$0 + 1]) }
    let steps = (samples + batch - 1) / batch
    var flops = 0.0
    func epoch() {
        flops = 0
        for s in 0..<steps {
            let m = min(batch, samples - s * batch)
            for l in 0..<layers {
                let input = l == 0 ? UnsafePointer(x.pointer) : UnsafePointer(a[l - 1].pointer)
                S.rawGemm(false, false, m, sizes[l + 1], sizes[l], input, sizes[l], w[l].pointer, sizes[l + 1], z[l].pointer, sizes[l + 1])
                flops += 2 * Double(m * sizes[l] * sizes[l + 1])
            }
            if recompute {
                // Blog loops: the capstone recomputes Z2 from the masked A1 (and both blog loops recompute Z1).
                for l in 0..<max(layers - 1, 0) {
                    let input = l == 0 ? UnsafePointer(x.pointer) : UnsafePointer(a[l - 1].pointer)
                    S.rawGemm(false, false, m, sizes[l + 1], sizes[l], input, sizes[l], w[l].pointer, sizes[l + 1], z[l].pointer, sizes[l + 1])
                    flops += 2 * Double(m * sizes[l] * sizes[l + 1])
                }
            }
            for l in stride(from: layers - 1, through: 0, by: -1) {
                let input = l == 0 ? UnsafePointer(x.pointer) : UnsafePointer(a[l - 1].pointer)
                S.rawGemm(true, false, sizes[l], sizes[l + 1], m, input, sizes[l], d[l].pointer, sizes[l + 1], g[l].pointer, sizes[l + 1])
                flops += 2 * Double(m * sizes[l] * sizes[l + 1])
                if l > 0 {
                    S.rawGemm(false, true, m, sizes[l], sizes[l + 1], d[l].pointer, sizes[l + 1], w[l].pointer, sizes[l + 1], d[l - 1].pointer, sizes[l])
                    flops += 2 * Double(m * sizes[l] * sizes[l + 1])
                }
            }
        }
    }
    epoch()
    var times: [Double] = []
    for _ in 0..<reps {
        let t0 = now()
        epoch()
        times.append(now() - t0)
    }
    let t = median(times)
    var out = JSONOut()
    out.set("architecture", sizes.map(String.init).joined(separator: "-"))
    out.set("precision", S.self == Float.self ? "f32" : "f64")
    out.set("batch", batch)
    out.set("samples", samples)
    out.set("epoch_gemm_seconds", times)
    out.set("epoch_gemm_median_s", t)
    out.set("flops_per_epoch", flops)
    out.set("raw_gflops", flops / t / 1e9)
    out.emit()
}

// MARK: train

/// The training loop of `nn-train` (shuffle, gather the batch, one trainer step) timed per epoch
/// in-process, without evaluation or checkpoints: for comparing trainer changes (with
/// NN_BENCH_CLOCK=cpu and OPENBLAS_NUM_THREADS=1 on a busy machine). The figures reported in
/// BENCHMARKS.md come from nn-train itself.
func train<S: BLASScalar>(_: S.Type, recipe: TrainingRecipe, data: LabelledImages, epochs: Int) {
    let (mean, std) = data.featureStatistics()
    let features = data.featureCount, n = data.count, batch = recipe.batchSize
    var x = [S](repeating: 0, count: n * features)
    for i in 0..<n {
        for j in 0..<features {
            let c = Double(data.features[i * features + j]) - mean[j]
            x[i * features + j] = S(std[j] != 0 ? c / std[j] : c)
        }
    }
    var random = NumPyRandomState(seed: recipe.seed)
    let trainer = Trainer<S>(network: Network<S>(recipe: recipe, random: &random), recipe: recipe, maxBatch: max(batch, 1024))
    var batchX = [S](repeating: 0, count: batch * features)
    var batchLabels = [Int32](repeating: 0, count: batch)
    var times: [Double] = [], losses: [Double] = []
    for _ in 0..<epochs {
        let order = random.permutation(n)
        let t0 = now()
        var lossSum = 0.0
        for start in stride(from: 0, to: n, by: batch) {
            let count = min(batch, n - start)
            x.withUnsafeBufferPointer { src in
                batchX.withUnsafeMutableBufferPointer { dst in
                    for r in 0..<count {
                        (dst.baseAddress! + r * features).update(from: src.baseAddress! + order[start + r] * features, count: features)
                    }
                }
            }
            for r in 0..<count { batchLabels[r] = data.labels[order[start + r]] }
            lossSum += batchX.withUnsafeBufferPointer { xb in
                batchLabels.withUnsafeBufferPointer { l in
                    trainer.trainStep(xb.baseAddress!, labels: UnsafeBufferPointer(rebasing: l[0..<count]), random: &random)
                } * Double(count)
            }
        }
        times.append(now() - t0)
        losses.append(lossSum / Double(n))
    }
    var out = JSONOut()
    out.set("architecture", recipe.layerSizes.map(String.init).joined(separator: "-"))
    out.set("precision", S.dtype.rawValue)
    out.set("epoch_seconds", times)
    out.set("median_epoch_s", median(times))
    out.set("train_loss", losses)
    out.emit()
}

// MARK: load

/// Open (map, validate, optionally verify checksums) and the first one-image inference of a
/// model, each repetition from scratch (the file stays in the page cache).
func load(path: String, reps: Int, verify: Bool) throws {
    var openTimes: [Double] = [], firstTimes: [Double] = [], totalTimes: [Double] = [], scanTimes: [Double] = []
    var parameters = 0
    var checksum = 0.0
    for _ in 0..<reps {
        let t0 = now()
        let model = try NNMFormat.read(path: path, verifyChecksums: verify)
        let t1 = now()
        let engine = try InferenceEngine<Float>(model: model)
        let x = [Float](repeating: 100, count: engine.inputSize)
        let y = engine.predict(raw: x, count: 1)
        let t2 = now()
        checksum += Double(y[0])
        parameters = model.metadata.layers.reduce(0) { $0 + $1.inputSize * $1.outputSize + $1.outputSize }
        openTimes.append(t1 - t0)
        firstTimes.append(t2 - t1)
        totalTimes.append(t2 - t0)
        // How much of opening is Model.validate()'s NaN scan (which NNFormat.read runs): run it
        // again now that every page is mapped.
        let t3 = now()
        _ = try model.validate()
        scanTimes.append(now() - t3)
    }
    var out = JSONOut()
    out.set("model", path)
    out.set("parameters", parameters)
    out.set("verify", verify ? "yes" : "no")
    out.set("open_ms", openTimes.map { $0 * 1e3 })
    out.set("open_median_ms", median(openTimes) * 1e3)
    out.set("first_inference_median_ms", median(firstTimes) * 1e3)
    out.set("value_scan_median_ms", median(scanTimes) * 1e3)
    out.set("total_ms", totalTimes.map { $0 * 1e3 })
    out.set("total_median_ms", median(totalTimes) * 1e3)
    out.set("output_check", checksum)
    out.emit()
}

// MARK: main

let arguments = CommandLine.arguments
guard arguments.count >= 2 else {
    fail("usage: nn-bench info | infer MODEL IMAGES | train-gemm --layers L | load MODEL")
}
do {
    switch arguments[1] {
    case "info":
        info()
    case "infer":
        let o = Options(arguments.dropFirst(2), flags: [])
        guard o.positional.count == 2 else { fail("infer MODEL.nnm IMAGES.idx [--reps R] [--single N] [--precision f32|f64]") }
        let model = try NNMFormat.read(path: o.positional[0])
        let images = try IDXImages(path: o.positional[1])
        let reps = o.int("--reps", 7), singles = o.int("--single", 2000), batchReps = o.int("--batch-reps", reps)
        if o.values["--precision"] == "f64" {
            try infer(Double.self, model: model, images: images, reps: reps, batchReps: batchReps, singles: singles)
        } else {
            try infer(Float.self, model: model, images: images, reps: reps, batchReps: batchReps, singles: singles)
        }
    case "train-gemm":
        let o = Options(arguments.dropFirst(2), flags: ["--f64", "--recompute"])
        guard let spec = o.values["--layers"] else { fail("train-gemm needs --layers, e.g. 784,256,10") }
        let sizes = spec.split(separator: ",").compactMap { Int($0) }
        let batch = o.int("--batch", 64), samples = o.int("--samples", 60000), reps = o.int("--reps", 5)
        if o.flags.contains("--f64") {
            trainGemm(Double.self, sizes: sizes, batch: batch, samples: samples, reps: reps, recompute: o.flags.contains("--recompute"))
        } else {
            trainGemm(Float.self, sizes: sizes, batch: batch, samples: samples, reps: reps, recompute: o.flags.contains("--recompute"))
        }
    case "train":
        let o = Options(arguments.dropFirst(2), flags: ["--f64"])
        guard let preset = RecipePreset(rawValue: o.values["--recipe"] ?? "blog") else { fail("--recipe blog|capstone|nielsen|binary") }
        let dir = o.values["--data"] ?? "/usr/share/datasets/fashion-mnist"
        var data = try LabelledImages(images: dir + "/train-images-idx3-ubyte.gz", labels: dir + "/train-labels-idx1-ubyte.gz")
        if let limit = o.values["--limit"].flatMap(Int.init) { data = data.prefix(limit) }
        if let classes = preset.classes { data = data.selecting(classes: classes) }
        let epochs = o.int("--epochs", 3)
        if o.flags.contains("--f64") {
            train(Double.self, recipe: preset.recipe, data: data, epochs: epochs)
        } else {
            train(Float.self, recipe: preset.recipe, data: data, epochs: epochs)
        }
    case "classify":
        // What `nn-infer MODEL IMAGES` does for a small file (open and verify the model, stream the
        // images, predict, print each image's top 3), without the argument parser: shows what the
        // command-line layer adds to a cold one-image run.
        let o = Options(arguments.dropFirst(2), flags: [])
        guard o.positional.count == 2 else { fail("classify MODEL.nnm IMAGES.idx") }
        let model = try NNMFormat.read(path: o.positional[0])
        _ = try model.validate()  // nn-infer's warnings pass
        let stream = try IDXImageStream(path: o.positional[1], batchSize: 1024)
        let engine = try InferenceEngine<Float>(model: model)
        let classes = engine.outputSize
        while let batch = try stream.nextBatch() {
            let y = engine.predict(raw: batch.features, count: batch.count)
            for i in 0..<batch.count {
                let row = Array(y[(i * classes)..<((i + 1) * classes)])
                let top = row.indices.sorted { row[$0] > row[$1] }.prefix(3)
                print("\(batch.startIndex + i) " + top.map { "\($0) \(row[$0])" }.joined(separator: " | "))
            }
        }
    case "outputs":
        // Raw engine outputs for every image, for checking that engine changes keep results.
        let o = Options(arguments.dropFirst(2), flags: [])
        guard o.positional.count == 3 else { fail("outputs MODEL.nnm IMAGES.idx OUT.bin [--batch N] [--precision f32|f64]") }
        let model = try NNMFormat.read(path: o.positional[0])
        let images = try IDXImages(path: o.positional[1])
        let batch = o.int("--batch", images.count)
        var bytes: [UInt8] = []
        func run<S: BLASScalar>(_: S.Type) throws {
            let engine = try InferenceEngine<S>(model: model)
            let x = images.features.map { S($0) }
            var start = 0
            while start < images.count {
                let n = min(batch, images.count - start)
                let y = engine.predict(raw: Array(x[(start * images.featureCount)..<((start + n) * images.featureCount)]), count: n)
                y.withUnsafeBytes { bytes.append(contentsOf: $0) }
                start += n
            }
        }
        if o.values["--precision"] == "f64" { try run(Double.self) } else { try run(Float.self) }
        let fd = open(o.positional[2], O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
    case "peak":
        let o = Options(arguments.dropFirst(2), flags: [])
        peak(iterations: o.int("--iterations", 100_000_000))
    case "gemm":
        let o = Options(arguments.dropFirst(2), flags: ["--best-only"])
        let shape = (o.values["--shape"] ?? "668,256,784").split(separator: ",").compactMap { Int($0) }
        guard shape.count == 3, shape.allSatisfy({ $0 > 0 }) else { fail("gemm --shape M,N,K (positive)") }
        gemm(m: shape[0], n: shape[1], k: shape[2], reps: o.int("--reps", 9), threads: o.int("--threads", 2),
             bestOnly: o.flags.contains("--best-only"))
    case "load":
        let o = Options(arguments.dropFirst(2), flags: ["--no-verify"])
        guard o.positional.count == 1 else { fail("load MODEL.nnm [--reps R] [--no-verify]") }
        try load(path: o.positional[0], reps: o.int("--reps", 7), verify: !o.flags.contains("--no-verify"))
    default:
        fail("unknown command \(arguments[1])")
    }
} catch {
    printError("\(error)")
    exit(65)
}
