#if canImport(Glibc)
import Glibc
#endif

/// A harness: libFuzzer's `LLVMFuzzerTestOneInput`.
public typealias FuzzHarness = @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt

#if FUZZING
/// libFuzzer's entry point for programs that have their own `main` (compiler-rt's FuzzerDriver).
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: FuzzHarness) -> CInt
#endif

/// What the `fuzz-*` executables share: their `main`.
///
/// SwiftPM links an executable target's `main` under a module-specific name, so a harness cannot
/// simply leave `main` to libFuzzer. Every harness therefore has an `@main` that calls `run`:
/// built with `make fuzz` (`-sanitize=fuzzer,address -DFUZZING`) it hands the command line to
/// libFuzzer's driver; in the normal build it runs the files it is given through the harness
/// once, so a crash input can be replayed without the sanitizer toolchain.
public enum FuzzMain {
    public static func run(_ harness: FuzzHarness) -> Never {
        #if FUZZING
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv, harness))
        #else
        FuzzReplay.run(harness)
        #endif
    }
}

/// Runs files through a harness outside libFuzzer.
public enum FuzzReplay {
    /// Runs every file named on the command line (the files of a directory, in name order)
    /// through `harness` and prints one line per file.
    public static func run(_ harness: FuzzHarness) -> Never {
        let arguments = Array(CommandLine.arguments.dropFirst())
        guard !arguments.isEmpty else {
            let tool = CommandLine.arguments.first.map { String($0.split(separator: "/").last ?? "fuzz") } ?? "fuzz"
            printError("usage: \(tool) FILE-OR-DIRECTORY...\n  runs each input through the harness once (build with `make fuzz` to fuzz)")
            exit(64)
        }
        var count = 0
        for argument in arguments {
            for path in files(argument) {
                guard let bytes = readWholeFile(path) else {
                    printError("\(path): cannot read")
                    exit(66)
                }
                _ = bytes.withUnsafeBufferPointer { harness($0.baseAddress, $0.count) }
                print("\(path): ok (\(bytes.count) bytes)")
                count += 1
            }
        }
        print("\(count) inputs ran without a crash")
        exit(0)
    }

    /// A regular file as itself; a directory as its regular files in name order.
    static func files(_ path: String) -> [String] {
        guard let directory = opendir(path) else { return [path] }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted().map { "\(path)/\($0)" }
    }

    static func readWholeFile(_ path: String) -> [UInt8]? {
        guard let file = fopen(path, "rb") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
            if n == 0 { break }
            bytes += chunk[0..<n]
        }
        return ferror(file) == 0 ? bytes : nil
    }
}

/// Writes one line to standard error.
func printError(_ line: String) {
    var text = line + "\n"
    text.withUTF8 { buffer in _ = Glibc.write(2, buffer.baseAddress, buffer.count) }
}

/// The input as an array, or the part after the first (mode-selecting) byte.
public func fuzzBytes(_ data: UnsafePointer<UInt8>?, _ size: Int, droppingFirst: Int = 0) -> [UInt8] {
    guard let data, size > droppingFirst else { return [] }
    return Array(UnsafeBufferPointer(start: data + droppingFirst, count: size - droppingFirst))
}

/// A private directory with one file that a harness rewrites for each input, for readers that
/// take a path. It lives in /dev/shm when there is one (no disk writes) and is removed at exit;
/// libFuzzer often ends with `_Exit`, so directories of processes that are gone are removed when
/// the next harness starts.
public final class ScratchFile: @unchecked Sendable {
    public let directory: String
    public let path: String

    public init(name: String) {
        let base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp"
        ScratchFile.removeStale(in: base)
        var template = Array("\(base)/nnm-fuzz-\(getpid())-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            fatalError("cannot create a scratch directory in \(base)")
        }
        directory = String(cString: made)
        path = "\(directory)/\(name)"
        ScratchFile.registerCleanup(directory)
    }

    /// Replaces the file's content with `bytes`.
    public func write(_ bytes: [UInt8]) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { fatalError("cannot write \(path)") }
        defer { close(fd) }
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, $0.count - written) }
            guard n > 0 else { fatalError("cannot write \(path)") }
            written += n
        }
    }

    /// Removes every file in the directory but keeps the directory.
    public func removeContents() {
        for file in FuzzReplay.files(directory) where file != directory { unlink(file) }
    }

    nonisolated(unsafe) private static var directories: [String] = []

    /// Removes `nnm-fuzz-<pid>-*` directories whose process no longer exists.
    private static func removeStale(in base: String) {
        for entry in FuzzReplay.files(base) {
            let name = entry.split(separator: "/").last.map(String.init) ?? ""
            let parts = name.split(separator: "-")
            guard parts.count == 4, parts[0] == "nnm", parts[1] == "fuzz", let pid = Int32(parts[2]) else { continue }
            guard kill(pid, 0) != 0 && errno == ESRCH else { continue }
            for file in FuzzReplay.files(entry) where file != entry { unlink(file) }
            rmdir(entry)
        }
    }

    private static func registerCleanup(_ directory: String) {
        if directories.isEmpty {
            atexit {
                for d in ScratchFile.directories {
                    for file in FuzzReplay.files(d) where file != d { unlink(file) }
                    rmdir(d)
                }
            }
        }
        directories.append(directory)
    }
}

/// Little-endian field writers for building containers around fuzzer bytes.
public extension Array where Element == UInt8 {
    mutating func appendLE<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }

    mutating func storeLE<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        Swift.withUnsafeBytes(of: value.littleEndian) { raw in
            for (i, b) in raw.enumerated() { self[offset + i] = b }
        }
    }
}
