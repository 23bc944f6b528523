import NNConvert
import NNCore
import NNSystem
import NNTorch
import NNZip

/// PyTorch checkpoints (`torch.save`), read without Python and without running anything: the
/// zip format (`<name>/data.pkl`, `<name>/data/<key>`, `<name>/byteorder`) and the legacy
/// format (pickles followed by raw storages). A state dict becomes a model by
/// `PyTorchStateDict`'s rules; a pickled `nn.Sequential` of standard layers is rebuilt from its
/// modules' classes and attributes; a custom class is refused (its `forward` is Python code
/// that is not in the file).
public struct PyTorchModelFormat: ModelFileFormat {
    public init() {}
    public var displayName: String { "PyTorch (.pth, .pt)" }
    public var exportSuffixes: [String] { [".pth", ".pt"] }

    /// Writes the model's state dict as torch.save does (zip format): the parameters of the
    /// `nn.Sequential` that `PyTorchLayout` describes, loadable with
    /// `model.load_state_dict(torch.load(path, weights_only=True))`. A state dict holds
    /// parameters only: the preprocessing, classes and history of the `.nnm` are not in it, so the
    /// summary says what to apply to inputs.
    public func export(_ model: ValidatedModel, to path: String, options: ExportOptions) throws -> ExportResult {
        let layout = try PyTorchLayout(model.model.metadata, path: path)
        let entries = layout.stateDict(model.model)
        let zip = try ZipWriter(path: path)
        let folder = TorchStateDictWriter.archiveName
        try zip.addMember(name: "\(folder)/data.pkl", bytes: TorchStateDictWriter.pickle(entries))
        try zip.addMember(name: "\(folder)/.format_version", bytes: Array("1".utf8))
        try zip.addMember(name: "\(folder)/byteorder", bytes: Array("little".utf8))
        for (i, entry) in entries.enumerated() {
            try zip.addMember(name: "\(folder)/data/\(i)", parts: [entry.tensor.bytes])
        }
        try zip.addMember(name: "\(folder)/version", bytes: Array("3\n".utf8))
        try zip.finish()
        var notes: [String] = []
        let preprocessing = model.model.metadata.preprocessing
        if !preprocessing.isEmpty {
            notes.append("a state dict holds no preprocessing: apply \(preprocessing.describe()) to inputs before the model, as the .nnm does")
        }
        return ExportResult(summary: "PyTorch state dict (\(entries.count) tensors) for \(layout.sequential) on inputs \(layout.inputDescription)", notes: notes)
    }

    public func recognize(_ probe: FileProbe) throws -> FormatEvidence? {
        if Self.isLegacy(probe.head) { return .magic }
        // A bare pickle (PROTO 2 to 5): read only to say what it would have run, or why it is no model.
        if probe.head.count >= 2, probe.head[0] == 0x80, (2...5).contains(probe.head[1]) { return .plausibleContent }
        guard let zip = probe.zip else { return nil }
        return Self.looksLikeTorchArchive(zip) ? .magic : nil
    }

    /// Whether a zip has torch.save's records under one top folder (`data.pkl`, `byteorder`,
    /// `version`, `data/<key>`), even with one of them missing: then the error says what is
    /// missing instead of reading the archive as something else.
    static func looksLikeTorchArchive(_ zip: ZipArchive) -> Bool {
        zip.entries.contains { entry in
            let parts = entry.name.split(separator: "/", omittingEmptySubsequences: false)
            return (parts.count == 2 && ["data.pkl", "byteorder", "version", ".format_version"].contains(parts[1]))
                || (parts.count == 3 && parts[1] == "data")
        }
    }

    /// A legacy file starts with the pickled magic number: PROTO 2, LONG1 of 10 bytes.
    static func isLegacy(_ head: [UInt8]) -> Bool {
        head.count >= 14 && head[0] == 0x80 && head[1] == 0x02 && head[2] == 0x8A && head[3] == 0x0A
            && Array(head[4..<14]) == TorchLegacyFile.magicNumber
    }

    /// The top folder of a zip checkpoint: the one folder holding `data.pkl`.
    static func archivePrefix(_ zip: ZipArchive) throws -> String {
        let pickles = zip.entries.map(\.name).filter { name in
            name.hasSuffix("/data.pkl") && name.dropLast("/data.pkl".count).allSatisfy { $0 != "/" }
        }
        guard pickles.count == 1 else {
            throw InteropError.badConfig(path: zip.path, detail: pickles.isEmpty
                ? "a PyTorch zip checkpoint needs <name>/data.pkl, and this archive has none"
                : "the archive holds \(pickles.count) data.pkl records (\(pickles.prefix(3).joined(separator: ", "))); a torch.save archive has one")
        }
        return String(pickles[0].dropLast("data.pkl".count))
    }

    /// The checkpoint in `mode`, from either format; errors name the file.
    /// With `readingStorages` false the storages are checked but not read: against a zip's
    /// directory, or where they lie in a legacy file (only its pickles and each storage's
    /// element count are read).
    static func checkpoint(path: String, mode: TorchCheckpoint.Mode, options: ImportOptions,
                           readingStorages: Bool = true) throws -> TorchCheckpoint {
        do throws(any Error) {
            let file = try ReadOnlyFile(path: path)
            if Self.isLegacy(try file.head(16)) {
                if !readingStorages {
                    return try TorchLegacyFile.declarations(fileSize: file.size, mode: mode) { offset, count in
                        try file.read(at: offset, count: count)
                    }
                }
                // The legacy format keeps storages after the pickles: the file is read whole
                // (within the budget) and tensors point into that copy.
                try checkTensorBudget([file.size], options.maxTensorBytes, path: path)
                let storage = TensorStorage(allocating: file.size)
                guard try file.read(at: 0, into: storage.mutableBytes) == file.size else {
                    throw InteropError.badConfig(path: path, detail: "the file changed while it was read")
                }
                return try TorchLegacyFile.parse(TorchStorageBytes(storage: storage, byteCount: file.size), mode: mode)
            }
            if !ZipArchive.hasMagic(try file.head(4)) {
                // A bare pickle: parsed (within the budget) for the refusal that names a global,
                // otherwise refused as a pickle that torch.save does not write.
                try checkTensorBudget([file.size], options.maxTensorBytes, path: path)
                let bytes = try file.read(at: 0, count: file.size)
                let refusal = bytes.withUnsafeBytes { raw -> TorchError? in
                    do {
                        _ = try TorchCheckpoint.parse(raw, from: 0, mode: mode)
                        return nil
                    } catch let error as TorchError {
                        return error
                    } catch {
                        return nil
                    }
                }
                if let refusal { throw refusal }
                throw InteropError.unknownFormat(path: path, detail: "a bare pickle, not a file torch.save writes (a zip with data.pkl, or the legacy format); nothing was run")
            }
            let zip = try ZipArchive(path: path)
            let prefix = try archivePrefix(zip)
            // Storages are stored (not deflated) members: at most the file's own size is read.
            try checkTensorBudget(zip.entries.filter { $0.name.hasPrefix(prefix + "data/") }.map(\.uncompressedSize), options.maxTensorBytes, path: path)
            let pickle = try zip.read(named: prefix + "data.pkl", maxBytes: 1 << 30)
            let byteOrder = zip.entry(named: prefix + "byteorder").flatMap { try? zip.read($0, maxBytes: 16) }
                .map { String(decoding: $0, as: UTF8.self).trimmingCharacters(in: " \n") }
            let provider = ZipStorages(zip: zip, prefix: prefix)
            return try TorchCheckpoint(pickle: pickle, storages: provider, mode: mode, byteOrder: byteOrder, loadingData: readingStorages)
        } catch let error as TorchError {
            if case .wholeModelFile = error { throw WholeModelFile() }
            throw InteropError.badConfig(path: path, detail: "\(error)")
        }
    }

    /// Thrown by `checkpoint` in state-dict mode for a pickled `torch.nn` model, which is then read
    /// again with the layer classes allowed.
    struct WholeModelFile: Error {}

    public func importModel(path: String, options: ImportOptions) throws -> ImportResult {
        let checkpoint: TorchCheckpoint
        do {
            checkpoint = try Self.checkpoint(path: path, mode: .stateDict, options: options)
        } catch is WholeModelFile {
            // A whole pickled model: read again with the layer classes allowed.
            return try PyTorchSequential.model(try Self.checkpoint(path: path, mode: .wholeModel, options: options), path: path, options: options)
        }
        let tensors: [NamedTensor]
        do {
            tensors = try checkpoint.stateDict()
        } catch {
            throw InteropError.badConfig(path: path, detail: "\(error)")
        }
        let arrays = tensors.map { SourceArray(name: $0.name, tensor: $0.tensor) }
        return try PyTorchStateDict.model(arrays, path: path, inModuleOrder: true, sourceFormat: "pytorch-state-dict", options: options)
    }

    /// The state dict's or the module tree's tensors as declared: a zip checkpoint's storages are
    /// not read.
    public func inspect(path: String) throws -> Inspection {
        var root = InspectionNode(name: "state dict", kind: "group")
        var format = "PyTorch checkpoint"
        do {
            let checkpoint = try Self.checkpoint(path: path, mode: .stateDict, options: ImportOptions(), readingStorages: false)
            let declared: [(name: String, dtype: DType, shape: [Int])]
            do { declared = try checkpoint.stateDictDeclarations() } catch { throw InteropError.badConfig(path: path, detail: "\(error)") }
            for t in declared {
                root.children.append(InspectionNode(name: t.name, kind: "tensor", dtype: t.dtype.rawValue, shape: t.shape))
            }
        } catch is WholeModelFile {
            let checkpoint = try Self.checkpoint(path: path, mode: .wholeModel, options: ImportOptions(), readingStorages: false)
            let module = try PyTorchSequential.module(checkpoint, path: path)
            format = "PyTorch pickled model (\(module.className))"
            root = InspectionNode(name: module.typeName, kind: "module")
            for (name, child) in module.children {
                var node = InspectionNode(name: name, kind: child.typeName)
                node.attributes = child.attributes.filter { !$0.name.hasPrefix("_") && $0.name != "training" }.map { ($0.name, $0.value.pythonText()) }
                for (p, dtype, shape) in child.declarations where child.parameters.contains(where: { $0.name == p }) {
                    node.children.append(InspectionNode(name: p, kind: "parameter", dtype: dtype.rawValue, shape: shape))
                }
                root.children.append(node)
            }
        }
        return Inspection(path: path, format: format, tree: root, summary: [])
    }
}

/// A zip checkpoint's storages: member `<prefix>data/<key>`, read into tensor storage directly.
struct ZipStorages: TorchStorageProvider {
    let zip: ZipArchive
    let prefix: String

    func entry(_ key: String) throws -> ZipEntry {
        guard let entry = zip.entry(named: prefix + "data/" + key) else {
            throw InteropError.missingTensor(path: zip.path, name: prefix + "data/" + key, detail: "the pickle refers to a storage the archive does not hold")
        }
        return entry
    }

    func byteCount(ofStorage key: String) throws -> Int { try entry(key).uncompressedSize }

    func bytes(ofStorage key: String) throws -> TorchStorageBytes {
        let entry = try entry(key)
        let reader = try zip.openMember(entry, maxBytes: entry.uncompressedSize)
        let storage = TensorStorage(allocating: entry.uncompressedSize)
        var got = 0
        while got < entry.uncompressedSize {
            let n = try reader.read(into: UnsafeMutableRawBufferPointer(rebasing: storage.mutableBytes[got...]))
            if n == 0 { break }
            got += n
        }
        try reader.finish()
        return TorchStorageBytes(storage: storage, byteCount: got)
    }
}

extension String {
    fileprivate func trimmingCharacters(in set: String) -> String {
        String(drop { set.contains($0) }.reversed().drop { set.contains($0) }.reversed())
    }
}
