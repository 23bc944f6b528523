import NNCore
import NNHDF5
import NNSystem
import NNZip

/// The Keras export: a `.nnm` model as a Keras 3 `Sequential` model that
/// `keras.saving.load_model` loads and that predicts what our engine does, as a `.keras` zip
/// (`config.json`, `metadata.json`, `model.weights.h5`) or a legacy `.h5` (`model_config`
/// attribute, weights under `model_weights`).
///
/// The model's preprocessing comes first, so the Keras model takes raw inputs as ours does: a
/// scale step is a `Rescaling` layer; a z-score step flattens the sample and is a
/// `Normalization` layer whose mean is ours and whose variance is the square of our std (1 where
/// our std is 0, since our z-score only centres those features, while Keras would divide by its
/// epsilon). Layers map one to one (`Reshape`, `Flatten` and `ZeroPadding2D` are added where
/// Keras needs them: a sample shape, a flat vector, explicit padding); an activation that
/// Keras serializes as a name is the layer's `activation` argument, one with parameters its own
/// layer (`LeakyReLU`, `ELU`, `ReLU(max_value)`). Weights are written as float32, Keras's floatx.
/// What Keras cannot express is refused with one line: GELU's tanh form (Keras has it only as a
/// function argument, which does not serialize), average pooling that counts padded cells under
/// "same" padding or that ignores them under explicit padding, max pooling with explicit
/// padding, and softmax over a height x width x channels sample.
enum KerasExport {
    /// The Keras version whose files these imitate.
    static let kerasVersion = "3.15.1"

    /// One Keras layer of the export: its class, name, config members and weights in Keras's order.
    struct KerasLayer {
        var className: String
        var name = ""
        var config: [(String, JSONValue)]
        /// (role, tensor) in the order Keras creates the variables: kernel, bias; gamma, beta,
        /// moving_mean, moving_variance.
        var weights: [(role: String, tensor: Tensor)] = []
    }

    /// The Keras layers for `model`, named as Keras names them (`dense`, `dense_1`, ...), which
    /// is also where a `.keras` archive stores their weights.
    static func layers(_ model: Model, path: String) throws -> [KerasLayer] {
        let meta = model.metadata
        var out: [KerasLayer] = []
        var shape = meta.input.shape
        func refuse(_ index: Int, _ why: String) -> InteropError {
            .badConfig(path: path, detail: "layers[\(index)] (\(meta.layers[index].kind.rawValue)): \(why), which a Keras model cannot express")
        }
        func flatten() {
            guard shape.count != 1 else { return }
            out.append(KerasLayer(className: "Flatten", config: [("data_format", .string("channels_last"))]))
            shape = [shape.reduce(1, *)]
        }
        func reshape(to target: [Int]) {
            guard shape != target else { return }
            out.append(KerasLayer(className: "Reshape", config: [("target_shape", ints(target))]))
            shape = target
        }
        for step in meta.preprocessing {
            switch step {
            case let .scale(factor, offset):
                out.append(KerasLayer(className: "Rescaling", config: [("scale", .number(factor)), ("offset", .number(offset))]))
            case let .zscore(meanName, stdName):
                guard let mean = model.tensor(meanName)?.doubles(), let std = model.tensor(stdName)?.doubles() else {
                    throw InteropError.missingTensor(path: path, name: meanName, detail: "the z-score statistics are not in the model")
                }
                flatten()
                out.append(KerasLayer(className: "Normalization", config: [
                    ("axis", .array([.integer(-1)])), ("invert", .bool(false)),
                    ("mean", .array(mean.map { .number($0) })), ("variance", .array(std.map { .number($0 == 0 ? 1 : $0 * $0) })),
                ]))
            }
        }
        for (i, layer) in meta.layers.enumerated() {
            let g = layer.spatial
            // What the layer's own Keras class applies; other activations follow as a layer.
            var pending = layer.activation
            switch layer.kind {
            case .dense:
                flatten()
                let argument = Self.argument(layer.activation)
                pending = argument == nil ? layer.activation : .identity
                var weights = [("kernel", model.tensor(layer.weight)!)]
                if let b = model.tensor(layer.bias) { weights.append(("bias", b)) }
                out.append(KerasLayer(className: "Dense", config: [
                    ("units", .integer(Int64(layer.outputSize))), ("activation", .string(argument ?? "linear")),
                    ("use_bias", .bool(layer.bias != nil)),
                ], weights: weights))
                shape = [layer.outputSize]
            case .conv2d:
                let g = g!
                reshape(to: g.inputShape)
                if let pads = g.padding.pads { out.append(zeroPadding(pads)) }
                var kernel = model.tensor(layer.weight)!
                if g.convention == .convolution {
                    // Keras correlates: a true convolution's kernel is turned by 180 degrees.
                    let w = SpatialGeometry.flippedKernel(kernel.floats(), shape: kernel.shape)
                    kernel = Tensor(w, shape: kernel.shape)
                }
                let argument = Self.argument(layer.activation)
                pending = argument == nil ? layer.activation : .identity
                var weights = [("kernel", kernel)]
                if let b = model.tensor(layer.bias) { weights.append(("bias", b)) }
                out.append(KerasLayer(className: "Conv2D", config: [
                    ("filters", .integer(Int64(g.outputShape[2]))), ("kernel_size", ints(g.window)), ("strides", ints(g.strides)),
                    ("padding", .string(g.padding == .same ? "same" : "valid")), ("data_format", .string("channels_last")),
                    ("dilation_rate", ints([1, 1])), ("groups", .integer(1)), ("activation", .string(argument ?? "linear")),
                    ("use_bias", .bool(layer.bias != nil)),
                ], weights: weights))
                shape = g.outputShape
            case .maxPool2d, .avgPool2d:
                let g = g!
                reshape(to: g.inputShape)
                let average = layer.kind == .avgPool2d
                var padding = g.padding
                switch (g.padding, average, layer.countIncludePad) {
                case (.valid, _, _), (.same, false, _), (.same, true, false): break
                case (.same, true, true):
                    throw refuse(i, "average pooling with 'same' padding that counts padded cells (Keras never counts them)")
                case let (.explicit(top, left, bottom, right), true, true):
                    // Zeros counted in every window: explicit zero padding, then valid pooling.
                    out.append(zeroPadding([top, left, bottom, right]))
                    padding = .valid
                case (.explicit, true, false):
                    throw refuse(i, "average pooling over explicit padding that does not count padded cells")
                case (.explicit, false, _):
                    throw refuse(i, "max pooling with explicit padding")
                }
                out.append(KerasLayer(className: average ? "AveragePooling2D" : "MaxPooling2D", config: [
                    ("pool_size", ints(g.window)), ("padding", .string(padding == .same ? "same" : "valid")),
                    ("strides", ints(g.strides)), ("data_format", .string("channels_last")),
                ]))
                shape = g.outputShape
            case .globalAvgPool2d, .globalMaxPool2d:
                reshape(to: g!.inputShape)
                out.append(KerasLayer(className: layer.kind == .globalAvgPool2d ? "GlobalAveragePooling2D" : "GlobalMaxPooling2D",
                                      config: [("data_format", .string("channels_last")), ("keepdims", .bool(false))]))
                shape = g!.outputShape
            case .batchNorm:
                let bn = layer.batchNorm!
                if g!.inputShape.count == 1 { flatten() } else { reshape(to: g!.inputShape) }
                var weights: [(String, Tensor)] = []
                if let gamma = model.tensor(bn.gamma) { weights.append(("gamma", gamma)) }
                if let beta = model.tensor(bn.beta) { weights.append(("beta", beta)) }
                weights += [("moving_mean", model.tensor(bn.movingMean)!), ("moving_variance", model.tensor(bn.movingVariance)!)]
                out.append(KerasLayer(className: "BatchNormalization", config: [
                    ("axis", .integer(-1)), ("momentum", .number(0.99)), ("epsilon", .number(bn.epsilon)),
                    ("center", .bool(bn.beta != nil)), ("scale", .bool(bn.gamma != nil)),
                ], weights: weights))
            case .flatten:
                flatten()
            }
            if pending != .identity {
                if shape.count != 1, pending == .softmax || pending == .logSoftmax {
                    throw refuse(i, "\(pending) over a whole \(ShapeMath.describe(shape)) sample (Keras's runs over the channels)")
                }
                out.append(try activationLayer(pending, index: i, path: path))
            }
        }
        // Our outputs are the flat features of the last layer (HWC order): so are Keras's.
        flatten()
        // Names and storage names, as Keras counts them per class.
        var counters: [String: Int] = [:]
        for i in out.indices {
            let base = KerasModelConfig.snakeCase(out[i].className)
            let n = counters[base, default: 0]
            counters[base] = n + 1
            out[i].name = n == 0 ? base : "\(base)_\(n)"
        }
        return out
    }

    static func ints(_ values: [Int]) -> JSONValue { .array(values.map { .integer(Int64($0)) }) }

    static func zeroPadding(_ pads: [Int]) -> KerasLayer {
        KerasLayer(className: "ZeroPadding2D", config: [("padding", .array([ints([pads[0], pads[2]]), ints([pads[1], pads[3]])])),
                                                        ("data_format", .string("channels_last"))])
    }

    /// The name Keras serializes for an activation without parameters (or at Keras's
    /// defaults: elu 1, leaky_relu 0.2, gelu exact); nil for the others.
    static func argument(_ activation: Activation) -> String? {
        switch activation {
        case .identity: return "linear"
        case .relu, .sigmoid, .tanh, .softmax, .selu, .softplus, .relu6: return activation.name
        case .swish: return "silu"
        case .hardSigmoid: return "hard_sigmoid"
        case .logSoftmax: return "log_softmax"
        case .gelu(.exact): return "gelu"
        case .elu(1): return "elu"
        case .leakyRelu(0.2): return "leaky_relu"
        default: return nil
        }
    }

    /// A layer that applies `activation` on its own.
    static func activationLayer(_ activation: Activation, index: Int, path: String) throws -> KerasLayer {
        switch activation {
        case let .leakyRelu(alpha): return KerasLayer(className: "LeakyReLU", config: [("negative_slope", .number(alpha))])
        case let .elu(alpha): return KerasLayer(className: "ELU", config: [("alpha", .number(alpha))])
        case let .clippedRelu(maxValue):
            return KerasLayer(className: "ReLU", config: [("max_value", .number(maxValue)), ("negative_slope", .number(0)), ("threshold", .number(0))])
        default:
            guard let name = argument(activation) else {
                throw InteropError.badConfig(path: path, detail: "layers[\(index)] uses \(activation), which a Keras model cannot express (Keras has GELU's tanh form only as a function argument, which does not serialize)")
            }
            return KerasLayer(className: "Activation", config: [("activation", .string(name))])
        }
    }

    /// The `Sequential` configuration Keras 3 writes (and reads back with `from_config`).
    static func modelConfig(_ layers: [KerasLayer], inputShape: [Int]) -> JSONValue {
        let batchShape = JSONValue.array([.null] + inputShape.map { .integer(Int64($0)) })
        let input = JSONValue.object(JSONObject([
            ("module", .string("keras.layers")), ("class_name", .string("InputLayer")),
            ("config", .object(JSONObject([("batch_shape", batchShape), ("dtype", .string("float32")), ("sparse", .bool(false)),
                                           ("ragged", .bool(false)), ("name", .string("input_layer")), ("optional", .bool(false))]))),
            ("registered_name", .null),
        ]))
        let entries = layers.map { layer in
            JSONValue.object(JSONObject([
                ("module", .string("keras.layers")), ("class_name", .string(layer.className)),
                ("config", .object(JSONObject([("name", .string(layer.name)), ("trainable", .bool(true)), ("dtype", .string("float32"))] + layer.config))),
                ("registered_name", .null),
            ]))
        }
        return .object(JSONObject([
            ("module", .string("keras")), ("class_name", .string("Sequential")),
            ("config", .object(JSONObject([("name", .string("sequential")), ("trainable", .bool(true)), ("dtype", .string("float32")),
                                           ("layers", .array([input] + entries))]))),
            ("registered_name", .null), ("build_config", .object(JSONObject([("input_shape", batchShape)]))),
        ]))
    }

    /// "Keras 3 .keras Sequential: Rescaling, Dense, Dense; 4 weight arrays": what was written.
    static func summary(_ layers: [KerasLayer], legacy: Bool) -> String {
        let arrays = layers.reduce(0) { $0 + $1.weights.count }
        return "Keras \(legacy ? "legacy .h5" : "3 .keras") Sequential: \(layers.map(\.className).joined(separator: ", ")); \(arrays) weight arrays"
    }

    static func float32(_ t: Tensor) -> [Float] { t.dtype == .float32 ? t.floats() : t.doubles().map(Float.init) }

    /// Writes a Keras 3 `.keras` archive atomically.
    static func writeArchive(_ model: Model, to path: String) throws -> ExportResult {
        let layers = try layers(model, path: path)
        let config = modelConfig(layers, inputShape: model.metadata.input.shape).serialized()
        let temporary: TemporaryFile
        do {
            temporary = try TemporaryFile(suffix: ".h5")
        } catch {
            throw InteropError.badConfig(path: path, detail: "cannot create a temporary file in \(error.path): \(error.reason)")
        }
        try HDF5File.createAtomically(path: temporary.path) { file in
            // Every layer has a group with `vars` (empty for layers without weights), named
            // as Keras names them; the model's own variables (none) are under the root `vars`.
            let root = try file.createGroup("layers")
            for layer in layers {
                let vars = try root.createGroup("\(layer.name)/vars")
                try vars.setAttribute("name", .string(layer.name))
                for (i, w) in layer.weights.enumerated() {
                    _ = try vars.createDataset(String(i), floats: float32(w.tensor), shape: w.tensor.shape)
                }
            }
            try file.createGroup("vars").setAttribute("name", .string("sequential"))
        }
        let file = try ReadOnlyFile(path: temporary.path)
        let weights = try file.read(at: 0, count: file.size)
        let zip = try ZipWriter(path: path)
        try zip.addMember(name: "metadata.json", bytes: Array(#"{"keras_version": "\#(kerasVersion)", "date_saved": "\#(Clock.nowISO8601())"}"#.utf8))
        try zip.addMember(name: "config.json", bytes: Array(config.utf8))
        try zip.addMember(name: "model.weights.h5", bytes: weights)
        try zip.finish()
        return ExportResult(summary: summary(layers, legacy: false))
    }

    /// Writes a legacy Keras `.h5` (`model.save("x.h5")`'s layout) atomically.
    static func writeLegacy(_ model: Model, to path: String) throws -> ExportResult {
        let layers = try layers(model, path: path)
        let config = modelConfig(layers, inputShape: model.metadata.input.shape)
        // Keras's legacy files hold only class_name and config at the top.
        var top = JSONObject()
        top["class_name"] = config["class_name"]
        top["config"] = config["config"]
        try HDF5File.createAtomically(path: path) { file in
            try file.setAttribute("backend", .string("jax"))
            try file.setAttribute("keras_version", .string(kerasVersion))
            try file.setAttribute("model_config", .string(JSONValue.object(top).serialized()))
            let group = try file.createGroup("model_weights")
            try group.setAttribute("backend", .string("jax"))
            try group.setAttribute("keras_version", .string(kerasVersion))
            // Only layers with weights are listed: Keras's loader skips the others anyway.
            let weighted = layers.filter { !$0.weights.isEmpty }
            try group.setAttribute("layer_names", strings: weighted.map(\.name), storage: .fixedLength)
            for layer in weighted {
                let layerGroup = try group.createGroup(layer.name)
                let names = layer.weights.map { "sequential/\(layer.name)/\($0.role)" }
                try layerGroup.setAttribute("weight_names", strings: names, storage: .fixedLength)
                for (name, w) in zip(names, layer.weights) {
                    _ = try layerGroup.createDataset(name, floats: float32(w.tensor), shape: w.tensor.shape)
                }
            }
        }
        return ExportResult(summary: summary(layers, legacy: true))
    }
}
