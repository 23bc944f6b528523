import NNCore

/// What one-sample calls multiply by when the weights have no packed copy for our kernels (f64,
/// and f32 on OpenBLAS), made on the engine's second one-sample call (a process that predicts one
/// image does not pay for the copies). With our kernels, one-sample calls use the packed weights
/// and the batch product's arithmetic instead (`PackedMatrix.multiplyRow`).
///
/// BLAS's gemv over the stored [in, out] weight reads it in the wrong order for a row vector;
/// over a transposed copy it reads each output's weights front to back (measured for 784 x 256
/// on an AVX2 machine: 9.8 us stored, 6.3 us transposed).
struct OneSamplePlan<Scalar: BLASScalar> {
    /// Per layer: the weight copy, or nil (not dense, or too large to keep twice).
    let products: [OneSampleProduct<Scalar>?]

    /// Dense weights up to this many values get a copy: larger ones would double the memory of
    /// a model that is usually run in batches, and one sample would not be the common case.
    static var copyLimit: Int { 1 << 22 }

    init(layers: [InferenceEngine<Scalar>.PreparedLayer]) {
        products = layers.map(OneSampleProduct<Scalar>.init)
    }
}

/// How a one-sample call multiplies by one dense layer's weight on BLAS.
struct OneSampleProduct<Scalar: BLASScalar> {
    /// The weight transposed to [out, in], for BLAS's dot-product form of gemv.
    let transposed: ParameterBuffer<Scalar>

    /// The copy for `layer`, or nil when it is not a dense layer or its weight is too large.
    init?(_ layer: InferenceEngine<Scalar>.PreparedLayer) {
        guard layer.kind == .dense, let weight = layer.weight, weight.count <= OneSamplePlan<Scalar>.copyLimit else { return nil }
        let k = layer.inputSize, n = layer.outputSize
        var t = [Scalar](repeating: 0, count: weight.count)
        for i in 0..<k {
            for j in 0..<n { t[j * k + i] = weight.pointer[i * n + j] }
        }
        transposed = ParameterBuffer(copying: t)
    }

    /// y = activation(x W + bias) for one sample with the weight as stored ([in, out]): before a
    /// plan exists, and for weights too large to copy.
    static func multiplyStored(_ weight: UnsafePointer<Scalar>, inputs: Int, outputs: Int, bias: UnsafePointer<Scalar>?,
                               activation: Activation, _ x: UnsafePointer<Scalar>, into y: UnsafeMutablePointer<Scalar>) {
        Scalar.gemv(transpose: true, rows: inputs, cols: outputs, alpha: 1, a: weight, lda: outputs, x: x, beta: 0, y: y)
        Activations.biasAndActivate(y, rows: 1, columns: outputs, bias: bias, activation: activation)
    }

    /// y = activation(x W + bias) for one sample of `inputs` values into `outputs` values.
    func multiply(_ x: UnsafePointer<Scalar>, inputs: Int, outputs: Int, bias: UnsafePointer<Scalar>?, activation: Activation,
                  into y: UnsafeMutablePointer<Scalar>) {
        Scalar.gemv(transpose: false, rows: outputs, cols: inputs, alpha: 1, a: transposed.pointer, lda: inputs, x: x, beta: 0, y: y)
        Activations.biasAndActivate(y, rows: 1, columns: outputs, bias: bias, activation: activation)
    }
}
