import NNConvert
import NNCore
import NNPyTorch

/// The walker's state for graphs with convolutions: layers are built as the nodes come, over
/// maps that ONNX holds NCHW and the `.nnm` model HWC.
struct SpatialState {
    /// One sample's shape at the current point: [height, width, channels], or [features]
    /// after a flatten or a global pooling.
    var map: [Int] = []
    /// The input sample's shape, [height, width, channels].
    var inputShape: [Int] = []
    var built: [Layer] = []
    var tensors: [NamedTensor] = []
    /// Whether the last built layer already has its activation node.
    var activated = false
    /// The [height, width, channels] map a flatten turned into features, until the first
    /// dense layer, whose inputs arrive channel-first (as PyTorch and ONNX flatten) and are
    /// reordered to ours.
    var flattened: [Int]?
    /// Whether the map was just transposed to NHWC (our export's ending), so that the flatten
    /// that must follow gives our order.
    var transposed = false
}

extension GraphWalker {
    /// Operators that make a graph spatial.
    static let spatialOperators: Set<String> = ["Conv", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "BatchNormalization"]

    /// The input's NCHW dims as our [height, width, channels].
    mutating func startSpatial(dims: [Int64?], options: ImportOptions) throws {
        if dims.count == 4, let c = dims[1], let h = dims[2], let w = dims[3] {
            spatial.inputShape = [Int(h), Int(w), Int(c)]
            if let given = options.inputShape, given != spatial.inputShape, given != [Int(h), Int(w)] {
                throw InteropError.badOption("--input-shape \(ShapeMath.describe(given)): \(path) declares its input as \(ShapeMath.describe([Int(h), Int(w), Int(c)])) (NCHW \(c)x\(h)x\(w))")
            }
        } else if dims.count == 2, let f = dims[1] {
            // [batch, features]: batch normalization between dense layers, no image.
            spatial.inputShape = options.inputShape ?? [Int(f)]
            guard spatial.inputShape.reduce(1, *) == Int(f) else {
                throw InteropError.badOption("--input-shape \(ShapeMath.describe(spatial.inputShape)): \(path) takes \(f) features")
            }
            spatial.map = [Int(f)]
            return
        } else if let given = options.inputShape, given.count == 3 {
            spatial.inputShape = given
        } else {
            throw InteropError.badConfig(path: path, detail: "input '\(inputName)' must be [batch, channels, height, width] with known channels, height and width for a graph with convolutions (or pass --input-shape HxWxC)")
        }
        spatial.map = spatial.inputShape
    }

    func modelError(_ node: Onnx_NodeProto, _ index: Int, _ error: ModelError) -> InteropError {
        fail(node, index, "\(error)")
    }

    mutating func append(_ layer: Layer, _ tensors: [NamedTensor] = []) {
        spatial.built.append(layer)
        spatial.tensors += tensors
        spatial.activated = false
        spatial.map = layer.spatial?.outputShape ?? [layer.outputSize]
    }

    func requireMap(_ node: Onnx_NodeProto, _ index: Int) throws {
        guard spatial.map.count == 3 else {
            throw fail(node, index, "its input is [batch, features] (after a flatten); a [batch, channels, height, width] map is expected")
        }
    }

    func ints(_ node: Onnx_NodeProto, _ name: String) -> [Int]? {
        node.attribute.first(where: { $0.name == name }).map { $0.ints.map { Int(clamping: $0) } }
    }

    /// The padding of a window node: `auto_pad` (NOTSET with `pads` [top, left, bottom, right],
    /// VALID, SAME_UPPER, SAME_LOWER) over the current map.
    func padding(_ node: Onnx_NodeProto, _ index: Int, window: [Int], strides: [Int]) throws -> Padding {
        let auto = node.attribute.first(where: { $0.name == "auto_pad" }).map { String(decoding: $0.s, as: UTF8.self) } ?? "NOTSET"
        switch auto {
        case "NOTSET", "":
            let pads = ints(node, "pads") ?? [0, 0, 0, 0]
            guard pads.count == 4, pads.allSatisfy({ $0 >= 0 }) else { throw fail(node, index, "pads \(pads); four non-negative values are expected") }
            return pads == [0, 0, 0, 0] ? .valid : .explicit(top: pads[0], left: pads[1], bottom: pads[2], right: pads[3])
        case "VALID":
            return .valid
        case "SAME_UPPER", "SAME_LOWER":
            var before = [0, 0], after = [0, 0]
            for axis in 0..<2 {
                let size = spatial.map[axis]
                let out = (size + strides[axis] - 1) / strides[axis]
                let total = max((out - 1) * strides[axis] + window[axis] - size, 0)
                // SAME_UPPER puts the odd cell at the end, SAME_LOWER at the beginning.
                before[axis] = auto == "SAME_UPPER" ? total / 2 : total - total / 2
                after[axis] = total - before[axis]
            }
            return before == [0, 0] && after == [0, 0] ? .valid : .explicit(top: before[0], left: before[1], bottom: after[0], right: after[1])
        default:
            throw fail(node, index, "auto_pad '\(auto)' is not an ONNX padding mode")
        }
    }

    /// The window's kernel shape and strides (1 by default); dilations must be 1.
    func window(_ node: Onnx_NodeProto, _ index: Int, kernel: [Int]?) throws -> (kernel: [Int], strides: [Int]) {
        guard let k = kernel ?? ints(node, "kernel_shape"), k.count == 2, k.allSatisfy({ $0 > 0 }) else {
            throw fail(node, index, "kernel_shape must be two positive values (2-D windows only)")
        }
        let strides = ints(node, "strides") ?? [1, 1]
        guard strides.count == 2, strides.allSatisfy({ $0 > 0 }) else { throw fail(node, index, "strides \(strides); two positive values are expected") }
        if let d = ints(node, "dilations"), d.contains(where: { $0 != 1 }) {
            throw fail(node, index, "dilations \(d); only dilation 1 is supported")
        }
        return (k, strides)
    }

    mutating func conv(_ node: Onnx_NodeProto, _ index: Int) throws {
        try requireMap(node, index)
        guard node.input.count >= 2, let w = try constant(node.input[1]) else { throw fail(node, index, "W must be a constant") }
        guard w.shape.count == 4, w.dtype.isFloatingPoint else {
            throw fail(node, index, "W '\(node.input[1])' must be a 4-D float kernel (out, in, height, width), found \(w.dtype.rawValue) \(ShapeMath.describe(w.shape))")
        }
        let group = intAttribute(node, "group", default: 1)
        guard group == 1 else { throw fail(node, index, "group \(group); only group 1 is supported") }
        let (kernel, strides) = try window(node, index, kernel: ints(node, "kernel_shape") ?? [w.shape[2], w.shape[3]])
        guard kernel == [w.shape[2], w.shape[3]] else {
            throw fail(node, index, "kernel_shape \(kernel) disagrees with W's \(ShapeMath.describe(w.shape))")
        }
        guard w.shape[1] == spatial.map[2] else {
            throw fail(node, index, "W takes \(w.shape[1]) channels, but its input \(ShapeMath.describe(spatial.map)) (HWC) has \(spatial.map[2])")
        }
        let filters = w.shape[0]
        var bias: Tensor?
        if node.input.count > 2, !node.input[2].isEmpty {
            guard let b = try constant(node.input[2]) else { throw fail(node, index, "B must be a constant") }
            bias = try vector(b, count: filters, node, index, role: "B '\(node.input[2])'")
        }
        let pad = try padding(node, index, window: kernel, strides: strides)
        let layer: Layer
        do {
            layer = try Layer.conv2d(index: spatial.built.count, inputShape: spatial.map, filters: filters, kernel: kernel, strides: strides,
                                     padding: pad, convention: .crossCorrelation, activation: .identity, bias: bias != nil)
        } catch { throw modelError(node, index, error) }
        var tensors = [NamedTensor(layer.weight!, PyTorchLayout.loaded(w, .kernel(flipped: false), shape: [kernel[0], kernel[1], w.shape[1], filters]))]
        if let bias { tensors.append(NamedTensor(layer.bias!, bias)) }
        append(layer, tensors)
    }

    mutating func pool(_ node: Onnx_NodeProto, _ index: Int) throws {
        try requireMap(node, index)
        let (kernel, strides) = try window(node, index, kernel: nil)
        guard intAttribute(node, "ceil_mode", default: 0) == 0 else { throw fail(node, index, "ceil_mode 1; only ceil_mode 0 is supported") }
        if node.output.count > 1, !node.output[1].isEmpty, consumers[node.output[1]] != nil || node.output[1] == outputName {
            throw fail(node, index, "its Indices output is used")
        }
        let pad = try padding(node, index, window: kernel, strides: strides)
        do {
            if node.opType == "MaxPool" {
                append(try Layer.maxPool2d(index: spatial.built.count, inputShape: spatial.map, pool: kernel, strides: strides, padding: pad))
            } else {
                // ONNX counts padded cells only when asked (PyTorch's exporter always says).
                let include = intAttribute(node, "count_include_pad", default: 0) != 0
                append(try Layer.avgPool2d(index: spatial.built.count, inputShape: spatial.map, pool: kernel, strides: strides, padding: pad,
                                           countIncludePad: include))
            }
        } catch { throw modelError(node, index, error) }
    }

    mutating func globalPool(_ node: Onnx_NodeProto, _ index: Int) throws {
        try requireMap(node, index)
        do {
            append(try Layer.globalPool2d(index: spatial.built.count, inputShape: spatial.map, average: node.opType == "GlobalAveragePool"))
        } catch { throw modelError(node, index, error) }
    }

    mutating func batchNormalization(_ node: Onnx_NodeProto, _ index: Int) throws {
        guard node.input.count == 5 else { throw fail(node, index, "5 inputs (X, scale, B, mean, var) are expected") }
        guard intAttribute(node, "training_mode", default: 0) == 0, node.output.count == 1 || node.output.dropFirst().allSatisfy({ $0.isEmpty }) else {
            throw fail(node, index, "training mode (running statistics as outputs) is not supported; export the model in eval mode")
        }
        if opset < 9, intAttribute(node, "spatial", default: 1) != 1 {
            throw fail(node, index, "spatial 0 (statistics per element) is not supported")
        }
        let channels = spatial.map.last!
        var vectors: [Tensor] = []
        for (i, role) in ["scale", "B", "mean", "var"].enumerated() {
            guard let t = try constant(node.input[i + 1]) else { throw fail(node, index, "\(role) must be a constant") }
            var v = try vector(t, count: channels, node, index, role: "\(role) '\(node.input[i + 1])'")
            if spatial.map.count == 1, let map = spatial.flattened, map[0] * map[1] > 1 {
                // After a flatten the features arrive channel-first.
                v = PyTorchLayout.loaded(v, .vectorAfterFlatten(height: map[0], width: map[1], channels: map[2]), shape: [channels])
            }
            vectors.append(v)
        }
        let epsilon = decimalAttribute(node, "epsilon", default: 1e-5)
        let layer: Layer
        do {
            layer = try Layer.batchNorm(index: spatial.built.count, inputShape: spatial.map, epsilon: epsilon)
        } catch { throw modelError(node, index, error) }
        let bn = layer.batchNorm!
        append(layer, [NamedTensor(bn.gamma!, vectors[0]), NamedTensor(bn.beta!, vectors[1]),
                       NamedTensor(bn.movingMean, vectors[2]), NamedTensor(bn.movingVariance, vectors[3])])
    }

    /// Flatten (or a Reshape to [batch, features]) of the current map.
    mutating func spatialFlatten() {
        guard spatial.map.count == 3 else { return }
        let map = spatial.map
        spatial.built.append(Layer.flatten(inputShape: map))
        spatial.map = [map.reduce(1, *)]
        if map[0] * map[1] > 1, !spatial.transposed { spatial.flattened = map }
        spatial.transposed = false
    }

    /// Transpose NCHW -> NHWC right before a flatten: the features come out in our order.
    mutating func transpose(_ node: Onnx_NodeProto, _ index: Int) throws {
        let perm = ints(node, "perm")
        guard isSpatial, spatial.map.count == 3, perm == [0, 2, 3, 1], let next = try nextNode(after: node.output[0]),
              ["Flatten", "Reshape"].contains(graph.node[next].opType) else {
            throw fail(node, index, "only Transpose(perm=[0, 2, 3, 1]) of a map right before a Flatten (NHWC features) is supported")
        }
        spatial.transposed = true
    }

    /// A dense layer over features: `weight` is (out, in) as ONNX's Gemm with transB 1 holds it.
    mutating func addSpatialDense(weight: Tensor, bias: Tensor?, _ node: Onnx_NodeProto, _ index: Int) throws {
        guard spatial.map.count == 1 else {
            throw fail(node, index, "its input is a \(ShapeMath.describe(spatial.map)) map; a Flatten or Reshape to [batch, features] must come first")
        }
        let (outputs, inputs) = (weight.shape[0], weight.shape[1])
        guard inputs == spatial.map[0] else {
            throw fail(node, index, "the weights take \(inputs) inputs, but \(spatial.map[0]) features arrive")
        }
        var layer = Layer.dense(index: spatial.built.count, inputSize: inputs, outputSize: outputs, activation: .identity)
        let stored: Tensor
        if let map = spatial.flattened {
            stored = PyTorchLayout.loaded(weight, .linearAfterFlatten(height: map[0], width: map[1], channels: map[2]), shape: [inputs, outputs])
            spatial.flattened = nil
        } else {
            stored = PyTorchLayout.loaded(weight, .linear, shape: [inputs, outputs])
        }
        var tensors = [NamedTensor(layer.weight!, stored)]
        if let bias { tensors.append(NamedTensor(layer.bias!, bias)) } else { layer.bias = nil }
        append(layer, tensors)
    }

    mutating func spatialGemm(_ node: Onnx_NodeProto, _ index: Int) throws {
        guard node.input.count >= 2, var b = try constant(node.input[1]) else { throw fail(node, index, "B must be a constant") }
        guard intAttribute(node, "transA", default: 0) == 0 else { throw fail(node, index, "transA 1 is not supported") }
        guard b.shape.count == 2, b.dtype.isFloatingPoint else {
            throw fail(node, index, "B '\(node.input[1])' must be a 2-D float matrix, found \(b.dtype.rawValue) \(ShapeMath.describe(b.shape))")
        }
        // (out, in), as PyTorch's Linear and Gemm with transB 1 hold it.
        if intAttribute(node, "transB", default: 0) == 0 { b = b.transposed() }
        let alpha = Double(floatAttribute(node, "alpha", default: 1)), beta = Double(floatAttribute(node, "beta", default: 1))
        if alpha != 1 {
            b = scaled(b, by: alpha)
            notes.append("\(GraphWalker.describe(node, index)): alpha \(alpha) multiplied into the weights")
        }
        var bias: Tensor?
        if node.input.count > 2, !node.input[2].isEmpty {
            guard let c = try constant(node.input[2]) else { throw fail(node, index, "C must be a constant") }
            bias = try vector(c, count: b.shape[0], node, index, role: "C '\(node.input[2])'")
            if beta != 1, let bb = bias {
                bias = scaled(bb, by: beta)
                notes.append("\(GraphWalker.describe(node, index)): beta \(beta) multiplied into the bias")
            }
        }
        try addSpatialDense(weight: b, bias: bias, node, index)
    }

    mutating func spatialActivation(_ a: Activation, _ node: Onnx_NodeProto, _ index: Int) throws {
        guard let last = spatial.built.last, [.dense, .conv2d, .batchNorm].contains(last.kind), !spatial.activated else {
            let after = spatial.built.last.map { "after \($0.kind.rawValue)" } ?? "before the first layer"
            throw fail(node, index, "an activation \(spatial.activated ? "after another activation" : after) is not supported (only after Conv, Gemm, MatMul or BatchNormalization)")
        }
        if a == .softmax || a == .logSoftmax, last.kind != .dense {
            throw fail(node, index, "\(node.opType) over a map is not supported; only over the features of a Gemm or MatMul")
        }
        spatial.built[spatial.built.count - 1].activation = a
        spatial.activated = true
    }

    /// GELU as PyTorch's TorchScript exporter writes it: `x * (1 + erf(x / sqrt 2)) * 0.5`,
    /// i.e. Div(x, 1.4142) -> Erf -> Add(1) -> Mul(x, .) -> Mul(0.5). Applies it to the last
    /// layer and returns the value after it; nil when `value` does not start that pattern.
    mutating func erfGELU(after value: String) throws -> String? {
        let next = (consumers[value] ?? []).filter { !visited.contains($0) }
        guard next.count == 2 else { return nil }
        func only(_ v: String) -> Int? {
            let c = (consumers[v] ?? []).filter { !visited.contains($0) }
            return c.count == 1 ? c[0] : nil
        }
        func scalar(_ n: Onnx_NodeProto, other v: String) throws -> Double? {
            guard n.input.count == 2 else { return nil }
            let name = n.input[0] == v ? n.input[1] : n.input[0]
            guard let t = try constant(name), t.count == 1, t.dtype.isFloatingPoint else { return nil }
            return t.doubles()[0]
        }
        func near(_ x: Double?, _ y: Double) -> Bool { x.map { abs($0 - y) <= 1e-5 * abs(y) } ?? false }
        guard let d = next.first(where: { graph.node[$0].opType == "Div" }), graph.node[d].input.first == value,
              let m1 = next.first(where: { $0 != d && graph.node[$0].opType == "Mul" }),
              near(try scalar(graph.node[d], other: value), 2.0.squareRoot()),
              let e = only(graph.node[d].output[0]), graph.node[e].opType == "Erf",
              let a = only(graph.node[e].output[0]), graph.node[a].opType == "Add", near(try scalar(graph.node[a], other: graph.node[e].output[0]), 1),
              only(graph.node[a].output[0]) == m1, Set(graph.node[m1].input) == [value, graph.node[a].output[0]],
              let m2 = only(graph.node[m1].output[0]), graph.node[m2].opType == "Mul",
              near(try scalar(graph.node[m2], other: graph.node[m1].output[0]), 0.5)
        else { return nil }
        let gelu = graph.node[m2]
        if isSpatial {
            try spatialActivation(.gelu(.exact), gelu, m2)
        } else {
            guard var layer = layers.last, !layer.activated else { throw fail(gelu, m2, "GELU (the Erf pattern) must follow a layer") }
            layer.activation = .gelu(.exact)
            layer.activated = true
            layers[layers.count - 1] = layer
        }
        for i in [d, e, a, m1, m2] { visited.insert(i) }
        notes.append("nodes \([d, e, a, m1, m2].map { GraphWalker.describe(graph.node[$0], $0) }.joined(separator: ", ")): x * 0.5 * (1 + erf(x / sqrt 2)), read as GELU")
        return gelu.output[0]
    }

    /// The model of a spatial graph.
    mutating func spatialModel(_ proto: Onnx_ModelProto, opset: Int64, options: ImportOptions) throws -> ImportResult {
        if !steps.isEmpty, options.scale != nil || options.zscore != nil {
            throw InteropError.badOption("--scale/--normalize: \(path) already has preprocessing in its graph")
        }
        if options.activations != nil {
            throw InteropError.badOption("--activations: \(path) has convolutions; its graph states every activation")
        }
        var classes: [String] = []
        var notes = self.notes
        let outputs = spatial.built.last(where: { $0.kind == .dense })?.outputSize ?? spatial.map.reduce(1, *)
        if let json = proto.metadataProps.first(where: { $0.key == ONNXExport.metadataKey })?.value,
           let meta = try? ModelMetadata(json: try JSONValue.parse(json)) {
            if meta.classes.count == outputs { classes = meta.classes }
            notes.append("class names from the \(ONNXExport.metadataKey) property")
            if meta.preprocessing.count == steps.count {
                for (i, (exact, graph)) in zip(meta.preprocessing, steps).enumerated() {
                    if case let .scale(f, o) = exact, case let .scale(gf, go) = graph, Float(f) == Float(gf), Float(o) == Float(go) {
                        steps[i] = exact
                    }
                }
            }
        }
        if spatial.built.last?.kind == .flatten {
            // A final flatten only names the output's order: ours needs no layer for it.
            guard spatial.flattened == nil else {
                throw InteropError.badConfig(path: path, detail: "the graph ends by flattening a \(ShapeMath.describe(spatial.flattened!)) map channel-first; a .nnm model's outputs are in height-width-channel order (transpose to NHWC before the Flatten)")
            }
            spatial.built.removeLast()
        }
        notes.append("NCHW graph: input \(ShapeMath.describe(spatial.inputShape)) (height, width, channels), kernels OIHW -> HWIO, the first dense layer's inputs reordered from channel-first")
        var result = try ModelBuilder.finish(layers: spatial.built, tensors: spatial.tensors, inputShape: spatial.inputShape, path: path,
                                             sourceFormat: "onnx-nchw", options: options, notes: &notes,
                                             preprocessing: steps, preprocessingTensors: stepTensors, classes: classes)
        let producer = proto.producerName.isEmpty ? "" : ", from \(proto.producerName)\(proto.producerVersion.isEmpty ? "" : " \(proto.producerVersion)")"
        result.format = "ONNX (opset \(opset)\(producer))"
        return result
    }
}
