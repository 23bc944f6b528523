import NNCore

/// Why a picture cannot be drawn from the data it was given.
public enum PlotError: Error, Equatable, CustomStringConvertible, Sendable {
    /// Convolution kernels must have shape [height, width, input channels, output filters]
    /// (HWIO, the layout Keras stores).
    case kernelsNotRank4(shape: [Int])
    /// A kernel dimension is 0, so there is nothing to draw.
    case kernelsEmpty(shape: [Int])
    /// Kernels are weights, which are stored as floating-point numbers.
    case kernelsNotFloatingPoint(DType)
    /// A confusion matrix needs at least one class.
    case noClasses
    /// A confusion matrix must have one row per class name, each with one count per class.
    case confusionMatrixShape(classes: Int, rowLengths: [Int])
    /// Counts in a confusion matrix cannot be negative.
    case negativeCount(row: Int, column: Int, count: Int)
    /// `--plot` asked for filters, but the model has no convolution layer.
    case noConvolutionLayer(path: String)

    public var description: String {
        switch self {
        case let .kernelsNotRank4(shape):
            return "convolution kernels must have 4 dimensions [height, width, input channels, filters], found shape \(ShapeMath.describe(shape))"
        case let .kernelsEmpty(shape):
            return "convolution kernels of shape \(ShapeMath.describe(shape)) hold no weights to draw"
        case let .kernelsNotFloatingPoint(dtype):
            return "convolution kernels must hold floating-point weights, found \(dtype.rawValue)"
        case .noClasses:
            return "a confusion matrix needs at least one class"
        case let .confusionMatrixShape(classes, rowLengths):
            let rows = rowLengths.isEmpty ? "no rows" : "rows of \(rowLengths.map(String.init).joined(separator: ", ")) counts"
            return "a confusion matrix for \(classes) classes needs \(classes) rows of \(classes) counts, found \(rows)"
        case let .negativeCount(row, column, count):
            return "confusion matrix row \(row), column \(column) holds a negative count (\(count))"
        case let .noConvolutionLayer(path):
            return "--plot: \(path) has no conv2d layer whose filters could be drawn"
        }
    }
}

extension PlotError: CategorizedError {
    public var category: ErrorCategory {
        if case .noConvolutionLayer = self { return .usage }
        return .badInput
    }
}
