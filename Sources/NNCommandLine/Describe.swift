import NNCore

/// A one-line description of a model: "784-256-10 relu/softmax, f32, 203530 parameters".
public func describe(_ model: Model) -> String {
    let meta = model.metadata
    let dtypes = Set(meta.layers.compactMap { model.tensor($0.weight)?.dtype.rawValue }).sorted().joined(separator: "+")
    if meta.layers.contains(where: { $0.kind != .dense }) {
        // "28x28 -> conv3x3 26x26x8 relu, pool2x2 13x13x8, flatten, 10 softmax"
        let chain = meta.layers.map(\.shortSummary).joined(separator: ", ")
        return "\(ShapeMath.describe(meta.input.shape)) -> \(chain), \(dtypes), \(model.parameterCount) parameters"
    }
    let sizes = ([meta.input.features] + meta.layers.map(\.outputSize)).map(String.init).joined(separator: "-")
    let activations = meta.layers.map(\.activation.description).joined(separator: "/")
    return "\(sizes) \(activations), \(dtypes), \(model.parameterCount) parameters"
}
