import ArgumentParser
import NNCore

#if canImport(Glibc)
import Glibc
#endif

/// The exit statuses of all the tools (BSD sysexits), documented in the README.
public enum ExitStatus {
    public static let success: Int32 = 0
    /// The operation ran but failed: training diverged, a validation found problems.
    public static let failure: Int32 = 1
    /// Bad command-line usage (ArgumentParser's own status for validation errors).
    public static let usage: Int32 = 64
    /// An input file is malformed, corrupt or does not fit the model.
    public static let dataError: Int32 = 65
    /// An input file does not exist or cannot be opened.
    public static let noInput: Int32 = 66
    /// A program the tool needs is missing: nn-infer converting a model finds no nnconv.
    public static let unavailable: Int32 = 69
    /// An internal error: a bug; please report it.
    public static let software: Int32 = 70
    /// The system refused a resource: nn-serve cannot listen on its address (in use, not allowed).
    public static let osError: Int32 = 71
    /// An output file cannot be created.
    public static let cannotCreate: Int32 = 73
    /// Writing an output failed (a full disk, a file size limit).
    public static let ioError: Int32 = 74
}

/// An error a tool reports as one line with a chosen exit status.
public struct ToolError: Error, CustomStringConvertible {
    public var message: String
    public var status: Int32
    public init(_ message: String, status: Int32) {
        self.message = message
        self.status = status
    }
    public var description: String { message }
}

/// The exit status for an error from any of the libraries.
public func exitStatus(for error: any Error) -> Int32 {
    if let e = error as? ToolError { return e.status }
    guard let e = error as? CategorizedError else { return ExitStatus.software }
    switch e.category {
    case .usage: return ExitStatus.usage
    case .badInput: return ExitStatus.dataError
    case .missingInput: return ExitStatus.noInput
    case .cannotCreate: return ExitStatus.cannotCreate
    case .writeFailed: return ExitStatus.ioError
    case .failed: return ExitStatus.failure
    }
}

/// Writes a line to standard error.
public func printError(_ line: String, newline: Bool = true) {
    let text = Array((newline ? line + "\n" : line).utf8)
    // write(2) to descriptor 2: no shared C stdio state, so nothing Swift 6 must guard.
    text.withUnsafeBytes { raw in
        var offset = 0
        while offset < raw.count {
            let n = write(2, raw.baseAddress! + offset, raw.count - offset)
            if n <= 0 { return }
            offset += n
        }
    }
}

/// Runs a tool's body; any error becomes one line on standard error, `tool: message`, and the
/// matching exit status.
public func reportingErrors(tool: String, _ body: () throws -> Void) throws {
    // Past a file size limit (ulimit -f) the kernel would kill the process with SIGXFSZ, leaving
    // no message; ignored, the write fails with EFBIG and is reported like a full disk.
    signal(SIGXFSZ, SIG_IGN)
    do {
        try body()
    } catch let exit as ExitCode {
        throw exit
    } catch {
        printError("\(tool): \(error)")
        // Leave without running atexit handlers: after a failed write libhdf5's own shutdown can
        // crash, which would bury the message just printed under a crash report.
        fflush(nil)  // every C stream, stdout among them
        _exit(exitStatus(for: error))
    }
}

/// Parses the command line of `command` and runs it, as `ParsableCommand.main()` does, except
/// that a usage error is one line on standard error, `tool: message (see 'tool --help')`, with
/// exit status 64; `--help` and `--version` print as ArgumentParser prints them.
public func runCommandLine<C: ParsableCommand>(_ command: C.Type, tool: String) {
    do {
        var parsed = try command.parseAsRoot()
        try parsed.run()
    } catch {
        exitReportingUsageError(command, tool: tool, error: error)
    }
}

/// Exits for an error of parsing or running `command`: a usage error of ArgumentParser's as one
/// line (see `runCommandLine`), anything else (help, `ExitCode`) as ArgumentParser does.
public func exitReportingUsageError<C: ParsableCommand>(_ command: C.Type, tool: String, error: any Error) -> Never {
    let code = command.exitCode(for: error)
    guard !(error is ExitCode), code.rawValue == ExitStatus.usage else { command.exit(withError: error) }
    let lines = command.message(for: error).split(separator: "\n")
    var message = lines.first.map(String.init) ?? "invalid command line"
    // With more than five values ArgumentParser lists them one per line ("  - blog"): keep them
    // on the one line.
    let values = lines.dropFirst().map { $0.drop { $0 == " " } }.filter { $0.hasPrefix("- ") }.map { String($0.dropFirst(2)) }
    if !values.isEmpty { message += " " + values.joined(separator: ", ") }
    if message.hasSuffix(".") { message.removeLast() }
    printError("\(tool): \(message) (see '\(tool) --help')")
    exit(ExitStatus.usage)
}

/// `reportingErrors` for a body that awaits (nn-serve).
public func reportingAsyncErrors(tool: String, _ body: () async throws -> Void) async throws {
    signal(SIGXFSZ, SIG_IGN)
    do {
        try await body()
    } catch let exit as ExitCode {
        throw exit
    } catch {
        printError("\(tool): \(error)")
        fflush(nil)
        _exit(exitStatus(for: error))
    }
}

/// `runCommandLine` for a command that runs asynchronously (nn-serve).
public func runAsyncCommandLine<C: AsyncParsableCommand>(_ command: C.Type, tool: String) async {
    do {
        var parsed = try command.parseAsRoot()
        if var asyncCommand = parsed as? any AsyncParsableCommand {
            try await asyncCommand.run()
        } else {
            try parsed.run()
        }
    } catch {
        exitReportingUsageError(command, tool: tool, error: error)
    }
}
