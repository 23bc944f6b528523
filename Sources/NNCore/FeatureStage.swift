/// A convolution or pooling stage in front of dense layers: what `nn-train --cnn` trains and
/// `nnconv import --arch` states for a file that does not record its architecture. Stages see
/// each image as height x width x channels; after the last stage the features are flattened in
/// that (Keras) order into the first dense layer.
public enum FeatureStage: Equatable, Sendable {
    /// `filters` kernels of `kernel` = [height, width], cross-correlation (as Keras).
    case conv(filters: Int, kernel: [Int], strides: [Int], padding: Padding, activation: Activation)
    /// Max pooling over `pool` windows.
    case maxPool(pool: [Int], strides: [Int], padding: Padding)
}

extension FeatureStage {
    /// Parses `--cnn` stages, comma-separated:
    /// `conv:FILTERS:HxW[:s=S|s=SHxSW][:valid|same][:ACTIVATION]` (default stride 1, valid, relu)
    /// and `pool:N|HxW[:s=S|s=SHxSW][:valid|same]` (default stride = window, valid),
    /// e.g. `conv:8:3x3:relu,pool:2`.
    public static func parseList(_ text: String, option: String = "--cnn") throws(ArchitectureSyntaxError) -> [FeatureStage] {
        var stages: [FeatureStage] = []
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            let parts = item.split(separator: ":", omittingEmptySubsequences: false)
            func fail(_ why: String) -> ArchitectureSyntaxError { ArchitectureSyntaxError(option: option, item: String(item), reason: why) }
            func pair(_ s: Substring, what: String) throws(ArchitectureSyntaxError) -> [Int] {
                let values = s.split(separator: "x", omittingEmptySubsequences: false).map { Int($0) }
                guard (1...2).contains(values.count), values.allSatisfy({ $0 != nil && $0! >= 1 && $0! <= SpatialGeometry.maximumWindow }) else {
                    throw fail("\(what) must be N or HxW with values 1...\(SpatialGeometry.maximumWindow), found '\(s)'")
                }
                return values.count == 1 ? [values[0]!, values[0]!] : values.map { $0! }
            }
            var strides: [Int]?, padding = Padding.valid, activation = Activation.relu
            func options(_ rest: ArraySlice<Substring>, allowActivation: Bool) throws(ArchitectureSyntaxError) {
                for option in rest {
                    if option.hasPrefix("s=") {
                        strides = try pair(option.dropFirst(2), what: "the stride")
                    } else if let p = Padding(name: String(option)) {
                        padding = p
                    } else if allowActivation, let a = Activation(name: String(option)) {
                        activation = a
                    } else {
                        throw fail("unknown option '\(option)' (expected s=N, valid, same\(allowActivation ? " or an activation" : ""))")
                    }
                }
            }
            switch parts.first {
            case "conv":
                guard parts.count >= 3, let filters = Int(parts[1]), filters >= 1 else {
                    throw fail("expected conv:FILTERS:HxW, e.g. conv:8:3x3")
                }
                let kernel = try pair(parts[2], what: "the kernel")
                try options(parts[3...], allowActivation: true)
                stages.append(.conv(filters: filters, kernel: kernel, strides: strides ?? [1, 1], padding: padding, activation: activation))
            case "pool", "maxpool":
                guard parts.count >= 2 else { throw fail("expected pool:N or pool:HxW, e.g. pool:2") }
                let pool = try pair(parts[1], what: "the pool window")
                try options(parts[2...], allowActivation: false)
                stages.append(.maxPool(pool: pool, strides: strides ?? pool, padding: padding))
            default:
                throw fail("a stage is conv:FILTERS:HxW[:options] or pool:N[:options]")
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
