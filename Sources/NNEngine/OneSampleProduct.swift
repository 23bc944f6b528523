import NNCore
internal import NNKernels

/// What one-sample calls multiply by, made on the engine's second one-sample call (a process
/// that predicts one image does not pay for the copies).
///
/// At batch 1 a dense layer is a matrix-vector product whose time is the time to read its
/// weight: 784 x 256 f32 is 784 KiB, more than one core's L2 cache here (512 KiB). Measured on
/// this machine for that product: OpenBLAS's gemv 9.8 us over the stored [in, out] weight and
/// 6.3 us over a transposed copy (two threads); the packed copy below with the helper 4.6 us.
struct OneSamplePlan<Scalar: BLASScalar> {
    /// Per layer: the weight copy, or nil (not dense, or too large to keep twice).
    let products: [OneSampleProduct<Scalar>?]
    /// Set when the model's preprocessing is folded into the first layer: `products[0]` then
    /// multiplies the raw input, and this bias replaces the first layer's.
    let foldedBias: ParameterBuffer<Scalar>?

    /// Dense weights up to this many values get a copy: larger ones would double the memory of
    /// a model that is usually run in batches, and one sample would not be the common case.
    static var copyLimit: Int { 1 << 22 }

    /// f32 on a CPU with AVX2 and FMA: weights in column panels for `nn_packed_product`.
    static var usesPackedWeights: Bool { Scalar.self == Float.self && nn_packed_vector_kernels() }

    init(layers: [InferenceEngine<Scalar>.PreparedLayer], preprocessor: Preprocessor<Scalar>) {
        var products = layers.map(OneSampleProduct<Scalar>.init)
        var foldedBias: ParameterBuffer<Scalar>?
        // With packed weights, the preprocessing (an affine map per feature) goes into the first
        // layer's weight and bias: W'[j, :] = a[j] W[j, :], b' = b + sum_j c[j] W[j, :]. That
        // saves a pass over the input and, more, the helper thread reading an input the caller
        // has just written (cache lines moving between cores). Rounding differs from the batch
        // path by about one f32 ulp per product term, as a different summation order would.
        if Self.usesPackedWeights, !preprocessor.isIdentity, let first = layers.first, products.first??.isPacked == true,
           let weight = first.weight {
            let k = first.inputSize, n = first.outputSize
            let (a, c) = preprocessor.perFeatureAffine()
            var folded = [Float](repeating: 0, count: k * n)
            var bias = [Double](repeating: 0, count: n)
            if let b = first.bias {
                for j in 0..<n { bias[j] = Double(b.pointer[j]) }
            }
            for i in 0..<k {
                for j in 0..<n {
                    let w = Double(weight.pointer[i * n + j])
                    folded[i * n + j] = Float(a[i] * w)
                    bias[j] += c[i] * w
                }
            }
            products[0] = .packed(folded.withUnsafeBufferPointer { PackedWeight($0.baseAddress!, inputs: k, outputs: n) })
            foldedBias = ParameterBuffer(copying: bias.map { Scalar($0) })
        }
        self.products = products
        self.foldedBias = foldedBias
    }
}

/// How a one-sample call multiplies by one dense layer's weight.
enum OneSampleProduct<Scalar: BLASScalar> {
    /// The weight in column panels (`nn_pack_weights`), split between the caller and a helper
    /// thread so that each core keeps its half in its own L2 cache. Only when Scalar is Float.
    case packed(PackedWeight)
    /// The weight transposed to [out, in], for BLAS's dot-product form of gemv.
    case transposed(ParameterBuffer<Scalar>)

    /// The copy for `layer`, or nil when it is not a dense layer or its weight is too large.
    init?(_ layer: InferenceEngine<Scalar>.PreparedLayer) {
        guard layer.kind == .dense, let weight = layer.weight, weight.count <= OneSamplePlan<Scalar>.copyLimit else { return nil }
        let k = layer.inputSize, n = layer.outputSize
        if OneSamplePlan<Scalar>.usesPackedWeights {
            self = .packed(PackedWeight(floats(weight.pointer), inputs: k, outputs: n))
            return
        }
        var t = [Scalar](repeating: 0, count: weight.count)
        for i in 0..<k {
            for j in 0..<n { t[j * k + i] = weight.pointer[i * n + j] }
        }
        self = .transposed(ParameterBuffer(copying: t))
    }

    /// y = activation(x W + bias) for one sample with the weight as stored ([in, out]): before a
    /// plan exists, and for weights too large to copy. For f32 weights that get packed later,
    /// this stays on the calling thread: BLAS's gemv would wake its worker threads, which then
    /// poll for a while and take the CPU from the helper thread. Larger ones go to BLAS's threads.
    static func multiplyStored(_ weight: UnsafePointer<Scalar>, inputs: Int, outputs: Int, bias: UnsafePointer<Scalar>?,
                               activation: Activation, _ x: UnsafePointer<Scalar>, into y: UnsafeMutablePointer<Scalar>) {
        if OneSamplePlan<Scalar>.usesPackedWeights, inputs * outputs <= OneSamplePlan<Scalar>.copyLimit {
            let fused = activation == .relu
            nn_row_product(floats(weight), inputs, outputs, bias.map(floats), fused, floats(x), floats(y))
            if !fused { Activations.biasAndActivate(y, rows: 1, columns: outputs, bias: nil, activation: activation) }
        } else {
            Scalar.gemv(transpose: true, rows: inputs, cols: outputs, alpha: 1, a: weight, lda: outputs, x: x, beta: 0, y: y)
            Activations.biasAndActivate(y, rows: 1, columns: outputs, bias: bias, activation: activation)
        }
    }

    var isPacked: Bool {
        if case .packed = self { return true }
        return false
    }

    /// y = activation(x W + bias) for one sample of `inputs` values into `outputs` values.
    func multiply(_ x: UnsafePointer<Scalar>, inputs: Int, outputs: Int, bias: UnsafePointer<Scalar>?, activation: Activation,
                  into y: UnsafeMutablePointer<Scalar>) {
        switch self {
        case .packed(let packed):
            // Bias and ReLU in the kernel, by the thread that computed each output.
            let fused = activation == .relu
            packed.multiply(floats(x), bias: bias.map(floats), relu: fused, into: floats(y))
            if !fused { Activations.biasAndActivate(y, rows: 1, columns: outputs, bias: nil, activation: activation) }
        case .transposed(let t):
            Scalar.gemv(transpose: false, rows: outputs, cols: inputs, alpha: 1, a: t.pointer, lda: inputs, x: x, beta: 0, y: y)
            Activations.biasAndActivate(y, rows: 1, columns: outputs, bias: bias, activation: activation)
        }
    }
}

/// `pointer` as Float: only called where Scalar is Float (`OneSamplePlan.usesPackedWeights`).
private func floats<Scalar>(_ pointer: UnsafePointer<Scalar>) -> UnsafePointer<Float> {
    UnsafeRawPointer(pointer).assumingMemoryBound(to: Float.self)
}

private func floats<Scalar>(_ pointer: UnsafeMutablePointer<Scalar>) -> UnsafeMutablePointer<Float> {
    UnsafeMutableRawPointer(pointer).assumingMemoryBound(to: Float.self)
}

/// An f32 weight packed for `nn_packed_product`, in 64-byte aligned memory it owns.
final class PackedWeight: @unchecked Sendable {
    // Sendable: never mutated after init.
    let inputs: Int
    let outputs: Int
    private let storage: UnsafeMutablePointer<Float>

    init(_ weight: UnsafePointer<Float>, inputs: Int, outputs: Int) {
        self.inputs = inputs
        self.outputs = outputs
        let count = max(nn_packed_size(inputs, outputs), 1)
        storage = UnsafeMutableRawPointer.allocate(byteCount: count * MemoryLayout<Float>.stride, alignment: 64)
            .bindMemory(to: Float.self, capacity: count)
        nn_pack_weights(weight, inputs, outputs, storage)
    }

    deinit { storage.deallocate() }

    /// y = x W + bias, then ReLU when `relu`; on two threads when BLAS may use more than one
    /// (`BLAS.setThreadCount`).
    func multiply(_ x: UnsafePointer<Float>, bias: UnsafePointer<Float>?, relu: Bool, into y: UnsafeMutablePointer<Float>) {
        nn_packed_product(storage, inputs, outputs, bias, relu, x, y, Int32(min(BLAS.threadCount, 2)))
    }
}
