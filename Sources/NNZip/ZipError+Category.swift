import NNCore

extension ZipError: CategorizedError {
    public var category: ErrorCategory {
        if case let .system(error) = self { return error.category }
        return .badInput
    }
}
