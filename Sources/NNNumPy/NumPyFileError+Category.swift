import NNCore

extension NumPyFileError: CategorizedError {
    public var category: ErrorCategory {
        if case let .io(_, message) = self, message.hasPrefix("cannot open") { return .missingInput }
        return .badInput
    }
}
