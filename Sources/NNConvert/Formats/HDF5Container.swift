import NNCore
import NNHDF5

/// An HDF5 group as a tensor container: its datasets (paths relative to the group, in h5py's
/// `visititems` order) and its string attributes.
final class HDF5Container: TensorContainer {
    let group: HDF5Group
    let path: String
    let kind = "HDF5"
    /// Whether datasets are read back in the dtype our export recorded (`nnm_dtype`), integers
    /// as integers; otherwise integers are read as f64, as blog weights.
    var readsExportTypes = false

    init(_ group: HDF5Group, path: String) {
        self.group = group
        self.path = path
    }

    /// Declarations from the datasets' shapes and element types; a dataset that cannot hold
    /// weights (strings, compound types) is refused here, before any data is read.
    func arrays() throws -> [SourceArray] {
        let prefix = group.path == "/" ? "/" : group.path + "/"
        return try group.datasetPaths().map { full in
            let relative = full.hasPrefix(prefix) ? String(full.dropFirst(prefix.count)) : full
            let declared = try group.dataset(full).declaration(name: relative, sourcePath: path)
            guard readsExportTypes else { return declared }
            let sourcePath = path, group = self.group
            return SourceArray(name: relative, shape: declared.shape, dtype: declared.dtype, typeName: declared.typeName) {
                try HDF5Export.readDataset(group, full, path: sourcePath)
            }
        }
    }

    func stringAttribute(_ name: String) throws -> String? {
        try group.hasAttribute(name) ? try group.stringAttribute(name) : nil
    }
}
