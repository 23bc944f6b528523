import Glibc

/// How a child process ended, and what it printed.
public struct CompletedProcess: Sendable {
    public enum Termination: Equatable, Sendable {
        /// It exited with this status.
        case exited(Int32)
        /// A signal killed it.
        case signaled(Int32)
    }

    public var termination: Termination
    /// Standard output, at most the capture limit.
    public var standardOutput: [UInt8]
    /// Standard error, at most the capture limit.
    public var standardError: [UInt8]
}

/// Runs other programs: the tools call each other (nn-infer asks nnconv to convert a model) so
/// that a tool links only the libraries its main job needs.
public enum ChildProcess {
    /// Runs `executable` with `arguments` (without argv[0]), waits for it, and returns how it
    /// ended and the first `captureLimit` bytes of each output stream. The streams go to unlinked
    /// temporary files, not pipes, so a child that prints much can never block on a full pipe
    /// while we wait; standard input is /dev/null.
    public static func run(executable: String, arguments: [String], captureLimit: Int = 1 << 20) throws(SystemError) -> CompletedProcess {
        let output = try CaptureFile()
        let errors = try CaptureFile()
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, output.descriptor, 1)
        posix_spawn_file_actions_adddup2(&actions, errors.descriptor, 2)
        var argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid = pid_t()
        let spawned = posix_spawn(&pid, executable, &actions, nil, &argv, environ)
        guard spawned == 0 else { throw SystemError(path: executable, operation: .spawn, errno: Errno(rawValue: spawned)) }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { throw SystemError(path: executable, operation: .spawn) }
        }
        // WIFEXITED / WTERMSIG are macros; the wait status is decoded by hand.
        let signal = status & 0x7f
        return CompletedProcess(termination: signal == 0 ? .exited((status >> 8) & 0xff) : .signaled(signal),
                                standardOutput: output.contents(limit: captureLimit),
                                standardError: errors.contents(limit: captureLimit))
    }

    /// The directory of the running executable (from /proc/self/exe), nil if it cannot be read.
    public static var executableDirectory: String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        let path = buffer[..<n].withUnsafeBufferPointer { String(decoding: UnsafeRawBufferPointer($0), as: UTF8.self) }
        guard let slash = path.lastIndex(of: "/") else { return nil }
        return String(path[..<slash])
    }

    /// The program `name`: beside the running executable (tools installed together find each
    /// other), else the first executable of that name on PATH.
    public static func locate(_ name: String) -> String? {
        let path = getenv("PATH").map { String(cString: $0) } ?? ""
        let candidates = [executableDirectory].compactMap { $0 } + path.split(separator: ":").map(String.init)
        return candidates.map { "\($0)/\(name)" }.first { access($0, X_OK) == 0 }
    }
}

/// An anonymous file (created and unlinked at once) that a child writes one stream into.
private final class CaptureFile {
    let descriptor: Int32

    init() throws(SystemError) {
        let directory = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        var template = Array("\(directory)/nnm-output-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw SystemError(path: directory, operation: .create) }
        // Only the child's dup2 copies of it are inherited, as its standard streams.
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        descriptor = fd
    }

    deinit { close(descriptor) }

    /// The first `limit` bytes written.
    func contents(limit: Int) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: limit) { buffer, count in
            count = 0
            while count < limit {
                let n = pread(descriptor, buffer.baseAddress! + count, limit - count, off_t(count))
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                count += n
            }
        }
    }
}
