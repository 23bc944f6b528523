import NNCore
import NNPickle

/// The globals a torch checkpoint may name, as `PickleGlobalPolicy`s.
///
/// The lists follow what `torch.save` writes (torch/_tensor.py, torch/nn/parameter.py,
/// torch/serialization.py) rather than all that torch's own `weights_only` unpickler admits.
public enum TorchAllowList {
    /// Storage classes and the element type of their data. `UntypedStorage` (nil) holds bytes
    /// whose type `_rebuild_tensor_v3` gives. `BoolStorage` is read as u8 (0 and 1), which
    /// NNCore's `DType` has and which holds the same bytes.
    public static let storageTypes: [String: DType?] = [
        "FloatStorage": .float32, "DoubleStorage": .float64, "HalfStorage": .float16, "BFloat16Storage": .bfloat16,
        "LongStorage": .int64, "IntStorage": .int32, "ShortStorage": .int16, "CharStorage": .int8,
        "ByteStorage": .uint8, "BoolStorage": .uint8, "UntypedStorage": nil,
    ]

    /// `torch.<name>` dtypes that `_rebuild_tensor_v3` names, and their element types; bool as u8.
    /// Torch writes v3 for the dtypes that have no legacy storage class (uint16, float8, ...): those
    /// are admitted so that the error names them, and `dtype(named:)` gives nil for them.
    public static let dtypes: [String: DType?] = [
        "float32": .float32, "float64": .float64, "float16": .float16, "bfloat16": .bfloat16,
        "int64": .int64, "int32": .int32, "int16": .int16, "int8": .int8, "uint8": .uint8, "bool": .uint8,
        "uint16": nil, "uint32": nil, "uint64": nil, "complex32": nil, "complex64": nil, "complex128": nil,
        "float8_e4m3fn": nil, "float8_e5m2": nil, "float8_e4m3fnuz": nil, "float8_e5m2fnuz": nil, "float8_e8m0fnu": nil,
    ]

    /// What state dicts name: OrderedDict, the tensor and parameter rebuild functions, storage
    /// classes, dtypes, and torch.Size (which torch's own allow-list has; tensors write plain tuples).
    public static let stateDictNames: Set<String> = {
        var names: Set<String> = [
            "collections.OrderedDict",
            "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor_v3",
            "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state",
            "torch.Size",
        ]
        for name in storageTypes.keys { names.insert("torch.\(name)") }
        for name in dtypes.keys { names.insert("torch.\(name)") }
        return names
    }()

    /// The torch.nn layer classes a whole pickled model may consist of, by short name.
    public static let moduleClassNames: [String] = [
        "Linear", "Conv2d", "ReLU", "Sigmoid", "Tanh", "GELU", "LeakyReLU", "ELU", "SELU", "SiLU", "Softplus",
        "Hardsigmoid", "ReLU6", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "Flatten", "Dropout",
        "BatchNorm2d", "BatchNorm1d", "Softmax", "LogSoftmax", "Sequential", "Identity",
    ]

    /// The same classes by the module torch defines them in, e.g. "torch.nn.modules.linear.Linear".
    public static let moduleClasses: Set<String> = {
        let files: [String: String] = [
            "Linear": "linear", "Identity": "linear", "Conv2d": "conv", "Flatten": "flatten", "Dropout": "dropout",
            "BatchNorm2d": "batchnorm", "BatchNorm1d": "batchnorm", "Sequential": "container",
            "MaxPool2d": "pooling", "AvgPool2d": "pooling", "AdaptiveAvgPool2d": "pooling",
        ]
        return Set(moduleClassNames.map { "torch.nn.modules.\(files[$0] ?? "activation").\($0)" })
    }()

    /// State dicts: `torch.save(model.state_dict())` and dicts of tensors.
    public static let stateDict = PickleGlobalPolicy(allowing: stateDictNames)

    /// Whole models, `torch.save(model)`: the state-dict names, the layer classes, and
    /// `builtins.set` (each module's `_non_persistent_buffers_set`).
    public static let wholeModel = PickleGlobalPolicy(allowing: stateDictNames.union(moduleClasses).union(["builtins.set"]))
}
