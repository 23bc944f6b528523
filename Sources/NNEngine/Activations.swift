import NNCore

/// The activation functions, applied in place to row-major matrices.
///
/// The element-wise loops are written without branches (`v > zero ? v : zero` compiles to a
/// vector max), so they vectorize; a data-dependent branch per element costs a misprediction
/// for about every other ReLU input. (The zero is a local constant: with a literal inside the
/// loop, the specialized generic code keeps a branch and does not vectorize.) Results are the same as the plain formulas, NaN included
/// (ReLU maps NaN and -0 to +0, as `!(v > 0) -> 0` does).
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
        case .sigmoid, .tanh, .softmax:
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
        case .sigmoid, .tanh, .softmax:
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
        }
    }
}
