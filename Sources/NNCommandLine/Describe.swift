import NNCore

/// A one-line description of a model: "784-256-10 relu/softmax, f32, 203530 parameters".
public func describe(_ model: Model) -> String {
    let meta = model.metadata
    let sizes = ([meta.input.features] + meta.layers.map(\.outputSize)).map(String.init).joined(separator: "-")
    let activations = meta.layers.map(\.activation.rawValue).joined(separator: "/")
    let dtypes = Set(meta.layers.compactMap { model.tensor($0.weight)?.dtype.rawValue }).sorted().joined(separator: "+")
    return "\(sizes) \(activations), \(dtypes), \(model.parameterCount) parameters"
}
