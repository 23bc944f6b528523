import NNCore

extension ZipError: CategorizedError {
    public var category: ErrorCategory {
        if case .cannotOpen = self { return .missingInput }
        return .badInput
    }
}
