/// Problems with a model's description or tensors, independent of the file format.
///
/// `location` is a path into the metadata such as `layers[1].activation`, or a tensor name.
public enum ModelError: Error, Equatable, CustomStringConvertible, Sendable {
    /// A metadata member is missing or of the wrong kind or value.
    case invalidField(location: String, expected: String, found: String)
    /// A layer names a tensor the model does not have.
    case missingTensor(location: String, name: String)
    /// A tensor's shape is not the one the architecture needs.
    case shapeMismatch(tensor: String, expected: [Int], found: [Int])
    /// A tensor has a dtype the architecture cannot use.
    case unsupportedDType(tensor: String, dtype: String)
    /// Consecutive layers do not chain (outputs of one != inputs of the next).
    case layersDoNotChain(location: String, expected: Int, found: Int)
    /// The model has no layers.
    case noLayers

    public var description: String {
        switch self {
        case let .invalidField(location, expected, found):
            return "\(location): expected \(expected), found \(found)"
        case let .missingTensor(location, name):
            return "\(location): names tensor '\(name)', which the model does not contain"
        case let .shapeMismatch(tensor, expected, found):
            return "tensor '\(tensor)': expected shape \(ShapeMath.describe(expected)), found \(ShapeMath.describe(found))"
        case let .unsupportedDType(tensor, dtype):
            return "tensor '\(tensor)': dtype \(dtype) cannot be used here (expected f16, bf16, f32 or f64)"
        case let .layersDoNotChain(location, expected, found):
            return "\(location): input size \(found) does not match the previous output size \(expected)"
        case .noLayers:
            return "the model has no layers"
        }
    }
}
