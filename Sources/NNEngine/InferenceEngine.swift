import NNCore

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
            let values = Scalar.values(of: tensor)
            let buffer = UnsafeMutableBufferPointer<Scalar>.allocate(capacity: max(values.count, 1))
            _ = buffer.initialize(from: values)
            owner = nil
            allocated = buffer
            pointer = UnsafePointer(buffer.baseAddress!)
        }
    }

    deinit { allocated?.deallocate() }
}

/// A model compiled for batched CPU inference in `Scalar` precision (Float or Double).
///
/// Build one per model and reuse it; it owns scratch buffers, so one engine must not be used
/// from two threads at once (make one per thread instead).
public final class InferenceEngine<Scalar: BLASScalar> {
    struct PreparedLayer {
        let inputSize: Int
        let outputSize: Int
        let activation: Activation
        let weight: ParameterBuffer<Scalar>
        let bias: ParameterBuffer<Scalar>?
    }

    public let metadata: ModelMetadata
    let layers: [PreparedLayer]
    let preprocessor: Preprocessor<Scalar>
    /// Two ping-pong activation buffers, grown to the largest batch seen.
    private var bufferA: [Scalar] = []
    private var bufferB: [Scalar] = []

    /// Number of input features per sample.
    public var inputSize: Int { metadata.input.features }
    /// Number of outputs per sample.
    public var outputSize: Int { metadata.outputSize }

    /// Prepares `model`, which must be valid (`Model.validate()`).
    public init(model: Model) throws(ModelError) {
        try model.validate()
        metadata = model.metadata
        var layers: [PreparedLayer] = []
        for layer in model.metadata.layers {
            layers.append(PreparedLayer(inputSize: layer.inputSize, outputSize: layer.outputSize, activation: layer.activation,
                                        weight: ParameterBuffer(model.tensor(layer.weight)!),
                                        bias: layer.bias.map { ParameterBuffer(model.tensor($0)!) }))
        }
        self.layers = layers
        preprocessor = Preprocessor(model: model)
    }

    /// Applies the model's preprocessing in place to `count` samples of raw features.
    public func preprocess(_ x: UnsafeMutablePointer<Scalar>, count: Int) {
        preprocessor.apply(x, count: count)
    }

    /// Runs `count` samples of raw (not yet preprocessed) features, laid out as rows, and writes
    /// `count * outputSize` outputs (probabilities after softmax) to `output`.
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    public func predict(raw input: UnsafePointer<Scalar>, count: Int, into output: UnsafeMutablePointer<Scalar>) {
        guard count > 0 else { return }
        let widest = max(inputSize, layers.map(\.outputSize).max() ?? 0)
        if bufferA.count < count * widest {
            bufferA = [Scalar](repeating: 0, count: count * widest)
            bufferB = bufferA
        }
        bufferA.withUnsafeMutableBufferPointer { a in
            bufferB.withUnsafeMutableBufferPointer { b in
                let inputCount = count * inputSize
                a.baseAddress!.update(from: input, count: inputCount)
                preprocess(a.baseAddress!, count: count)
                var source = a.baseAddress!, target = b.baseAddress!
                for (index, layer) in layers.enumerated() {
                    let destination = index == layers.count - 1 ? output : target
                    forward(layer, input: source, count: count, output: destination)
                    swap(&source, &target)
                }
            }
        }
    }

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

    private func forward(_ layer: PreparedLayer, input: UnsafePointer<Scalar>, count: Int, output: UnsafeMutablePointer<Scalar>) {
        let n = layer.outputSize, k = layer.inputSize
        if count == 1 {
            // One sample: y = W^T x with W stored [in, out].
            Scalar.gemv(transpose: true, rows: k, cols: n, alpha: 1, a: layer.weight.pointer, lda: n, x: input, beta: 0, y: output)
        } else {
            Scalar.gemm(transposeA: false, transposeB: false, m: count, n: n, k: k, alpha: 1, a: input, lda: k,
                        b: layer.weight.pointer, ldb: n, beta: 0, c: output, ldc: n)
        }
        Activations.biasAndActivate(output, rows: count, columns: n, bias: layer.bias?.pointer, activation: layer.activation)
    }
}

/// The activation functions, applied in place to row-major matrices.
public enum Activations {
    /// Adds `bias` to every row, then applies `activation` (softmax per row, stable: the row
    /// maximum is subtracted before exponentiating).
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    public static func biasAndActivate<Scalar: BLASScalar>(_ z: UnsafeMutablePointer<Scalar>, rows: Int, columns: Int,
                                                           bias: UnsafePointer<Scalar>?, activation: Activation) {
        for r in 0..<rows {
            let row = z + r * columns
            if let bias {
                for j in 0..<columns { row[j] += bias[j] }
            }
            apply(activation, row, count: columns)
        }
    }

    /// Applies `activation` to one row of `count` values in place.
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    public static func apply<Scalar: BLASScalar>(_ activation: Activation, _ row: UnsafeMutablePointer<Scalar>, count: Int) {
        switch activation {
        case .identity:
            break
        case .relu:
            for j in 0..<count where !(row[j] > 0) { row[j] = 0 }
        case .sigmoid:
            for j in 0..<count { row[j] = 1 / (1 + Scalar.exponential(-row[j])) }
        case .tanh:
            for j in 0..<count { row[j] = Scalar.hyperbolicTangent(row[j]) }
        case .softmax:
            var maximum = row[0]
            for j in 1..<max(count, 1) where row[j] > maximum { maximum = row[j] }
            var sum: Scalar = 0
            for j in 0..<count {
                let e = Scalar.exponential(row[j] - maximum)
                row[j] = e
                sum += e
            }
            for j in 0..<count { row[j] /= sum }
        }
    }
}
