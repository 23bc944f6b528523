import NNCore

/// Rebuilding a `.nnm` model from one of our own exports (HDF5, NumPy, safetensors), bit for bit.
///
/// Every export stores the full `.nnm` metadata as JSON (`nnm_metadata`), the layer parameters
/// under names blog code or PyTorch expects, in a layout (rows or columns), and every other
/// tensor under a key of its own; the containers differ only in where those live, which the
/// format passes in as `key` and `order`.
package enum OwnExport {
    /// Rebuilds the model from its metadata (`metadata(_:path:source:)`): `order` lists the
    /// `.nnm` tensor names in file order, `key` gives the container key each is stored under.
    /// Layer weights are stored in `layout` (dense weights
    /// transposed for columns; biases of any shape with the right count). Every key's declared
    /// shape is checked against its layer before any data is read.
    static func rebuild(_ container: any TensorContainer, metadata: ModelMetadata, layout: WeightLayout, order: [String],
                        key: (String) -> String?, format: String) throws -> ImportResult {
        var layers: [String: Layer] = [:], biasLayers: [String: Layer] = [:]
        for layer in metadata.layers {
            if let w = layer.weight { layers[w] = layer }
            if let b = layer.bias { biasLayers[b] = layer }
        }
        // Biases may have any shape with the right count: (1, out) for rows, (out, 1) for columns.
        return try rebuild(container, metadata: metadata, order: order, key: key, format: format, check: { name, shape in
            if let layer = layers[name] {
                let expected = layout.storedWeightShape(layer)
                return shape == expected ? nil : "expected \(ShapeMath.describe(expected)) for \(layout.rawValue), found \(ShapeMath.describe(shape))"
            } else if let layer = biasLayers[name] {
                return ShapeMath.elementCount(shape) == layer.biasCount! ? nil : "expected \(layer.biasCount!) values, found \(ShapeMath.describe(shape))"
            }
            return nil
        }, loaded: { name, t in
            if let layer = layers[name] { return layout.loaded(t, for: layer) }
            if let layer = biasLayers[name] { return t.reshaped([layer.biasCount!]) }
            return t
        })
    }

    /// The shared steps: every tensor of `order` present, `check` passing on its declared shape
    /// (nil, or what is wrong), no undeclared keys but `ignoring`; then each read once and
    /// turned back by `loaded`.
    package static func rebuild(_ container: any TensorContainer, metadata: ModelMetadata, order: [String], key: (String) -> String?,
                                format: String, ignoring: Set<String> = [], check: (String, [Int]) -> String?,
                                loaded: (String, Tensor) -> Tensor) throws -> ImportResult {
        let path = container.path
        var declared: [String: SourceArray] = [:]
        for a in try container.arrays() { declared[a.name] = a }
        guard Set(order).count == order.count else {
            throw InteropError.badConfig(path: path, detail: "the export's tensor list names a tensor twice")
        }
        // Declarations first: every tensor present with the shape its role needs.
        var sources: [(name: String, array: SourceArray)] = []
        for name in order {
            guard let k = key(name), let array = declared[k] else {
                throw InteropError.missingTensor(path: path, name: key(name) ?? name, detail: "the export is incomplete")
            }
            if let problem = check(name, array.shape) {
                throw InteropError.badShape(path: path, name: k, detail: problem)
            }
            sources.append((name, array))
        }
        let expectedNames = Set(metadata.layers.flatMap(\.tensorNames))
        if let missing = expectedNames.subtracting(order).sorted().first {
            throw InteropError.badConfig(path: path, detail: "the export's tensor list does not name '\(missing)', which a layer uses")
        }
        let used = Set(order.compactMap(key)).union(ignoring)
        if let extra = declared.keys.sorted().first(where: { !used.contains($0) }) {
            throw InteropError.unexpectedTensor(path: path, name: extra, detail: "not listed among the exported tensors")
        }
        var tensors: [NamedTensor] = []
        for (name, array) in sources {
            tensors.append(NamedTensor(name, loaded(name, try array.tensor())))
        }
        return try ImportResult(model: Model(metadata: metadata, tensors: tensors), path: path, format: format, notes: [])
    }

    /// The keys of the blog-style exports (HDF5, NumPy): `W<n>`, `b<n>` for the parameterised
    /// layers, `<group>/<name>` for every other tensor.
    static func blogKeys(_ metadata: ModelMetadata, otherPrefix: String) -> (String) -> String? {
        var keys: [String: String] = [:]
        for (number, layer) in numberedParameterLayers(metadata.layers) {
            keys[layer.weight!] = "W\(number)"
            if let b = layer.bias { keys[b] = "b\(number)" }
        }
        return { keys[$0] ?? otherPrefix + $0 }
    }

    /// The metadata of an export, parsed only far enough to know its layers.
    package static func metadata(_ json: String, path: String, source: String) throws -> ModelMetadata {
        do {
            return try ModelMetadata(json: try JSONValue.parse(json))
        } catch let error as ModelError {
            throw InteropError.badConfig(path: path, detail: "\(source): \(error)")
        } catch let error as JSONParseError {
            throw InteropError.badConfig(path: path, detail: "\(source): \(error)")
        }
    }
}
