/// A failed system call on a file: which operation, on which path, and its `Errno`.
///
/// The one-line description names the file first, as every error of these tools does:
/// `model.nnm: cannot open: No such file or directory`.
public struct SystemError: Error, Equatable, Sendable, CustomStringConvertible {
    /// What was being done when the call failed.
    public enum Operation: Sendable {
        case open, read, map, create, write, sync, rename, spawn

        /// How the message says it failed: "cannot open".
        public var failure: String {
            switch self {
            case .read: return "read failed"
            case .write: return "write failed"
            case .rename: return "cannot rename into place"
            default: return "cannot \(self)"
            }
        }
    }

    public var path: String
    public var operation: Operation
    public var errno: Errno
    /// A reason that is not an errno (e.g. "not a regular file"); replaces the errno's text.
    public var detail: String?

    public init(path: String, operation: Operation, errno: Errno = .current, detail: String? = nil) {
        self.path = path
        self.operation = operation
        self.errno = errno
        self.detail = detail
    }

    /// The reason alone, without the path and the operation.
    public var reason: String { detail ?? errno.description }

    public var description: String { "\(path): \(operation.failure): \(reason)" }
}
