import NNCore
import NNNumPy

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
}
