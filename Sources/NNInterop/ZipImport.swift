import NNCore

extension ModelImporter {
    /// `.npz` archives and Keras 3 `.keras` archives. (Being written: the zip reader lands next.)
    static func importZip(path: String, options: ImportOptions) throws -> ImportResult {
        throw InteropError.unknownFormat(path: path, detail: "zip archives (.npz, .keras) are not readable yet")
    }
}

extension Inspection {
    static func inspectNumPyOrZip(_ path: String) throws -> Inspection {
        throw InteropError.unknownFormat(path: path, detail: "zip archives (.npz, .keras) are not readable yet")
    }
}

/// NumPy `.npz` export (being written: the npz writer lands next).
public enum NumPyExport {
    public static func write(_ model: Model, to path: String, layout: WeightLayout) throws {
        throw InteropError.badOption("\(path): .npz export is not available yet")
    }
}
