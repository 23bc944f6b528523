/// A failed system call on a file: which operation, on which path, and its `Errno`.
///
/// The one-line description names the file first, as every error of these tools does:
/// `model.nnm: cannot open: No such file or directory`.
public struct SystemError: Error, Equatable, Sendable, CustomStringConvertible {
    /// What was being done when the call failed.
    public enum Operation: String, Sendable {
        case open = "cannot open"
        case read = "cannot read"
        case map = "cannot map"
        case create = "cannot create"
        case write = "write failed"
        case sync = "cannot sync"
        case rename = "cannot rename into place"
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

    public var description: String { "\(path): \(operation.rawValue): \(reason)" }
}
