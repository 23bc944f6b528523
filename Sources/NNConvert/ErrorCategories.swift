import NNCore
import NNHDF5

extension InteropError: CategorizedError {
    public var category: ErrorCategory {
        if case .badOption = self { return .usage }
        return .badInput
    }
}



// NNHDF5 wraps libhdf5 alone and knows nothing of NNCore; the converter gives its errors a category.
extension HDF5Error: CategorizedError {
    public var category: ErrorCategory {
        func aboutAccess(_ reason: String) -> Bool { reason.contains("No such file") || reason.contains("ermission") }
        switch self {
        case let .cannotOpen(_, reason): return aboutAccess(reason) ? .missingInput : .badInput
        case let .writeFailed(_, reason): return aboutAccess(reason) ? .cannotCreate : .writeFailed
        default: return .badInput
        }
    }
}
