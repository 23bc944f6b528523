import ArgumentParser
import NNCore

/// The choices a file does not record: `nnconv import` and `diff` take them, and `nn-infer`
/// passes them on when it converts a model that is not `.nnm`.
public struct ImportChoices: ParsableArguments {
    @Option(help: "Orientation of blog matrices: rows (W in x out) or columns (W out x in); inferred when unambiguous.") public var layout: WeightLayout?
    @Option(help: "One activation per layer, e.g. relu,softmax (blog files do not record them).") public var activations: String?
    @Option(help: "Store input scaling, e.g. 1/255.") public var scale: String?
    @Option(help: "Store input normalization: zscore (needs --stats).") public var normalize: String?
    @Option(help: "IDX training images to compute the z-score statistics from, as the blog's normalize() did.") public var stats: String?
    @Option(help: "Shape of one input, e.g. 28x28.") public var inputShape: String?
    @Option(help: "Comma-separated output class names.") public var classNames: String?
    @Option(help: "Order of named PyTorch layers when their shapes do not tell it, e.g. fc1,fc2,fc3.") public var layerOrder: String?
    @Option(help: "The stages before the flatten of a PyTorch state dict, as nn-train --cnn takes them (conv, bn, pool, avgpool, gap, gmp), e.g. conv:32:3x3,conv:64:3x3,pool:2; --activations then names the activations of the Linear layers only.") public var arch: String?
    @Option(help: "Most bytes of tensor data one import may read, decompressed (default \(defaultMaxTensorBytes >> 30) GiB).") public var maxTensorBytes: Int?

    public init() {}

    /// The choices as `nnconv import` arguments, in the order above; empty when none was given.
    public var arguments: [String] {
        let given: [(String, String?)] = [
            ("--layout", layout?.rawValue), ("--activations", activations), ("--scale", scale),
            ("--normalize", normalize), ("--stats", stats), ("--input-shape", inputShape),
            ("--class-names", classNames), ("--layer-order", layerOrder), ("--arch", arch),
            ("--max-tensor-bytes", maxTensorBytes.map(String.init)),
        ]
        return given.flatMap { option, value in value.map { [option, $0] } ?? [] }
    }
}
