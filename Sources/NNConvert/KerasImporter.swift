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
        // Every layer's weights by their leaf name ("kernel", "bias", "gamma", "moving_mean", ...).
        var weightsByLayer: [String: [String: SourceArray]] = [:]
        var weightedLayers: [String] = []
        for name in layerNames {
            let layerGroup = try group.group(name)
            let weightNames = try layerGroup.stringList("weight_names")
            guard !weightNames.isEmpty else { continue }
            var variables: [String: SourceArray] = [:]
            for w in weightNames {
                let leaf = w.split(separator: "/").last.map(String.init) ?? w
                let base = leaf.hasSuffix(":0") ? String(leaf.dropLast(2)) : leaf
                guard variables[base] == nil else {
                    throw InteropError.unexpectedTensor(path: path, name: "\(name)/\(base)", detail: "the layer lists this weight twice")
                }
                variables[base] = try layerGroup.dataset(w).declaration(name: "\(name)/\(base)", sourcePath: path)
            }
            weightsByLayer[name] = variables
            weightedLayers.append(name)
        }
        if let config, config.isConvolutional {
            let stages = try config.stages(path: path)
            let named = Set(stages.compactMap { stage -> String? in
                switch stage {
                case let .convolution(c): return c.name
                case let .dense(d): return d.name
                case let .batchNorm(b): return b.name
                default: return nil
                }
            })
            for name in weightedLayers where !named.contains(name) {
                throw InteropError.unexpectedTensor(path: path, name: name, detail: "weights for a layer the configuration does not list as Conv2D, Dense or BatchNormalization")
            }
            var result = try convolutionalModel(config: config, stages: stages, path: path, options: options,
                                                sourceFormat: "keras-h5") { _, name, variables in
                guard let stored = weightsByLayer[name] else {
                    throw InteropError.missingTensor(path: path, name: name, detail: "the configuration lists this layer, but the file has no weights for it")
                }
                var found: [String: SourceArray] = [:]
                for v in variables {
                    guard let array = stored[v] else {
                        throw InteropError.missingTensor(path: path, name: "\(name)/\(v)", detail: "the configuration implies this weight (\(variables.joined(separator: ", ")))")
                    }
                    found[v] = array
                }
                if let extra = stored.keys.sorted().first(where: { !variables.contains($0) }) {
                    throw InteropError.unexpectedTensor(path: path, name: "\(name)/\(extra)", detail: "the configuration implies only \(variables.joined(separator: ", "))")
                }
                return found
            }
            result.format = format
            return result
        }
        // A chain of Dense layers: a kernel and an optional bias each.
        var denseWeights: [String: (kernel: SourceArray, bias: SourceArray?)] = [:]
        for name in weightedLayers {
            let variables = weightsByLayer[name]!
            if let other = variables.keys.sorted().first(where: { $0 != "kernel" && $0 != "bias" }) {
                let detail = config == nil ? "without a configuration only Dense layers (kernel, bias) can be read"
                                           : "a Dense layer has only kernel and bias"
                throw InteropError.unexpectedTensor(path: path, name: "\(name)/\(other)", detail: detail)
            }
            guard let kernel = variables["kernel"] else {
                throw InteropError.missingTensor(path: path, name: "\(name)/kernel", detail: "the layer has weights but no kernel")
            }
            denseWeights[name] = (kernel, variables["bias"])
        }
        let weightsByLayerDense = denseWeights
        let notes: [String] = []
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
            guard let w = weightsByLayerDense[name] else {
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
        let notes: [String] = []
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
                                                    sourceFormat: "keras3") { index, _, variables in
                    // Keras 3 numbers a layer's variables in the order it creates them.
                    let vars = "layers/\(storageNames[index]!)/vars"
                    guard try file.kind(of: vars) == .group else {
                        throw InteropError.missingTensor(path: path, name: vars, detail: "no weights stored for this layer")
                    }
                    let stored = try file.group(vars).members().count
                    guard stored == variables.count else {
                        throw InteropError.badShape(path: path, name: vars, detail: "holds \(stored) variables, but the configuration implies \(variables.count) (\(variables.joined(separator: ", ")))")
                    }
                    var found: [String: SourceArray] = [:]
                    for (i, v) in variables.enumerated() {
                        found[v] = try file.dataset("\(vars)/\(i)").declaration(name: "\(vars)/\(i)", sourcePath: path)
                    }
                    return found
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
                throw InteropError.unexpectedTensor(path: path, name: "layers/\(other)",
                                                    detail: "without a configuration only Dense layers (layers/dense, layers/dense_1, ...) can be read; import the .keras archive or the legacy .h5 that holds the architecture")
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

    /// A model read layer by layer: the configuration's stages as `.nnm` layers (kernels HWIO,
    /// cross-correlation, flattened in HWC order: Keras's own conventions, so nothing is
    /// transposed or flipped). `parameters(layerIndex, name, variables)` declares a layer's
    /// stored variables by role ("kernel", "bias"; "gamma", "beta", "moving_mean",
    /// "moving_variance"); every shape is checked before any data is read.
    static func convolutionalModel(config: KerasModelConfig, stages: [KerasModelConfig.Stage], path: String, options: ImportOptions,
                                   sourceFormat: String,
                                   parameters: (Int, String, [String]) throws -> [String: SourceArray]) throws -> ImportResult {
        if options.activations != nil {
            throw InteropError.badOption("--activations: \(path) is a Keras model whose configuration states its activations")
        }
        guard let stated = options.inputShape ?? config.inputShape else {
            throw InteropError.badConfig(path: path, detail: "the Keras configuration does not state the input shape, which a model of these layers needs; pass --input-shape H,W,C")
        }
        // A [H, W] input is one channel.
        var shape = stated.count == 2 ? stated + [1] : stated
        var flat: Int? = shape.count == 3 ? nil : shape.reduce(1, *)
        var layers: [Layer] = []
        var declared: [(name: String, array: SourceArray)] = []
        // Rescaling and Normalization before any layer are the model's preprocessing.
        var steps: [PreprocessingStep] = []
        var stepTensors: [NamedTensor] = []
        // A ZeroPadding2D's pads, for the Conv2D or AveragePooling2D after it.
        var pendingPads: (name: String, pads: [Int])?
        /// Declares `array` as `tensor` after checking its shape.
        func declare(_ tensor: String, _ array: SourceArray?, expected: [Int], layer: String, role: String) throws {
            guard let array else { return }
            guard array.shape == expected else {
                throw InteropError.badShape(path: path, name: "\(layer)/\(role)", detail: "expected \(ShapeMath.describe(expected)), found \(ShapeMath.describe(array.shape))")
            }
            declared.append((tensor, array))
        }
        func requireMap(_ name: String, _ className: String) throws {
            guard flat == nil else {
                throw InteropError.kerasLayer(path: path, layer: name, className: className, reason: "it needs a height x width x channels input, but follows Flatten, Dense or global pooling")
            }
        }
        for stage in stages {
            let (stageName, stageClass) = Self.describe(stage)
            // Explicit padding: ZeroPadding2D then a valid Conv2D or AveragePooling2D.
            let explicit = pendingPads.map { Padding.explicit(top: $0.pads[0], left: $0.pads[1], bottom: $0.pads[2], right: $0.pads[3]) }
            if let pending = pendingPads {
                var fits = false
                if case let .convolution(c) = stage, c.padding == .valid { fits = true }
                if case let .pool(p) = stage, p.average, p.padding == .valid { fits = true }
                guard fits else {
                    throw InteropError.kerasLayer(path: path, layer: pending.name, className: "ZeroPadding2D",
                                                  reason: "only before a Conv2D or AveragePooling2D with 'valid' padding is it supported")
                }
                pendingPads = nil
            }
            do {
                switch stage {
                case let .rescale(name, scale, offset):
                    guard layers.isEmpty else {
                        throw InteropError.kerasLayer(path: path, layer: name, className: "Rescaling", reason: "only before every other layer (as preprocessing) is it supported")
                    }
                    steps.append(.scale(factor: scale, offset: offset))
                case let .normalize(name, mean, variance):
                    let features = flat ?? shape.reduce(1, *)
                    guard layers.isEmpty, flat != nil || mean.count == 1 else {
                        throw InteropError.kerasLayer(path: path, layer: name, className: "Normalization",
                                                      reason: "only on the flattened input before every other layer (as preprocessing) is it supported")
                    }
                    guard mean.count == features, !steps.contains(where: { if case .zscore = $0 { return true } else { return false } }) else {
                        throw InteropError.kerasLayer(path: path, layer: name, className: "Normalization",
                                                      reason: "it has \(mean.count) means for \(features) features (one per feature, once, is supported)")
                    }
                    // Keras divides by max(sqrt(variance), 1e-7).
                    stepTensors = [NamedTensor("preprocessing.mean", Tensor(mean, shape: [features])),
                                   NamedTensor("preprocessing.std", Tensor(variance.map { max($0.squareRoot(), 1e-7) }, shape: [features]))]
                    steps.append(.zscore(mean: "preprocessing.mean", std: "preprocessing.std"))
                case let .reshape(name, target):
                    let features = flat ?? shape.reduce(1, *)
                    guard layers.isEmpty || target == (flat.map { [$0] } ?? shape), target.reduce(1, *) == features, target.count == 1 || target.count == 3 else {
                        throw InteropError.kerasLayer(path: path, layer: name, className: "Reshape",
                                                      reason: "only a reshape of the input to \(features) features or to height x width x channels, before every other layer, is supported")
                    }
                    if target.count == 3 { shape = target; flat = nil } else { flat = features }
                case let .zeroPadding(name, pads):
                    try requireMap(name, "ZeroPadding2D")
                    pendingPads = (name, pads)
                case let .convolution(c):
                    try requireMap(c.name, "Conv2D")
                    let layer = try Layer.conv2d(index: layers.count, inputShape: shape, filters: c.filters, kernel: c.kernel, strides: c.strides,
                                                 padding: explicit ?? c.padding, convention: .crossCorrelation, activation: c.activation, bias: c.useBias)
                    let v = try parameters(c.layerIndex, c.name, c.useBias ? ["kernel", "bias"] : ["kernel"])
                    try declare(layer.weight!, v["kernel"], expected: layer.weightShape!, layer: c.name, role: "kernel")
                    if let bias = layer.bias { try declare(bias, v["bias"], expected: [c.filters], layer: c.name, role: "bias") }
                    layers.append(layer)
                    shape = layer.spatial!.outputShape
                case let .pool(p):
                    try requireMap(p.name, p.average ? "AveragePooling2D" : "MaxPooling2D")
                    // Keras averages over the cells inside the input only.
                    // ...and a ZeroPadding2D before it puts zeros into the windows: counted.
                    let layer = p.average
                        ? try Layer.avgPool2d(index: layers.count, inputShape: shape, pool: p.pool, strides: p.strides, padding: explicit ?? p.padding,
                                              countIncludePad: explicit != nil)
                        : try Layer.maxPool2d(index: layers.count, inputShape: shape, pool: p.pool, strides: p.strides, padding: p.padding)
                    layers.append(layer)
                    shape = layer.spatial!.outputShape
                case let .globalPool(name, average):
                    try requireMap(name, average ? "GlobalAveragePooling2D" : "GlobalMaxPooling2D")
                    let layer = try Layer.globalPool2d(index: layers.count, inputShape: shape, average: average)
                    layers.append(layer)
                    flat = layer.outputSize
                case let .batchNorm(b):
                    let input = flat.map { [$0] } ?? shape
                    if b.axis != -1, b.axis != input.count {
                        throw InteropError.kerasLayer(path: path, layer: b.name, className: "BatchNormalization",
                                                      reason: "axis \(b.axis) is not supported (only the last axis, -1 or \(input.count) here)")
                    }
                    let layer = try Layer.batchNorm(index: layers.count, inputShape: input, epsilon: b.epsilon, scale: b.scale, center: b.center)
                    let v = try parameters(b.layerIndex, b.name, b.variables)
                    let bn = layer.batchNorm!, channels = [input.last!]
                    let tensors: [(String?, String)] = [(bn.gamma, "gamma"), (bn.beta, "beta"), (bn.movingMean, "moving_mean"), (bn.movingVariance, "moving_variance")]
                    for case let (tensor?, role) in tensors {
                        try declare(tensor, v[role], expected: channels, layer: b.name, role: role)
                    }
                    layers.append(layer)
                case .flatten:
                    guard flat == nil else { continue }
                    // Before any layer the input is flat already: no layer needed.
                    if layers.isEmpty { flat = shape.reduce(1, *); continue }
                    let layer = Layer.flatten(inputShape: shape)
                    layers.append(layer)
                    flat = layer.outputSize
                case let .dense(d):
                    guard let features = flat else {
                        throw InteropError.kerasLayer(path: path, layer: d.name, className: "Dense", reason: "Dense on a \(ShapeMath.describe(shape)) feature map is not supported (add a Flatten)")
                    }
                    var layer = Layer.dense(index: layers.count, inputSize: features, outputSize: d.units, activation: d.activation)
                    if !d.useBias { layer.bias = nil }
                    let v = try parameters(d.layerIndex, d.name, d.useBias ? ["kernel", "bias"] : ["kernel"])
                    try declare(layer.weight!, v["kernel"], expected: layer.weightShape!, layer: d.name, role: "kernel")
                    if let bias = layer.bias { try declare(bias, v["bias"], expected: [d.units], layer: d.name, role: "bias") }
                    layers.append(layer)
                    flat = d.units
                case let .activation(name, className, activation):
                    // An activation layer is the activation of the layer before it.
                    guard let last = layers.indices.last else {
                        throw InteropError.kerasLayer(path: path, layer: name, className: className, reason: "an activation before any other layer is not supported")
                    }
                    guard layers[last].activation == .identity else {
                        throw InteropError.kerasLayer(path: path, layer: name, className: className,
                                                      reason: "the layer before it already applies \(layers[last].activation); a second activation in a row is not supported")
                    }
                    if flat == nil, activation == .softmax || activation == .logSoftmax {
                        throw InteropError.kerasLayer(path: path, layer: name, className: className,
                                                      reason: "\(activation) over the channels of a \(ShapeMath.describe(shape)) feature map is not supported (only over features after Flatten, Dense or global pooling)")
                    }
                    layers[last].activation = activation
                }
            } catch let error as ModelError {
                throw InteropError.kerasLayer(path: path, layer: stageName, className: stageClass, reason: "\(error)")
            }
        }
        if let pending = pendingPads {
            throw InteropError.kerasLayer(path: path, layer: pending.name, className: "ZeroPadding2D", reason: "only before a Conv2D or AveragePooling2D with 'valid' padding is it supported")
        }
        guard flat != nil, !layers.isEmpty else {
            throw InteropError.badConfig(path: path, detail: "the Keras model's output is a \(ShapeMath.describe(shape)) feature map; only models whose output is a vector (after Flatten, Dense or global pooling) are supported")
        }
        // Every shape has been checked against the configuration: now the data, within the budget.
        try declared.map(\.array).checkBudget(options.maxTensorBytes, path: path)
        let tensors = try declared.map { NamedTensor($0.name, try $0.array.tensor()) }
        var notes: [String] = []
        return try ModelBuilder.finish(layers: layers, tensors: tensors, inputShape: stated, path: path, sourceFormat: sourceFormat,
                                        options: options, notes: &notes, preprocessing: steps, preprocessingTensors: stepTensors)
    }

    /// A stage's Keras layer name and class, for messages.
    static func describe(_ stage: KerasModelConfig.Stage) -> (name: String, className: String) {
        switch stage {
        case let .convolution(c): return (c.name, "Conv2D")
        case let .pool(p): return (p.name, p.average ? "AveragePooling2D" : "MaxPooling2D")
        case let .globalPool(name, average): return (name, average ? "GlobalAveragePooling2D" : "GlobalMaxPooling2D")
        case let .batchNorm(b): return (b.name, "BatchNormalization")
        case .flatten: return ("flatten", "Flatten")
        case let .dense(d): return (d.name, "Dense")
        case let .activation(name, className, _): return (name, className)
        case let .rescale(name, _, _): return (name, "Rescaling")
        case let .normalize(name, _, _): return (name, "Normalization")
        case let .reshape(name, _): return (name, "Reshape")
        case let .zeroPadding(name, _): return (name, "ZeroPadding2D")
        }
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
