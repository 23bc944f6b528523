internal import NNKernels
import NNCore

/// A model's preprocessing steps, ready to apply to raw features in `Scalar` precision.
///
/// The engine applies it before the first layer; the trainer applies it once to its data, so
/// training and inference transform inputs identically.
public struct Preprocessor<Scalar: BLASScalar>: @unchecked Sendable {
    enum Step {
        case scale(factor: Scalar, offset: Scalar)
        /// `divisor` is `std` with zeros replaced by ones: dividing by 1 is exact, so
        /// `(x - mean) / divisor` is the blog's "centre, divide where std != 0" without a branch.
        case zscore(mean: ParameterBuffer<Scalar>, divisor: ParameterBuffer<Scalar>)
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
                let divisors = Scalar.values(of: model.tensor(std)!).map { $0 == 0 ? 1 : $0 }
                return .zscore(mean: ParameterBuffer(model.tensor(mean)!), divisor: ParameterBuffer(copying: divisors))
            }
        }
    }

    public var isIdentity: Bool { steps.isEmpty }

    /// The preprocessing as one step that the int8 kernels apply to each row as they quantize it
    /// (f32, exactly one step), or nil. Its pointers live as long as this preprocessor.
    var rowPreprocessing: RowPreprocessing? {
        guard Scalar.self == Float.self, steps.count == 1 else { return nil }
        switch steps[0] {
        case let .scale(factor, offset): return .scale(factor: factor as! Float, offset: offset as! Float)
        case let .zscore(mean, divisor):
            return .zscore(mean: UnsafeRawPointer(mean.pointer).assumingMemoryBound(to: Float.self),
                           divisor: UnsafeRawPointer(divisor.pointer).assumingMemoryBound(to: Float.self))
        }
    }

    /// Transforms `count` samples of `features` values in place.
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    public func apply(_ x: UnsafeMutablePointer<Scalar>, count: Int) {
        apply(UnsafePointer(x), into: x, count: count)
    }

    /// Writes the transformed `count` samples of `source` to `target` (one pass; `target` may be
    /// `source`). With no steps, copies.
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    public func apply(_ source: UnsafePointer<Scalar>, into target: UnsafeMutablePointer<Scalar>, count: Int) {
        // f32 with one step: the kernels' vectorized loop (AVX-512 or AVX2; the same operations,
        // so the same values). The loop below runs on SSE2 vectors at best: 4,807 samples against
        // the row kernel's 39,803 in a loop of one-image f32 calls on the AVX2 kernels.
        if let row = rowPreprocessing {
            RowPreprocessing.withPrologue(row) { prologue in
                nn_preprocess_rows(prologue, UnsafeRawPointer(source).assumingMemoryBound(to: Float.self), count, features,
                                   UnsafeMutableRawPointer(target).assumingMemoryBound(to: Float.self))
            }
            return
        }
        var from = source
        if steps.isEmpty, from != UnsafePointer(target) { target.update(from: from, count: count * features) }
        for step in steps {
            switch step {
            case let .scale(factor, offset):
                let n = count * features
                if offset == 0 {
                    for i in 0..<n { target[i] = from[i] * factor }
                } else {
                    for i in 0..<n { target[i] = from[i] * factor + offset }
                }
            case let .zscore(meanBuffer, divisorBuffer):
                // As the blog's normalize(): centre every feature, divide only where std != 0
                // (the divisor is 1 there).
                let mean = meanBuffer.pointer, divisor = divisorBuffer.pointer, width = features
                for s in 0..<count {
                    let input = from + s * width, output = target + s * width
                    for j in 0..<width { output[j] = (input[j] - mean[j]) / divisor[j] }
                }
            }
            from = UnsafePointer(target)
        }
    }
}

/// One preprocessing step as the int8 kernels apply it to the rows they quantize: `x * factor`
/// (then `+ offset` when it is not 0), or `(x - mean[j]) / divisor[j]`; the same operations as
/// `Preprocessor.apply`, so the same values.
enum RowPreprocessing {
    case scale(factor: Float, offset: Float)
    case zscore(mean: UnsafePointer<Float>, divisor: UnsafePointer<Float>)
}
