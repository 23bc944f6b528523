import NNCore
import NNNumPy

/// A NumPy `.npz` as a tensor container, from the members' `.npy` headers; a member is inflated
/// only when its data is read. Integer arrays are read as f64 (exact up to 2^53).
final class NumPyContainer: TensorContainer {
    let index: NumPyArchive.Index
    var path: String { index.path }
    let kind = "NumPy .npz"
    /// Whether the archive is one of our exports: 0-d string arrays are its metadata (not
    /// errors), and integer arrays keep their type (not read as f64 weights).
    var readsExportTypes = false

    init(path: String) throws {
        index = try NumPyArchive.index(path: path)
    }

    /// Declarations of the numeric arrays; the string arrays of our own exports are attributes.
    /// Any other string array cannot be a weight and is refused here.
    func arrays() throws -> [SourceArray] {
        try index.entries.compactMap { entry in
            let d = entry.declaration
            if d.dtype == nil, readsExportTypes { return nil }
            guard let dtype = d.dtype else {
                throw InteropError.badDType(path: path, name: entry.name, found: "strings (\(d.descr))")
            }
            let index = self.index, name = entry.name, path = self.path, exact = readsExportTypes
            return SourceArray(name: entry.name, shape: d.shape, dtype: dtype.isFloatingPoint || exact ? dtype : .float64, typeName: d.descr) {
                guard let tensor = try index.array(named: name)?.tensor else {
                    throw InteropError.badDType(path: path, name: name, found: "strings (\(d.descr))")
                }
                return tensor.dtype.isFloatingPoint || exact ? tensor : Tensor(tensor.doubles(), shape: tensor.shape)
            }
        }
    }

    func stringAttribute(_ name: String) throws -> String? {
        guard let entry = index[name] else { return nil }
        guard entry.declaration.dtype == nil, let text = try index.array(named: name)?.string else {
            throw InteropError.badConfig(path: path, detail: "'\(name)' must be a string array")
        }
        return text
    }
}
