import NNCore
import NNHDF5

extension InteropError: CategorizedError {
    public var category: ErrorCategory {
        if case .badOption = self { return .usage }
        return .badInput
    }
}



// NNHDF5 wraps libhdf5 alone and knows nothing of NNCore; the converter gives its errors a
// category, from the errno where the system refused, never from the words of a message.
extension HDF5Error: CategorizedError {
    public var category: ErrorCategory {
        switch self {
        case let .inaccessible(_, errno, _): return errno.isAboutAccess ? .missingInput : .badInput
        case let .writeSystemCall(_, _, errno): return errno.isAboutAccess ? .cannotCreate : .writeFailed
        case .writeFailed: return .writeFailed
        default: return .badInput
        }
    }
}
