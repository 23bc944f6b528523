import Glibc

/// Errors from writing files atomically; each keeps the system call's `Errno`.
public enum FileWriteError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The temporary file next to the destination could not be created.
    case cannotCreate(path: String, errno: Errno)
    /// Writing, syncing or renaming failed (a full disk, a file size limit, an I/O error).
    case writeFailed(path: String, errno: Errno)

    /// The system call's error number.
    public var errno: Errno {
        switch self {
        case let .cannotCreate(_, errno), let .writeFailed(_, errno): return errno
        }
    }

    /// The system's reason, e.g. "No space left on device".
    public var reason: String {
        switch self {
        case let .cannotCreate(_, errno), let .writeFailed(_, errno): return errno.description
        }
    }

    public var description: String {
        switch self {
        case let .cannotCreate(path, errno): return "\(path): cannot create output file: \(errno)"
        case let .writeFailed(path, errno): return "\(path): write failed: \(errno); the previous file, if any, is unchanged"
        }
    }
}

/// The text for the current `errno`.
@inline(__always)
public func systemErrorMessage(_ code: Int32 = errno) -> String {
    String(cString: strerror(code))
}

/// Writes a file so that readers only ever see the complete old file or the complete new one.
///
/// Bytes go to a temporary file in the destination's directory; `commit()` fsyncs it, renames it
/// over the destination and fsyncs the directory. A writer that is dropped without `commit()`
/// (an error, a thrown exception) removes its temporary file; a killed process leaves only a
/// `.tmp` file beside the untouched destination.
///
/// A library that writes files by name (libhdf5) writes to `temporaryPath` after
/// `releaseDescriptor()`; `commit()` then reopens the file to sync it.
public final class AtomicFileWriter {
    public let path: String
    /// Where the bytes go until `commit()`.
    public let temporaryPath: String
    private var descriptor: Int32
    private var committed = false
    private var discarded = false

    /// Opens a temporary file beside `path`.
    public init(path: String) throws(FileWriteError) {
        self.path = path
        let directory = AtomicFileWriter.directory(of: path)
        let base = path.split(separator: "/").last.map(String.init) ?? path
        var template = Array("\(directory)/.\(base).tmp-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else {
            throw FileWriteError.cannotCreate(path: path, errno: .current)
        }
        descriptor = fd
        temporaryPath = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        // mkstemp creates 0600; a model file is an ordinary document.
        _ = fchmod(fd, 0o644)
    }

    deinit { discard() }

    /// Appends bytes.
    public func write(_ bytes: UnsafeRawBufferPointer) throws(FileWriteError) {
        var offset = 0
        while offset < bytes.count {
            let written = Glibc.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                throw FileWriteError.writeFailed(path: path, errno: .current)
            }
            offset += written
        }
    }

    /// Appends the bytes of an array.
    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { (raw) in try write(raw) }
    }

    /// Appends `count` zero bytes.
    public func writeZeros(_ count: Int) throws {
        guard count > 0 else { return }
        let zeros = [UInt8](repeating: 0, count: min(count, 1 << 16))
        var remaining = count
        while remaining > 0 {
            let n = min(remaining, zeros.count)
            try zeros.withUnsafeBytes { (raw) in
                try write(UnsafeRawBufferPointer(rebasing: raw[0..<n]))
            }
            remaining -= n
        }
    }

    /// Closes the writer's descriptor so that another library can write `temporaryPath` by
    /// name; the temporary file is still removed unless `commit()` succeeds.
    public func releaseDescriptor() {
        if descriptor >= 0 { close(descriptor) }
        descriptor = -1
    }

    /// Removes the temporary file now (the destination stays as it was); `commit()` is then
    /// impossible. Dropping the writer does the same.
    public func discard() {
        guard !committed, !discarded else { return }
        discarded = true
        releaseDescriptor()
        unlink(temporaryPath)
    }

    /// Makes the new file durable and puts it in place of the destination.
    public func commit() throws(FileWriteError) {
        guard !committed else { return }
        guard !discarded else { throw FileWriteError.writeFailed(path: path, errno: Errno(rawValue: ENOENT)) }
        if descriptor < 0 {
            descriptor = open(temporaryPath, O_RDONLY | O_CLOEXEC)
            guard descriptor >= 0 else { throw FileWriteError.writeFailed(path: path, errno: .current) }
        }
        if fsync(descriptor) != 0 {
            throw FileWriteError.writeFailed(path: path, errno: .current)
        }
        if close(descriptor) != 0 {
            descriptor = -1
            throw FileWriteError.writeFailed(path: path, errno: .current)
        }
        descriptor = -1
        if rename(temporaryPath, path) != 0 {
            throw FileWriteError.writeFailed(path: path, errno: .current)
        }
        committed = true
        let dir = open(AtomicFileWriter.directory(of: path), O_RDONLY | O_DIRECTORY)
        if dir >= 0 {
            _ = fsync(dir)
            close(dir)
        }
    }

    /// Writes `bytes` to `path` atomically.
    public static func write(_ bytes: [UInt8], to path: String) throws {
        let writer = try AtomicFileWriter(path: path)
        try writer.write(bytes)
        try writer.commit()
    }

    /// The directory part of `path` ("." for a bare name).
    public static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let dir = path[..<slash]
        return dir.isEmpty ? "/" : String(dir)
    }
}
