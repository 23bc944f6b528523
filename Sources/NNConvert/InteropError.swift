import NNCore

/// Why a file could not be imported or exported. Messages are one line starting with the file.
public enum InteropError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The file is none of the formats the converter reads.
    case unknownFormat(path: String, detail: String)
    /// The file's weights can be read more than one way; `flag` resolves it.
    case ambiguous(path: String, detail: String, flag: String)
    /// A tensor the layout needs is missing.
    case missingTensor(path: String, name: String, detail: String)
    /// A tensor is present that the layout does not use.
    case unexpectedTensor(path: String, name: String, detail: String)
    /// A tensor has the wrong shape or rank.
    case badShape(path: String, name: String, detail: String)
    /// A tensor has an element type that cannot be weights.
    case badDType(path: String, name: String, found: String)
    /// A Keras layer class the converter does not support.
    case unsupportedLayer(path: String, layer: String, className: String)
    /// A Keras layer of a supported class, configured (or placed) in a way the format cannot hold.
    case kerasLayer(path: String, layer: String, className: String, reason: String)
    /// A PyTorch module (or one of its parameters) that the `.nnm` format cannot hold yet.
    case unsupportedModule(path: String, module: String, className: String, reason: String)
    /// The Keras configuration is malformed or describes something unsupported.
    case badConfig(path: String, detail: String)
    /// A command-line choice does not fit the file (e.g. three activations for two layers).
    case badOption(String)

    public var description: String {
        switch self {
        case let .unknownFormat(path, detail): return "\(path): \(detail)"
        case let .ambiguous(path, detail, flag): return "\(path): \(detail); pass \(flag) to choose"
        case let .missingTensor(path, name, detail): return "\(path): missing '\(name)': \(detail)"
        case let .unexpectedTensor(path, name, detail): return "\(path): unexpected '\(name)': \(detail)"
        case let .badShape(path, name, detail): return "\(path): \(name): \(detail)"
        case let .badDType(path, name, found):
            return "\(path): \(name): expected floating-point or integer weights, found \(found)"
        case let .unsupportedLayer(path, layer, className):
            return "\(path): Keras layer '\(layer)' of type \(className) is not supported (supported: \(KerasModelConfig.supportedLayers))"
        case let .kerasLayer(path, layer, className, reason):
            return "\(path): Keras layer '\(layer)' (\(className)): \(reason)"
        case let .unsupportedModule(path, module, className, reason):
            return "\(path): PyTorch module '\(module)' (\(className)) is not supported: \(reason)"
        case let .badConfig(path, detail): return "\(path): \(detail)"
        case let .badOption(message): return message
        }
    }
}
