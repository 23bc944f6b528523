/// A stage in front of dense layers: what `nn-train --cnn` trains and `nnconv import --arch`
/// states for a file that does not record its architecture. Stages see each image as height x
/// width x channels; after the last stage the features are flattened in that (Keras) order into
/// the first dense layer (a global pooling stage leaves one value per channel).
public enum FeatureStage: Equatable, Sendable {
    /// `filters` kernels of `kernel` = [height, width], cross-correlation (as Keras).
    case conv(filters: Int, kernel: [Int], strides: [Int], padding: Padding, activation: Activation)
    /// Max pooling over `pool` windows.
    case maxPool(pool: [Int], strides: [Int], padding: Padding)
    /// Average pooling over `pool` windows. `countIncludePad` says whether padded cells count in
    /// the divisor; nil leaves it to the file's producer (PyTorch counts them, Keras does not). It
    /// matters only with padding.
    case avgPool(pool: [Int], strides: [Int], padding: Padding, countIncludePad: Bool?)
    /// Batch normalization over the channels; `epsilon` nil is the producer's default (PyTorch
    /// 1e-5, Keras 1e-3).
    case batchNorm(epsilon: Double?, activation: Activation)
    /// The mean (`average`) or maximum of each channel over the whole map.
    case globalPool(average: Bool)

    /// The activation a stage applies, identity for those that apply none.
    public var activation: Activation {
        switch self {
        case let .conv(_, _, _, _, activation), let .batchNorm(_, activation): return activation
        case .maxPool, .avgPool, .globalPool: return .identity
        }
    }

    /// The same stage applying `activation`; stages that apply none are returned unchanged.
    public func with(activation: Activation) -> FeatureStage {
        switch self {
        case let .conv(filters, kernel, strides, padding, _):
            return .conv(filters: filters, kernel: kernel, strides: strides, padding: padding, activation: activation)
        case let .batchNorm(epsilon, _): return .batchNorm(epsilon: epsilon, activation: activation)
        case .maxPool, .avgPool, .globalPool: return self
        }
    }

    /// Whether the stage has parameters (a convolution or a batch normalization).
    public var hasParameters: Bool {
        switch self {
        case .conv, .batchNorm: return true
        case .maxPool, .avgPool, .globalPool: return false
        }
    }

    /// The stage as a layer at `index` on samples of `inputShape` (height x width x channels).
    /// - Parameters:
    ///   - countIncludePad: for average pooling that does not say.
    ///   - epsilon: for batch normalization that does not say.
    public func layer(index: Int, inputShape: [Int], countIncludePad: Bool, epsilon: Double) throws(ModelError) -> Layer {
        switch self {
        case let .conv(filters, kernel, strides, padding, activation):
            return try Layer.conv2d(index: index, inputShape: inputShape, filters: filters, kernel: kernel, strides: strides,
                                    padding: padding, activation: activation)
        case let .maxPool(pool, strides, padding):
            return try Layer.maxPool2d(index: index, inputShape: inputShape, pool: pool, strides: strides, padding: padding)
        case let .avgPool(pool, strides, padding, include):
            return try Layer.avgPool2d(index: index, inputShape: inputShape, pool: pool, strides: strides, padding: padding,
                                       countIncludePad: include ?? countIncludePad)
        case let .batchNorm(eps, activation):
            return try Layer.batchNorm(index: index, inputShape: inputShape, epsilon: eps ?? epsilon, activation: activation)
        case let .globalPool(average):
            return try Layer.globalPool2d(index: index, inputShape: inputShape, average: average)
        }
    }
}

extension FeatureStage {
    /// Parses `--cnn` / `--arch` stages, comma-separated:
    /// - `conv:FILTERS:HxW[:s=S|s=SHxSW][:valid|same|p=P|p=PHxPW][:ACTIVATION]` (default stride 1,
    ///   valid, relu; `p=` pads P rows above and below and P columns left and right, as PyTorch's
    ///   `padding=P`),
    /// - `pool:N|HxW[:s=S][:valid|same|p=P]` (max pooling; default stride = window, valid),
    /// - `avgpool:N|HxW[:s=S][:valid|same|p=P][:include-pad|exclude-pad]` (whether padded cells
    ///   count in the average; default: as the file's producer does),
    /// - `bn[:eps=E][:ACTIVATION]` (batch normalization; default epsilon: the producer's; no
    ///   activation),
    /// - `gap` and `gmp` (global average and max pooling),
    ///
    /// e.g. `conv:8:3x3:relu,pool:2` or `conv:32:3x3:p=1:identity,bn:relu,avgpool:2`.
    public static func parseList(_ text: String, option: String = "--cnn") throws(ArchitectureSyntaxError) -> [FeatureStage] {
        var stages: [FeatureStage] = []
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            let parts = item.split(separator: ":", omittingEmptySubsequences: false)
            func fail(_ why: String) -> ArchitectureSyntaxError { ArchitectureSyntaxError(option: option, item: String(item), reason: why) }
            func pair(_ s: Substring, what: String, minimum: Int = 1) throws(ArchitectureSyntaxError) -> [Int] {
                let values = s.split(separator: "x", omittingEmptySubsequences: false).map { Int($0) }
                guard (1...2).contains(values.count), values.allSatisfy({ $0 != nil && $0! >= minimum && $0! <= SpatialGeometry.maximumWindow }) else {
                    throw fail("\(what) must be N or HxW with values \(minimum)...\(SpatialGeometry.maximumWindow), found '\(s)'")
                }
                return values.count == 1 ? [values[0]!, values[0]!] : values.map { $0! }
            }
            var strides: [Int]?, padding = Padding.valid, activation: Activation?, includePad: Bool?, epsilon: Double?
            func options(_ rest: ArraySlice<Substring>, activations: Bool = false, spatial: Bool = true,
                         padCounting: Bool = false, eps: Bool = false) throws(ArchitectureSyntaxError) {
                for option in rest {
                    if spatial, option.hasPrefix("s=") {
                        strides = try pair(option.dropFirst(2), what: "the stride")
                    } else if spatial, option.hasPrefix("p=") {
                        let p = try pair(option.dropFirst(2), what: "the padding", minimum: 0)
                        padding = p == [0, 0] ? .valid : .explicit(top: p[0], left: p[1], bottom: p[0], right: p[1])
                    } else if spatial, let p = Padding(name: String(option)) {
                        padding = p
                    } else if padCounting, option == "include-pad" || option == "exclude-pad" {
                        includePad = option == "include-pad"
                    } else if eps, option.hasPrefix("eps="), let e = Double(option.dropFirst(4)), e > 0, e.isFinite {
                        epsilon = e
                    } else if activations, let a = Activation(argument: String(option)) {
                        activation = a
                    } else {
                        var expected = spatial ? ["s=N", "p=N", "valid", "same"] : []
                        if padCounting { expected += ["include-pad", "exclude-pad"] }
                        if eps { expected.append("eps=E (positive)") }
                        if activations { expected.append("an activation") }
                        throw fail("unknown option '\(option)' (expected \(expected.dropLast().joined(separator: ", ")) or \(expected.last!))")
                    }
                }
            }
            switch parts.first {
            case "conv":
                guard parts.count >= 3, let filters = Int(parts[1]), filters >= 1 else {
                    throw fail("expected conv:FILTERS:HxW, e.g. conv:8:3x3")
                }
                let kernel = try pair(parts[2], what: "the kernel")
                try options(parts[3...], activations: true)
                stages.append(.conv(filters: filters, kernel: kernel, strides: strides ?? [1, 1], padding: padding, activation: activation ?? .relu))
            case "pool", "maxpool", "avgpool":
                guard parts.count >= 2 else { throw fail("expected \(parts[0]):N or \(parts[0]):HxW, e.g. \(parts[0]):2") }
                let pool = try pair(parts[1], what: "the pool window")
                let average = parts[0] == "avgpool"
                try options(parts[2...], padCounting: average)
                stages.append(average ? .avgPool(pool: pool, strides: strides ?? pool, padding: padding, countIncludePad: includePad)
                                      : .maxPool(pool: pool, strides: strides ?? pool, padding: padding))
            case "bn":
                try options(parts[1...], activations: true, spatial: false, eps: true)
                stages.append(.batchNorm(epsilon: epsilon, activation: activation ?? .identity))
            case "gap", "gmp":
                try options(parts[1...], spatial: false)
                stages.append(.globalPool(average: parts[0] == "gap"))
            default:
                throw fail("a stage is conv:FILTERS:HxW[:options], pool:N[:options], avgpool:N[:options], bn[:options], gap or gmp")
            }
        }
        return stages
    }
}


/// A stage list that does not parse: `--cnn: 'conv:x': expected conv:FILTERS:HxW, e.g. conv:8:3x3`.
public struct ArchitectureSyntaxError: Error, Equatable, Sendable, CustomStringConvertible, CategorizedError {
    public var option: String
    public var item: String
    public var reason: String
    public var description: String { "\(option): '\(item)': \(reason)" }
    public var category: ErrorCategory { .usage }
}
