import NNCore

/// A Keras layer as its configuration describes it. `package` so that the fuzz harness
/// (Fuzz/Sources/fuzz-keras-config) and the malformed-input tests can drive the parser directly.
package struct KerasLayerConfig {
    package var className: String
    package var name: String
    package var config: JSONObject
}

/// The parts of a Keras model configuration the converter uses: a chain of Dense layers, with
/// Dropout, Flatten, InputLayer and Activation layers around them.
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
                    throw .unsupportedLayer(path: path, layer: layer.name, className: "Flatten after a Dense layer")
                }
            case "Dense":
                guard let units = layer.config["units"]?.intValue, units > 0 else {
                    throw .badConfig(path: path, detail: "Keras layer '\(layer.name)' has no positive 'units'")
                }
                let activation = try KerasModelConfig.activation(layer.config["activation"], layer: layer.name, path: path)
                let useBias = layer.config["use_bias"]?.boolValue ?? true
                result.append(Dense(name: layer.name, units: units, activation: activation, useBias: useBias, layerIndex: i))
            case "Activation":
                guard let last = result.indices.last, result[last].activation == .identity else {
                    throw .unsupportedLayer(path: path, layer: layer.name, className: "Activation not directly after a linear Dense layer")
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

    /// One step of a convolutional model.
    package enum Stage {
        case convolution(Convolution)
        case maxPool(name: String, pool: [Int], strides: [Int], padding: Padding)
        case flatten
        case dense(Dense)
    }

    /// Whether the model has convolution or pooling layers (read with `stages`, not `denseLayers`).
    package var isConvolutional: Bool {
        layers.contains { ["Conv2D", "Convolution2D", "MaxPooling2D", "MaxPool2D"].contains($0.className) }
    }

    /// The layers of a convolutional model in order, with standalone Activation layers folded
    /// into the Conv2D or Dense before them; InputLayer and Dropout (inference: identity) skipped.
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
                throw .unsupportedLayer(path: path, layer: layer.name, className: "\(layer.className) with data_format \(format) (only channels_last)")
            }
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
                    throw .unsupportedLayer(path: path, layer: layer.name, className: "Conv2D with dilation")
                }
                if let groups = layer.config["groups"]?.intValue, groups != 1 {
                    throw .unsupportedLayer(path: path, layer: layer.name, className: "Conv2D with groups \(groups)")
                }
                result.append(.convolution(Convolution(
                    name: layer.name, filters: filters, kernel: try pair(layer, "kernel_size"), strides: try pair(layer, "strides", default: [1, 1]),
                    padding: try padding(layer), activation: try KerasModelConfig.activation(layer.config["activation"], layer: layer.name, path: path),
                    useBias: layer.config["use_bias"]?.boolValue ?? true, layerIndex: i)))
            case "MaxPooling2D", "MaxPool2D":
                try requireChannelsLast(layer)
                let pool = try pair(layer, "pool_size", default: [2, 2])
                result.append(.maxPool(name: layer.name, pool: pool, strides: try pair(layer, "strides", default: pool), padding: try padding(layer)))
            case "Flatten":
                try requireChannelsLast(layer)
                result.append(.flatten)
            case "Dense":
                guard let units = layer.config["units"]?.intValue, units > 0 else {
                    throw .badConfig(path: path, detail: "Keras layer '\(layer.name)' has no positive 'units'")
                }
                result.append(.dense(Dense(name: layer.name, units: units,
                                           activation: try KerasModelConfig.activation(layer.config["activation"], layer: layer.name, path: path),
                                           useBias: layer.config["use_bias"]?.boolValue ?? true, layerIndex: i)))
            case "Activation":
                let activation = try KerasModelConfig.activation(layer.config["activation"], layer: layer.name, path: path)
                switch result.last {
                case var .convolution(c) where c.activation == .identity:
                    c.activation = activation
                    result[result.count - 1] = .convolution(c)
                case var .dense(d) where d.activation == .identity:
                    d.activation = activation
                    result[result.count - 1] = .dense(d)
                default:
                    throw .unsupportedLayer(path: path, layer: layer.name, className: "Activation not directly after a linear Conv2D or Dense layer")
                }
            default:
                throw .unsupportedLayer(path: path, layer: layer.name, className: layer.className)
            }
        }
        return result
    }

    static func activation(_ value: JSONValue?, layer: String, path: String) throws(InteropError) -> Activation {
        guard let value, value != .null else { return .identity }
        // Keras 3 may serialize a built-in activation as {"class_name": "function", "config": "relu"}.
        let name = value.stringValue ?? value["config"]?.stringValue ?? value["config"]?["name"]?.stringValue
        switch name {
        case "linear": return .identity
        case "relu": return .relu
        case "sigmoid": return .sigmoid
        case "tanh": return .tanh
        case "softmax": return .softmax
        default:
            throw .badConfig(path: path, detail: "Keras layer '\(layer)' uses activation \(name.map { "'\($0)'" } ?? value.serialized()), which is not supported (linear, relu, sigmoid, tanh, softmax)")
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
