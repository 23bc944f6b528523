import NNCore

extension NNMError: CategorizedError {
    public var category: ErrorCategory {
        switch self {
        case .cannotOpen: return .missingInput
        case .cannotCreate: return .cannotCreate
        case .writeFailed: return .writeFailed
        default: return .badInput
        }
    }
}
