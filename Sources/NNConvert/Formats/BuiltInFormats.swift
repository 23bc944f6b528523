import NNCore
import NNFormat
import NNHDF5
import NNNumPy
import NNSafetensors
import NNSystem
import NNZip

/// `.nnm`, our own format: read and validated as it is.
public struct NNMModelFormat: ModelFileFormat {
    public init() {}
    public var displayName: String { ".nnm" }
    public var exportSuffixes: [String] { [".nnm"] }

    public func recognize(_ probe: FileProbe) -> FormatEvidence? {
        probe.starts(with: NNMFormat.magic) ? .magic : nil
    }

    public func importModel(path: String, options: ImportOptions) throws -> ImportResult {
        let model = try NNMFormat.open(path: path).validated
        return ImportResult(validated: model, format: ".nnm", notes: ["the file is already a .nnm model; it was read and validated"])
    }

    public func inspect(path: String) throws -> Inspection { try Inspection.inspectNNM(path) }

    public func validate(path: String) throws -> [String] {
        let file = try NNMFormat.open(path: path, verifyChecksums: true)
        let header = file.header
        return ["\(path): valid .nnm \(header.majorVersion).\(header.minorVersion): \(file.validated.model.tensors.count) tensors, all checksums match"]
            + file.validated.warnings.map { "\(path): warning: \($0)" }
    }

    public func export(_ model: ValidatedModel, to path: String, options: ExportOptions) throws -> ExportResult {
        try NNMFormat.write(model, to: path)
        return ExportResult(summary: "\(model.model.tensors.count) tensors")
    }
}

/// HDF5 files: our own exports, Keras legacy `.h5` and `save_weights` files, Keras 3
/// `.weights.h5`, and blog files written with h5py.
public struct HDF5ModelFormat: ModelFileFormat {
    static let magic: [UInt8] = [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A]
    public init() {}
    public var displayName: String { "HDF5 (.h5)" }
    public var exportSuffixes: [String] { [".h5", ".hdf5"] }

    public func recognize(_ probe: FileProbe) -> FormatEvidence? {
        probe.starts(with: Self.magic) ? .magic : nil
    }

    public func importModel(path: String, options: ImportOptions) throws -> ImportResult {
        let file = try HDF5File.open(path: path)
        defer { file.close() }
        if try file.hasAttribute(HDF5Export.metadataAttribute) {
            let container = HDF5Container(file, path: path)
            container.readsExportTypes = true
            guard let layout = WeightLayout(rawValue: try file.stringAttribute("layout")) else {
                throw InteropError.badConfig(path: path, detail: "attribute layout must be rows or columns")
            }
            let json = try file.stringAttribute(HDF5Export.metadataAttribute)
            let metadata = try OwnExport.metadata(json, path: path, source: "attribute \(HDF5Export.metadataAttribute)")
            return try OwnExport.rebuild(container, metadata: metadata, layout: layout, order: try file.stringList(HDF5Export.orderAttribute),
                                         key: OwnExport.blogKeys(metadata, otherPrefix: HDF5Export.tensorGroup + "/"),
                                         format: "nnm HDF5 export (\(layout.rawValue))")
        }
        if try file.hasAttribute("model_config") {
            return try KerasImporter.importLegacy(file, path: path, options: options)
        }
        if try file.hasAttribute("layer_names") {
            return try KerasImporter.importLegacyWeights(file, path: path, options: options)
        }
        if try KerasImporter.looksLikeKeras3Weights(file) {
            return try KerasImporter.importKeras3Weights(file, path: path, config: nil, options: options, format: "Keras 3 .weights.h5")
        }
        return try ModelBuilder.blogModel(HDF5Container(file, path: path), options: options)
    }

    public func inspect(path: String) throws -> Inspection {
        let file = try HDF5File.open(path: path)
        defer { file.close() }
        return Inspection(path: path, format: "HDF5", tree: try Inspection.hdf5Tree(file, name: "/"), summary: [])
    }

    public func export(_ model: ValidatedModel, to path: String, options: ExportOptions) throws -> ExportResult {
        if options.keras { return try KerasExport.writeLegacy(model.model, to: path) }
        try HDF5Export.write(model.model, to: path, layout: options.layout)
        return ExportResult(summary: HDF5Export.describeParameters(model.model, layout: options.layout))
    }
}

/// NumPy: `.npz` archives from `np.savez` / `np.savez_compressed` (blog arrays or our own
/// export), and single `.npy` arrays, which can be inspected but hold no model.
public struct NumPyModelFormat: ModelFileFormat {
    public init() {}
    public var displayName: String { "NumPy (.npz)" }
    public var exportSuffixes: [String] { [".npz"] }

    public func recognize(_ probe: FileProbe) throws -> FormatEvidence? {
        if probe.starts(with: NumPyFile.magic) { return .magic }
        // Any zip that is not a Keras archive: `np.load` reads whatever members it holds.
        guard let zip = probe.zip else {
            // A damaged zip: NumPy's reader names the damage.
            return ZipArchive.hasMagic(probe.head) ? .plausibleContent : nil
        }
        if KerasArchiveFormat.isKerasArchive(zip) { return nil }
        // Another zip format (a PyTorch archive) outranks a zip without a single .npy member.
        return zip.entries.contains { $0.name.hasSuffix(".npy") } ? .magic : .plausibleContent
    }

    public func importModel(path: String, options: ImportOptions) throws -> ImportResult {
        let probe = try FileProbe(path: path)
        if probe.starts(with: NumPyFile.magic) {
            throw InteropError.unknownFormat(path: path, detail: "a .npy file holds a single array, not a model; save the weights together with np.savez (W1, b1, W2, b2, ...)")
        }
        let container = try NumPyContainer(path: path)
        if container.index[NumPyArchive.metadataKey] != nil {
            container.readsExportTypes = true
            func string(_ key: String) throws -> String {
                guard let s = try container.stringAttribute(key) else {
                    throw InteropError.badConfig(path: path, detail: "'\(key)' must be a string array")
                }
                return s
            }
            let json = try string(NumPyArchive.metadataKey)
            let metadata = try OwnExport.metadata(json, path: path, source: NumPyArchive.metadataKey)
            let order: [String]
            do {
                order = try JSONValue.parse(try string(NumPyExport.orderKey)).arrayValue?.compactMap(\.stringValue) ?? []
            } catch let error as JSONParseError {
                throw InteropError.badConfig(path: path, detail: "\(NumPyArchive.metadataKey): \(error)")
            }
            guard let layout = WeightLayout(rawValue: try string(NumPyExport.layoutKey)) else {
                throw InteropError.badConfig(path: path, detail: "\(NumPyExport.layoutKey) must be rows or columns")
            }
            return try OwnExport.rebuild(container, metadata: metadata, layout: layout, order: order,
                                         key: OwnExport.blogKeys(metadata, otherPrefix: HDF5Export.tensorGroup + "/"),
                                         format: "nnm NumPy export (\(layout.rawValue))")
        }
        return try ModelBuilder.blogModel(container, options: options)
    }

    public func inspect(path: String) throws -> Inspection {
        let probe = try FileProbe(path: path)
        if probe.starts(with: NumPyFile.magic) {
            let array = try NumPyFile.read(path: path)
            var node = InspectionNode(name: path, kind: "array", dtype: array.descr, shape: array.shape)
            node.attributes = [("format", "npy \(array.formatVersion)"), ("fortran_order", array.fortranOrder ? "True" : "False")]
            return Inspection(path: path, format: "NumPy .npy", tree: node, summary: [])
        }
        let index = try NumPyArchive.index(path: path)
        var root = InspectionNode(name: "/", kind: "group")
        for entry in index.entries {
            let d = entry.declaration
            var node = InspectionNode(name: entry.name, kind: "array", dtype: d.descr, shape: d.shape)
            // Strings are our exports' metadata: small, and the point of looking.
            if d.dtype == nil, let s = try index.array(named: entry.name)?.string { node.attributes = [("value", Inspection.abbreviate(s))] }
            root.children.append(node)
        }
        return Inspection(path: path, format: "NumPy .npz", tree: root, summary: [])
    }

    public func export(_ model: ValidatedModel, to path: String, options: ExportOptions) throws -> ExportResult {
        try NumPyExport.write(model.model, to: path, layout: options.layout)
        return ExportResult(summary: HDF5Export.describeParameters(model.model, layout: options.layout))
    }
}

/// Keras 3 `.keras` archives: `config.json` and `model.weights.h5` in a zip.
public struct KerasArchiveFormat: ModelFileFormat {
    /// Largest `config.json` read from a `.keras` archive.
    static let maximumConfigBytes = 16 << 20

    public init() {}
    public var displayName: String { "Keras (.keras, .h5)" }
    public var exportSuffixes: [String] { [".keras"] }

    public func export(_ model: ValidatedModel, to path: String, options: ExportOptions) throws -> ExportResult {
        try KerasExport.writeArchive(model.model, to: path)
    }

    static func isKerasArchive(_ zip: ZipArchive) -> Bool {
        zip.entry(named: "config.json") != nil && zip.entry(named: "model.weights.h5") != nil
    }

    public func recognize(_ probe: FileProbe) throws -> FormatEvidence? {
        guard let zip = probe.zip else { return nil }
        return Self.isKerasArchive(zip) ? .magic : nil
    }

    public func importModel(path: String, options: ImportOptions) throws -> ImportResult {
        let zip = try ZipArchive(path: path)
        let (config, weights) = try Self.members(zip)
        let text = String(decoding: try zip.read(config, maxBytes: Self.maximumConfigBytes), as: UTF8.self)
        let model = try KerasModelConfig(json: text, path: path)
        return try Self.withExtractedHDF5(zip, weights) { file in
            try KerasImporter.importKeras3Weights(file, path: path, config: model, options: options,
                                                  format: "Keras 3 .keras (\(model.className))")
        }
    }

    public func inspect(path: String) throws -> Inspection {
        let zip = try ZipArchive(path: path)
        let (config, weights) = try Self.members(zip)
        var root = InspectionNode(name: "/", kind: "group")
        for entry in zip.entries {
            var member = InspectionNode(name: entry.name, kind: "member")
            member.attributes = [("size", String(entry.uncompressedSize)), ("method", "\(entry.method)")]
            if entry == weights {
                member.children = [try Self.withExtractedHDF5(zip, weights) { try Inspection.hdf5Tree($0, name: "/") }]
            }
            root.children.append(member)
        }
        let text = String(decoding: try zip.read(config, maxBytes: Self.maximumConfigBytes), as: UTF8.self)
        let model = try KerasModelConfig(json: text, path: path)
        let summary = model.layers.map { "layer \($0.name): \($0.className)" }
        return Inspection(path: path, format: "Keras 3 .keras (\(model.className))", tree: root, summary: summary)
    }

    static func members(_ zip: ZipArchive) throws -> (config: ZipEntry, weights: ZipEntry) {
        guard let config = zip.entry(named: "config.json"), let weights = zip.entry(named: "model.weights.h5") else {
            throw InteropError.badConfig(path: zip.path, detail: "a .keras archive needs config.json and model.weights.h5")
        }
        return (config, weights)
    }

    /// Extracts an HDF5 member to a private temporary file (libhdf5 reads files, not memory),
    /// opens it and runs `body`; the file is removed whatever happens.
    static func withExtractedHDF5<T>(_ zip: ZipArchive, _ entry: ZipEntry, _ body: (HDF5File) throws -> T) throws -> T {
        let temporary: TemporaryFile
        do {
            temporary = try TemporaryFile(suffix: ".h5")
        } catch {
            throw InteropError.badConfig(path: zip.path, detail: "cannot create a temporary file in \(error.path): \(error.reason)")
        }
        try zip.extract(entry, to: temporary.path, maxBytes: Int(Int32.max))
        let file = try HDF5File.open(path: temporary.path)
        defer { file.close() }
        return try body(file)
    }
}

