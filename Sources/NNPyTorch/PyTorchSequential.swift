import NNConvert
import NNCore
import NNTorch

/// A pickled `nn.Sequential` of standard layers, rebuilt from the classes' names and attributes
/// alone (nothing of it is imported or run): its Linear and Conv2d parameters become a state
/// dict, and the layers between them state the architecture that a state dict lacks.
enum PyTorchSequential {
    /// The pickled module, which must be an `nn.Sequential`.
    static func module(_ checkpoint: TorchCheckpoint, path: String) throws -> TorchModule {
        let module: TorchModule
        do {
            module = try checkpoint.module()
        } catch {
            throw InteropError.badConfig(path: path, detail: "\(error)")
        }
        guard module.typeName == "Sequential" else {
            throw InteropError.unsupportedModule(path: path, module: "", className: module.className, reason: "a pickled nn.Sequential is read; save model.state_dict() otherwise")
        }
        return module
    }

    static func model(_ checkpoint: TorchCheckpoint, path: String, options: ImportOptions) throws -> ImportResult {
        let root = try module(checkpoint, path: path)
        var arrays: [SourceArray] = []
        var stages: [FeatureStage] = []
        var activations: [Activation] = []
        var notes: [String] = []
        var flattened = false
        // PyTorch keeps `kernel_size=3` as 3 and `(3, 3)` as a tuple.
        func pair(_ values: [Int]?) -> [Int]? { values?.count == 1 ? [values![0], values![0]] : values }
        func unsupported(_ name: String, _ child: TorchModule, _ why: String) -> InteropError {
            InteropError.unsupportedModule(path: path, module: name, className: child.typeName, reason: why)
        }
        for (name, child) in root.children {
            switch child.typeName {
            case "Linear", "Conv2d":
                let isConvolution = child.typeName == "Conv2d"
                if isConvolution, flattened { throw unsupported(name, child, "a convolution after Flatten") }
                for (role, tensor) in child.parameters {
                    if let tensor { arrays.append(SourceArray(name: "\(name).\(role)", tensor: tensor)) }
                }
                activations.append(.identity)
                if isConvolution {
                    let kernel = pair(child.ints("kernel_size")) ?? [], stride = pair(child.ints("stride")) ?? [1, 1], padding = pair(child.ints("padding")) ?? [0, 0]
                    guard kernel.count == 2, (pair(child.ints("dilation")) ?? [1, 1]) == [1, 1], child.int("groups") ?? 1 == 1 else {
                        throw unsupported(name, child, "dilation and groups other than 1 are not supported")
                    }
                    // PyTorch pads symmetrically; TensorFlow's "same" is that when stride is 1 and kernels are odd.
                    let mode: Padding
                    if padding == [0, 0] {
                        mode = .valid
                    } else if stride == [1, 1], padding == kernel.map({ ($0 - 1) / 2 }), kernel.allSatisfy({ $0 % 2 == 1 }) {
                        mode = .same
                    } else {
                        throw unsupported(name, child, "padding \(padding) with stride \(stride) is not 'valid' or 'same'")
                    }
                    let filters = child.int("out_channels") ?? 0
                    stages.append(.conv(filters: filters, kernel: kernel, strides: stride, padding: mode, activation: .identity))
                }
            case "ReLU", "Sigmoid", "Tanh":
                guard let last = activations.indices.last, activations[last] == .identity else {
                    throw unsupported(name, child, "an activation must follow a Linear or Conv2d layer")
                }
                activations[last] = child.typeName == "ReLU" ? .relu : child.typeName == "Sigmoid" ? .sigmoid : .tanh
            case "Softmax", "LogSoftmax":
                guard let last = activations.indices.last, activations[last] == .identity else {
                    throw unsupported(name, child, "it must follow the last Linear layer")
                }
                activations[last] = .softmax
                if child.typeName == "LogSoftmax" {
                    notes.append("\(name): LogSoftmax becomes softmax: the model gives probabilities (exp of the log-probabilities, the same classes)")
                }
            case "MaxPool2d":
                let kernel = pair(child.ints("kernel_size")) ?? [], stride = pair(child.ints("stride")) ?? kernel
                guard kernel.count == 2, (pair(child.ints("padding")) ?? [0, 0]) == [0, 0], child.bool("ceil_mode") != true else {
                    throw unsupported(name, child, "only unpadded pooling without ceil_mode is supported")
                }
                stages.append(.maxPool(pool: kernel, strides: stride.isEmpty ? kernel : stride, padding: .valid))
            case "Flatten":
                flattened = true
            case "Dropout", "Identity":
                continue
            default:
                throw unsupported(name, child, "the .nnm format has no such layer yet")
            }
        }
        if activations.last == .identity {
            activations[activations.count - 1] = .softmax
            notes.append("the model ends in logits; softmax is applied so that it gives probabilities (the same classes)")
        }
        var stated = options
        stated.architecture = stages.isEmpty ? nil : stages
        if options.activations == nil { stated.activations = activations }
        var result = try PyTorchStateDict.model(arrays, path: path, inModuleOrder: true, sourceFormat: "pytorch-sequential", options: stated)
        result.notes = notes + result.notes
        result.format = "PyTorch pickled nn.Sequential (\(root.children.map { $0.module.typeName }.joined(separator: ", ")))"
        return result
    }
}
