import NNCore

extension TrainingError: CategorizedError {
    public var category: ErrorCategory {
        switch self {
        case .invalidOption: return .usage
        case .badData, .cannotResume: return .badInput
        case .missingData: return .missingInput
        case .diverged: return .failed
        }
    }
}
