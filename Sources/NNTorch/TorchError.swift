import NNCore
import NNPickle

/// Why a torch checkpoint could not be read. Messages are one line; the caller puts the file's
/// path in front. Wrapped errors keep their cause (`pickle`, `storageUnavailable`, `inTensor`).
public enum TorchError: Error, CustomStringConvertible, CategorizedError {
    /// The pickle is malformed, too large, or names a global that is refused (nothing was run).
    case pickle(PickleError)
    /// A whole pickled model whose class is the user's own Python code.
    case customClass(String)
    /// A whole pickled model with a torch.nn layer this reader does not decode.
    case unsupportedModuleClass(String)
    /// A whole pickled model read as a state dict.
    case wholeModelFile(String)
    /// The pickle holds something else than a state dict of tensors.
    case notStateDict(String)
    /// The pickle holds something else than a pickled nn.Module.
    case notModule(String)
    /// Not torch's legacy format (no magic number, another protocol version).
    case notLegacyFormat(String)
    /// Torch would not have written this: a bad persistent id, tensor record or storage layout.
    case malformed(String)
    /// Something torch writes that this reader does not read (a dtype, big-endian data).
    case unsupported(String)
    /// The storage provider could not give a storage's bytes.
    case storageUnavailable(key: String, cause: any Error)
    /// A storage's size disagrees with what the pickle declares for it.
    case storageSizeMismatch(key: String, declared: String, actualBytes: Int)
    /// An error in decoding the tensor under this name (a state dict key, a module path).
    indirect case inTensor(String, TorchError)

    public var category: ErrorCategory { .badInput }

    public var description: String {
        switch self {
        case let .pickle(error): return error.description
        case let .customClass(name):
            return "the model is a \(name), a class defined in Python code: its forward() is not in the file, "
                + "so the model cannot be rebuilt (nothing was run); save model.state_dict() instead and state the architecture"
        case let .unsupportedModuleClass(name):
            return "the model uses \(name), which this reader does not decode (nothing was run); it reads "
                + TorchAllowList.moduleClassNames.joined(separator: ", ")
        case let .wholeModelFile(name):
            return "the file holds a whole pickled model (\(name)), not a state dict; read it as a whole model"
        case let .notStateDict(detail): return "not a state dict: \(detail)"
        case let .notModule(detail): return "not a pickled torch.nn module: \(detail)"
        case let .notLegacyFormat(detail): return "not a torch file in the legacy format: \(detail)"
        case let .malformed(detail): return "malformed torch checkpoint: \(detail)"
        case let .unsupported(detail): return detail
        case let .storageUnavailable(key, cause): return "storage '\(PickleError.oneLine(key))' cannot be read: \(cause)"
        case let .storageSizeMismatch(key, declared, actual):
            return "storage '\(PickleError.oneLine(key))' holds \(actual) bytes, but the pickle declares \(declared)"
        case let .inTensor(name, error): return "tensor '\(PickleError.oneLine(name))': \(error)"
        }
    }

    /// A pickle error, with refusals that are recognizably a model's classes told apart: a torch.nn
    /// layer this reader does not know, a class from the user's code, a model in a state dict.
    static func reading(_ error: PickleError, mode: TorchCheckpoint.Mode) -> TorchError {
        guard case let .refusedGlobal(module, name, _, _) = error else { return .pickle(error) }
        let dotted = "\(module).\(name)"
        if mode == .stateDict && TorchAllowList.moduleClasses.contains(dotted) { return .wholeModelFile(dotted) }
        if module.hasPrefix("torch.nn.modules.") { return .unsupportedModuleClass(dotted) }
        let topLevel = String(module.split(separator: ".").first ?? "")
        let looksLikeClass = name.unicodeScalars.first.map { ("A"..."Z").contains($0) } ?? false
        if module == "__main__" || (looksLikeClass && !knownLibraryModules.contains(topLevel)) {
            return .customClass(dotted)
        }
        return .pickle(error)
    }

    /// Top-level modules whose capitalized names are library classes (subprocess.Popen), not a
    /// user's model: a refusal of one stays a plain refusal.
    private static let knownLibraryModules: Set<String> = [
        "builtins", "os", "posix", "nt", "sys", "subprocess", "shutil", "socket", "importlib", "runpy", "pty",
        "ctypes", "pickle", "marshal", "code", "codeop", "types", "functools", "operator", "webbrowser",
        "platform", "io", "pathlib", "tempfile", "multiprocessing", "threading", "asyncio", "signal",
        "collections", "copyreg", "_codecs", "typing", "abc", "inspect", "torch", "numpy", "codecs",
    ]
}
