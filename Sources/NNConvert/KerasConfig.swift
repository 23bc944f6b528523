import NNCore

/// A Keras layer as its configuration describes it. `package` so that the fuzz harness
/// (Fuzz/Sources/fuzz-keras-config) and the malformed-input tests can drive the parser directly.
package struct KerasLayerConfig {
    package var className: String
    package var name: String
    package var config: JSONObject
}

/// The parts of a Keras model configuration the converter uses: a chain of layers (Dense,
/// Conv2D, pooling, BatchNormalization, activation layers; Dropout, Flatten and InputLayer
/// around them).
package struct KerasModelConfig {
    /// All layers in order (including InputLayer entries when the config lists them).
    package var layers: [KerasLayerConfig]
    /// The input shape without the batch dimension, when the config states it.
    package var inputShape: [Int]?
    package var className: String

    /// Parses `model_config` (legacy `.h5`) or `config.json` (`.keras`). Keras 2.2 wrote a
    /// Sequential config as a bare list of layers; later versions as `{"name", "layers"}`.
    /// A Functional model is read as the chain of its layers in listed order, which is what a
    /// model built by calling Dense layers one after another lists.
    package init(json text: String, path: String) throws(InteropError) {
        let root: JSONValue
        do { root = try JSONValue.parse(text) } catch {
            throw .badConfig(path: path, detail: "the Keras model configuration is not valid JSON: \(error)")
        }
        guard let className = root["class_name"]?.stringValue else {
            throw .badConfig(path: path, detail: "the Keras model configuration has no class_name")
        }
        guard ["Sequential", "Functional", "Model"].contains(className) else {
            throw .badConfig(path: path, detail: "Keras model class \(className) is not supported (Sequential or a Functional chain)")
        }
        self.className = className
        let layerList: [JSONValue]
        if let list = root["config"]?.arrayValue {
            layerList = list
        } else if let list = root["config"]?["layers"]?.arrayValue {
            layerList = list
        } else {
            throw .badConfig(path: path, detail: "the Keras model configuration has no layer list")
        }
        layers = []
        inputShape = nil
        for (i, item) in layerList.enumerated() {
            guard let cls = item["class_name"]?.stringValue, let config = item["config"]?.objectValue else {
                throw .badConfig(path: path, detail: "Keras layer \(i) has no class_name or config")
            }
            let name = config["name"]?.stringValue ?? "layer \(i)"
            layers.append(KerasLayerConfig(className: cls, name: name, config: config))
            // Keras 3 writes batch_shape; Keras 2 batch_input_shape, on InputLayer or the first layer.
            if inputShape == nil, let shape = (config["batch_shape"] ?? config["batch_input_shape"])?.arrayValue {
                let dims = shape.dropFirst().compactMap(\.intValue)
                if dims.count == shape.count - 1, !dims.isEmpty, dims.allSatisfy({ $0 > 0 }) { inputShape = dims }
            }
        }
    }

    /// What a Dense layer computes.
    package struct Dense {
        package var name: String
        package var units: Int
        package var activation: Activation
        package var useBias: Bool
        /// Index among all layers, for storage names.
        package var layerIndex: Int
    }

    /// The Dense chain, with standalone Activation layers folded into the Dense before them.
    package func denseLayers(path: String) throws(InteropError) -> [Dense] {
        var result: [Dense] = []
        for (i, layer) in layers.enumerated() {
            switch layer.className {
            case "InputLayer", "Dropout", "Flatten":
                if layer.className == "Flatten", !result.isEmpty {
                    throw .kerasLayer(path: path, layer: layer.name, className: layer.className, reason: "Flatten after a Dense layer is not supported")
                }
            case "Dense":
                guard let units = layer.config["units"]?.intValue, units > 0 else {
                    throw .badConfig(path: path, detail: "Keras layer '\(layer.name)' has no positive 'units'")
                }
                let activation = try KerasModelConfig.activation(layer.config["activation"], layer: layer.name, path: path)
                guard layer.config["use_bias"].map({ $0 == .null || $0.boolValue != nil }) ?? true else {
                    throw .badConfig(path: path, detail: "Keras layer '\(layer.name)': 'use_bias' must be true or false, found \(layer.config["use_bias"]!.serialized())")
                }
                let useBias = layer.config["use_bias"]?.boolValue ?? true
                result.append(Dense(name: layer.name, units: units, activation: activation, useBias: useBias, layerIndex: i))
            case "Activation":
                guard let last = result.indices.last, result[last].activation == .identity else {
                    throw .kerasLayer(path: path, layer: layer.name, className: layer.className,
                                      reason: result.isEmpty ? "an activation before any layer is not supported"
                                        : "the layer before it already applies \(result[result.count - 1].activation), and an activation of its own after that is not supported")
                }
                result[last].activation = try KerasModelConfig.activation(layer.config["activation"], layer: layer.name, path: path)
            default:
                throw .unsupportedLayer(path: path, layer: layer.name, className: layer.className)
            }
        }
        guard !result.isEmpty else { throw .badConfig(path: path, detail: "the Keras model has no Dense layers") }
        return result
    }

    /// What a Conv2D layer computes (channels last, cross-correlation, no dilation).
    package struct Convolution {
        package var name: String
        package var filters: Int
        package var kernel: [Int]
        package var strides: [Int]
        package var padding: Padding
        package var activation: Activation
        package var useBias: Bool
        /// Index among all layers, for storage names.
        package var layerIndex: Int
    }

    /// A MaxPooling2D or AveragePooling2D layer (Keras never counts padded cells in an average).
    package struct Pooling {
        package var name: String
        package var average: Bool
        package var pool: [Int]
        package var strides: [Int]
        package var padding: Padding
    }

    /// A BatchNormalization layer over the last axis, at inference (moving statistics).
    package struct BatchNorm {
        package var name: String
        package var epsilon: Double
        /// Whether it has gamma (`scale`) and beta (`center`); Keras stores the variables it
        /// has in the order gamma, beta, moving_mean, moving_variance.
        package var scale: Bool
        package var center: Bool
        /// The `axis` as configured: -1, or a positive index that must be the last axis.
        package var axis: Int
        /// Index among all layers, for storage names.
        package var layerIndex: Int

        /// The variables Keras stores for the layer, in its order.
        package var variables: [String] {
            (scale ? ["gamma"] : []) + (center ? ["beta"] : []) + ["moving_mean", "moving_variance"]
        }
    }

    /// One step of a model read layer by layer.
    package enum Stage {
        case convolution(Convolution)
        case pool(Pooling)
        case globalPool(name: String, average: Bool)
        case batchNorm(BatchNorm)
        case flatten
        case dense(Dense)
        /// A layer that only applies an activation (Activation, ReLU, LeakyReLU, ELU, Softmax):
        /// it becomes the activation of the layer before it.
        case activation(name: String, className: String, activation: Activation)
        /// Rescaling (`x * scale + offset`): a preprocessing step when it comes first.
        case rescale(name: String, scale: Double, offset: Double)
        /// Normalization with its mean and variance in the configuration (as our export
        /// writes it): a z-score preprocessing step when it comes first.
        case normalize(name: String, mean: [Double], variance: [Double])
        /// Reshape of the sample (no data moves in HWC order).
        case reshape(name: String, target: [Int])
        /// ZeroPadding2D: [top, left, bottom, right], taken by the Conv2D or AveragePooling2D after it.
        case zeroPadding(name: String, pads: [Int])
    }

    /// The layer classes `stages` reads, for messages.
    package static let supportedLayers = "InputLayer, Dense, Conv2D, MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D, "
        + "GlobalMaxPooling2D, BatchNormalization, Flatten, Dropout, Activation, ReLU, LeakyReLU, ELU, Softmax, "
        + "Rescaling, Normalization, Reshape, ZeroPadding2D"

    /// Whether the model has layers other than Dense, Dropout, Flatten and Activation (read
    /// with `stages`, not `denseLayers`).
    package var isConvolutional: Bool {
        layers.contains { !["InputLayer", "Dense", "Dropout", "Flatten", "Activation"].contains($0.className) }
    }

    /// The layers in order; InputLayer and Dropout (inference: identity) skipped. Each
    /// activation layer is a stage of its own, joined to the layer before it by the model
    /// builder, which knows the shapes.
    package func stages(path: String) throws(InteropError) -> [Stage] {
        var result: [Stage] = []
        func pair(_ layer: KerasLayerConfig, _ key: String, default fallback: [Int]? = nil) throws(InteropError) -> [Int] {
            let value = layer.config[key]
            if value == nil || value == .null, let fallback { return fallback }
            if let n = value?.intValue, (1...SpatialGeometry.maximumWindow).contains(n) { return [n, n] }
            let values = value?.arrayValue?.compactMap(\.intValue) ?? []
            if value?.arrayValue?.count == 2, values.count == 2, values.allSatisfy({ (1...SpatialGeometry.maximumWindow).contains($0) }) {
                return values
            }
            throw .badConfig(path: path, detail: "Keras layer '\(layer.name)': '\(key)' must be two integers in 1...\(SpatialGeometry.maximumWindow), found \(value?.serialized() ?? "nothing")")
        }
        func padding(_ layer: KerasLayerConfig) throws(InteropError) -> Padding {
            let text = layer.config["padding"]?.stringValue ?? "valid"
            guard let p = Padding(name: text.lowercased()) else {
                throw .badConfig(path: path, detail: "Keras layer '\(layer.name)': padding '\(text)' is not supported (valid or same)")
            }
            return p
        }
        func requireChannelsLast(_ layer: KerasLayerConfig) throws(InteropError) {
            if let format = layer.config["data_format"]?.stringValue, format != "channels_last" {
                throw .kerasLayer(path: path, layer: layer.name, className: layer.className, reason: "data_format \(format) is not supported (only channels_last)")
            }
        }
        func number(_ layer: KerasLayerConfig, _ key: String, default fallback: Double?) throws(InteropError) -> Double? {
            guard let value = layer.config[key], value != .null else { return fallback }
            guard let x = value.doubleValue, x.isFinite else {
                throw .badConfig(path: path, detail: "Keras layer '\(layer.name)': '\(key)' must be a finite number, found \(value.serialized())")
            }
            return x
        }
        func flag(_ layer: KerasLayerConfig, _ key: String) throws(InteropError) -> Bool {
            guard let value = layer.config[key], value != .null else { return true }
            guard let b = value.boolValue else {
                throw .badConfig(path: path, detail: "Keras layer '\(layer.name)': '\(key)' must be true or false, found \(value.serialized())")
            }
            return b
        }
        for (i, layer) in layers.enumerated() {
            switch layer.className {
            case "InputLayer", "Dropout":
                continue
            case "Conv2D", "Convolution2D":
                try requireChannelsLast(layer)
                guard let filters = layer.config["filters"]?.intValue, (1...65536).contains(filters) else {
                    throw .badConfig(path: path, detail: "Keras layer '\(layer.name)' has no 'filters' in 1...65536")
                }
                if try pair(layer, "dilation_rate", default: [1, 1]) != [1, 1] {
                    throw .kerasLayer(path: path, layer: layer.name, className: layer.className, reason: "dilation is not supported")
                }
                if let groups = layer.config["groups"]?.intValue, groups != 1 {
                    throw .kerasLayer(path: path, layer: layer.name, className: layer.className, reason: "groups \(groups) is not supported (only 1)")
                }
                result.append(.convolution(Convolution(
                    name: layer.name, filters: filters, kernel: try pair(layer, "kernel_size"), strides: try pair(layer, "strides", default: [1, 1]),
                    padding: try padding(layer), activation: try KerasModelConfig.activation(layer.config["activation"], layer: layer.name, path: path),
                    useBias: try flag(layer, "use_bias"), layerIndex: i)))
            case "MaxPooling2D", "MaxPool2D", "AveragePooling2D", "AvgPool2D":
                try requireChannelsLast(layer)
                let pool = try pair(layer, "pool_size", default: [2, 2])
                result.append(.pool(Pooling(name: layer.name, average: layer.className.hasPrefix("Av"), pool: pool,
                                            strides: try pair(layer, "strides", default: pool), padding: try padding(layer))))
            case "GlobalAveragePooling2D", "GlobalAvgPool2D", "GlobalMaxPooling2D", "GlobalMaxPool2D":
                try requireChannelsLast(layer)
                if let keep = layer.config["keepdims"], keep != .null, keep != .bool(false) {
                    throw .kerasLayer(path: path, layer: layer.name, className: layer.className, reason: "keepdims \(keep.serialized()) is not supported (only false)")
                }
                result.append(.globalPool(name: layer.name, average: layer.className.hasPrefix("GlobalAv")))
            case "BatchNormalization":
                var axis = -1
                if let value = layer.config["axis"], value != .null {
                    let list = value.arrayValue ?? [value]
                    guard list.count == 1, let a = list[0].intValue else {
                        throw .kerasLayer(path: path, layer: layer.name, className: layer.className, reason: "axis \(value.serialized()) is not supported (only the last axis, -1)")
                    }
                    axis = a
                }
                guard axis == -1 || axis >= 1 else {
                    throw .kerasLayer(path: path, layer: layer.name, className: layer.className, reason: "axis \(axis) is not supported (only the last axis, -1)")
                }
                let epsilon = try number(layer, "epsilon", default: 0.001)!
                guard epsilon > 0 else {
                    throw .badConfig(path: path, detail: "Keras layer '\(layer.name)': epsilon must be positive, found \(epsilon)")
                }
                if layer.config["renorm"]?.boolValue == true {
                    throw .kerasLayer(path: path, layer: layer.name, className: layer.className, reason: "batch renormalization is not supported")
                }
                result.append(.batchNorm(BatchNorm(name: layer.name, epsilon: epsilon, scale: try flag(layer, "scale"),
                                                   center: try flag(layer, "center"), axis: axis, layerIndex: i)))
            case "Flatten":
                try requireChannelsLast(layer)
                result.append(.flatten)
            case "Dense":
                guard let units = layer.config["units"]?.intValue, units > 0 else {
                    throw .badConfig(path: path, detail: "Keras layer '\(layer.name)' has no positive 'units'")
                }
                result.append(.dense(Dense(name: layer.name, units: units,
                                           activation: try KerasModelConfig.activation(layer.config["activation"], layer: layer.name, path: path),
                                           useBias: try flag(layer, "use_bias"), layerIndex: i)))
            case "Activation":
                let activation = try KerasModelConfig.activation(layer.config["activation"], layer: layer.name, path: path)
                result.append(.activation(name: layer.name, className: layer.className, activation: activation))
            case "ReLU":
                if let slope = try number(layer, "negative_slope", default: 0), slope != 0 {
                    throw .kerasLayer(path: path, layer: layer.name, className: layer.className, reason: "negative_slope \(slope) is not supported (only 0; use LeakyReLU)")
                }
                if let threshold = try number(layer, "threshold", default: 0), threshold != 0 {
                    throw .kerasLayer(path: path, layer: layer.name, className: layer.className, reason: "threshold \(threshold) is not supported (only 0)")
                }
                var activation = Activation.relu
                if let maxValue = try number(layer, "max_value", default: nil) {
                    guard maxValue > 0 else {
                        throw .badConfig(path: path, detail: "Keras layer '\(layer.name)': max_value must be positive, found \(maxValue)")
                    }
                    activation = maxValue == 6 ? .relu6 : .clippedRelu(maxValue: maxValue)
                }
                result.append(.activation(name: layer.name, className: layer.className, activation: activation))
            case "LeakyReLU":
                // Keras 3 names the slope negative_slope (default 0.3); Keras 2 called it alpha.
                let slope = try number(layer, layer.config["negative_slope"] == nil ? "alpha" : "negative_slope", default: 0.3)!
                result.append(.activation(name: layer.name, className: layer.className, activation: .leakyRelu(alpha: slope)))
            case "ELU":
                let alpha = try number(layer, "alpha", default: 1)!
                result.append(.activation(name: layer.name, className: layer.className, activation: .elu(alpha: alpha)))
            case "Softmax":
                if let value = layer.config["axis"], value != .null, (value.arrayValue.map { $0.count == 1 ? $0[0] : .null } ?? value).intValue != -1 {
                    throw .kerasLayer(path: path, layer: layer.name, className: layer.className, reason: "axis \(value.serialized()) is not supported (only -1)")
                }
                result.append(.activation(name: layer.name, className: layer.className, activation: .softmax))
            case "Rescaling":
                let scale = try number(layer, "scale", default: 1)!, offset = try number(layer, "offset", default: 0)!
                result.append(.rescale(name: layer.name, scale: scale, offset: offset))
            case "Normalization":
                func values(_ key: String) throws(InteropError) -> [Double] {
                    guard let list = layer.config[key]?.arrayValue else {
                        throw .kerasLayer(path: path, layer: layer.name, className: layer.className,
                                          reason: "only a Normalization with its '\(key)' in the configuration is supported (not an adapted one)")
                    }
                    let numbers = list.compactMap(\.doubleValue).filter(\.isFinite)
                    guard numbers.count == list.count, !numbers.isEmpty else {
                        throw .badConfig(path: path, detail: "Keras layer '\(layer.name)': '\(key)' must be a list of finite numbers")
                    }
                    return numbers
                }
                if layer.config["invert"]?.boolValue == true {
                    throw .kerasLayer(path: path, layer: layer.name, className: layer.className, reason: "invert true is not supported")
                }
                let mean = try values("mean"), variance = try values("variance")
                guard mean.count == variance.count, variance.allSatisfy({ $0 >= 0 }) else {
                    throw .badConfig(path: path, detail: "Keras layer '\(layer.name)': mean and variance must have the same length, variances >= 0")
                }
                result.append(.normalize(name: layer.name, mean: mean, variance: variance))
            case "Reshape":
                let target = layer.config["target_shape"]?.arrayValue?.compactMap(\.intValue) ?? []
                guard !target.isEmpty, target.count == layer.config["target_shape"]?.arrayValue?.count, target.allSatisfy({ $0 >= 1 }) else {
                    throw .kerasLayer(path: path, layer: layer.name, className: layer.className,
                                      reason: "target_shape \(layer.config["target_shape"]?.serialized() ?? "nothing") is not supported (positive sizes only)")
                }
                result.append(.reshape(name: layer.name, target: target))
            case "ZeroPadding2D":
                try requireChannelsLast(layer)
                let value = layer.config["padding"]
                var pads: [Int]?
                if let n = value?.intValue { pads = [n, n, n, n] }
                if let list = value?.arrayValue, list.count == 2 {
                    if let a = list[0].intValue, let b = list[1].intValue { pads = [a, b, a, b] }
                    if let a = list[0].arrayValue?.compactMap(\.intValue), let b = list[1].arrayValue?.compactMap(\.intValue), a.count == 2, b.count == 2 {
                        pads = [a[0], b[0], a[1], b[1]]
                    }
                }
                guard let pads, pads.allSatisfy({ (0...SpatialGeometry.maximumWindow).contains($0) }) else {
                    throw .badConfig(path: path, detail: "Keras layer '\(layer.name)': 'padding' must be ((top, bottom), (left, right)), found \(value?.serialized() ?? "nothing")")
                }
                result.append(.zeroPadding(name: layer.name, pads: pads))
            default:
                throw .unsupportedLayer(path: path, layer: layer.name, className: layer.className)
            }
        }
        return result
    }

    /// The Keras activation names the format has, for messages.
    static let activationNames = "linear, relu, sigmoid, tanh, softmax, relu6, leaky_relu, elu, selu, gelu, softplus, silu, swish, hard_sigmoid, log_softmax"

    /// A Dense or Conv2D `activation` argument, or an Activation layer's. Keras 3 writes a
    /// built-in activation as its name, or as `{"class_name": "function", "config": "relu"}`;
    /// an object `config` may carry parameters (`approximate` for gelu, `negative_slope` for
    /// leaky_relu, `alpha` for elu), else Keras 3's defaults apply: gelu exact, leaky_relu
    /// 0.2, elu 1.
    static func activation(_ value: JSONValue?, layer: String, path: String) throws(InteropError) -> Activation {
        guard let value, value != .null else { return .identity }
        let inner = value["config"]
        let name = value.stringValue ?? inner?.stringValue ?? inner?["name"]?.stringValue
        func parameter(_ key: String) throws(InteropError) -> Double? {
            guard let v = inner?[key], v != .null else { return nil }
            guard let x = v.doubleValue, x.isFinite else {
                throw .badConfig(path: path, detail: "Keras layer '\(layer)': activation parameter '\(key)' must be a finite number, found \(v.serialized())")
            }
            return x
        }
        switch name {
        case "linear": return .identity
        case "relu": return .relu
        case "sigmoid": return .sigmoid
        case "tanh": return .tanh
        case "softmax": return .softmax
        case "relu6": return .relu6
        case "leaky_relu":
            let slope = try parameter("negative_slope"), alpha = try parameter("alpha")
            return .leakyRelu(alpha: slope ?? alpha ?? 0.2)
        case "elu":
            let alpha = try parameter("alpha")
            return .elu(alpha: alpha ?? 1)
        case "selu": return .selu
        case "gelu": return .gelu(inner?["approximate"]?.boolValue == true ? .tanh : .exact)
        case "softplus": return .softplus
        case "silu", "swish": return .swish
        case "hard_sigmoid": return .hardSigmoid
        case "log_softmax": return .logSoftmax
        default:
            throw .badConfig(path: path, detail: "Keras layer '\(layer)' uses activation \(name.map { "'\($0)'" } ?? value.serialized()), which is not supported (\(activationNames))")
        }
    }

    /// Keras's `to_snake_case` for class names: "BatchNormalization" -> "batch_normalization".
    package static func snakeCase(_ name: String) -> String {
        let chars = Array(name.filter { $0.isLetter || $0.isNumber || $0 == "_" })
        var out = ""
        for (i, c) in chars.enumerated() {
            if c.isUppercase, i > 0 {
                let previous = chars[i - 1]
                let next: Character? = i + 1 < chars.count ? chars[i + 1] : nil
                // "(.)([A-Z][a-z]+)" then "([a-z])([A-Z])": a capital starts a word after a
                // lower-case letter, or before a lower-case letter.
                if previous.isLowercase || (next?.isLowercase ?? false) && previous != "_" {
                    out += "_"
                }
            }
            out += c.lowercased()
        }
        return out
    }
}
