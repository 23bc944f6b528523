import NNCore

extension ModelImporter {
    /// `.npz` archives and Keras 3 `.keras` archives. (Being written: the zip reader lands next.)
    static func importZip(path: String, options: ImportOptions) throws -> ImportResult {
        throw InteropError.unknownFormat(path: path, detail: "zip archives (.npz, .keras) are not readable yet")
    }
}
