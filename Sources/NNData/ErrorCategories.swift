import NNCompression
import NNCore

extension CompressionError: CategorizedError {
    public var category: ErrorCategory {
        if case let .system(error) = self { return error.category }
        return .badInput
    }
}

extension IDXError: CategorizedError {
    public var category: ErrorCategory {
        if case let .compression(c) = self { return c.category }
        return .badInput
    }
}
