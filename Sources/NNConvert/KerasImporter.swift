import NNCore
import NNHDF5

/// Keras files: legacy `.h5` from `model.save` (tf.keras 2 and Keras 3), `save_weights` files,
/// and the weights of Keras 3 `.keras` archives.
enum KerasImporter {
    /// A legacy `.h5` from `model.save`: `model_config` at the root, weights under `model_weights`.
    static func importLegacy(_ file: HDF5File, path: String, options: ImportOptions) throws -> ImportResult {
        let config = try KerasModelConfig(json: try file.stringAttribute("model_config"), path: path)
        let weightsGroup = try file.group("model_weights")
        let version = (try? file.stringAttribute("keras_version")) ?? "unknown"
        return try importLegacyGroup(weightsGroup, config: config, path: path, options: options,
                                     format: "Keras legacy .h5 (keras \(version), \(config.className))")
    }

    /// A legacy `save_weights` file: `layer_names` at the root, no architecture.
    static func importLegacyWeights(_ file: HDF5File, path: String, options: ImportOptions) throws -> ImportResult {
        let version = (try? file.stringAttribute("keras_version")) ?? "unknown"
        return try importLegacyGroup(file, config: nil, path: path, options: options,
                                     format: "Keras legacy save_weights .h5 (keras \(version))")
    }

    /// Reads Dense kernels and biases by the `layer_names` / `weight_names` attributes, which
    /// give the order; layer groups themselves are listed alphabetically.
    static func importLegacyGroup(_ group: HDF5Group, config: KerasModelConfig?, path: String, options: ImportOptions,
                                  format: String) throws -> ImportResult {
        // The configuration first: an unsupported layer is named by its class, not its weights.
        let configured = try config.map { config throws in config.isConvolutional ? [] : try config.denseLayers(path: path) }
        let layerNames = try group.stringList("layer_names")
        var weightsByLayer: [String: (kernel: SourceArray, bias: SourceArray?)] = [:]
        var weightedLayers: [String] = []
        for name in layerNames {
            let layerGroup = try group.group(name)
            let weightNames = try layerGroup.stringList("weight_names")
            guard !weightNames.isEmpty else { continue }
            var kernel: SourceArray?, bias: SourceArray?
            for w in weightNames {
                let leaf = w.split(separator: "/").last.map(String.init) ?? w
                let base = leaf.hasSuffix(":0") ? String(leaf.dropLast(2)) : leaf
                let t = try layerGroup.dataset(w).declaration(name: "\(name)/\(base)", sourcePath: path)
                switch base {
                case "kernel": kernel = t
                case "bias": bias = t
                default:
                    throw InteropError.unsupportedLayer(path: path, layer: name, className: "a layer with weight '\(w)'")
                }
            }
            guard let kernel else { throw InteropError.missingTensor(path: path, name: "\(name)/kernel", detail: "the layer has weights but no kernel") }
            weightsByLayer[name] = (kernel, bias)
            weightedLayers.append(name)
        }
        if let config, config.isConvolutional {
            let stages = try config.stages(path: path)
            let named = Set(stages.compactMap { stage -> String? in
                switch stage {
                case let .convolution(c): return c.name
                case let .dense(d): return d.name
                default: return nil
                }
            })
            for name in weightedLayers where !named.contains(name) {
                throw InteropError.unexpectedTensor(path: path, name: name, detail: "weights for a layer the configuration does not list as Conv2D or Dense")
            }
            var result = try convolutionalModel(config: config, stages: stages, path: path, options: options,
                                                sourceFormat: "keras-h5") { _, name, _ in
                guard let w = weightsByLayer[name] else {
                    throw InteropError.missingTensor(path: path, name: name, detail: "the configuration lists this layer, but the file has no weights for it")
                }
                return w
            }
            result.format = format
            return result
        }
        var notes: [String] = []
        let dense: [(name: String, activation: Activation?)]
        var inputShape: [Int]?
        if let config, let layers = configured {
            inputShape = config.inputShape
            dense = layers.map { ($0.name, $0.activation) }
            for name in weightedLayers where !layers.contains(where: { $0.name == name }) {
                throw InteropError.unexpectedTensor(path: path, name: name, detail: "weights for a layer the configuration does not list as Dense")
            }
        } else {
            dense = weightedLayers.map { ($0, nil) }
        }
        var weights: [SourceArray] = [], biases: [SourceArray?] = []
        for (name, _) in dense {
            guard let w = weightsByLayer[name] else {
                throw InteropError.missingTensor(path: path, name: name, detail: "the configuration lists this Dense layer, but the file has no weights for it")
            }
            guard w.kernel.shape.count == 2 else {
                throw InteropError.badShape(path: path, name: "\(name)/kernel", detail: "expected a 2-D kernel, found shape \(ShapeMath.describe(w.kernel.shape))")
            }
            weights.append(w.kernel)
            biases.append(w.bias)
        }
        return try denseModel(weights, biases, names: dense.map(\.name), activations: dense.map(\.activation), inputShape: inputShape,
                              sourceFormat: config == nil ? "keras-weights-h5" : "keras-h5", format: format, path: path,
                              options: options, notes: notes)
    }

    /// Whether a file has Keras 3's `layers/<name>/vars/<i>` layout.
    static func looksLikeKeras3Weights(_ file: HDF5File) throws -> Bool {
        guard try file.kind(of: "layers") == .group else { return false }
        for member in try file.group("layers").members() where member.kind == .group {
            if try file.kind(of: "layers/\(member.name)/vars") == .group { return true }
        }
        return false
    }

    /// Keras 3 weights (`model.weights.h5` inside a `.keras`, or a `.weights.h5`): variables at
    /// `layers/<snake_case class><_counter>/vars/<i>`, named by class and position, never by
    /// `layer.name`. With a configuration, the storage names are derived from it as Keras does.
    static func importKeras3Weights(_ file: HDF5File, path: String, config: KerasModelConfig?, options: ImportOptions,
                                    format: String) throws -> ImportResult {
        var notes: [String] = []
        var storage: [(name: String, activation: Activation?, useBias: Bool)] = []
        var inputShape: [Int]?
        if let config {
            // Counters run per class over model.layers; Sequential leaves InputLayer out.
            var counters: [String: Int] = [:]
            var storageNames: [Int: String] = [:]
            for (i, layer) in config.layers.enumerated() {
                if layer.className == "InputLayer", config.className == "Sequential" { continue }
                let base = KerasModelConfig.snakeCase(layer.className)
                let n = counters[base, default: 0]
                counters[base] = n + 1
                storageNames[i] = n == 0 ? base : "\(base)_\(n)"
            }
            if config.isConvolutional {
                var result = try convolutionalModel(config: config, stages: try config.stages(path: path), path: path, options: options,
                                                    sourceFormat: "keras3") { index, _, useBias in
                    let vars = "layers/\(storageNames[index]!)/vars"
                    guard try file.kind(of: vars) == .group else {
                        throw InteropError.missingTensor(path: path, name: vars, detail: "no weights stored for this layer")
                    }
                    return (try file.dataset("\(vars)/0").declaration(name: "\(vars)/0", sourcePath: path),
                            useBias ? try file.dataset("\(vars)/1").declaration(name: "\(vars)/1", sourcePath: path) : nil)
                }
                result.format = format
                return result
            }
            let dense = try config.denseLayers(path: path)
            inputShape = config.inputShape
            storage = dense.map { (storageNames[$0.layerIndex]!, $0.activation, $0.useBias) }
        } else {
            let names = try file.group("layers").members().filter { $0.kind == .group }.map(\.name)
            let dense = names.filter { $0 == "dense" || ($0.hasPrefix("dense_") && Int($0.dropFirst(6)) != nil) }
            if let other = names.first(where: { !dense.contains($0) }) {
                throw InteropError.unsupportedLayer(path: path, layer: other, className: "'\(other)' (without a configuration only Dense layers can be read)")
            }
            let ordered = dense.sorted { (Int($0.dropFirst(6)) ?? 0) < (Int($1.dropFirst(6)) ?? 0) }
            storage = ordered.map { ($0, nil, true) }
        }
        var weights: [SourceArray] = [], biases: [SourceArray?] = []
        for layer in storage {
            let vars = "layers/\(layer.name)/vars"
            guard try file.kind(of: vars) == .group else {
                throw InteropError.missingTensor(path: path, name: vars, detail: "no weights stored for this Dense layer")
            }
            let kernel = try file.dataset("\(vars)/0").declaration(name: "\(vars)/0", sourcePath: path)
            guard kernel.shape.count == 2 else {
                throw InteropError.badShape(path: path, name: "\(vars)/0", detail: "expected a 2-D kernel, found shape \(ShapeMath.describe(kernel.shape))")
            }
            weights.append(kernel)
            biases.append(layer.useBias ? try file.dataset("\(vars)/1").declaration(name: "\(vars)/1", sourcePath: path) : nil)
        }
        return try denseModel(weights, biases, names: storage.map(\.name), activations: storage.map(\.activation), inputShape: inputShape,
                              sourceFormat: config == nil ? "keras3-weights-h5" : "keras3", format: format, path: path,
                              options: options, notes: notes)
    }

    /// A stack of Dense layers from declared kernels and biases: activations resolved, shapes
    /// checked to chain, then the data read within the budget and the model assembled.
    static func denseModel(_ weights: [SourceArray], _ biases: [SourceArray?], names: [String], activations fromConfig: [Activation?],
                           inputShape: [Int]?, sourceFormat: String, format: String, path: String, options: ImportOptions,
                           notes: [String]) throws -> ImportResult {
        var notes = notes
        let activations = try resolveActivations(fromConfig, outputSize: weights.last!.shape[1], path: path, options: options, notes: &notes)
        try checkChain(weights, biases, names: names, path: path)
        let (kernels, biasTensors) = try read(weights, biases, options: options, path: path)
        var result = try ModelBuilder.assemble(weights: kernels, biases: biasTensors, activations: activations, path: path,
                                                sourceFormat: sourceFormat, inputShape: inputShape, options: options, notes: &notes)
        result.format = format
        return result
    }

    /// A convolutional model: the configuration's stages as `.nnm` layers (kernels HWIO,
    /// cross-correlation, flattened in HWC order: Keras's own conventions, so nothing is
    /// transposed or flipped), each parameter read by `parameters(layerIndex, name, useBias)`.
    static func convolutionalModel(config: KerasModelConfig, stages: [KerasModelConfig.Stage], path: String, options: ImportOptions,
                                   sourceFormat: String,
                                   parameters: (Int, String, Bool) throws -> (kernel: SourceArray, bias: SourceArray?)) throws -> ImportResult {
        if options.activations != nil {
            throw InteropError.badOption("--activations: \(path) is a convolutional Keras model whose configuration states its activations")
        }
        guard let stated = options.inputShape ?? config.inputShape else {
            throw InteropError.badConfig(path: path, detail: "the Keras configuration does not state the input shape, which a convolutional model needs; pass --input-shape H,W,C")
        }
        // A [H, W] input is one channel.
        var shape = stated.count == 2 ? stated + [1] : stated
        var flat: Int? = shape.count == 3 ? nil : shape.reduce(1, *)
        var layers: [Layer] = []
        var declared: [(name: String, array: SourceArray)] = []
        func add(_ layer: Layer, kernel: SourceArray?, bias: SourceArray?, name: String) throws {
            if let kernel {
                let expected = layer.weightShape!
                guard kernel.shape == expected else {
                    throw InteropError.badShape(path: path, name: "\(name)/kernel", detail: "expected \(ShapeMath.describe(expected)), found \(ShapeMath.describe(kernel.shape))")
                }
                declared.append((layer.weight!, kernel))
            }
            if let bias, let biasName = layer.bias {
                let outputs = kernel?.shape.last ?? 0
                guard bias.shape == [outputs] else {
                    throw InteropError.badShape(path: path, name: "\(name)/bias", detail: "expected \(outputs) values, found \(ShapeMath.describe(bias.shape))")
                }
                declared.append((biasName, bias))
            }
            layers.append(layer)
        }
        for stage in stages {
            do {
                switch stage {
                case let .convolution(c):
                    guard flat == nil else {
                        throw InteropError.unsupportedLayer(path: path, layer: c.name, className: "Conv2D after Flatten or Dense")
                    }
                    let layer = try Layer.conv2d(index: layers.count, inputShape: shape, filters: c.filters, kernel: c.kernel, strides: c.strides,
                                                 padding: c.padding, convention: .crossCorrelation, activation: c.activation, bias: c.useBias)
                    let (kernel, bias) = try parameters(c.layerIndex, c.name, c.useBias)
                    try add(layer, kernel: kernel, bias: bias, name: c.name)
                    shape = layer.spatial!.outputShape
                case let .maxPool(name, pool, strides, padding):
                    guard flat == nil else {
                        throw InteropError.unsupportedLayer(path: path, layer: name, className: "MaxPooling2D after Flatten or Dense")
                    }
                    let layer = try Layer.maxPool2d(index: layers.count, inputShape: shape, pool: pool, strides: strides, padding: padding)
                    try add(layer, kernel: nil, bias: nil, name: name)
                    shape = layer.spatial!.outputShape
                case .flatten:
                    guard flat == nil else { continue }
                    let layer = Layer.flatten(inputShape: shape)
                    try add(layer, kernel: nil, bias: nil, name: "flatten")
                    flat = layer.outputSize
                case let .dense(d):
                    guard let features = flat else {
                        throw InteropError.unsupportedLayer(path: path, layer: d.name, className: "Dense on a \(ShapeMath.describe(shape)) feature map (add a Flatten)")
                    }
                    var layer = Layer.dense(index: layers.count, inputSize: features, outputSize: d.units, activation: d.activation)
                    if !d.useBias { layer.bias = nil }
                    let (kernel, bias) = try parameters(d.layerIndex, d.name, d.useBias)
                    try add(layer, kernel: kernel, bias: bias, name: d.name)
                    flat = d.units
                }
            } catch let error as ModelError {
                throw InteropError.badConfig(path: path, detail: "\(error)")
            }
        }
        guard flat != nil, layers.last?.kind == .dense else {
            throw InteropError.unsupportedLayer(path: path, layer: "output", className: "a model that does not end in Flatten and Dense layers")
        }
        // Every shape has been checked against the configuration: now the data, within the budget.
        try declared.map(\.array).checkBudget(options.maxTensorBytes, path: path)
        let tensors = try declared.map { NamedTensor($0.name, try $0.array.tensor()) }
        var notes: [String] = []
        return try ModelBuilder.finish(layers: layers, tensors: tensors, inputShape: stated, path: path, sourceFormat: sourceFormat,
                                        options: options, notes: &notes)
    }

    /// The configuration's activations, the user's, or (without a configuration) ReLU hidden
    /// layers and a softmax output, announced.
    static func resolveActivations(_ fromConfig: [Activation?], outputSize: Int, path: String, options: ImportOptions,
                                   notes: inout [String]) throws -> [Activation] {
        if let given = options.activations {
            guard given.count == fromConfig.count else {
                throw InteropError.badOption("--activations: \(path) has \(fromConfig.count) Dense layers, but \(given.count) activations were given")
            }
            return given
        }
        if fromConfig.allSatisfy({ $0 != nil }) { return fromConfig.map { $0! } }
        let n = fromConfig.count
        let defaults = Array(repeating: Activation.relu, count: n - 1) + [outputSize == 1 ? .sigmoid : .softmax]
        notes.append("activations \(defaults.map(\.description).joined(separator: ", ")): the file stores weights only; --activations overrides")
        return defaults
    }

    /// Reads the declared kernels and biases once their shapes are known to chain, within the
    /// options' byte budget.
    static func read(_ weights: [SourceArray], _ biases: [SourceArray?], options: ImportOptions,
                     path: String) throws -> (weights: [Tensor], biases: [Tensor?]) {
        try (weights + biases.compactMap { $0 }).checkBudget(options.maxTensorBytes, path: path)
        return (try weights.map { try $0.tensor() }, try biases.map { try $0?.tensor() })
    }

    static func checkChain(_ weights: [SourceArray], _ biases: [SourceArray?], names: [String], path: String) throws {
        for i in weights.indices {
            if i > 0, weights[i].shape[0] != weights[i - 1].shape[1] {
                throw InteropError.badShape(path: path, name: names[i],
                                            detail: "its kernel is \(ShapeMath.describe(weights[i].shape)), but the previous layer has \(weights[i - 1].shape[1]) outputs")
            }
            if let b = biases[i], ShapeMath.elementCount(b.shape) != weights[i].shape[1] || b.shape.count != 1 {
                throw InteropError.badShape(path: path, name: names[i],
                                            detail: "its bias has shape \(ShapeMath.describe(b.shape)), expected \(weights[i].shape[1])")
            }
        }
    }
}
