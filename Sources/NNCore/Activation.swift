/// Element-wise or row-wise functions applied after a layer's affine map.
///
/// The first five (`basic`) are format 1.0's; the others came with format 1.2, some with
/// parameters. The trainer differentiates all of them (softmax and log-softmax only as the output). Their exact definitions are in
/// `Schemas/nnm-v1.md` ("Activations"). In the header an activation without parameters, or with
/// its parameters at their defaults, is a string (`"relu"`, `"elu"`); one with parameters is an
/// object (`{"name": "leaky_relu", "alpha": 0.2}`), see `MetadataCoding.swift`.
public enum Activation: Hashable, Sendable {
    /// `z`.
    case identity
    /// `max(0, z)`.
    case relu
    /// `1 / (1 + exp(-z))`.
    case sigmoid
    /// `tanh(z)`.
    case tanh
    /// `exp(z - max) / sum(exp(z - max))` per sample.
    case softmax
    /// `z` where `z >= 0`, else `alpha * z`. No default: Keras 3 uses 0.2 (`leaky_relu`) or
    /// 0.3 (the `LeakyReLU` layer), PyTorch 0.01, so the producer must say.
    case leakyRelu(alpha: Double)
    /// `z` where `z > 0`, else `alpha * (exp(z) - 1)`; alpha 1 in Keras and PyTorch.
    case elu(alpha: Double)
    /// `scale * elu(z, alpha)` with the constants of Klambauer et al. (`seluAlpha`, `seluScale`).
    case selu
    /// `0.5 z (1 + erf(z / sqrt 2))` (`.exact`, the definition) or its tanh approximation.
    case gelu(GELUApproximation)
    /// `log(1 + exp(z))`.
    case softplus
    /// `z * sigmoid(z)`: Keras `swish`/`silu`, PyTorch `SiLU`.
    case swish
    /// `relu6(z + 3) / 6`, Keras 3's and PyTorch's definition (Keras 2's was `0.2 z + 0.5` clipped).
    case hardSigmoid
    /// `min(max(0, z), 6)`.
    case relu6
    /// `min(max(0, z), maxValue)`: Keras's `ReLU(max_value=...)`; written `{"name": "relu", "max_value": m}`.
    case clippedRelu(maxValue: Double)
    /// `z - max - log(sum(exp(z - max)))` per sample: log-probabilities.
    case logSoftmax

    /// Which form of GELU the producer computed.
    public enum GELUApproximation: String, CaseIterable, Hashable, Sendable {
        /// The definition with erf (PyTorch `approximate='none'`, Keras `approximate=False`);
        /// "none" in the header.
        case exact = "none"
        /// `0.5 z (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3)))` (PyTorch `'tanh'`, Keras `True`).
        case tanh
    }

    /// SELU's alpha and scale (Klambauer et al. 2017, as Keras and PyTorch define them).
    public static let seluAlpha = 1.6732632423543772848170429916717
    public static let seluScale = 1.0507009873554804934193349852946

    /// The activations of format 1.0 and 1.1 (and the ones the ONNX export writes).
    public static let basic: [Activation] = [.identity, .relu, .sigmoid, .tanh, .softmax]

    /// Every name the header may use, in the order the spec lists them.
    public static let names = ["identity", "relu", "sigmoid", "tanh", "softmax", "leaky_relu", "elu", "selu", "gelu",
                               "softplus", "swish", "hard_sigmoid", "relu6", "log_softmax"]

    /// The name in the header: "relu", "leaky_relu", ... (a clipped ReLU is "relu" with a
    /// `max_value`).
    public var name: String {
        switch self {
        case .identity: return "identity"
        case .relu, .clippedRelu: return "relu"
        case .sigmoid: return "sigmoid"
        case .tanh: return "tanh"
        case .softmax: return "softmax"
        case .leakyRelu: return "leaky_relu"
        case .elu: return "elu"
        case .selu: return "selu"
        case .gelu: return "gelu"
        case .softplus: return "softplus"
        case .swish: return "swish"
        case .hardSigmoid: return "hard_sigmoid"
        case .relu6: return "relu6"
        case .logSoftmax: return "log_softmax"
        }
    }

    /// The activation a bare name stands for: those without parameters, "elu" (alpha 1) and
    /// "gelu" (exact); nil for unknown names and for "leaky_relu", whose slope has no agreed default.
    public init?(name: String) {
        switch name {
        case "identity": self = .identity
        case "relu": self = .relu
        case "sigmoid": self = .sigmoid
        case "tanh": self = .tanh
        case "softmax": self = .softmax
        case "elu": self = .elu(alpha: 1)
        case "selu": self = .selu
        case "gelu": self = .gelu(.exact)
        case "softplus": self = .softplus
        case "swish": self = .swish
        case "hard_sigmoid": self = .hardSigmoid
        case "relu6": self = .relu6
        case "log_softmax": self = .logSoftmax
        default: return nil
        }
    }

    /// The format minor version that introduced it: 0 for the basic five, 2 for the others.
    public var minorVersion: Int { Activation.basic.contains(self) ? 0 : 2 }

    /// The numeric parameters by header key (`alpha`, `max_value`), empty when there are none.
    public var numericParameters: [(key: String, value: Double)] {
        switch self {
        case let .leakyRelu(alpha), let .elu(alpha): return [("alpha", alpha)]
        case let .clippedRelu(maxValue): return [("max_value", maxValue)]
        default: return []
        }
    }
}

extension Activation: CustomStringConvertible {
    /// The name with any parameters: "relu", "leaky_relu(alpha=0.2)", "gelu(approximate=tanh)",
    /// "relu(max_value=6.0)". ELU and GELU at their defaults print as their bare names.
    public var description: String {
        switch self {
        case let .elu(alpha) where alpha != 1: return "elu(alpha=\(alpha))"
        case .leakyRelu, .clippedRelu:
            return "\(name)(" + numericParameters.map { "\($0.key)=\($0.value)" }.joined(separator: ", ") + ")"
        case .gelu(.tanh): return "gelu(approximate=tanh)"
        default: return name
        }
    }
}

extension Activation {
    /// An activation as a command line states it: a name (`Activation(name:)`) or the form
    /// `description` prints, with its parameters: "leaky_relu(alpha=0.1)", "elu(alpha=0.5)",
    /// "gelu(approximate=tanh)", "relu(max_value=6)". Nil for anything else, including
    /// parameters out of range (alpha and max_value must be finite, max_value positive).
    public init?(argument text: String) {
        if let plain = Activation(name: text) { self = plain; return }
        guard text.hasSuffix(")"), let open = text.firstIndex(of: "(") else { return nil }
        let name = text[..<open], inside = text[text.index(after: open)..<text.index(before: text.endIndex)]
        let parts = inside.split(separator: "=", maxSplits: 1).map { $0.filter { $0 != " " } }
        guard parts.count == 2 else { return nil }
        let number = Double(parts[1]).flatMap { $0.isFinite ? $0 : nil }
        switch (name, parts[0]) {
        case ("leaky_relu", "alpha"): guard let number else { return nil }; self = .leakyRelu(alpha: number)
        case ("elu", "alpha"): guard let number else { return nil }; self = .elu(alpha: number)
        case ("relu", "max_value"): guard let number, number > 0 else { return nil }; self = .clippedRelu(maxValue: number)
        case ("gelu", "approximate"):
            guard let form = GELUApproximation(rawValue: parts[1]) else { return nil }
            self = .gelu(form)
        default: return nil
        }
    }
}

/// What a model's outputs are: how to read the last layer's values.
public enum OutputKind: String, CaseIterable, Sendable {
    /// Non-negative, summing to 1 per sample (softmax), or each in [0, 1] (sigmoid).
    case probabilities
    /// Natural logarithms of probabilities (log-softmax).
    case logProbabilities = "log_probabilities"
    /// Unnormalized scores: the largest is the predicted class, but they are not probabilities.
    case logits
}
