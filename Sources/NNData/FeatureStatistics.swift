/// Per-feature mean and population standard deviation of `count` rows of `featureCount` values:
/// NumPy's `X.mean(axis=0)` and `X.std(axis=0)`, accumulated in f64 as the blog's `normalize()`
/// computes them on float64 data.
public func featureStatistics(_ features: UnsafeBufferPointer<Float>, count: Int, featureCount f: Int) -> (mean: [Double], std: [Double]) {
    precondition(features.count >= count * f, "too few values")
    var mean = [Double](repeating: 0, count: f)
    var squares = [Double](repeating: 0, count: f)
    let n = Double(max(count, 1))
    for i in 0..<count {
        for j in 0..<f { mean[j] += Double(features[i * f + j]) }
    }
    for j in 0..<f { mean[j] /= n }
    for i in 0..<count {
        for j in 0..<f {
            let d = Double(features[i * f + j]) - mean[j]
            squares[j] += d * d
        }
    }
    return (mean, squares.map { ($0 / n).squareRoot() })
}
