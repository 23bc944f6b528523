import NNCore

/// A batch_norm layer prepared for inference: per channel, `y = (x - mean) * scale + beta`
/// with `scale = gamma / sqrt(variance + epsilon)`, computed once in f64 and rounded to
/// `Scalar`. The subtraction comes first, as in the definition, so an input equal to the mean
/// gives exactly `beta`.
struct BatchNormParameters<Scalar: BLASScalar> {
    let mean: [Scalar]
    let scale: [Scalar]
    let beta: [Scalar]
    /// The same in f64, for folding into the previous layer.
    let exactScale: [Double]
    let exactMean: [Double]
    let exactBeta: [Double]

    /// The parameters of `layer`, whose tensors the model has (`Model.validateStructure()`).
    init(layer: Layer, model: Model) {
        let bn = layer.batchNorm!
        let channels = layer.spatial!.inputShape.last!
        let mean = model.tensor(bn.movingMean)!.doubles(), variance = model.tensor(bn.movingVariance)!.doubles()
        let gamma = model.tensor(bn.gamma)?.doubles() ?? [Double](repeating: 1, count: channels)
        let beta = model.tensor(bn.beta)?.doubles() ?? [Double](repeating: 0, count: channels)
        // A negative variance + epsilon gives NaN here, as the definition does (a warning at load).
        exactScale = (0..<channels).map { gamma[$0] / (variance[$0] + bn.epsilon).squareRoot() }
        exactMean = mean
        exactBeta = beta
        self.mean = mean.map { Scalar($0) }
        self.scale = exactScale.map { Scalar($0) }
        self.beta = beta.map { Scalar($0) }
    }

    var channels: Int { mean.count }

    /// Normalizes `count` samples of `features` values each (channels fastest) from `input`
    /// into `output`.
    func apply(_ input: UnsafePointer<Scalar>, count: Int, features: Int, into output: UnsafeMutablePointer<Scalar>) {
        let c = channels, rows = count * (features / c)
        mean.withUnsafeBufferPointer { m in
            scale.withUnsafeBufferPointer { s in
                beta.withUnsafeBufferPointer { b in
                    for r in 0..<rows {
                        let x = input + r &* c, y = output + r &* c
                        for k in 0..<c { y[k] = (x[k] - m[k]) * s[k] + b[k] }
                    }
                }
            }
        }
    }

    /// The weight and bias of a dense or conv2d layer with this normalization folded in: for
    /// output column `j` (of `columns`, channel `j % channels`: the HWC order puts channels
    /// fastest), `W'[:, j] = W[:, j] * scale` and `b'[j] = (b[j] - mean) * scale + beta`,
    /// computed in f64 from the `Scalar` weights and rounded once.
    ///
    /// How exact: each folded value is the f64 result rounded once to `Scalar` (half an ulp),
    /// where the unfolded path rounds `x W`, then `x - mean`, then the product with the rounded
    /// scale and the sum with beta; the two differ by rounding only. Measured on the model of
    /// `Format12Engine.foldedAgreesWithUnfolded` (a 3x3 convolution with 16 filters and a
    /// dense layer of 32, each followed by a folded batch_norm and ReLU, 32 samples in [0, 1),
    /// outputs up to 2.3): at most 1.6e-6 apart in f32 (about 6 f32 ulps of 1) and 3.3e-15 in f64.
    func folded(weight: UnsafePointer<Scalar>, rows: Int, columns: Int, bias: UnsafePointer<Scalar>?) -> (weight: [Scalar], bias: [Scalar]) {
        let c = channels
        var w = [Scalar](repeating: 0, count: rows * columns)
        for i in 0..<rows {
            for j in 0..<columns { w[i * columns + j] = Scalar(Double(weight[i * columns + j]) * exactScale[j % c]) }
        }
        let b = (0..<columns).map { j in
            Scalar(((bias.map { Double($0[j]) } ?? 0) - exactMean[j % c]) * exactScale[j % c] + exactBeta[j % c])
        }
        return (w, b)
    }
}
