import NNCore
import NNHDF5

#if canImport(Glibc)
import Glibc
#endif

/// Zip-based inputs: NumPy `.npz` archives and Keras 3 `.keras` archives.
extension ModelImporter {
    /// Largest `config.json` read from a `.keras` archive.
    static let maximumKerasConfigBytes = 16 << 20

    static func importZip(path: String, options: ImportOptions) throws -> ImportResult {
        let zip = try ZipArchive(path: path)
        if let config = zip.entry(named: "config.json"), let weights = zip.entry(named: "model.weights.h5") {
            let text = String(decoding: try zip.read(config, maxBytes: maximumKerasConfigBytes), as: UTF8.self)
            let model = try KerasModelConfig(json: text, path: path)
            return try withExtractedHDF5(zip, weights) { file in
                try KerasImporter.importKeras3Weights(file, path: path, config: model, options: options,
                                                      format: "Keras 3 .keras (\(model.className))")
            }
        }
        let archive = try NumPyArchive.read(path: path)
        if archive[NumPyArchive.metadataKey] != nil {
            return try NumPyExport.importOwn(archive, path: path)
        }
        var arrays: [SourceArray] = []
        for member in archive.members {
            guard let tensor = member.array.tensor else {
                throw InteropError.badDType(path: path, name: member.name, found: "strings (\(member.array.descr))")
            }
            arrays.append(SourceArray(name: member.name, tensor: tensor.dtype.isFloatingPoint ? tensor : Tensor(tensor.doubles(), shape: tensor.shape)))
        }
        return try blogModel(arrays, path: path, container: "NumPy .npz", options: options)
    }

    /// Extracts an HDF5 member to a private temporary file (libhdf5 reads files, not memory),
    /// opens it and runs `body`; the file is removed whatever happens.
    static func withExtractedHDF5<T>(_ zip: ZipArchive, _ entry: ZipEntry, _ body: (HDF5File) throws -> T) throws -> T {
        let directory = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        var template = Array("\(directory)/nnconv-XXXXXX.h5".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemps($0.baseAddress!, 3) }
        guard fd >= 0 else { throw InteropError.badConfig(path: zip.path, detail: "cannot create a temporary file in \(directory): \(systemErrorMessage())") }
        close(fd)
        let temporary = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        defer { unlink(temporary) }
        try zip.extract(entry, to: temporary, maxBytes: Int(Int32.max))
        let file = try HDF5File.open(path: temporary)
        defer { file.close() }
        return try body(file)
    }
}

/// NumPy `.npz` export: the same names and layouts as the HDF5 export, plus the metadata needed
/// to rebuild the `.nnm` exactly: `nnm_metadata` (JSON), `nnm_layout` and `nnm_tensor_order`
/// (a JSON list), all 0-d unicode arrays that `np.load` reads without pickle.
public enum NumPyExport {
    static let layoutKey = "nnm_layout"
    static let orderKey = "nnm_tensor_order"

    /// Writes `model` to `path` atomically, as `np.savez` would.
    public static func write(_ model: Model, to path: String, layout: WeightLayout) throws {
        let meta = model.metadata
        var arrays: [(name: String, value: NumPyValue)] = []
        var layerTensors = Set<String>()
        for (number, layer) in numberedParameterLayers(meta.layers) {
            arrays.append(("W\(number)", .tensor(layout.stored(model.tensor(layer.weight)!, for: layer))))
            layerTensors.insert(layer.weight!)
            if let name = layer.bias, let b = model.tensor(name) {
                arrays.append(("b\(number)", .tensor(layout.storedBias(b))))
                layerTensors.insert(name)
            }
        }
        for t in model.tensors where !layerTensors.contains(t.name) {
            arrays.append(("\(HDF5Export.tensorGroup)/\(t.name)", .tensor(t.tensor)))
        }
        arrays.append((NumPyArchive.metadataKey, .string(JSONValue.object(meta.json).serialized())))
        arrays.append((layoutKey, .string(layout.rawValue)))
        arrays.append((orderKey, .string(JSONValue.array(model.tensors.map { .string($0.name) }).serialized())))
        try NumPyArchive.write(arrays, to: path)
    }

    /// Rebuilds a model from an archive `write` produced.
    static func importOwn(_ archive: NumPyArchive, path: String) throws -> ImportResult {
        func string(_ key: String) throws -> String {
            guard let s = archive[key]?.string else {
                throw InteropError.badConfig(path: path, detail: "'\(key)' must be a string array")
            }
            return s
        }
        let metadata: ModelMetadata
        let order: [String]
        do {
            metadata = try ModelMetadata(json: try JSONValue.parse(try string(NumPyArchive.metadataKey)))
            order = try JSONValue.parse(try string(orderKey)).arrayValue?.compactMap(\.stringValue) ?? []
        } catch let error as ModelError {
            throw InteropError.badConfig(path: path, detail: "\(NumPyArchive.metadataKey): \(error)")
        } catch let error as JSONParseError {
            throw InteropError.badConfig(path: path, detail: "\(NumPyArchive.metadataKey): \(error)")
        }
        guard let layout = WeightLayout(rawValue: try string(layoutKey)) else {
            throw InteropError.badConfig(path: path, detail: "\(layoutKey) must be rows or columns")
        }
        func tensor(_ key: String) throws -> Tensor {
            guard let t = archive[key]?.tensor else { throw InteropError.missingTensor(path: path, name: key, detail: "the export is incomplete") }
            return t
        }
        var tensors = try HDF5Export.layerTensors(of: metadata, layout: layout, path: path, read: tensor)
        let prefix = "\(HDF5Export.tensorGroup)/"
        for member in archive.members where member.name.hasPrefix(prefix) {
            tensors[String(member.name.dropFirst(prefix.count))] = try tensor(member.name)
        }
        guard Set(order) == Set(tensors.keys), order.count == tensors.count else {
            throw InteropError.badConfig(path: path, detail: "\(orderKey) does not list exactly the stored tensors")
        }
        let model = Model(metadata: metadata, tensors: order.map { NamedTensor($0, tensors[$0]!) })
        do { try model.validate() } catch { throw InteropError.badConfig(path: path, detail: "\(error)") }
        return ImportResult(model: model, format: "nnm NumPy export (\(layout.rawValue))", notes: [])
    }
}

extension Inspection {
    static func inspectNumPyOrZip(_ path: String) throws -> Inspection {
        if try ModelImporter.kind(of: path) == .npy {
            let array = try NumPyFile.read(path: path)
            var node = InspectionNode(name: path, kind: "array", dtype: array.descr, shape: array.shape)
            node.attributes = [("format", "npy \(array.formatVersion)"), ("fortran_order", array.fortranOrder ? "True" : "False")]
            return Inspection(path: path, format: "NumPy .npy", tree: node, summary: [])
        }
        let zip = try ZipArchive(path: path)
        if let config = zip.entry(named: "config.json"), let weights = zip.entry(named: "model.weights.h5") {
            var root = InspectionNode(name: "/", kind: "group")
            for entry in zip.entries {
                var member = InspectionNode(name: entry.name, kind: "member")
                member.attributes = [("size", String(entry.uncompressedSize)), ("method", "\(entry.method)")]
                if entry == weights {
                    member.children = [try ModelImporter.withExtractedHDF5(zip, weights) { try hdf5Tree($0, name: "/") }]
                }
                root.children.append(member)
            }
            let text = String(decoding: try zip.read(config, maxBytes: ModelImporter.maximumKerasConfigBytes), as: UTF8.self)
            let model = try KerasModelConfig(json: text, path: path)
            let summary = model.layers.map { "layer \($0.name): \($0.className)" }
            return Inspection(path: path, format: "Keras 3 .keras (\(model.className))", tree: root, summary: summary)
        }
        let archive = try NumPyArchive.read(path: path)
        var root = InspectionNode(name: "/", kind: "group")
        for member in archive.members {
            var node = InspectionNode(name: member.name, kind: "array", dtype: member.array.descr, shape: member.array.shape)
            if let s = member.array.string { node.attributes = [("value", abbreviate(s))] }
            root.children.append(node)
        }
        return Inspection(path: path, format: "NumPy .npz", tree: root, summary: [])
    }
}
