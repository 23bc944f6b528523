import NNConvert
import NNCore

/// A `.nnm` model as PyTorch holds it: the `nn.Sequential` that computes it, and every layer
/// parameter under that module's state-dict key, in PyTorch's layout. The safetensors and `.pth`
/// exports write it; importing our own safetensors export undoes it.
///
/// PyTorch's layouts: `nn.Linear` weights (out, in); `nn.Conv2d` kernels OIHW (ours are HWIO,
/// and a true-convolution kernel is turned by 180 degrees, since PyTorch cross-correlates);
/// images NCHW, so the first Linear after a flatten takes its inputs channel-first and its
/// columns are permuted from our HWC order (the inverse of what `PyTorchStateDict` does on import).
/// Batch normalization is `nn.BatchNorm2d`/`nn.BatchNorm1d` with `weight`, `bias`,
/// `running_mean`, `running_var` and `num_batches_tracked`; a missing scale or shift (Keras's
/// `scale=False`, `center=False`) is written as ones or zeros, since PyTorch has both or neither.
public struct PyTorchLayout: Sendable {
    /// How one state-dict tensor is made from the model.
    public enum Source: Sendable {
        /// The `.nnm` tensor `name`, rearranged by `arrangement`.
        case tensor(name: String, arrangement: Arrangement)
        /// A tensor the model does not hold: ones or zeros like `like` (a missing batch-norm scale
        /// or shift), or the int64 scalar 0 (`num_batches_tracked`, which inference never reads).
        case filled(value: Double, like: String)
        case batchCounter
    }

    /// How a `.nnm` tensor becomes PyTorch's.
    public enum Arrangement: Sendable, Equatable {
        /// As it is (biases, batch-norm vectors).
        case asIs
        /// A dense weight [in, out] -> (out, in).
        case linear
        /// A dense weight whose inputs come from flattening a [height, width, channels] map:
        /// (out, in) with the inputs reordered channel-first.
        case linearAfterFlatten(height: Int, width: Int, channels: Int)
        /// A per-feature vector over a flattened [height, width, channels] map, reordered
        /// channel-first (batch normalization right after a flatten).
        case vectorAfterFlatten(height: Int, width: Int, channels: Int)
        /// A kernel HWIO -> OIHW, turned by 180 degrees first for a true convolution.
        case kernel(flipped: Bool)
    }

    /// The state dict's entries, in module order.
    public var entries: [(key: String, source: Source)] = []
    /// The modules of the `nn.Sequential`, e.g. `nn.Conv2d(1, 8, kernel_size=(3, 3))`.
    public var modules: [String] = []
    /// What the model takes: "N x 784" or "N x 1 x 28 x 28".
    public var inputDescription: String

    /// `nn.Sequential(nn.Linear(784, 256), nn.ReLU(), ...)`.
    public var sequential: String { "nn.Sequential(\(modules.joined(separator: ", ")))" }

    /// The state-dict key of each `.nnm` tensor the layers use.
    public var keys: [String: String] {
        var keys: [String: String] = [:]
        for e in entries { if case let .tensor(name, _) = e.source { keys[name] = e.key } }
        return keys
    }

    /// Lays out `metadata`'s layers as PyTorch modules; throws for what no standard module
    /// computes (asymmetric padding of max pooling, say), naming the layer.
    public init(_ metadata: ModelMetadata, path: String) throws {
        let input = metadata.input.shape
        inputDescription = "N x " + (input.count == 3 ? [input[2], input[0], input[1]] : [metadata.input.features]).map(String.init).joined(separator: " x ")
        // The [height, width, channels] map most recently flattened, until the Linear that
        // consumes it.
        var flattened: [Int]?
        for (i, layer) in metadata.layers.enumerated() {
            func refuse(_ why: String) -> InteropError {
                InteropError.badConfig(path: path, detail: "layers[\(i)] (\(layer.kind.rawValue)): \(why); PyTorch has no standard module for it")
            }
            let g = layer.spatial
            switch layer.kind {
            case .dense:
                let arrangement: Arrangement
                if let map = flattened, map.count == 3 {
                    arrangement = .linearAfterFlatten(height: map[0], width: map[1], channels: map[2])
                } else {
                    arrangement = .linear
                }
                flattened = nil
                add(module: "nn.Linear(\(layer.inputSize), \(layer.outputSize)\(layer.bias == nil ? ", bias=False" : ""))",
                    weight: layer.weight.map { ($0, arrangement) }, bias: layer.bias)
            case .conv2d:
                let g = g!
                let pads = Self.pads(g)
                var padding = [pads[0], pads[1]]
                if pads[0] != pads[2] || pads[1] != pads[3] {
                    // PyTorch pads symmetrically; a zero-padding module in front does the rest.
                    modules.append("nn.ZeroPad2d((\(pads[1]), \(pads[3]), \(pads[0]), \(pads[2])))")
                    padding = [0, 0]
                }
                var text = "nn.Conv2d(\(g.inputShape[2]), \(g.outputShape[2]), kernel_size=\(Self.pair(g.window))"
                if g.strides != [1, 1] { text += ", stride=\(Self.pair(g.strides))" }
                if padding != [0, 0] { text += ", padding=\(Self.pair(padding))" }
                if layer.bias == nil { text += ", bias=False" }
                add(module: text + ")", weight: layer.weight.map { ($0, .kernel(flipped: g.convention == .convolution)) }, bias: layer.bias)
            case .maxPool2d, .avgPool2d:
                let g = g!, pads = Self.pads(g)
                let average = layer.kind == .avgPool2d
                let symmetric = pads[0] == pads[2] && pads[1] == pads[3] && pads[0] * 2 <= g.window[0] && pads[1] * 2 <= g.window[1]
                var padding = [pads[0], pads[1]]
                if !symmetric {
                    // A padding module in front: zeros count in an average as PyTorch's own
                    // padding does; -inf never wins a maximum, so padded cells are ignored.
                    guard !average || layer.countIncludePad else {
                        throw refuse("padding \(pads.map(String.init).joined(separator: ",")) (top, left, bottom, right) is not symmetric or exceeds half the window, and padded cells do not count in the average")
                    }
                    let sides = "(\(pads[1]), \(pads[3]), \(pads[0]), \(pads[2]))"
                    modules.append(average ? "nn.ZeroPad2d(\(sides))" : "nn.ConstantPad2d(\(sides), float('-inf'))")
                    padding = [0, 0]
                }
                var text = "nn.\(average ? "AvgPool2d" : "MaxPool2d")(kernel_size=\(Self.pair(g.window)), stride=\(Self.pair(g.strides))"
                if padding != [0, 0] { text += ", padding=\(Self.pair(padding))" }
                if average && padding != [0, 0] && !layer.countIncludePad { text += ", count_include_pad=False" }
                modules.append(text + ")")
            case .globalAvgPool2d, .globalMaxPool2d:
                modules.append(layer.kind == .globalAvgPool2d ? "nn.AdaptiveAvgPool2d(1)" : "nn.AdaptiveMaxPool2d(1)")
                modules.append("nn.Flatten()")
            case .flatten:
                flattened = g?.inputShape
                modules.append("nn.Flatten()")
            case .batchNorm:
                let bn = layer.batchNorm!, shape = g!.inputShape
                let vector: Arrangement
                if let map = flattened, map.count == 3, shape.count == 1 {
                    vector = .vectorAfterFlatten(height: map[0], width: map[1], channels: map[2])
                } else {
                    vector = .asIs
                }
                let key = modules.count
                modules.append("nn.BatchNorm\(shape.count == 3 ? "2d" : "1d")(\(shape.last!), eps=\(bn.epsilon))")
                entries.append(("\(key).weight", bn.gamma.map { .tensor(name: $0, arrangement: vector) } ?? .filled(value: 1, like: bn.movingMean)))
                entries.append(("\(key).bias", bn.beta.map { .tensor(name: $0, arrangement: vector) } ?? .filled(value: 0, like: bn.movingMean)))
                entries.append(("\(key).running_mean", .tensor(name: bn.movingMean, arrangement: vector)))
                entries.append(("\(key).running_var", .tensor(name: bn.movingVariance, arrangement: vector)))
                entries.append(("\(key).num_batches_tracked", .batchCounter))
            }
            if let module = Self.module(for: layer.activation) { modules.append(module) }
        }
    }

    private mutating func add(module: String, weight: (name: String, arrangement: Arrangement)?, bias: String?) {
        let key = modules.count
        modules.append(module)
        if let weight { entries.append(("\(key).weight", .tensor(name: weight.name, arrangement: weight.arrangement))) }
        if let bias { entries.append(("\(key).bias", .tensor(name: bias, arrangement: .asIs))) }
    }

    /// [top, left, bottom, right] zero rows and columns of a window layer.
    public static func pads(_ g: SpatialGeometry) -> [Int] {
        let before = g.paddingBefore
        func total(_ axis: Int) -> Int {
            g.padding == .valid ? 0 : max((g.outputShape[axis] - 1) * g.strides[axis] + g.window[axis] - g.inputShape[axis], 0)
        }
        if let explicit = g.padding.pads { return explicit }
        return [before.top, before.left, total(0) - before.top, total(1) - before.left]
    }

    static func pair(_ v: [Int]) -> String { "(\(v[0]), \(v[1]))" }

    /// The PyTorch module of an activation; nil for identity.
    public static func module(for activation: Activation) -> String? {
        switch activation {
        case .identity: return nil
        case .relu: return "nn.ReLU()"
        case .sigmoid: return "nn.Sigmoid()"
        case .tanh: return "nn.Tanh()"
        case .softmax: return "nn.Softmax(dim=1)"
        case let .leakyRelu(alpha): return "nn.LeakyReLU(negative_slope=\(alpha))"
        case let .elu(alpha): return "nn.ELU(alpha=\(alpha))"
        case .selu: return "nn.SELU()"
        case .gelu(.exact): return "nn.GELU()"
        case .gelu(.tanh): return "nn.GELU(approximate='tanh')"
        case .softplus: return "nn.Softplus()"
        case .swish: return "nn.SiLU()"
        case .hardSigmoid: return "nn.Hardsigmoid()"
        case .relu6: return "nn.ReLU6()"
        case let .clippedRelu(maxValue): return "nn.Hardtanh(min_val=0.0, max_val=\(maxValue))"
        case .logSoftmax: return "nn.LogSoftmax(dim=1)"
        }
    }

    /// The state dict of `model` (laid out by this value), in module order.
    public func stateDict(_ model: Model) -> [(key: String, tensor: Tensor)] {
        var byName: [String: Tensor] = [:]
        for t in model.tensors { byName[t.name] = t.tensor }
        return entries.map { entry in
            switch entry.source {
            case let .tensor(name, arrangement): return (entry.key, Self.stored(byName[name]!, arrangement))
            case let .filled(value, like):
                let shape = byName[like]!.shape
                let values = [Double](repeating: value, count: ShapeMath.elementCount(shape))
                return (entry.key, byName[like]!.dtype == .float64 ? Tensor(values, shape: shape) : Tensor(values.map { Float($0) }, shape: shape))
            case .batchCounter:
                return (entry.key, withUnsafeBytes(of: Int64(0).littleEndian) { Tensor(dtype: .int64, shape: [], copying: $0) })
            }
        }
    }

    /// How an arrangement moves elements: the `.nnm` tensor reshaped to `split`, the axes
    /// `reversed` turned around, then transposed by `axes` (NumPy's `transpose`); PyTorch's tensor
    /// is the result reshaped to `storedShape`.
    static func plan(_ shape: [Int], _ arrangement: Arrangement) -> (split: [Int], reversed: Set<Int>, axes: [Int]) {
        switch arrangement {
        case .asIs: return (shape, [], Array(shape.indices))
        case .linear: return (shape, [], [1, 0])
        case let .linearAfterFlatten(h, w, c): return ([h, w, c, shape[1]], [], [3, 2, 0, 1])
        case let .vectorAfterFlatten(h, w, c): return ([h, w, c], [], [2, 0, 1])
        case let .kernel(flipped): return (shape, flipped ? [0, 1] : [], [3, 2, 0, 1])
        }
    }

    /// A `.nnm` tensor in PyTorch's arrangement.
    public static func stored(_ t: Tensor, _ arrangement: Arrangement) -> Tensor {
        guard arrangement != .asIs else { return t }
        let p = plan(t.shape, arrangement)
        var x = t.reshaped(p.split)
        if !p.reversed.isEmpty { x = x.reversingAxes(p.reversed) }
        return x.permuted(p.axes).reshaped(storedShape(t.shape, arrangement))
    }

    /// The inverse of `stored(_:_:)`: a tensor in PyTorch's arrangement as the `.nnm` holds it,
    /// with `shape`.
    public static func loaded(_ t: Tensor, _ arrangement: Arrangement, shape: [Int]) -> Tensor {
        guard arrangement != .asIs else { return t.reshaped(shape) }
        let p = plan(shape, arrangement)
        var inverse = [Int](repeating: 0, count: p.axes.count)
        for (i, axis) in p.axes.enumerated() { inverse[axis] = i }
        var x = t.reshaped(p.axes.map { p.split[$0] }).permuted(inverse)
        if !p.reversed.isEmpty { x = x.reversingAxes(p.reversed) }
        return x.reshaped(shape)
    }

    /// The shape `stored(_:_:)` gives a tensor of `shape`.
    public static func storedShape(_ shape: [Int], _ arrangement: Arrangement) -> [Int] {
        switch arrangement {
        case .asIs: return shape
        case .linear, .linearAfterFlatten: return shape.reversed()
        case .vectorAfterFlatten: return shape
        case .kernel: return [shape[3], shape[2], shape[0], shape[1]]
        }
    }
}
