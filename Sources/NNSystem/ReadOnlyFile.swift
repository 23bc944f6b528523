import Glibc
internal import CNNSystem

/// A regular file opened for reading: its size, its first bytes, positioned reads and a
/// read-only mapping. Every module that reads a file by path goes through this type, so the
/// system calls and their errors live in one place.
public final class ReadOnlyFile: @unchecked Sendable {
    // Sendable: the descriptor is only used with positioned reads (pread), which share no offset.

    /// The path as the caller gave it; errors name it.
    public let path: String
    /// The open descriptor (closed when the file goes away).
    public let descriptor: Int32
    /// The file's size in bytes when it was opened.
    public let size: Int

    /// Opens `path`, which must be a regular file (not a directory, a pipe or a device).
    /// O_NONBLOCK: opening a FIFO without it would wait for a writer forever; for a regular
    /// file it changes nothing, and anything else is refused right after the open.
    public init(path: String) throws(SystemError) {
        if path.utf8.contains(0) { throw SystemError(path: path, operation: .open, errno: .noSuchFile, detail: "the path contains a NUL byte") }
        var fd: Int32
        repeat { fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK) } while fd < 0 && errno == EINTR
        guard fd >= 0 else { throw SystemError(path: path, operation: .open) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let error = SystemError(path: path, operation: .open)
            close(fd)
            throw error
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw SystemError(path: path, operation: .open, errno: .isDirectory, detail: "not a regular file")
        }
        self.path = path
        self.descriptor = fd
        self.size = Int(info.st_size)
    }

    deinit { close(descriptor) }

    /// Reads up to `count` bytes at `offset`; fewer only where the file ends.
    public func read(at offset: Int, count: Int) throws(SystemError) -> [UInt8] {
        precondition(offset >= 0 && count >= 0, "negative offset or count")
        var failure: SystemError?
        let bytes = [UInt8](unsafeUninitializedCapacity: count) { buffer, got in
            got = 0
            while got < count {
                let n = pread(descriptor, buffer.baseAddress! + got, count - got, off_t(offset + got))
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = SystemError(path: path, operation: .read)
                    break
                }
                if n == 0 { break }
                got += n
            }
        }
        if let failure { throw failure }
        return bytes
    }

    /// Reads exactly `count` bytes at `offset` into `buffer`; returns how many were there
    /// (fewer only where the file ends).
    public func read(at offset: Int, into buffer: UnsafeMutableRawBufferPointer) throws(SystemError) -> Int {
        var got = 0
        while got < buffer.count {
            let n = pread(descriptor, buffer.baseAddress! + got, buffer.count - got, off_t(offset + got))
            if n < 0 {
                if errno == EINTR { continue }
                throw SystemError(path: path, operation: .read)
            }
            if n == 0 { break }
            got += n
        }
        return got
    }

    /// The first `count` bytes (fewer for a shorter file): enough to recognise a format.
    public func head(_ count: Int) throws(SystemError) -> [UInt8] {
        try read(at: 0, count: min(count, max(size, 0)))
    }

    /// Maps the whole file read-only.
    ///
    /// If the file is truncated while the mapping is in use, touching the lost pages would
    /// kill the process with SIGBUS; instead, the process prints `"<program>: <path>: the file
    /// was truncated or replaced in place while it was in use"` and exits with
    /// `MappedRegion.fileChangedStatus` (75).
    public func map() throws(SystemError) -> MappedRegion {
        guard size > 0 else { throw SystemError(path: path, operation: .map, errno: .ioError, detail: "the file is empty") }
        guard let base = mmap(nil, size, PROT_READ, MAP_PRIVATE, descriptor, 0), base != MAP_FAILED else {
            throw SystemError(path: path, operation: .map)
        }
        return MappedRegion(base: UnsafeRawPointer(base), count: size, path: path)
    }
}

/// A read-only mapping of a file, unmapped when the value goes away.
public final class MappedRegion: @unchecked Sendable {
    // Sendable: the bytes are read-only.

    /// The exit status of a process whose mapped file was truncated under it (EX_TEMPFAIL:
    /// the input changed while in use; running again may work).
    public static let fileChangedStatus: Int32 = 75

    public let bytes: UnsafeRawBufferPointer
    private let guardSlot: Int32

    init(base: UnsafeRawPointer, count: Int, path: String) {
        bytes = UnsafeRawBufferPointer(start: base, count: count)
        let program = CommandLine.arguments.first.map { $0.split(separator: "/").last.map(String.init) ?? $0 } ?? "nnm"
        let message = "\(program): \(path): the file was truncated or replaced in place while it was in use; nothing more was read from it"
        guardSlot = nn_guard_mapping(base, count, message, MappedRegion.fileChangedStatus)
    }

    deinit {
        nn_unguard_mapping(guardSlot)
        munmap(UnsafeMutableRawPointer(mutating: bytes.baseAddress), bytes.count)
    }
}
