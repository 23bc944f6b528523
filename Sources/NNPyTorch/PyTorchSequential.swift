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
        // One activation per module with parameters (Linear, Conv2d, BatchNorm), in order.
        var activations: [Activation] = []
        var notes: [String] = []
        var flattened = false
        // PyTorch keeps `kernel_size=3` as 3 and `(3, 3)` as a tuple.
        func pair(_ values: [Int]?) -> [Int]? { values?.count == 1 ? [values![0], values![0]] : values }
        func unsupported(_ name: String, _ child: TorchModule, _ why: String) -> InteropError {
            InteropError.unsupportedModule(path: path, module: name, className: child.typeName, reason: why)
        }
        func parameters(_ name: String, _ child: TorchModule) {
            for (role, tensor) in child.parameters + child.buffers where role != "num_batches_tracked" {
                if let tensor { arrays.append(SourceArray(name: "\(name).\(role)", tensor: tensor)) }
            }
        }
        // PyTorch pads symmetrically: `padding=P` is P rows above and below, P columns left and right.
        func padding(_ name: String, _ child: TorchModule) throws -> Padding {
            if let text = child.string("padding") {
                throw unsupported(name, child, "padding='\(text)' is not read; save the model with numeric padding")
            }
            guard let p = pair(child.ints("padding") ?? [0]), p.count == 2 else {
                throw unsupported(name, child, "padding is not a number or a pair of numbers")
            }
            return p == [0, 0] ? .valid : .explicit(top: p[0], left: p[1], bottom: p[0], right: p[1])
        }
        func setActivation(_ a: Activation, _ name: String, _ child: TorchModule) throws {
            guard let last = activations.indices.last, activations[last] == .identity else {
                throw unsupported(name, child, "an activation must follow a Linear, Conv2d or BatchNorm layer")
            }
            activations[last] = a
        }
        for (name, child) in root.children {
            switch child.typeName {
            case "Linear", "Conv2d":
                let isConvolution = child.typeName == "Conv2d"
                if isConvolution, flattened { throw unsupported(name, child, "a convolution after Flatten") }
                parameters(name, child)
                activations.append(.identity)
                if isConvolution {
                    let kernel = pair(child.ints("kernel_size")) ?? [], stride = pair(child.ints("stride")) ?? [1, 1]
                    guard kernel.count == 2, (pair(child.ints("dilation")) ?? [1, 1]) == [1, 1], child.int("groups") ?? 1 == 1 else {
                        throw unsupported(name, child, "dilation and groups other than 1 are not supported")
                    }
                    guard child.string("padding_mode") ?? "zeros" == "zeros" else {
                        throw unsupported(name, child, "padding_mode '\(child.string("padding_mode")!)' (only zero padding is supported)")
                    }
                    let filters = child.int("out_channels") ?? 0
                    stages.append(.conv(filters: filters, kernel: kernel, strides: stride, padding: try padding(name, child), activation: .identity))
                }
            case "BatchNorm2d", "BatchNorm1d":
                if child.typeName == "BatchNorm2d", flattened { throw unsupported(name, child, "a BatchNorm2d after Flatten") }
                guard child.bool("track_running_stats") != false else {
                    throw unsupported(name, child, "track_running_stats=False normalizes with each batch's own statistics, which a converted model cannot")
                }
                parameters(name, child)
                activations.append(.identity)
                if !flattened { stages.append(.batchNorm(epsilon: child.double("eps") ?? PyTorchStateDict.defaultEpsilon, activation: .identity)) }
            case "ReLU": try setActivation(.relu, name, child)
            case "Sigmoid": try setActivation(.sigmoid, name, child)
            case "Tanh": try setActivation(.tanh, name, child)
            case "ReLU6": try setActivation(.relu6, name, child)
            case "SELU": try setActivation(.selu, name, child)
            case "SiLU": try setActivation(.swish, name, child)
            case "Hardsigmoid": try setActivation(.hardSigmoid, name, child)
            case "GELU":
                let approximate = child.string("approximate") ?? "none"
                guard approximate == "none" || approximate == "tanh" else { throw unsupported(name, child, "approximate='\(approximate)' (PyTorch knows 'none' and 'tanh')") }
                try setActivation(.gelu(approximate == "tanh" ? .tanh : .exact), name, child)
            case "LeakyReLU": try setActivation(.leakyRelu(alpha: child.double("negative_slope") ?? 0.01), name, child)
            case "ELU": try setActivation(.elu(alpha: child.double("alpha") ?? 1), name, child)
            case "Softplus":
                guard child.double("beta") ?? 1 == 1 else { throw unsupported(name, child, "beta \(child.double("beta")!) (only beta=1, log(1 + exp(x)), is supported)") }
                // PyTorch returns x itself above `threshold` (20), where log(1 + exp(x)) equals x in f32.
                try setActivation(.softplus, name, child)
            case "Softmax", "LogSoftmax":
                guard !flattened || child.int("dim") ?? -1 == -1 || child.int("dim") == 1 else {
                    throw unsupported(name, child, "dim \(child.int("dim")!): only the features (dim 1 or -1) are supported")
                }
                let isLast = root.children.last?.name == name
                guard isLast else { throw unsupported(name, child, "it must be the last module") }
                try setActivation(child.typeName == "Softmax" ? .softmax : .logSoftmax, name, child)
            case "MaxPool2d", "AvgPool2d":
                if flattened { throw unsupported(name, child, "pooling after Flatten") }
                let kernel = pair(child.ints("kernel_size")) ?? [], stride = pair(child.ints("stride")) ?? kernel
                guard kernel.count == 2, child.bool("ceil_mode") != true else {
                    throw unsupported(name, child, "ceil_mode=True is not supported")
                }
                guard (pair(child.ints("dilation")) ?? [1, 1]) == [1, 1] else { throw unsupported(name, child, "dilation other than 1 is not supported") }
                let pad = try padding(name, child)
                let strides = stride.isEmpty ? kernel : stride
                if child.typeName == "MaxPool2d" {
                    stages.append(.maxPool(pool: kernel, strides: strides, padding: pad))
                } else {
                    if case .some(let divisor) = child.attribute("divisor_override"), divisor != .none {
                        throw unsupported(name, child, "divisor_override is not supported")
                    }
                    stages.append(.avgPool(pool: kernel, strides: strides, padding: pad, countIncludePad: child.bool("count_include_pad") ?? true))
                }
            case "AdaptiveAvgPool2d":
                guard pair(child.ints("output_size")) == [1, 1] else {
                    throw unsupported(name, child, "only output_size 1 (global average pooling) is supported")
                }
                stages.append(.globalPool(average: true))
            case "Flatten":
                flattened = true
            case "Dropout", "Identity":
                continue
            default:
                throw unsupported(name, child, "the .nnm format has no such layer")
            }
        }
        if activations.last == .identity {
            notes.append("the model ends in logits (no Softmax module): recorded as such; nn-infer shows their softmax")
        }
        // As `--arch` and `--activations` would state them: the stages carry the activations of
        // the layers before the flatten, the list those of the layers after it.
        var featureLayers = 0
        stages = stages.map { stage in
            guard stage.hasParameters else { return stage }
            defer { featureLayers += 1 }
            return stage.with(activation: activations[featureLayers])
        }
        var stated = options
        stated.architecture = stages.isEmpty ? nil : stages
        if options.activations == nil { stated.activations = Array(activations[featureLayers...]) }
        var result = try PyTorchStateDict.model(arrays, path: path, inModuleOrder: true, sourceFormat: "pytorch-sequential", options: stated)
        result.notes = notes + result.notes
        result.format = "PyTorch pickled nn.Sequential (\(root.children.map { $0.module.typeName }.joined(separator: ", ")))"
        return result
    }
}
