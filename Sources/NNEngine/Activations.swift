import NNCore

/// The activation functions, applied in place to row-major matrices.
///
/// The element-wise loops are written without branches (`v > zero ? v : zero` compiles to a
/// vector max), so they vectorize; a data-dependent branch per element costs a misprediction
/// for about every other ReLU input. (The zero is a local constant: with a literal inside the
/// loop, the specialized generic code keeps a branch and does not vectorize.) Results are the same as the plain formulas, NaN included
/// (ReLU maps NaN and -0 to +0, as `!(v > 0) -> 0` does; so do relu6 and the capped ReLU).
///
/// Format 1.2's activations follow the definitions in `Schemas/nnm-v1.md` with libm's `exp`,
/// `expm1`, `log1p`, `tanh` and `erf` (Glibc; `expf`, ... in f32). The clipping ones (leaky
/// ReLU, relu6, the capped ReLU, hard sigmoid) are branch-free selects and vectorize; the
/// others call libm per value. Accuracy, measured by `ActivationAccuracy` over [-20, 20] in
/// steps of 1/64 as |f32 - f64| / max(|f64|, 1): relu6 and the capped ReLU exact; hard sigmoid
/// 2.0e-8; ELU 3.8e-8; softplus 6.8e-8; leaky ReLU 7.1e-8; GELU (tanh form) 7.8e-8; GELU (erf)
/// 8.7e-8; log-softmax 1.07e-7; SELU 1.08e-7; swish 1.11e-7: within about one f32 ulp. The f64
/// results agree with NumPy's float64 evaluation of the same formulas to 1e-13
/// (`Format12Engine`, Fixtures/layers).
public enum Activations {
    /// Adds `bias` to every row, then applies `activation` (softmax per row, stable: the row
    /// maximum is subtracted before exponentiating). One pass over the matrix for ReLU and identity.
    @inlinable
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    public static func biasAndActivate<Scalar: BLASScalar>(_ z: UnsafeMutablePointer<Scalar>, rows: Int, columns: Int,
                                                           bias: UnsafePointer<Scalar>?, activation: Activation) {
        switch activation {
        case .relu:
            guard let bias else { return relu(z, into: z, count: rows * columns) }
            let zero: Scalar = 0  // a literal inside the loop keeps generic code from vectorizing
            for r in 0..<rows {
                let row = z + r * columns
                for j in 0..<columns {
                    let v = row[j] + bias[j]
                    row[j] = v > zero ? v : zero
                }
            }
        case .identity:
            guard let bias else { return }
            for r in 0..<rows {
                let row = z + r * columns
                for j in 0..<columns { row[j] += bias[j] }
            }
        default:
            for r in 0..<rows {
                let row = z + r * columns
                if let bias {
                    for j in 0..<columns { row[j] += bias[j] }
                }
                apply(activation, row, count: columns)
            }
        }
    }

    /// a = f(z) for a row-major `rows` x `columns` matrix, in one pass for ReLU and identity
    /// (`z` and `a` may be the same memory).
    @inlinable
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    public static func activate<Scalar: BLASScalar>(_ z: UnsafePointer<Scalar>, into a: UnsafeMutablePointer<Scalar>, rows: Int,
                                                    columns: Int, activation: Activation) {
        let n = rows * columns
        switch activation {
        case .relu:
            relu(z, into: a, count: n)
        case .identity:
            if UnsafePointer(a) != z { a.update(from: z, count: n) }
        default:
            if UnsafePointer(a) != z { a.update(from: z, count: n) }
            for r in 0..<rows { apply(activation, a + r * columns, count: columns) }
        }
    }

    /// a[i] = max(z[i], 0), with NaN and -0 mapped to +0.
    @inlinable
    public static func relu<Scalar: BLASScalar>(_ z: UnsafePointer<Scalar>, into a: UnsafeMutablePointer<Scalar>, count: Int) {
        let zero: Scalar = 0
        for i in 0..<count {
            let v = z[i]
            a[i] = v > zero ? v : zero
        }
    }

    /// Applies `activation` to one row of `count` values in place.
    @inlinable
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    public static func apply<Scalar: BLASScalar>(_ activation: Activation, _ row: UnsafeMutablePointer<Scalar>, count: Int) {
        switch activation {
        case .identity:
            break
        case .relu:
            relu(row, into: row, count: count)
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
        case .logSoftmax:
            // z - max - log(sum(exp(z - max))): the largest term of the sum is 1, so the log is
            // of a number in [1, count] and nothing overflows.
            var maximum = row[0]
            for j in 1..<max(count, 1) where row[j] > maximum { maximum = row[j] }
            var sum: Scalar = 0
            for j in 0..<count { sum += Scalar.exponential(row[j] - maximum) }
            let shift = maximum + Scalar.logarithm(sum)
            for j in 0..<count { row[j] -= shift }
        case let .leakyRelu(alpha):
            let zero: Scalar = 0, a = Scalar(alpha)
            for j in 0..<count {
                let v = row[j]
                row[j] = v >= zero ? v : a * v
            }
        case let .clippedRelu(maxValue):
            clip(row, count: count, upper: Scalar(maxValue))
        case .relu6:
            clip(row, count: count, upper: 6)
        case .hardSigmoid:
            // relu6(z + 3) / 6 (Keras 3, PyTorch), computed in that order.
            let three: Scalar = 3, six: Scalar = 6, zero: Scalar = 0
            for j in 0..<count {
                let t = row[j] + three, c = t > zero ? t : zero
                row[j] = (c < six ? c : six) / six
            }
        case let .elu(alpha):
            elu(row, count: count, alpha: Scalar(alpha), scale: 1)
        case .selu:
            elu(row, count: count, alpha: Scalar(Activation.seluAlpha), scale: Scalar(Activation.seluScale))
        case .gelu(.exact):
            let half: Scalar = 0.5, one: Scalar = 1, invSqrt2 = Scalar(0.70710678118654752440084436210484903928)
            for j in 0..<count {
                let v = row[j]
                row[j] = half * v * (one + Scalar.errorFunction(v * invSqrt2))
            }
        case .gelu(.tanh):
            let half: Scalar = 0.5, one: Scalar = 1, c = Scalar(0.79788456080286535587989211986876373695), k: Scalar = 0.044715
            for j in 0..<count {
                let v = row[j]
                row[j] = half * v * (one + Scalar.hyperbolicTangent(c * (v + k * v * v * v)))
            }
        case .softplus:
            // max(z, 0) + log1p(exp(-|z|)): no overflow for large z, no cancellation for small.
            let zero: Scalar = 0
            for j in 0..<count {
                let v = row[j]
                row[j] = (v > zero ? v : zero) + Scalar.logarithmOnePlus(Scalar.exponential(-abs(v)))
            }
        case .swish:
            for j in 0..<count {
                let v = row[j]
                row[j] = v / (1 + Scalar.exponential(-v))
            }
        }
    }

    /// min(max(z, 0), upper) in place; NaN gives 0, as ReLU.
    @inlinable
    static func clip<Scalar: BLASScalar>(_ row: UnsafeMutablePointer<Scalar>, count: Int, upper: Scalar) {
        let zero: Scalar = 0
        for j in 0..<count {
            let v = row[j], c = v > zero ? v : zero
            row[j] = c < upper ? c : upper
        }
    }

    /// scale * (z > 0 ? z : alpha * (exp(z) - 1)) in place, with expm1 for small |z|.
    @inlinable
    static func elu<Scalar: BLASScalar>(_ row: UnsafeMutablePointer<Scalar>, count: Int, alpha: Scalar, scale: Scalar) {
        let zero: Scalar = 0
        for j in 0..<count {
            let v = row[j]
            row[j] = scale * (v > zero ? v : alpha * Scalar.exponentialMinusOne(v))
        }
    }
}

extension Activations {
    /// `d[i] *= f'(z[i])` for format 1.2's element-wise activations (the trainer's backward pass;
    /// the basic five, softmax and log-softmax are differentiated by the trainer itself).
    ///
    /// At the kinks the derivative is PyTorch's: leaky ReLU and ELU take their negative-side
    /// slope at 0 (`alpha`, `alpha * exp(0)`); relu6 and the capped ReLU pass the gradient on the
    /// open interval (0, max), hard sigmoid `1/6` on (-3, 3), 0 elsewhere. GELU: `Phi(z) + z
    /// phi(z)` (exact), or the derivative of its tanh form; softplus `sigmoid(z)`; swish
    /// `s (1 + z (1 - s))` with `s = sigmoid(z)`; SELU `scale` or `scale * alpha * exp(z)`.
    @inlinable
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    public static func multiplyByDerivative<Scalar: BLASScalar>(_ d: UnsafeMutablePointer<Scalar>, z: UnsafePointer<Scalar>, count: Int,
                                                                activation: Activation) {
        let zero: Scalar = 0, one: Scalar = 1
        switch activation {
        case .identity, .softmax, .logSoftmax, .relu, .sigmoid, .tanh:
            preconditionFailure("\(activation) is differentiated by the trainer")
        case let .leakyRelu(alpha):
            let a = Scalar(alpha)
            for i in 0..<count {
                let v = d[i]
                d[i] = z[i] > zero ? v : a * v
            }
        case let .elu(alpha):
            let a = Scalar(alpha)
            for i in 0..<count where !(z[i] > zero) { d[i] *= a * Scalar.exponential(z[i]) }
        case .selu:
            let a = Scalar(Activation.seluAlpha), scale = Scalar(Activation.seluScale)
            for i in 0..<count { d[i] *= z[i] > zero ? scale : scale * a * Scalar.exponential(z[i]) }
        case .gelu(.exact):
            let half: Scalar = 0.5, invSqrt2 = Scalar(0.70710678118654752440084436210484903928)
            let invSqrt2Pi = Scalar(0.39894228040143267793994605993438186848)
            for i in 0..<count {
                let v = z[i]
                d[i] *= half * (one + Scalar.errorFunction(v * invSqrt2)) + v * invSqrt2Pi * Scalar.exponential(-half * v * v)
            }
        case .gelu(.tanh):
            let half: Scalar = 0.5, c = Scalar(0.79788456080286535587989211986876373695), k: Scalar = 0.044715, k3: Scalar = 0.134145
            for i in 0..<count {
                let v = z[i], t = Scalar.hyperbolicTangent(c * (v + k * v * v * v))
                d[i] *= half * (one + t) + half * v * (one - t * t) * c * (one + k3 * v * v)
            }
        case .softplus:
            for i in 0..<count { d[i] *= one / (one + Scalar.exponential(-z[i])) }
        case .swish:
            for i in 0..<count {
                let v = z[i], s = one / (one + Scalar.exponential(-v))
                d[i] *= s * (one + v * (one - s))
            }
        case .hardSigmoid:
            let three: Scalar = 3, sixth = one / 6
            for i in 0..<count {
                let v = z[i], inside = v > -three && v < three
                d[i] = inside ? d[i] * sixth : zero
            }
        case .relu6:
            gate(d, z: z, count: count, upper: 6)
        case let .clippedRelu(maxValue):
            gate(d, z: z, count: count, upper: Scalar(maxValue))
        }
    }

    /// d[i] where 0 < z[i] < upper, else 0: the derivative of clipping to [0, upper].
    @inlinable
    static func gate<Scalar: BLASScalar>(_ d: UnsafeMutablePointer<Scalar>, z: UnsafePointer<Scalar>, count: Int, upper: Scalar) {
        let zero: Scalar = 0
        for i in 0..<count {
            let v = z[i], inside = v > zero && v < upper
            d[i] = inside ? d[i] : zero
        }
    }
}
