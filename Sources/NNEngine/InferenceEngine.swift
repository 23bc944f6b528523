import NNCore
internal import NNKernels

/// Read-only parameters in the compute type: a view into the model's storage when the stored
/// dtype already matches (zero copy from a mapped file), or a converted copy.
final class ParameterBuffer<Scalar: BLASScalar>: @unchecked Sendable {
    // Sendable: never mutated after init.
    let pointer: UnsafePointer<Scalar>
    let count: Int
    private let owner: TensorStorage?
    private let allocated: UnsafeMutableBufferPointer<Scalar>?

    init(_ tensor: Tensor) {
        count = tensor.count
        let aligned = Int(bitPattern: tensor.bytes.baseAddress) % MemoryLayout<Scalar>.alignment == 0
        if tensor.dtype == Scalar.dtype, aligned, let base = tensor.bytes.baseAddress {
            owner = tensor.storage
            allocated = nil
            pointer = base.assumingMemoryBound(to: Scalar.self)
        } else {
            let buffer = Self.allocate(Scalar.values(of: tensor))
            owner = nil
            allocated = buffer
            pointer = UnsafePointer(buffer.baseAddress!)
        }
    }

    /// A buffer holding a copy of `values`.
    init(copying values: [Scalar]) {
        count = values.count
        let buffer = Self.allocate(values)
        owner = nil
        allocated = buffer
        pointer = UnsafePointer(buffer.baseAddress!)
    }

    private static func allocate(_ values: [Scalar]) -> UnsafeMutableBufferPointer<Scalar> {
        let buffer = UnsafeMutableBufferPointer<Scalar>.allocate(capacity: max(values.count, 1))
        _ = buffer.initialize(from: values)
        return buffer
    }

    deinit { allocated?.deallocate() }
}

/// A model compiled for batched CPU inference in `Scalar` precision (Float or Double).
///
/// Build one per model and reuse it; it owns scratch buffers, so one engine must not be used
/// from two threads at once (make one per thread instead).
///
/// A batch runs through the network in blocks of rows (`blockRows`, sized so that a block's
/// widest activations take about 2 MiB): each block is preprocessed straight from the caller's
/// input into scratch memory (one pass, no copy first) and carried through every layer while it
/// is still in cache; the last layer writes to the caller's output. Scratch memory is bounded
/// by the block (one per thread when large batches run whole blocks per thread), not the batch.
/// On our f32, bf16 and int8 kernels a sample's outputs do not depend on the batch it comes in,
/// to the bit: a one-sample call multiplies by the same packed
/// weights with the batch product's arithmetic (`nn_gemm_row`), so nn-infer reading a pipe, a
/// server batching requests and a cluster cutting a file into partitions all print the same
/// numbers. On OpenBLAS (f64, `NNM_KERNELS=openblas`) one-sample calls use gemv
/// (`OneSamplePlan`), which agrees with the batch path to rounding, not to the bit.
public final class InferenceEngine<Scalar: BLASScalar> {
    /// A class, not a struct: a one-sample call reads its layers many times, and a struct of this
    /// many references cost a retain and a release for each on every copy (`swift_retain`: 517
    /// samples against the row kernel's 4,361 in a loop of one-image int8 calls; 204 as a class).
    final class PreparedLayer {
        let kind: Layer.Kind
        let inputSize: Int
        let outputSize: Int
        let activation: Activation
        /// Dense: [in, out]; conv2d: [kh * kw * in, filters] in cross-correlation form.
        let weight: ParameterBuffer<Scalar>?
        let bias: ParameterBuffer<Scalar>?
        let spatial: SpatialGeometry?
        /// Conv2d: samples whose im2col rows are built and multiplied at once.
        let samplesPerProduct: Int
        /// avg_pool2d: whether padded cells count in the divisor.
        let countIncludePad: Bool
        /// batch_norm (not folded): the per-channel parameters.
        let normalization: BatchNormParameters<Scalar>?
        /// An int8 weight (format 1.3): its values [k][n] in cross-correlation form, one scale
        /// per output and the calibrated quantization of its inputs (1.4) if any; `weight` then
        /// holds their f32 values for the other paths.
        let int8: (values: [Int8], scales: [Float], input: InputQuantization?)?
        /// Whether the weight is stored as bf16 and the layer asks for bf16 products (format 1.3
        /// `"compute": "bf16"`): the bf16 kernel may run it. Other bf16 weights run as f32.
        let storedBFloat16: Bool

        init(kind: Layer.Kind, inputSize: Int, outputSize: Int, activation: Activation, weight: ParameterBuffer<Scalar>?,
             bias: ParameterBuffer<Scalar>?, spatial: SpatialGeometry?, samplesPerProduct: Int, countIncludePad: Bool = false,
             normalization: BatchNormParameters<Scalar>? = nil, int8: (values: [Int8], scales: [Float], input: InputQuantization?)? = nil,
             storedBFloat16: Bool = false) {
            self.kind = kind
            self.inputSize = inputSize
            self.outputSize = outputSize
            self.activation = activation
            self.weight = weight
            self.bias = bias
            self.spatial = spatial
            self.samplesPerProduct = samplesPerProduct
            self.countIncludePad = countIncludePad
            self.normalization = normalization
            self.int8 = int8
            self.storedBFloat16 = storedBFloat16
        }
    }

    /// A layer's weight as one of our batch kernels multiplies it.
    enum PackedWeight {
        case f32(PackedMatrix)
        case bf16(PackedBFloat16Matrix)
        case int8(PackedInt8Matrix)
        /// An int8 convolution of one input channel on the direct kernel.
        case int8Convolution(PackedInt8Convolution)
    }

    public let metadata: ModelMetadata
    let layers: [PreparedLayer]
    let preprocessor: Preprocessor<Scalar>
    /// The widest layer input or output, in values per sample.
    let widest: Int
    /// Samples per block of the forward pass.
    let blockRows: Int
    /// Scratch memory of the threads that run blocks (one, or two in `blockParallel` calls),
    /// allocated on first use and grown with the blocks.
    private var scratch: [BlockScratch<Scalar>] = []
    /// The weight copies one-sample calls multiply by when the weights have no packed copy
    /// (OpenBLAS), made on the second one-sample call.
    private var oneSamplePlan: OneSamplePlan<Scalar>?
    private var singleSampleCalls = 0
    /// Values of the im2col rows of the convolution layers (0 without convolutions).
    private let columnCapacity: Int
    /// Bytes an int8 convolution's samples quantized once and their im2col rows of bytes take,
    /// with a scale and zero point per sample (`quantizedColumnsLayout`; 0 without int8
    /// convolutions).
    private let quantizedColumnBytes: Int
    /// Which code multiplies batches: one of our f32 kernels or OpenBLAS (always for f64).
    public let matrixKernel: MatrixKernel
    /// Per layer, its dense or conv2d weight packed for `matrixKernel`, made on the first call
    /// (f64 never pays for it); nil for other layers, for weights over `packLimit` and when the
    /// copy could not be allocated (those run on OpenBLAS).
    private var packedWeights: [PackedWeight?] = []
    /// The kernels for int8 and bf16 weights (nil: they run as f32 on `matrixKernel`).
    public let int8Kernel: Int8Kernel?
    public let bfloat16Kernel: BFloat16Kernel?
    private var packedWeightsMade = false
    /// While `observeInputs` runs: called with each layer's index and inputs before the layer runs.
    private var inputObserver: ((Int, UnsafeBufferPointer<Scalar>) -> Void)?

    /// Weights up to this many values get a packed copy for our kernels; larger ones (a layer of
    /// more than 256 MiB) stay on OpenBLAS rather than being held twice.
    static var packLimit: Int { 1 << 26 }

    /// Number of input features per sample.
    public var inputSize: Int { metadata.input.features }
    /// Number of outputs per sample.
    public var outputSize: Int { metadata.outputSize }

    /// Bytes of activations a block aims at: a few hundred rows of a 784-wide input, so a block
    /// stays in the L2/L3 caches between the preprocessing pass and the products that read it.
    static var blockBytes: Int { 2 << 20 }

    /// Prepares `model`, whose structure must be valid (`Model.validateStructure()`; the engine
    /// does not read the values to look for NaN, which would touch every page of a mapped file).
    ///
    /// With `foldingBatchNorm` (the default), a batch_norm layer that directly follows a dense
    /// or conv2d layer without activation is folded into that layer's weight and bias
    /// (`BatchNormParameters.folded`, which states how exact that is) and costs nothing at run
    /// time; other batch_norm layers (after pooling, flatten, an activation) run on their own.
    /// Without it every batch_norm layer runs on its own: the reference the folding is tested
    /// against.
    ///
    /// `kernel` chooses the f32 batch products (default: `MatrixKernel.selected`, the best this CPU
    /// runs unless `NNM_KERNELS` says otherwise); a kernel the CPU lacks is replaced by the best
    /// one it has. f64 engines always use OpenBLAS.
    public init(model: Model, foldingBatchNorm: Bool = true, kernel: MatrixKernel? = nil) throws(ModelError) {
        try model.validateStructure()
        metadata = model.metadata
        if Scalar.self == Float.self {
            let requested = kernel ?? MatrixKernel.selected.kernel
            matrixKernel = requested.isSupported ? requested : MatrixKernel.best
        } else {
            matrixKernel = .openblas
        }
        int8Kernel = Int8Kernel.matching(matrixKernel)
        bfloat16Kernel = BFloat16Kernel.matching(matrixKernel)
        var layers: [PreparedLayer] = []
        var columnCapacity = 0, quantizedColumnBytes = 0
        for layer in model.metadata.layers {
            if layer.kind == .batchNorm {
                let parameters = BatchNormParameters<Scalar>(layer: layer, model: model)
                if foldingBatchNorm, let previous = layers.last, previous.kind == .dense || previous.kind == .conv2d,
                   previous.activation == .identity, let weight = previous.weight {
                    let columns = previous.kind == .dense ? previous.outputSize : previous.spatial!.outputShape[2]
                    let (w, b) = parameters.folded(weight: weight.pointer, rows: weight.count / columns, columns: columns,
                                                   bias: previous.bias?.pointer)
                    layers[layers.count - 1] = PreparedLayer(kind: previous.kind, inputSize: previous.inputSize, outputSize: previous.outputSize,
                                                             activation: layer.activation, weight: ParameterBuffer(copying: w),
                                                             bias: ParameterBuffer(copying: b), spatial: previous.spatial,
                                                             samplesPerProduct: previous.samplesPerProduct)
                    continue
                }
                layers.append(PreparedLayer(kind: .batchNorm, inputSize: layer.inputSize, outputSize: layer.outputSize,
                                            activation: layer.activation, weight: nil, bias: nil, spatial: layer.spatial, samplesPerProduct: 0,
                                            normalization: parameters))
                continue
            }
            let stored = model.floatWeight(of: layer)
            var weight = stored.map { ParameterBuffer<Scalar>($0) }
            var int8: (values: [Int8], scales: [Float], input: InputQuantization?)?
            if layer.weightScale != nil, let q = model.tensor(layer.weight), q.dtype == .int8, let scales = model.tensor(layer.weightScale) {
                var values = q.floats()
                if layer.kind == .conv2d, layer.spatial?.convention == .convolution {
                    values = SpatialGeometry.flippedKernel(values, shape: q.shape)
                }
                int8 = (values.map { Int8($0) }, scales.floats(), layer.inputQuantization)
            }
            var samplesPerProduct = 0
            if layer.kind == .conv2d, let g = layer.spatial {
                if g.convention == .convolution, let stored {
                    weight = ParameterBuffer(copying: SpatialGeometry.flippedKernel(Scalar.values(of: stored), shape: stored.shape))
                }
                // Enough samples per product to keep BLAS busy, few enough that the rows stay
                // within about 4 MiB.
                let rowsPerSample = SpatialKernels.positions(g) * SpatialKernels.patchSize(g)
                samplesPerProduct = max(1, min(256, (4 << 20) / MemoryLayout<Scalar>.stride / max(rowsPerSample, 1)))
                columnCapacity = max(columnCapacity, samplesPerProduct * rowsPerSample)
                if int8 != nil {
                    quantizedColumnBytes = max(quantizedColumnBytes, Self.quantizedColumnsLayout(samples: samplesPerProduct, inputSize: layer.inputSize,
                                                                                                 rowsPerSample: rowsPerSample).bytes)
                }
            }
            layers.append(PreparedLayer(kind: layer.kind, inputSize: layer.inputSize, outputSize: layer.outputSize,
                                        activation: layer.activation, weight: weight,
                                        bias: model.tensor(layer.bias).map { ParameterBuffer($0) },
                                        spatial: layer.spatial, samplesPerProduct: samplesPerProduct,
                                        countIncludePad: layer.countIncludePad, int8: int8,
                                        storedBFloat16: model.tensor(layer.weight)?.dtype == .bfloat16 && layer.bfloat16Compute))
        }
        self.layers = layers
        self.columnCapacity = columnCapacity
        self.quantizedColumnBytes = quantizedColumnBytes
        preprocessor = Preprocessor(model: model)
        let widest = max(model.metadata.input.features, layers.map(\.outputSize).max() ?? 0, 1)
        self.widest = widest
        // At least 64 rows a product for the widest layer: a dense layer has a row a sample, a
        // convolution a row a sample and output position, so a CNN's block is not held to 64
        // samples (the PyTorch MNIST CNN's second convolution writes 147 KB a sample: 9.4 MB a
        // block of 64, against 2 MB for its 14; 4 % faster in f32, 9 % in int8).
        let widestLayer = layers.max { $0.outputSize < $1.outputSize }
        let positions = widestLayer.flatMap { $0.outputSize == widest ? $0.spatial.map { $0.outputShape[0] * $0.outputShape[1] } : nil } ?? 1
        blockRows = max((64 + positions - 1) / positions, min(4096, Self.blockBytes / (widest * MemoryLayout<Scalar>.stride)))
    }

    /// Which kernels run the products, for reports: e.g. "f32 batch: avx2 (ours, 2 threads);
    /// one sample: packed avx2". It says when large batches run whole blocks per thread
    /// (`forEachBlock`): two threads, and every product's weight small enough for a packed copy.
    public var kernelDescription: String {
        let threads = min(BLAS.threadCount, 2)
        let products = layers.filter { $0.kind == .dense || $0.kind == .conv2d }
        let packable = Scalar.self == Float.self && matrixKernel != .openblas && products.allSatisfy(hasPackableWeight)
        let blocks = threads >= 2 && packable
            ? ", batches of \(Self.blockParallelMinimum) or more as whole blocks per thread" : ""
        let batch = matrixKernel.productsDescription(threads: BLAS.threadCount, detail: blocks)
        let one = matrixKernel == .openblas ? "OpenBLAS gemv" : "the batch kernels' arithmetic, one row"
        var parts = ["\(Scalar.dtype.rawValue) batch: \(batch)"]
        let int8Layers = layers.filter { $0.int8 != nil && !isNarrow($0) && !runsDirectInt8Convolution($0) }
        if !int8Layers.isEmpty {
            // Dense layers quantize each row (7 bits for 7-bit weights), convolutions each sample
            // (`convolveQuantized`), calibrated layers with their stored scale.
            let calibrated = int8Layers.filter { $0.int8?.input != nil }.count
            let dense = int8Layers.filter { $0.kind == .dense && $0.int8?.input == nil }
            let convolutions = int8Layers.count - calibrated - dense.count
            let sevenBit = dense.filter { PackedInt8Matrix.activationBits(for: $0.int8!.values, input: nil) == 7 }.count
            var measured: [String] = []
            if !dense.isEmpty {
                measured.append(sevenBit == 0 ? "u8 activations per row" : sevenBit == dense.count ? "7-bit activations per row"
                                : "u8 activations per row (7-bit in \(sevenBit) of \(dense.count) layers)")
            }
            if convolutions > 0 { measured.append("u8 convolution inputs per sample") }
            let activations = calibrated == int8Layers.count ? "u8 activations with calibrated scales"
                : ((calibrated == 0 ? [] : ["u8 activations calibrated in \(calibrated) of \(int8Layers.count) layers"]) + measured).joined(separator: ", ")
            parts.append("int8 weights: " + (int8Kernel.map { "\(int8KernelNames(int8Layers, family: $0)) (ours, \(activations), int32 sums)" } ?? "as f32"))
        }
        if layers.contains(where: { $0.storedBFloat16 && $0.int8 == nil && !isNarrow($0) }) {
            parts.append("bf16 weights: " + (bfloat16Kernel.map { "\($0.rawValue) (ours)" } ?? "widened to f32"))
        }
        if layers.contains(where: runsDirectInt8Convolution) {
            let kernels = Int8Kernel.allCases.filter { kernel in layers.contains { directInt8Convolution($0) == kernel } }
            parts.append("int8 convolutions of one channel: \(kernels.map(\.rawValue).joined(separator: ", ")) direct (each sample quantized once)")
        }
        let narrow = layers.filter { ($0.int8 != nil || $0.storedBFloat16) && isNarrow($0) && !runsDirectInt8Convolution($0) }
        if !narrow.isEmpty {
            let kinds = [narrow.contains { $0.int8 != nil } ? "int8 convolutions" : nil,
                         narrow.contains { $0.int8 == nil } ? "bf16 layers" : nil].compactMap { $0 }
            parts.append("\(kinds.joined(separator: " and ")) of at most \(matrixKernel.narrowWidth) outputs or filters: as f32, from the input")
        }
        parts.append("one sample: \(one)")
        return parts.joined(separator: "; ")
    }

    /// The int8 kernels of `family` that run `layers` (int8 ones): one name, or, where some
    /// weights allow AVX2's byte kernel and some do not, each with its count of layers.
    private func int8KernelNames(_ layers: [PreparedLayer], family: Int8Kernel) -> String {
        let kernels = layers.map { layer in
            let int8 = layer.int8!, columns = int8.scales.count
            return int8.values.withUnsafeBufferPointer { family.exact(for: $0, rows: $0.count / columns, columns: columns) }
        }
        let distinct = Int8Kernel.allCases.filter(kernels.contains)
        guard distinct.count > 1 else { return distinct.first?.rawValue ?? family.rawValue }
        return distinct.map { kernel in "\(kernel.rawValue) in \(kernels.filter { $0 == kernel }.count) of \(kernels.count) layers" }
            .joined(separator: ", ")
    }

    /// Whether `layer` runs on the narrow f32 form of `matrixKernel`: a convolution whose filters
    /// fit it, or a dense layer whose outputs do, unless its weights are int8. An int8 dense
    /// layer of a few outputs (a classifier) runs on the int8 kernels: quantizing its rows costs
    /// about what the f32 form's reading them does at batch 10k (the cnn preset's 1352 x 10
    /// layer), and one sample's product is then not one FMA chain per output through every
    /// depth (1.25 k cycles there instead of 3.2-3.7 k on AVX512-VNNI, kernel_cycles.c).
    private func isNarrow(_ layer: PreparedLayer) -> Bool {
        switch layer.kind {
        case .conv2d: layer.spatial!.outputShape[2] <= matrixKernel.narrowWidth
        case .dense: layer.outputSize <= matrixKernel.narrowWidth && layer.int8 == nil
        default: false
        }
    }

    /// Whether `layer` is an int8 convolution a direct kernel runs (`PackedInt8Convolution`): one
    /// input channel and a few filters, on AVX512-VNNI (the VNNI and AMX families) or, for 7-bit
    /// weights, AVX2 on bytes.
    private func runsDirectInt8Convolution(_ layer: PreparedLayer) -> Bool {
        directInt8Convolution(layer) != nil
    }

    /// The direct kernel for `layer` if it is an int8 convolution one runs.
    private func directInt8Convolution(_ layer: PreparedLayer) -> Int8Kernel? {
        guard layer.kind == .conv2d, let int8 = layer.int8 else { return nil }
        return PackedInt8Convolution.kernel(for: int8.values, geometry: layer.spatial!, family: int8Kernel)
    }

    /// Whether `layer` has a weight our kernels get a packed copy of: not empty, at most `packLimit` values.
    private func hasPackableWeight(_ layer: PreparedLayer) -> Bool {
        guard let weight = layer.weight else { return false }
        return weight.count > 0 && weight.count <= Self.packLimit
    }

    /// The packed copies of the weights for `matrixKernel`, made once.
    private func makePackedWeights() {
        packedWeightsMade = true
        guard Scalar.self == Float.self, matrixKernel != .openblas else { return }
        packedWeights = layers.map { layer in
            guard layer.kind == .dense || layer.kind == .conv2d, hasPackableWeight(layer), let weight = layer.weight else { return nil }
            let columns = layer.kind == .dense ? layer.outputSize : layer.spatial!.outputShape[2]
            let rows = weight.count / columns
            let pointer = UnsafeRawPointer(weight.pointer).assumingMemoryBound(to: Float.self)
            // A narrow layer (`isNarrow`: a convolution with a few filters, whose im2col rows of 9
            // values would each be quantized on their own; a bf16 classifier) runs faster in f32
            // straight from its input, one vector of columns, than quantizing every row for one
            // tile of mostly padding: its int8 or bf16 weight is multiplied as the f32 values it
            // stands for.
            // Except a convolution of one input channel, which a direct kernel (AVX512-VNNI, or AVX2
            // for 7-bit weights) runs from each sample quantized once.
            if runsDirectInt8Convolution(layer), let int8 = layer.int8, let family = int8Kernel,
               let packed = PackedInt8Convolution(int8.values, scales: int8.scales, geometry: layer.spatial!, family: family, input: int8.input) {
                return .int8Convolution(packed)
            }
            if isNarrow(layer) {
                return PackedMatrix(pointer, rows: rows, columns: columns, kernel: matrixKernel).map { .f32($0) }
            }
            if let int8 = layer.int8, let kernel = int8Kernel,
               let packed = PackedInt8Matrix(int8.values, scales: int8.scales, rows: rows, columns: columns, kernel: kernel,
                                             input: int8.input) {
                return .int8(packed)
            }
            if layer.storedBFloat16, let kernel = bfloat16Kernel,
               let packed = PackedBFloat16Matrix(pointer, rows: rows, columns: columns, kernel: kernel) {
                return .bf16(packed)
            }
            return PackedMatrix(pointer, rows: rows, columns: columns, kernel: matrixKernel).map { .f32($0) }
        }
    }

    /// Applies the model's preprocessing in place to `count` samples of raw features.
    public func preprocess(_ x: UnsafeMutablePointer<Scalar>, count: Int) {
        preprocessor.apply(x, count: count)
    }

    /// Runs `count` samples of raw (not yet preprocessed) features, laid out as rows, and writes
    /// `count * outputSize` outputs (what they are: `metadata.outputKind`) to `output`.
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    public func predict(raw input: UnsafePointer<Scalar>, count: Int, into output: UnsafeMutablePointer<Scalar>) {
        forEachBlock(count: count) { start, n, space, upcoming in
            forwardBlock(input + start * inputSize, count: n, into: output + start * outputSize, space,
                         then: upcoming.map { (UnsafeRawPointer(input + $0.lowerBound * inputSize), $0.count) })
        }
    }

    /// Cuts a call of `count` samples (at least one) into blocks and calls `body` with each
    /// block's first sample, its size, the scratch memory of the thread that runs it and the
    /// samples of the block that thread runs next (nil when blocks run one at a time). First
    /// what the call needs: the packed weights, the scratch memory grown to a block, and the
    /// one-sample copies from the second one-sample call on (a process that predicts one image
    /// does not pay for them).
    ///
    /// Blocks of at most `blockRows` run one after the other, each product shared by two threads.
    /// A large batch whose products all run on our kernels (`blockParallel`) is instead cut into
    /// smaller blocks that the two threads take in turn, each carrying its block through every
    /// layer alone: no thread waits for the other at the end of each layer (the last units of a
    /// product, a softmax on one thread), only once at the end of the call.
    private func forEachBlock(count: Int, _ body: (_ start: Int, _ count: Int, _ space: Workspace<Scalar>, _ upcoming: Range<Int>?) -> Void) {
        if !packedWeightsMade { makePackedWeights() }
        if count == 1, oneSamplePlan == nil, packedWeights.allSatisfy({ $0 == nil }) {
            singleSampleCalls += 1
            if singleSampleCalls == 2 { oneSamplePlan = OneSamplePlan(layers: layers) }
        }
        let threads = min(BLAS.threadCount, 2)
        let parallelRows = blockParallel(count: count, threads: threads)
        let rows = parallelRows ?? min(count, blockRows)
        let spaces = parallelRows == nil ? 1 : 2
        while scratch.count < spaces { scratch.append(BlockScratch()) }
        for space in scratch.prefix(spaces) {
            space.reserve(rows: rows, widest: widest, columns: columnCapacity, quantizedColumnBytes: quantizedColumnBytes)
        }
        guard parallelRows != nil else {
            let space = scratch[0].workspace(threads: threads)
            var start = 0
            while start < count {
                let n = min(rows, count - start)
                body(start, n, space, nil)
                start += n
            }
            return
        }
        let spacesByThread = scratch.prefix(2).map { $0.workspace(threads: 1) }
        withoutActuallyEscaping(body) { body in
            let blocks = (count + rows - 1) / rows
            func samples(_ block: Int) -> Range<Int> { (block * rows)..<min(count, (block + 1) * rows) }
            // `upcoming` is SIZE_MAX when this thread has no block after this one.
            var run: (Int, UInt, Int) -> Void = { block, upcoming, thread in
                let range = samples(block)
                body(range.lowerBound, range.count, spacesByThread[thread], upcoming < UInt(blocks) ? samples(Int(upcoming)) : nil)
            }
            withUnsafeMutablePointer(to: &run) { run in
                nn_run_units(blocks, { context, block, upcoming, thread in
                    context!.assumingMemoryBound(to: ((Int, UInt, Int) -> Void).self).pointee(block, UInt(bitPattern: upcoming), thread)
                }, run, 2)
            }
        }
    }

    /// Rows per block when a call of `count` samples runs whole blocks on each of two threads
    /// (`forEachBlock`), else nil: two threads, every product of the model on our kernels (not
    /// OpenBLAS, which has threads of its own), nobody observing inputs, and a batch of at least
    /// `blockParallelMinimum` samples. About 16 blocks per thread, so the thread that takes the
    /// last one finishes at most a small block after the other; at least 48 rows, a multiple of
    /// 24 (whole groups for every kernel's MR). nn-infer's batches of 1,024 get 22 blocks.
    private func blockParallel(count: Int, threads: Int) -> Int? {
        guard threads >= 2, count >= Self.blockParallelMinimum, inputObserver == nil, matrixKernel != .openblas else { return nil }
        for (layer, packed) in zip(layers, packedWeights) where layer.kind == .dense || layer.kind == .conv2d {
            if packed == nil { return nil }
        }
        let rows = (count + 31) / 32
        return min(blockRows, max(48, (rows + 23) / 24 * 24))
    }

    /// Samples from which a batch runs whole blocks per thread (`forEachBlock`).
    public static var blockParallelMinimum: Int { 1024 }

    /// Runs the model on rows of raw features and returns `count * outputSize` outputs.
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    public func predict(raw input: [Scalar], count: Int) -> [Scalar] {
        precondition(input.count == count * inputSize, "input size does not match the model")
        return [Scalar](unsafeUninitializedCapacity: count * outputSize) { out, initialized in
            input.withUnsafeBufferPointer { predict(raw: $0.baseAddress!, count: count, into: out.baseAddress!) }
            initialized = count * outputSize
        }
    }

    /// Runs `count` samples of raw features (as `predict`), calling `body` before each layer
    /// runs with the layer's index and its inputs for the block of samples (the preprocessed
    /// features for the first layer): what `nnconv quantize --calibration` measures activations
    /// with. Layers are the engine's: the model's one for one when the engine was made without
    /// folding batch normalization. Blocks hold up to a few thousand samples.
    public func observeInputs(raw input: UnsafePointer<Scalar>, count: Int, _ body: (_ layer: Int, _ inputs: UnsafeBufferPointer<Scalar>) -> Void) {
        withoutActuallyEscaping(body) { body in
            inputObserver = body
            defer { inputObserver = nil }
            let output = UnsafeMutablePointer<Scalar>.allocate(capacity: max(count * outputSize, 1))
            defer { output.deallocate() }
            predict(raw: input, count: count, into: output)
        }
    }

    /// One block: preprocess into `a` (or read the input directly when there is nothing to
    /// do), then every layer, ping-ponging between `a` and `b`; the last layer writes `output`.
    /// `input` may be `b` (the layers read it before they write there).
    private func forwardBlock(_ input: UnsafePointer<Scalar>, count: Int, into output: UnsafeMutablePointer<Scalar>,
                              _ space: Workspace<Scalar>, then: (UnsafeRawPointer, Int)? = nil) {
        let a = space.a, b = space.b
        if preprocessor.isIdentity {
            runLayers(from: 0, input, count: count, into: output, target: a, space)
        } else if !runWithFirstLayerPreprocessing(UnsafeRawPointer(input), byteScale: nil, count: count, into: output, space, then: then) {
            preprocessor.apply(input, into: a, count: count)
            runLayers(from: 0, UnsafePointer(a), count: count, into: output, target: b, space)
        }
    }

    /// Layers `first...` on `source` (the first one's input), writing each next layer's output
    /// to `target` (one of `space`'s two buffers), then to the other, alternately; the last layer
    /// writes `output`.
    private func runLayers(from first: Int, _ input: UnsafePointer<Scalar>, count: Int, into output: UnsafeMutablePointer<Scalar>,
                           target firstTarget: UnsafeMutablePointer<Scalar>, _ space: Workspace<Scalar>) {
        let other = firstTarget == space.a ? space.b : space.a
        let plan = count == 1 ? oneSamplePlan : nil
        var source = input, target = firstTarget
        var index = first
        while index < layers.count {
            defer { index += 1 }
            // The layer's output goes to `output` when it is the last, else to `target`.
            func destination(_ layer: Int) -> UnsafeMutablePointer<Scalar> { layer == layers.count - 1 ? output : target }
            // Flattening HWC samples does not move memory (unless the layer also has an activation).
            if layers[index].kind == .flatten && layers[index].activation == .identity && index < layers.count - 1 { continue }
            inputObserver?(index, UnsafeBufferPointer(start: source, count: count * layers[index].inputSize))
            let packed = index < packedWeights.count ? packedWeights[index] : nil
            var written = destination(index)
            if let packed, let pool = fusablePool(after: index, packed: packed),
               convolve(layers[index], packed, pool: pool, input: source, count: count, output: destination(index + 1),
                        threads: space.threads) {
                // The max pooling after this convolution ran with it, one sample at a time.
                written = destination(index + 1)
                index += 1
            } else {
                forward(layers[index], oneSample: plan?.products[index], packed: packed, input: source, count: count, output: written,
                        space)
            }
            source = UnsafePointer(written)
            target = written == firstTarget ? other : firstTarget
        }
    }

    /// The geometry of the max pooling after convolution `index` when the two can run as one
    /// (`convolve` with a pool): the convolution on its narrow f32 form or the direct int8
    /// kernel, with no activation or ReLU (applied before pooling, in the kernel), then max
    /// pooling with no activation, nobody observing the pooling's inputs. Else nil.
    private func fusablePool(after index: Int, packed: PackedWeight) -> SpatialGeometry? {
        guard inputObserver == nil, index + 1 < layers.count, layers[index].kind == .conv2d,
              layers[index].activation == .identity || layers[index].activation == .relu else { return nil }
        switch packed {
        case .f32 where isNarrow(layers[index]), .int8Convolution: break
        default: return nil
        }
        let next = layers[index + 1]
        return next.kind == .maxPool2d && next.activation == .identity ? next.spatial! : nil
    }

    /// Convolution `layer` on its narrow f32 form (windows read from the input) or the direct
    /// int8 kernel (with `pool`, then that max pooling of each sample as soon as it is
    /// convolved), its activation applied: ReLU in the kernel, others after. False, with nothing
    /// written, when the packing is neither or the kernel declines.
    private func convolve(_ layer: PreparedLayer, _ packed: PackedWeight, pool: SpatialGeometry? = nil,
                          input: UnsafePointer<Scalar>, count: Int, output: UnsafeMutablePointer<Scalar>, threads: Int) -> Bool {
        let fused = layer.activation == .relu, written = pool ?? layer.spatial!
        let bias = layer.bias.map { floats($0.pointer) }
        let done: Bool
        switch packed {
        case let .f32(matrix):
            done = matrix.convolve(floats(input), count: count, geometry: layer.spatial!, bias: bias, relu: fused, pool: pool,
                                   into: floats(output), threads: threads)
        case let .int8Convolution(convolution):
            done = convolution.convolve(floats(input), count: count, geometry: layer.spatial!, bias: bias, relu: fused, pool: pool,
                                        into: floats(output), threads: threads)
        default:
            done = false
        }
        guard done else { return false }
        if !fused {
            Activations.biasAndActivate(output, rows: count * SpatialKernels.positions(written), columns: written.outputShape[2], bias: nil,
                                        activation: layer.activation)
        }
        return true
    }

    /// Where `quantizedColumns` keeps, for `samples` samples of an int8 convolution: the samples
    /// quantized, their im2col rows of bytes, one scale and one zero point per sample.
    static func quantizedColumnsLayout(samples: Int, inputSize: Int, rowsPerSample: Int)
        -> (quantized: Int, columns: Int, scales: Int, zeroPoints: Int, bytes: Int) {
        func aligned(_ x: Int) -> Int { (x + 63) / 64 * 64 }
        let columns = aligned(samples * inputSize), scales = columns + aligned(samples * rowsPerSample)
        let zeroPoints = scales + aligned(samples * MemoryLayout<Float>.stride)
        return (0, columns, scales, zeroPoints, zeroPoints + aligned(samples * MemoryLayout<Int32>.stride))
    }

    /// An int8 convolution on the im2col path: each sample quantized once as a whole (its own
    /// range, or the layer's calibrated one), its windows copied as bytes (the padding its zero
    /// point) and multiplied by the int8 weight with the sample's scale, instead of quantizing
    /// every window's row of floats on its own (which took about a third of the PyTorch MNIST
    /// CNN's int8 time, and four times the bytes to copy). False, with nothing written that a
    /// fallback does not overwrite, when scratch memory is short.
    private func convolveQuantized(_ layer: PreparedLayer, _ matrix: PackedInt8Matrix, input: UnsafePointer<Scalar>, count: Int,
                                   output: UnsafeMutablePointer<Scalar>, bytes: UnsafeMutableRawPointer, threads: Int) -> Bool {
        let g = layer.spatial!, positions = SpatialKernels.positions(g), filters = g.outputShape[2]
        let layout = Self.quantizedColumnsLayout(samples: layer.samplesPerProduct, inputSize: layer.inputSize,
                                                 rowsPerSample: positions * SpatialKernels.patchSize(g))
        let quantized = (bytes + layout.quantized).assumingMemoryBound(to: UInt8.self)
        let columns = (bytes + layout.columns).assumingMemoryBound(to: UInt8.self)
        let scales = (bytes + layout.scales).assumingMemoryBound(to: Float.self)
        let zeroPoints = (bytes + layout.zeroPoints).assumingMemoryBound(to: Int32.self)
        let fused = layer.activation == .relu, bias = layer.bias.map { floats($0.pointer) }
        var start = 0
        while start < count {
            let n = min(layer.samplesPerProduct, count - start)
            matrix.quantizeSamples(floats(input + start * layer.inputSize), count: n, size: layer.inputSize, into: quantized,
                                   scales: scales, zeroPoints: zeroPoints)
            SpatialKernels.im2col(bytes: quantized, count: n, geometry: g, zeroPoints: zeroPoints, into: columns)
            guard matrix.multiply(quantized: columns, m: n * positions, rowScales: scales, rowZeroPoints: zeroPoints, rowsPerScale: positions,
                                  bias: bias, relu: fused, into: floats(output + start * layer.outputSize), threads: threads) else { return false }
            start += n
        }
        if !fused { Activations.biasAndActivate(output, rows: count * positions, columns: filters, bias: nil, activation: layer.activation) }
        return true
    }

    /// Runs the first layer on raw features when its kernel can preprocess the rows as it packs
    /// them (one preprocessing step, a dense first layer with packed weights: int8, or f32 for a
    /// batch wider than one vector; no observer): the preprocessed rows are then never written,
    /// and both threads compute them. The same values as preprocessing first. False, with nothing
    /// done, otherwise.
    /// With `byteScale`, `input` holds bytes (see `predict(bytes:scale:count:into:)`), and no
    /// preprocessing is a prologue too. When the first layer ran so, the other layers follow
    /// (`a` holds its output, `b` the next), and the whole block is done.
    private func runWithFirstLayerPreprocessing(_ input: UnsafeRawPointer, byteScale: Float?, count: Int, into output: UnsafeMutablePointer<Scalar>,
                                                _ space: Workspace<Scalar>, then: (UnsafeRawPointer, Int)? = nil) -> Bool {
        let a = space.a, b = space.b
        guard inputObserver == nil, let layer = layers.first, layer.kind == .dense, let packed = packedWeights.first ?? nil else { return false }
        let preprocessing = preprocessor.rowPreprocessing
        guard preprocessing != nil || (byteScale != nil && preprocessor.isIdentity) else { return false }
        guard packedProduct(packed, m: count, n: layer.outputSize, input, bias: layer.bias.map { UnsafePointer($0.pointer) },
                            activation: layer.activation, into: layers.count == 1 ? output : a, threads: space.threads,
                            preprocessing: preprocessing, byteScale: byteScale, then: then) else { return false }
        if layers.count > 1 { runLayers(from: 1, UnsafePointer(a), count: count, into: output, target: b, space) }
        return true
    }

    /// c = a B (+ bias, then the activation) on our kernels, each row of `a` preprocessed by
    /// `preprocessing` as the kernel packs it when that is given. ReLU is fused into the kernel;
    /// other activations follow it. False, with nothing written, when scratch memory is short or
    /// the kernel has no prologue for this product (one row, bf16, or f32 no wider than a vector,
    /// whose kernels read `a` in place).
    /// `a` holds floats, or bytes with `byteScale` (see `RowPreprocessing.withPrologue`).
    private func packedProduct(_ packed: PackedWeight, m: Int, n: Int, _ raw: UnsafeRawPointer, bias: UnsafePointer<Scalar>?,
                               activation: Activation, into c: UnsafeMutablePointer<Scalar>, threads: Int,
                               preprocessing: RowPreprocessing? = nil, byteScale: Float? = nil, then: (UnsafeRawPointer, Int)? = nil) -> Bool {
        let fused = activation == .relu, prologue = preprocessing != nil || byteScale != nil
        let a = raw.assumingMemoryBound(to: Float.self), bias = bias.map(floats), c = floats(c)
        let done: Bool
        switch packed {
        case let .f32(p) where m == 1:
            guard !prologue else { return false }
            p.multiplyRow(a, bias: bias, relu: fused, into: c, threads: threads)
            done = true
        case let .f32(p):
            done = p.multiply(raw, m: m, bias: bias, relu: fused, into: c, threads: threads, preprocessing: preprocessing, byteScale: byteScale,
                              then: then)
        case let .bf16(p):
            guard !prologue else { return false }
            done = p.multiply(a, m: m, bias: bias, relu: fused, into: c, threads: threads)
        case let .int8(p):
            done = p.multiply(raw, m: m, bias: bias, relu: fused, into: c, threads: threads, preprocessing: preprocessing, byteScale: byteScale)
        case .int8Convolution:
            return false  // a convolution's own kernel, which `convolve` runs
        }
        if done, !fused { Activations.biasAndActivate(c, rows: m, columns: n, bias: nil, activation: activation) }
        return done
    }

    /// One layer; `packed` is its weight for our kernels (else its products run on BLAS, and
    /// `oneSample` is the copy a one-sample call multiplies by, when there is one).
    private func forward(_ layer: PreparedLayer, oneSample: OneSampleProduct<Scalar>?,
                         packed: PackedWeight?, input: UnsafePointer<Scalar>, count: Int, output: UnsafeMutablePointer<Scalar>,
                         _ space: Workspace<Scalar>) {
        switch layer.kind {
        case .dense:
            let n = layer.outputSize, k = layer.inputSize, weight = layer.weight!.pointer
            let bias = layer.bias?.pointer
            if count == 1, packed == nil, let oneSample {
                oneSample.multiply(input, inputs: k, outputs: n, bias: bias, activation: layer.activation, into: output)
            } else if count == 1, packed == nil {
                OneSampleProduct.multiplyStored(weight, inputs: k, outputs: n, bias: bias, activation: layer.activation, input, into: output)
            } else {
                product(packed, m: count, n: n, k: k, input, weight, bias: bias, activation: layer.activation, into: output,
                        threads: space.threads)
            }
        case .conv2d:
            let g = layer.spatial!, positions = SpatialKernels.positions(g), patch = SpatialKernels.patchSize(g)
            let filters = g.outputShape[2]
            // Narrow convolutions (a few filters) read their windows from the input.
            if let packed, convolve(layer, packed, input: input, count: count, output: output, threads: space.threads) { return }
            if case let .int8(matrix)? = packed, let bytes = space.quantizedColumns,
               convolveQuantized(layer, matrix, input: input, count: count, output: output, bytes: bytes, threads: space.threads) { return }
            let cols = space.columns!
            var start = 0
            while start < count {
                let n = min(layer.samplesPerProduct, count - start)
                SpatialKernels.im2col(input + start * layer.inputSize, count: n, geometry: g, into: cols)
                let out = output + start * layer.outputSize
                product(packed, m: n * positions, n: filters, k: patch, cols, layer.weight!.pointer, bias: layer.bias?.pointer,
                        activation: layer.activation, into: out, threads: space.threads)
                start += n
            }
        case .maxPool2d:
            SpatialKernels.maxPool(input, count: count, geometry: layer.spatial!, into: output, argmax: nil, threads: space.threads)
            Activations.biasAndActivate(output, rows: count, columns: layer.outputSize, bias: nil, activation: layer.activation)
        case .flatten:
            output.update(from: input, count: count * layer.outputSize)
            Activations.biasAndActivate(output, rows: count, columns: layer.outputSize, bias: nil, activation: layer.activation)
        case .avgPool2d:
            SpatialKernels.averagePool(input, count: count, geometry: layer.spatial!, countIncludePad: layer.countIncludePad, into: output)
            Activations.biasAndActivate(output, rows: count, columns: layer.outputSize, bias: nil, activation: layer.activation)
        case .globalAvgPool2d, .globalMaxPool2d:
            SpatialKernels.globalPool(input, count: count, geometry: layer.spatial!, average: layer.kind == .globalAvgPool2d, into: output)
            Activations.biasAndActivate(output, rows: count, columns: layer.outputSize, bias: nil, activation: layer.activation)
        case .batchNorm:
            layer.normalization!.apply(input, count: count, features: layer.inputSize, into: output)
            Activations.biasAndActivate(output, rows: count, columns: layer.outputSize, bias: nil, activation: layer.activation)
        }
    }

    /// c = activation(a W + bias) for a row-major a[m][k] and W[k][n]: on our kernel with W's
    /// packed copy (bias, and ReLU, applied in its registers), else on BLAS.
    private func product(_ packed: PackedWeight?, m: Int, n: Int, k: Int, _ a: UnsafePointer<Scalar>, _ weight: UnsafePointer<Scalar>,
                         bias: UnsafePointer<Scalar>?, activation: Activation, into c: UnsafeMutablePointer<Scalar>, threads: Int) {
        if let packed, packedProduct(packed, m: m, n: n, a, bias: bias, activation: activation, into: c, threads: threads) { return }
        Scalar.gemm(transposeA: false, transposeB: false, m: m, n: n, k: k, alpha: 1, a: a, lda: k,
                    b: weight, ldb: n, beta: 0, c: c, ldc: n)
        Activations.biasAndActivate(c, rows: m, columns: n, bias: bias, activation: activation)
    }
}

extension InferenceEngine where Scalar == Float {
    /// Runs `count` samples given as bytes, each value `Float(byte) * scale` (an IDX file's
    /// pixels, as `IDXImageStream` would decode them), with the outputs `predict(raw:)` gives for
    /// those floats, to the bit. A dense first layer on our f32 or int8 kernels reads the bytes as
    /// it packs its rows (with the model's preprocessing), so no float copy of the input is ever
    /// written; other models get the bytes widened one block at a time.
    public func predict(bytes input: UnsafePointer<UInt8>, scale: Float, count: Int, into output: UnsafeMutablePointer<Float>) {
        guard count > 0 else { return }
        forEachBlock(count: count) { start, n, space, upcoming in
            let block = input + start * inputSize, out = output + start * outputSize
            let then = upcoming.map { (UnsafeRawPointer(input + $0.lowerBound * inputSize), $0.count) }
            if !runWithFirstLayerPreprocessing(UnsafeRawPointer(block), byteScale: scale, count: n, into: out, space, then: then) {
                nn_widen_u8(block, n * inputSize, scale, space.b)
                forwardBlock(UnsafePointer(space.b), count: n, into: out, space)
            }
        }
    }
}

/// `pointer` as Float: only where the engine has packed weights, which only f32 engines have.
private func floats<Scalar>(_ pointer: UnsafePointer<Scalar>) -> UnsafePointer<Float> {
    UnsafeRawPointer(pointer).assumingMemoryBound(to: Float.self)
}

private func floats<Scalar>(_ pointer: UnsafeMutablePointer<Scalar>) -> UnsafeMutablePointer<Float> {
    UnsafeMutableRawPointer(pointer).assumingMemoryBound(to: Float.self)
}

/// The scratch memory of one thread running blocks of samples: two ping-pong activation buffers
/// of `rows * widest` values and the im2col rows of convolutions, grown on demand.
final class BlockScratch<Scalar: BLASScalar> {
    private var a: UnsafeMutablePointer<Scalar>?
    private var b: UnsafeMutablePointer<Scalar>?
    private var columns: UnsafeMutablePointer<Scalar>?
    private var quantizedColumns: UnsafeMutableRawPointer?
    private var rows = 0

    /// Grows the buffers to blocks of `rows` samples (memory is only reserved here; pages are
    /// touched as blocks use them).
    func reserve(rows: Int, widest: Int, columns capacity: Int, quantizedColumnBytes: Int) {
        if capacity > 0, columns == nil { columns = .allocate(capacity: capacity) }
        if quantizedColumnBytes > 0, quantizedColumns == nil {
            quantizedColumns = .allocate(byteCount: quantizedColumnBytes, alignment: 64)
        }
        guard self.rows < rows else { return }
        a?.deallocate()
        b?.deallocate()
        a = .allocate(capacity: rows * widest)
        b = .allocate(capacity: rows * widest)
        self.rows = rows
    }

    /// This memory for a block whose products use `threads` threads.
    func workspace(threads: Int) -> Workspace<Scalar> {
        Workspace(a: a!, b: b!, columns: columns, quantizedColumns: quantizedColumns, threads: threads)
    }

    deinit {
        a?.deallocate()
        b?.deallocate()
        columns?.deallocate()
        quantizedColumns?.deallocate()
    }
}

/// What one block's layers run with: its thread's scratch memory, and how many threads each
/// product may use (two when the blocks run one at a time, one when each thread runs its own).
struct Workspace<Scalar: BLASScalar> {
    let a, b: UnsafeMutablePointer<Scalar>
    /// The im2col rows (models with convolutions).
    let columns: UnsafeMutablePointer<Scalar>?
    /// An int8 convolution's quantized samples and rows (`InferenceEngine.quantizedColumnsLayout`).
    let quantizedColumns: UnsafeMutableRawPointer?
    let threads: Int
}
