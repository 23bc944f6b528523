import Glibc

/// A POSIX error number, as a value: what went wrong in a system call, decided from the number
/// rather than from the words of its message.
public struct Errno: Error, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32

    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// The calling thread's current `errno`.
    public static var current: Errno { Errno(rawValue: errno) }

    public static let noSuchFile = Errno(rawValue: ENOENT)
    public static let permissionDenied = Errno(rawValue: EACCES)
    public static let notPermitted = Errno(rawValue: EPERM)
    public static let isDirectory = Errno(rawValue: EISDIR)
    public static let notDirectory = Errno(rawValue: ENOTDIR)
    public static let readOnlyFileSystem = Errno(rawValue: EROFS)
    public static let noSpace = Errno(rawValue: ENOSPC)
    public static let fileTooLarge = Errno(rawValue: EFBIG)
    public static let quotaExceeded = Errno(rawValue: EDQUOT)
    public static let interrupted = Errno(rawValue: EINTR)
    public static let ioError = Errno(rawValue: EIO)

    /// Whether the error says the file is missing or not accessible (rather than damaged):
    /// the difference between exit statuses 66 and 65 for an input, 73 and 74 for an output.
    public var isAboutAccess: Bool {
        [.noSuchFile, .permissionDenied, .notPermitted, .isDirectory, .notDirectory, .readOnlyFileSystem].contains(self)
    }

    /// The C library's text for the number, e.g. "No such file or directory".
    public var description: String { String(cString: strerror(rawValue)) }
}
