import NNSystem
/// What kind of failure an error is, so a command-line tool can choose its exit status without
/// knowing every library's error types.
public enum ErrorCategory: Sendable {
    /// A command-line choice is wrong.
    case usage
    /// An input file is malformed, corrupt or does not fit.
    case badInput
    /// An input file does not exist or cannot be opened.
    case missingInput
    /// An output file cannot be created.
    case cannotCreate
    /// Writing an output failed part-way (a full disk, a file size limit).
    case writeFailed
    /// The operation ran and failed (training diverged).
    case failed
}

/// An error that knows its category.
public protocol CategorizedError: Error {
    var category: ErrorCategory { get }
}

extension ModelError: CategorizedError {
    public var category: ErrorCategory { .badInput }
}

extension FileWriteError: CategorizedError {
    public var category: ErrorCategory {
        switch self {
        case .cannotCreate: return .cannotCreate
        case .writeFailed: return .writeFailed
        }
    }
}

extension SystemError: CategorizedError {
    /// From the errno: a missing or inaccessible file is a missing input (or an output that
    /// cannot be created); anything else is a bad input or a failed write.
    public var category: ErrorCategory {
        switch operation {
        case .open, .read, .map: return errno.isAboutAccess ? .missingInput : .badInput
        case .create: return .cannotCreate
        case .write, .sync, .rename: return errno.isAboutAccess ? .cannotCreate : .writeFailed
        // Callers that run programs say what a missing one means for them.
        case .spawn: return .failed
        }
    }
}
