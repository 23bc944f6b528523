import NNCore
import NNHDF5

/// The HDF5 layout `nnconv export` writes: what blog code loads with three lines of h5py, plus
/// everything needed to rebuild the `.nnm` bit for bit.
///
///     import h5py
///     with h5py.File("model.h5") as f:
///         W1, b1, W2, b2 = (f[k][()] for k in ("W1", "b1", "W2", "b2"))
///
/// Root datasets `W1, b1, W2, b2, ...` in the chosen layout (rows: `W (in, out)`, `b (1, out)`;
/// columns: `W (out, in)`, `b (out, 1)`); root attributes `layout`, `activations`
/// ("relu,softmax"), `input_shape`, `classes` and `preprocessing` describe the model for people;
/// `nnm_metadata` holds the full `.nnm` metadata as JSON and `nnm_tensor_order` the tensor names
/// in file order; every other tensor (z-score statistics, optimizer state) is a dataset in the
/// group `nnm_tensors`. A dataset whose `.nnm` dtype HDF5 cannot hold as such (f16, bf16, small
/// integers) is stored widened, exactly, with an `nnm_dtype` attribute naming the original.
public enum HDF5Export {
    public static let metadataAttribute = "nnm_metadata"
    static let orderAttribute = "nnm_tensor_order"
    static let dtypeAttribute = "nnm_dtype"
    static let tensorGroup = "nnm_tensors"

    /// Writes `model` to `path` atomically. Any failure while writing (a full disk, a file size
    /// limit) is a `HDF5Error.writeFailed`, and the previous file at `path` is left as it was.
    public static func write(_ model: Model, to path: String, layout: WeightLayout) throws {
        do {
            try writeUnchecked(model, to: path, layout: layout)
        } catch let error as HDF5Error {
            if case .writeFailed = error { throw error }
            throw HDF5Error.writeFailed(file: path, reason: error.description.dropFirst(path.count + 2).description)
        }
    }

    static func writeUnchecked(_ model: Model, to path: String, layout: WeightLayout) throws {
        let meta = model.metadata
        let layerTensors = Set(meta.layers.flatMap { [$0.weight, $0.bias].compactMap { $0 } })
        try HDF5File.createAtomically(path: path) { file in
            for (number, layer) in numberedParameterLayers(meta.layers) {
                try writeDataset(file, "W\(number)", layout.stored(model.tensor(layer.weight)!, for: layer))
                if let b = model.tensor(layer.bias) {
                    try writeDataset(file, "b\(number)", layout.storedBias(b))
                }
            }
            let others = model.tensors.filter { !layerTensors.contains($0.name) }
            if !others.isEmpty {
                let group = try file.createGroup(tensorGroup)
                for t in others { try writeDataset(group, t.name, t.tensor) }
            }
            try file.setAttribute("layout", .string(layout.rawValue))
            try file.setAttribute("activations", .string(meta.layers.map(\.activation.description).joined(separator: ",")))
            try file.setAttribute("input_shape", .integers(meta.input.shape.map(Int64.init)))
            if !meta.classes.isEmpty { try file.setAttribute("classes", strings: meta.classes, storage: .variableLengthUTF8) }
            try file.setAttribute("preprocessing", .string(describe(meta.preprocessing)))
            try file.setAttribute(metadataAttribute, .string(JSONValue.object(meta.json).serialized()))
            try file.setAttribute(orderAttribute, strings: model.tensors.map(\.name), storage: .variableLengthUTF8)
        }
    }

    static func describe(_ steps: [PreprocessingStep]) -> String { steps.describe(tensorPrefix: tensorGroup + "/") }

    /// Stores a tensor exactly: f32, f64 and i64 as themselves, other types widened with their
    /// original dtype in an attribute.
    static func writeDataset(_ group: HDF5Group, _ name: String, _ t: Tensor) throws {
        let dataset: HDF5Dataset
        switch t.dtype {
        case .float32, .float16, .bfloat16:
            dataset = try group.createDataset(name, floats: t.floats(), shape: t.shape)
        case .float64:
            dataset = try group.createDataset(name, doubles: t.doubles(), shape: t.shape)
        case .int64, .int32, .int16, .int8, .uint8:
            dataset = try group.createDataset(name, integers: t.integers()!, shape: t.shape)
        }
        if t.dtype != .float32, t.dtype != .float64, t.dtype != .int64 {
            try dataset.setAttribute(dtypeAttribute, .string(t.dtype.rawValue))
        }
    }

    /// An integer dataset stored widened, back in its original width (exact: it was widened).
    static func narrowed<T: FixedWidthInteger>(_ dataset: HDF5Dataset, _: T.Type, _ dtype: DType) throws -> Tensor {
        let values = try dataset.readIntegers().map { T(truncatingIfNeeded: $0) }
        return values.withUnsafeBytes { Tensor(dtype: dtype, shape: dataset.shape, copying: $0) }
    }

    /// Reads a dataset written by `writeDataset` back into its original dtype.
    static func readDataset(_ group: HDF5Group, _ name: String, path: String) throws -> Tensor {
        let dataset = try group.dataset(name)
        let stored = try dataset.hasAttribute(dtypeAttribute) ? try dataset.stringAttribute(dtypeAttribute) : nil
        guard let stored else {
            if dataset.elementType.isInteger {
                let values = try dataset.readIntegers()
                return values.withUnsafeBytes { Tensor(dtype: .int64, shape: dataset.shape, copying: $0) }
            }
            return try dataset.tensor(sourcePath: path)
        }
        guard let dtype = DType(rawValue: stored) else {
            throw InteropError.badDType(path: path, name: dataset.path, found: "nnm_dtype '\(stored)'")
        }
        switch dtype {
        case .float16:
            let halves = try dataset.readFloats().map { Float16($0).bitPattern }
            return halves.withUnsafeBytes { Tensor(dtype: .float16, shape: dataset.shape, copying: $0) }
        case .bfloat16:
            let halves = try dataset.readFloats().map { UInt16($0.bitPattern >> 16) }
            return halves.withUnsafeBytes { Tensor(dtype: .bfloat16, shape: dataset.shape, copying: $0) }
        case .int32: return try narrowed(dataset, Int32.self, .int32)
        case .int16: return try narrowed(dataset, Int16.self, .int16)
        case .int8: return try narrowed(dataset, Int8.self, .int8)
        case .uint8: return try narrowed(dataset, UInt8.self, .uint8)
        case .float32, .float64, .int64:
            return try dataset.tensor(sourcePath: path)
        }
    }

    /// The datasets an export of `model` holds: "rows layout: W1, b1, W2, b2" (a layer without
    /// a bias has no `b<n>`; pooling and flatten layers have no datasets), then the other
    /// tensors, in the `nnm_tensors` group: "; nnm_tensors: layers.1.gamma, ...".
    static func describeParameters(_ model: Model, layout: WeightLayout) -> String {
        let names = numberedParameterLayers(model.metadata.layers).map { number, layer in
            layer.bias == nil ? "W\(number)" : "W\(number), b\(number)"
        }
        let layerTensors = Set(model.metadata.layers.flatMap { [$0.weight, $0.bias].compactMap { $0 } })
        let others = model.tensors.map(\.name).filter { !layerTensors.contains($0) }
        return "\(layout.rawValue) layout: \(names.joined(separator: ", "))"
            + (others.isEmpty ? "" : "; \(tensorGroup): \(others.joined(separator: ", "))")
    }
}
