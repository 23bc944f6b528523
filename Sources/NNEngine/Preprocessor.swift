import NNCore

/// A model's preprocessing steps, ready to apply to raw features in `Scalar` precision.
///
/// The engine applies it before the first layer; the trainer applies it once to its data, so
/// training and inference transform inputs identically.
public struct Preprocessor<Scalar: BLASScalar>: @unchecked Sendable {
    enum Step {
        case scale(factor: Scalar, offset: Scalar)
        case zscore(mean: ParameterBuffer<Scalar>, std: ParameterBuffer<Scalar>)
    }

    let steps: [Step]
    public let features: Int

    /// The steps of `model` (which must be valid: the statistics tensors exist with the right shape).
    public init(model: Model) {
        features = model.metadata.input.features
        steps = model.metadata.preprocessing.map { step in
            switch step {
            case let .scale(factor, offset): return .scale(factor: Scalar(factor), offset: Scalar(offset))
            case let .zscore(mean, std):
                return .zscore(mean: ParameterBuffer(model.tensor(mean)!), std: ParameterBuffer(model.tensor(std)!))
            }
        }
    }

    public var isIdentity: Bool { steps.isEmpty }

    /// Transforms `count` samples of `features` values in place.
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    public func apply(_ x: UnsafeMutablePointer<Scalar>, count: Int) {
        for step in steps {
            switch step {
            case let .scale(factor, offset):
                if offset == 0 {
                    for i in 0..<(count * features) { x[i] *= factor }
                } else {
                    for i in 0..<(count * features) { x[i] = x[i] * factor + offset }
                }
            case let .zscore(meanBuffer, stdBuffer):
                // As the blog's normalize(): centre every feature, divide only where std != 0.
                let mean = meanBuffer.pointer, std = stdBuffer.pointer
                for s in 0..<count {
                    let row = x + s * features
                    for j in 0..<features {
                        let centred = row[j] - mean[j]
                        row[j] = std[j] != 0 ? centred / std[j] : centred
                    }
                }
            }
        }
    }
}
