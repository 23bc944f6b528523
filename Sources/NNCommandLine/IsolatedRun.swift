#if canImport(Glibc)
import Glibc
#endif

/// Runs the current command again in a child process and reports a crash or hang of the child
/// as one line and exit status 65.
///
/// libhdf5 (Debian's 1.10.8) can crash or hang on a corrupted file inside its own code, where no
/// Swift check can reach. Doing the work in a child keeps the promise that a bad input gets an
/// error message, never a crash: the parent only waits. Outputs are written atomically, so a
/// killed child leaves no partial file.
public enum IsolatedRun {
    static let workerVariable = "NN_ISOLATED_WORKER"

    /// In the parent: spawns the worker, waits at most `timeout` seconds, and exits with its
    /// status. In the worker (or when isolation is off), returns so the command runs normally.
    public static func superviseUnlessWorker(tool: String, inputs: [String], timeout: Double = 600) {
        if getenv(workerVariable) != nil || getenv("NN_NO_ISOLATION") != nil { return }
        var pid = pid_t()
        let arguments = CommandLine.arguments
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        var environment: [UnsafeMutablePointer<CChar>?] = []
        var index = 0
        while let entry = environ[index] {
            if !String(cString: entry).hasPrefix("SWIFT_BACKTRACE=") { environment.append(strdup(entry)) }
            index += 1
        }
        environment.append(strdup("\(workerVariable)=1"))
        // The parent reports a crash in one line; the runtime's multi-page backtrace would bury it.
        environment.append(strdup("SWIFT_BACKTRACE=enable=no"))
        environment.append(nil)
        defer {
            argv.forEach { free($0) }
            environment.forEach { free($0) }
        }
        let spawned = posix_spawn(&pid, "/proc/self/exe", nil, nil, &argv, &environment)
        guard spawned == 0 else { return }  // cannot isolate: run in this process instead
        let deadline = monotonicNow() + timeout
        var status: Int32 = 0
        while true {
            let done = waitpid(pid, &status, WNOHANG)
            if done == pid { break }
            if done < 0 && errno != EINTR { exit(ExitStatus.software) }
            if monotonicNow() > deadline {
                kill(pid, SIGKILL)
                _ = waitpid(pid, &status, 0)
                printError("\(tool): \(describe(inputs)): no result after \(Int(timeout)) s; reading was stopped (the input may be corrupt or hostile)")
                exit(ExitStatus.dataError)
            }
            var pause = timespec(tv_sec: 0, tv_nsec: 2_000_000)
            nanosleep(&pause, nil)
        }
        // WIFEXITED / WTERMSIG are macros; decode the wait status by hand.
        let signal = status & 0x7f
        if signal == 0 { exit((status >> 8) & 0xff) }
        printError("\(tool): \(describe(inputs)): a library crashed while reading (signal \(signal)); the input is corrupt or hostile")
        exit(ExitStatus.dataError)
    }

    static func describe(_ inputs: [String]) -> String {
        inputs.isEmpty ? "input" : inputs.joined(separator: ", ")
    }

    static func monotonicNow() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}
