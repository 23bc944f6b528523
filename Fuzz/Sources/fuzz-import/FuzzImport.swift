#if canImport(Glibc)
import Glibc
#endif
import FuzzSupport
import NNCore
import NNConvert
import NNModelFiles

// The converter's front door: any bytes, written to a file, through `ModelFiles.importModel`
// and `Inspection.inspect` (what `nnconv import` and `nnconv inspect` do first).
//
// HDF5 is parsed by libhdf5, and Debian's 1.10.8 crashes on some corrupt files inside its own
// code (which is why `nnconv` reads in a supervised child, Sources/NNCommandLine/IsolatedRun.swift).
// So inputs that reach libhdf5 (an HDF5 signature, or a zip holding config.json and
// model.weights.h5, a .keras archive) are imported in a forked child, as `nnconv` does:
//   - the child dying of SIGSEGV, SIGBUS, SIGABRT or SIGFPE, or being stopped after 10 s, is
//     libhdf5's known problem and is not reported;
//   - a Swift trap in the child (overflow, force unwrap, precondition: SIGILL, which libFuzzer's
//     handler reports with the child's stack before exiting non-zero) or an AddressSanitizer
//     report (a non-zero exit) is a bug in our code, and the harness crashes so that libFuzzer
//     saves the input.
// Coverage inside the child is not fed back to libFuzzer; everything else runs in-process.
// NN_FUZZ_SKIP_HDF5=1 skips such inputs instead of forking.

let scratch = ScratchFile(name: "input")
let childTemporary = ScratchFile(name: "unused")
let skipHDF5 = getenv("NN_FUZZ_SKIP_HDF5") != nil

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzImport(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    scratch.write(fuzzBytes(data, size))
    // The registry recognises the file in-process (our code, the zip directory included); only
    // HDF5 files and .keras archives go on to libhdf5.
    let format = try? ModelFiles.registry.format(of: scratch.path)
    let reachesHDF5 = format is HDF5ModelFormat || format is KerasArchiveFormat
    if !reachesHDF5 {
        importAndCheck()
    } else if !skipHDF5 {
        importInChild()
    }
    return 0
}

func importAndCheck() {
    if let inspection = try? ModelFiles.inspect(path: scratch.path) {
        _ = inspection.tree.render()
        _ = inspection.tree.json.serialized()
    }
    do {
        let result = try ModelFiles.importModel(path: scratch.path)
        do {
            try result.model.validate()
        } catch {
            fatalError("an imported model fails validation: \(error)")
        }
    } catch {
        precondition("\(error)".hasPrefix(scratch.path) || "\(error)".hasPrefix("--"),
                     "an error message does not start with the path: \(error)")
    }
}

func importInChild() {
    let pid = fork()
    if pid < 0 { fatalError("fork failed") }
    if pid == 0 {
        // libhdf5's own crashes end the child with their signal rather than an ASan report;
        // libFuzzer's timer is not the child's business.
        for s in [SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGALRM] { signal(s, SIG_DFL) }
        setenv("TMPDIR", childTemporary.directory, 1)
        alarm(10)
        importAndCheck()
        _exit(0)
    }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    childTemporary.removeContents()
    let signal = status & 0x7f
    if signal == 0 {
        let code = (status >> 8) & 0xff
        // libFuzzer's own handler reports a trap in the child (with its stack) and exits.
        if code != 0 { fatalError("the import child failed with exit status \(code): a crash in our code, reported above") }
    } else if signal == SIGILL || signal == SIGTRAP {
        fatalError("the import child trapped (signal \(signal)): a Swift runtime trap in our code")
    }
}

@main enum Main {
    static func main() { FuzzMain.run(fuzzImport) }
}
