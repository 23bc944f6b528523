import Glibc

/// A private file in `$TMPDIR` (or /tmp) that is removed when the value goes away: for
/// libraries that read only from files (libhdf5 reading a member of a `.keras` zip).
public final class TemporaryFile {
    public let path: String

    /// Creates an empty file, mode 0600, whose name ends in `suffix` (e.g. ".h5").
    public init(suffix: String) throws(SystemError) {
        let directory = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        var template = Array("\(directory)/nnm-XXXXXX\(suffix)".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemps($0.baseAddress!, Int32(suffix.utf8.count)) }
        guard fd >= 0 else { throw SystemError(path: directory, operation: .create) }
        close(fd)
        path = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    deinit { unlink(path) }
}
