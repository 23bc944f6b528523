import NNCore
import NNConvert
import NNPyTorch

/// Reads ONNX graphs that are MLPs: a chain from the one input to the one output of `Gemm`
/// (transB 0 or 1) or `MatMul` (+ `Add` of a bias) layers, each optionally followed by `Relu`,
/// `Sigmoid`, `Tanh` or `Softmax` over the features; before the first layer, `Flatten` or
/// `Reshape` to [batch, features] and `Mul`/`Add`/`Sub`/`Div` by constants, which become the
/// model's preprocessing. Weights may be float, double, float16 or bfloat16 initializers (or
/// `Constant` nodes), in `raw_data` or the typed fields; they keep their type in the `.nnm`.
public enum ONNXImporter {
    /// The operators a graph may use.
    public static let supportedOperators = ["Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Relu", "Sigmoid", "Tanh",
                                            "Softmax", "LogSoftmax", "LeakyRelu", "Elu", "Selu", "Gelu", "Erf", "HardSigmoid",
                                            "Softplus", "Clip", "Flatten", "Reshape", "Identity", "Dropout", "Constant",
                                            "Conv", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool",
                                            "BatchNormalization", "Transpose"]

    /// Converts the ONNX model at `path`.
    public static func importModel(path: String, options: ImportOptions = ImportOptions()) throws -> ImportResult {
        let proto = try ONNXFile.read(path: path)
        return try importModel(proto, path: path, options: options)
    }

    /// - Parameter declaredOnly: external data is located and checked but not read (its
    ///   tensors are zeros): what `nnconv inspect` needs to describe the model.
    static func importModel(_ proto: Onnx_ModelProto, path: String, options: ImportOptions, declaredOnly: Bool = false) throws -> ImportResult {
        guard ONNXFile.supportedIRVersions.contains(Int(clamping: proto.irVersion)) else {
            throw InteropError.badConfig(path: path, detail: "IR version \(proto.irVersion) is not supported (supported: \(ONNXFile.supportedIRVersions.lowerBound) to \(ONNXFile.supportedIRVersions.upperBound))")
        }
        guard let opset = ONNXFile.defaultOpset(proto) else {
            throw InteropError.badConfig(path: path, detail: "the model imports no ai.onnx opset")
        }
        guard ONNXFile.supportedOpsets.contains(Int(clamping: opset)) else {
            throw InteropError.badConfig(path: path, detail: "opset \(opset) is not supported (supported: ai.onnx opsets \(ONNXFile.supportedOpsets.lowerBound) to \(ONNXFile.supportedOpsets.upperBound))")
        }
        var walker = try GraphWalker(proto.graph, opset: opset, path: path, declaredOnly: declaredOnly, options: options)
        try walker.walk()
        if walker.isSpatial {
            return try walker.spatialModel(proto, opset: opset, options: options)
        }
        if !walker.steps.isEmpty, options.scale != nil || options.zscore != nil {
            throw InteropError.badOption("--scale/--normalize: \(path) already has preprocessing in its graph")
        }
        if let given = options.activations, given.count != walker.layers.count {
            throw InteropError.badOption("--activations: \(path) has \(walker.layers.count) layers, but \(given.count) activations were given")
        }
        var notes = walker.notes
        if options.activations != nil {
            notes.append("activations from --activations replace the graph's")
        }
        var inputShape = walker.inputShape
        var classes: [String] = []
        if let json = proto.metadataProps.first(where: { $0.key == ONNXExport.metadataKey })?.value,
           let meta = try? ModelMetadata(json: try JSONValue.parse(json)) {
            // Our own export: the graph has the numbers, the property the names and the shape.
            if meta.classes.count == walker.layers.last!.weight.shape[1] { classes = meta.classes }
            if meta.input.features == walker.layers[0].weight.shape[0] { inputShape = meta.input.shape }
            notes.append("class names and input shape from the \(ONNXExport.metadataKey) property")
            // The graph holds scale factors as float32 (1/255 rounded); where the property's
            // exact factor rounds to the graph's, the exact one is what was meant.
            if meta.preprocessing.count == walker.steps.count {
                for (i, (exact, graph)) in zip(meta.preprocessing, walker.steps).enumerated() {
                    if case let .scale(f, o) = exact, case let .scale(gf, go) = graph, Float(f) == Float(gf), Float(o) == Float(go) {
                        walker.steps[i] = exact
                    }
                }
            }
        }
        var result = try ModelBuilder.assemble(
            weights: walker.layers.map(\.weight), biases: walker.layers.map(\.bias),
            activations: options.activations ?? walker.layers.map(\.activation), path: path, sourceFormat: "onnx",
            inputShape: inputShape, options: options, notes: &notes,
            preprocessing: walker.steps, preprocessingTensors: walker.stepTensors, classes: classes)
        let producer = proto.producerName.isEmpty ? "" : ", from \(proto.producerName)\(proto.producerVersion.isEmpty ? "" : " \(proto.producerVersion)")"
        result.format = "ONNX (opset \(opset)\(producer))"
        return result
    }
}

/// Follows the chain of nodes from the graph's input to its output.
struct GraphWalker {
    struct DenseLayer {
        var weight: Tensor
        var bias: Tensor?
        var activation: Activation = .identity
        /// Whether an activation node has been seen for this layer.
        var activated = false
        var node: String
    }

    let graph: Onnx_GraphProto
    let opset: Int64
    let path: String
    /// Initializers and `Constant` outputs, by value name.
    var constants: [String: Onnx_TensorProto] = [:]
    var consumers: [String: [Int]] = [:]
    var visited: Set<Int> = []
    let inputName: String
    let outputName: String
    /// The fixed batch size of the input, when it is not symbolic.
    let batch: Int64?
    /// One sample's shape after the batch dimension, when every dimension is known.
    var inputShape: [Int]?
    /// Features per sample at the current point of the chain.
    var features: Int?

    var layers: [DenseLayer] = []
    var steps: [PreprocessingStep] = []
    var stepTensors: [NamedTensor] = []
    var notes: [String] = []

    /// External data: the reader and each located tensor, by value name.
    let external: ONNXExternalData
    var locations: [String: ONNXExternalData.Location] = [:]
    let declaredOnly: Bool

    /// Whether the graph has spatial operators (convolutions, pooling, batch normalization):
    /// then the layers are built as they come, in `built`, over NCHW maps.
    var isSpatial = false
    var spatial = SpatialState()

    init(_ graph: Onnx_GraphProto, opset: Int64, path: String, declaredOnly: Bool = false, options: ImportOptions = ImportOptions()) throws {
        self.graph = graph
        self.opset = opset
        self.path = path
        self.declaredOnly = declaredOnly
        external = ONNXExternalData(modelPath: path)
        for t in graph.initializer { constants[t.name] = t }
        for (i, node) in graph.node.enumerated() {
            if !(node.domain.isEmpty || node.domain == "ai.onnx") || !ONNXImporter.supportedOperators.contains(node.opType) {
                let op = node.domain.isEmpty || node.domain == "ai.onnx" ? node.opType : "\(node.domain).\(node.opType)"
                throw InteropError.badConfig(path: path, detail: "\(GraphWalker.describe(node, i)) uses op \(op), which is not supported (supported: \(ONNXImporter.supportedOperators.joined(separator: ", ")))")
            }
            if node.opType == "Constant" {
                guard let value = node.attribute.first(where: { $0.name == "value" }), value.hasT, node.output.count == 1 else {
                    throw InteropError.badConfig(path: path, detail: "\(GraphWalker.describe(node, i)): only Constant nodes with a tensor value are supported")
                }
                constants[node.output[0]] = value.t
                visited.insert(i)
            }
            for input in Set(node.input) where !input.isEmpty { consumers[input, default: []].append(i) }
        }
        // Before IR 4, initializers were listed among the inputs too.
        let known = constants
        let inputs = graph.input.filter { known[$0.name] == nil }
        guard inputs.count == 1 else {
            throw InteropError.badConfig(path: path, detail: "the graph has \(inputs.count) inputs (\(inputs.map(\.name).joined(separator: ", "))); a model with exactly one input is expected")
        }
        guard graph.output.count == 1 else {
            throw InteropError.badConfig(path: path, detail: "the graph has \(graph.output.count) outputs (\(graph.output.map(\.name).joined(separator: ", "))); a model with exactly one output is expected")
        }
        // Every external tensor's declaration is checked before any data is read.
        for (name, t) in constants.sorted(by: { $0.key < $1.key }) where t.dataLocation == .external {
            let declared = try ONNXFile.declaration(t, path: path, what: "'\(name)'")
            locations[name] = try external.locate(t, byteCount: declared.byteCount, what: "'\(name)'")
        }
        isSpatial = graph.node.contains { GraphWalker.spatialOperators.contains($0.opType) }
        let input = inputs[0]
        inputName = input.name
        outputName = graph.output[0].name
        guard case let .tensorType(type)? = input.type.value else {
            throw InteropError.badConfig(path: path, detail: "input '\(input.name)' is not a tensor")
        }
        guard [ONNXFile.ElementType.float, .double, .float16].map(\.rawValue).contains(type.elemType) else {
            throw InteropError.badConfig(path: path, detail: "input '\(input.name)' has element type \(ONNXFile.typeName(type.elemType)); float, double or float16 inputs are supported")
        }
        let dims: [Int64?] = type.shape.dim.map { d in
            if case let .dimValue(v)? = d.value, v > 0 { return v }
            return nil
        }
        if type.hasShape, dims.count < 2 {
            throw InteropError.badConfig(path: path, detail: "input '\(input.name)' has rank \(dims.count); [batch, features...] is expected")
        }
        batch = dims.first ?? nil
        let sample = dims.dropFirst()
        if type.hasShape, sample.allSatisfy({ $0 != nil }) {
            let shape = sample.map { Int($0!) }
            features = shape.reduce(1, *)
            // [batch, 784] says nothing about the sample's own shape: leave it to the default.
            inputShape = shape.count > 1 ? shape : nil
        }
        if isSpatial { try startSpatial(dims: dims, options: options) }
    }

    static func describe(_ node: Onnx_NodeProto, _ index: Int) -> String {
        node.name.isEmpty ? "node #\(index) (\(node.opType))" : "node '\(node.name)'"
    }

    func fail(_ node: Onnx_NodeProto, _ index: Int, _ detail: String) -> InteropError {
        InteropError.badConfig(path: path, detail: "\(GraphWalker.describe(node, index)) (\(node.opType)): \(detail)")
    }

    /// The constant tensor named `name`, or nil when it is computed by the graph.
    func constant(_ name: String) throws -> Tensor? {
        guard let p = constants[name] else { return nil }
        return try ONNXFile.tensor(p, path: path, what: "'\(name)'", external: locations[name].map { (external, $0) },
                                   declaredOnly: declaredOnly)
    }

    func intAttribute(_ node: Onnx_NodeProto, _ name: String, default value: Int64) -> Int64 {
        node.attribute.first(where: { $0.name == name }).map(\.i) ?? value
    }

    func floatAttribute(_ node: Onnx_NodeProto, _ name: String, default value: Float) -> Float {
        node.attribute.first(where: { $0.name == name }).map(\.f) ?? value
    }

    /// A float attribute as the decimal it was written from: ONNX stores float32, so PyTorch's
    /// slope 0.1 arrives as 0.10000000149...; the shortest decimal that rounds to it is 0.1.
    func decimalAttribute(_ node: Onnx_NodeProto, _ name: String, default value: Double) -> Double {
        node.attribute.first(where: { $0.name == name }).map { Double("\($0.f)") ?? Double($0.f) } ?? value
    }

    /// The single node reading `value` that has not been visited, or nil at the end of the chain.
    func nextNode(after value: String) throws -> Int? {
        let next = (consumers[value] ?? []).filter { !visited.contains($0) }
        if next.count > 1 {
            throw InteropError.badConfig(path: path, detail: "'\(value)' feeds \(next.count) nodes (\(next.map { GraphWalker.describe(graph.node[$0], $0) }.joined(separator: ", "))); only a chain of nodes is supported")
        }
        return next.first
    }

    mutating func walk() throws {
        var current = inputName
        while true {
            if let after = try erfGELU(after: current) {
                current = after
                continue
            }
            guard let index = try nextNode(after: current) else { break }
            visited.insert(index)
            var node = graph.node[index]
            if ["Add", "Mul"].contains(node.opType), node.input.count == 2, node.input[1] == current {
                // Commutative: the constant may come first.
                node.input.swapAt(0, 1)
            }
            guard node.input.first == current, !node.output.isEmpty else {
                throw fail(node, index, "'\(current)' must be its first input")
            }
            // The other inputs must be constants: the graph is a chain with weights on the side.
            for name in node.input.dropFirst() where !name.isEmpty && constants[name] == nil {
                throw fail(node, index, "input '\(name)' is computed by the graph; only constants (initializers) are supported beside the chain")
            }
            switch node.opType {
            case "Identity":
                break
            case "Dropout":
                // At inference Dropout passes its input through, unless training_mode is set.
                if node.input.count > 2, let mode = constants[node.input[2]],
                   mode.rawData.contains(where: { $0 != 0 }) || mode.int32Data.contains(where: { $0 != 0 }) {
                    throw fail(node, index, "training_mode is true")
                }
                if node.output.count > 1, !node.output[1].isEmpty, consumers[node.output[1]] != nil || node.output[1] == outputName {
                    throw fail(node, index, "its mask output is used")
                }
            case "Flatten":
                try flatten(node, index)
            case "Reshape":
                try reshape(node, index)
            case "Gemm":
                try gemm(node, index)
            case "MatMul":
                current = try matMul(node, index)
                continue
            case "Conv":
                try conv(node, index)
            case "MaxPool", "AveragePool":
                try pool(node, index)
            case "GlobalAveragePool", "GlobalMaxPool":
                try globalPool(node, index)
            case "BatchNormalization":
                try batchNormalization(node, index)
            case "Transpose":
                try transpose(node, index)
            case "Relu", "Sigmoid", "Tanh", "Softmax", "LogSoftmax", "LeakyRelu", "Elu", "Selu", "Gelu", "HardSigmoid", "Softplus", "Clip":
                try activation(node, index)
            case "Add", "Sub", "Mul", "Div":
                try arithmetic(node, index)
            default:
                throw fail(node, index, "unexpected in the chain")
            }
            current = node.output[0]
        }
        guard current == outputName else {
            throw InteropError.badConfig(path: path, detail: "the chain of nodes from input '\(inputName)' ends at '\(current)', not at the output '\(outputName)'")
        }
        if let stray = graph.node.indices.first(where: { !visited.contains($0) }) {
            throw fail(graph.node[stray], stray, "not on the chain from input '\(inputName)' to output '\(outputName)'")
        }
        guard !layers.isEmpty || !spatial.built.isEmpty else {
            throw InteropError.badConfig(path: path, detail: "the graph has no Gemm, MatMul or Conv layer")
        }
    }

    mutating func flatten(_ node: Onnx_NodeProto, _ index: Int) throws {
        let axis = intAttribute(node, "axis", default: 1)
        guard axis == 1 else { throw fail(node, index, "axis \(axis); only Flatten(axis=1) to [batch, features] is supported") }
        if isSpatial { spatialFlatten() }
    }

    mutating func reshape(_ node: Onnx_NodeProto, _ index: Int) throws {
        guard node.input.count == 2, let shape = try constant(node.input[1])?.integers() else {
            throw fail(node, index, "the target shape must be a constant integer tensor")
        }
        let allowZero = intAttribute(node, "allowzero", default: 0) == 1
        // [-1, F], [0, -1], [N, F] with the input's fixed batch N: a flatten to [batch, features].
        let batchOK = shape.first == -1 || (shape.first == 0 && !allowZero) || (batch != nil && shape.first == batch)
        let arriving = isSpatial ? spatial.map.reduce(1, *) : features
        let featuresOK = shape.count == 2 && (shape[1] == -1 || arriving == nil || Int(shape[1]) == arriving)
        guard shape.count == 2, batchOK, featuresOK, shape[0] != -1 || shape[1] != -1 else {
            throw fail(node, index, "reshape to \(shape) is not a flatten to [batch, features]; only that is supported")
        }
        if shape[1] > 0, features == nil { features = Int(shape[1]) }
        if isSpatial {
            let flat = spatial.map.reduce(1, *)
            guard shape[1] == -1 || Int(shape[1]) == flat else {
                throw fail(node, index, "reshape to \(shape), but the map \(ShapeMath.describe(spatial.map)) has \(flat) features")
            }
            spatialFlatten()
        }
    }

    mutating func gemm(_ node: Onnx_NodeProto, _ index: Int) throws {
        if isSpatial { return try spatialGemm(node, index) }
        guard node.input.count >= 2, var b = try constant(node.input[1]) else {
            throw fail(node, index, "B must be a constant")
        }
        guard intAttribute(node, "transA", default: 0) == 0 else { throw fail(node, index, "transA 1 is not supported") }
        guard b.shape.count == 2, b.dtype.isFloatingPoint else {
            throw fail(node, index, "B '\(node.input[1])' must be a 2-D float matrix, found \(b.dtype.rawValue) \(ShapeMath.describe(b.shape))")
        }
        if intAttribute(node, "transB", default: 0) != 0 { b = b.transposed() }
        let alpha = Double(floatAttribute(node, "alpha", default: 1)), beta = Double(floatAttribute(node, "beta", default: 1))
        if alpha != 1 {
            b = scaled(b, by: alpha)
            notes.append("\(GraphWalker.describe(node, index)): alpha \(alpha) multiplied into the weights")
        }
        var bias: Tensor?
        if node.input.count > 2, !node.input[2].isEmpty, let c = try constant(node.input[2]) {
            bias = try vector(c, count: b.shape[1], node, index, role: "C '\(node.input[2])'")
            if beta != 1, let bb = bias {
                bias = scaled(bb, by: beta)
                notes.append("\(GraphWalker.describe(node, index)): beta \(beta) multiplied into the bias")
            }
        }
        try addLayer(weight: b, bias: bias, node, index)
    }

    /// A MatMul layer, with the bias of an `Add` that follows it; returns the value after both.
    mutating func matMul(_ node: Onnx_NodeProto, _ index: Int) throws -> String {
        guard node.input.count == 2, let b = try constant(node.input[1]) else { throw fail(node, index, "B must be a constant") }
        guard b.shape.count == 2, b.dtype.isFloatingPoint else {
            throw fail(node, index, "B '\(node.input[1])' must be a 2-D float matrix, found \(b.dtype.rawValue) \(ShapeMath.describe(b.shape))")
        }
        var output = node.output[0]
        var bias: Tensor?
        if let next = try nextNode(after: output), graph.node[next].opType == "Add", graph.node[next].input.count == 2 {
            let add = graph.node[next]
            let other = add.input[0] == output ? add.input[1] : add.input[0]
            if let c = try constant(other) {
                bias = try vector(c, count: b.shape[1], add, next, role: "the bias '\(other)'")
                visited.insert(next)
                output = add.output[0]
            }
        }
        if isSpatial {
            // The spatial builder takes weights as PyTorch's Linear holds them, (out, in).
            try addSpatialDense(weight: b.transposed(), bias: bias, node, index)
        } else {
            try addLayer(weight: b, bias: bias, node, index)
        }
        return output
    }

    mutating func addLayer(weight: Tensor, bias: Tensor?, _ node: Onnx_NodeProto, _ index: Int) throws {
        if let features, weight.shape[0] != features {
            throw fail(node, index, "the weights take \(weight.shape[0]) inputs, but \(features) features arrive")
        }
        if let bias, bias.dtype != weight.dtype {
            notes.append("\(GraphWalker.describe(node, index)): the bias is \(bias.dtype.rawValue), the weights \(weight.dtype.rawValue)")
        }
        layers.append(DenseLayer(weight: weight, bias: bias, node: GraphWalker.describe(node, index)))
        features = weight.shape[1]
    }

    /// A bias-like constant of `count` values: shape [count], [1, count], or a scalar broadcast.
    func vector(_ t: Tensor, count: Int, _ node: Onnx_NodeProto, _ index: Int, role: String) throws -> Tensor {
        guard t.dtype.isFloatingPoint else { throw fail(node, index, "\(role) must be a float tensor, found \(t.dtype.rawValue)") }
        if t.count == count, t.shape == [count] || t.shape == [1, count] {
            return Tensor(dtype: t.dtype, shape: [count], storage: t.storage, byteOffset: t.byteOffset)
        }
        if t.count == 1 { return converted([Double](repeating: t.doubles()[0], count: count), like: t) }
        throw fail(node, index, "\(role) has shape \(ShapeMath.describe(t.shape)); [\(count)] or [1, \(count)] is expected")
    }

    mutating func activation(_ node: Onnx_NodeProto, _ index: Int) throws {
        let a = try parseActivation(node, index)
        if isSpatial { return try spatialActivation(a, node, index) }
        guard var layer = layers.last, !layer.activated else {
            throw fail(node, index, layers.isEmpty ? "an activation before the first layer is not supported" : "two activations in a row are not supported")
        }
        layer.activation = a
        layer.activated = true
        layers[layers.count - 1] = layer
    }

    /// The `.nnm` activation an activation node computes; throws for parameters it has no
    /// form for.
    func parseActivation(_ node: Onnx_NodeProto, _ index: Int) throws -> Activation {
        func near(_ x: Double, _ y: Double) -> Bool { abs(x - y) <= 1e-6 * max(1, abs(y)) }
        switch node.opType {
        case "Relu": return .relu
        case "Sigmoid": return .sigmoid
        case "Tanh": return .tanh
        case "Softplus": return .softplus
        case "LeakyRelu": return .leakyRelu(alpha: decimalAttribute(node, "alpha", default: 0.01))
        case "Elu": return .elu(alpha: decimalAttribute(node, "alpha", default: 1))
        case "Selu":
            let alpha = Double(floatAttribute(node, "alpha", default: Float(Activation.seluAlpha)))
            let gamma = Double(floatAttribute(node, "gamma", default: Float(Activation.seluScale)))
            guard near(alpha, Activation.seluAlpha), near(gamma, Activation.seluScale) else {
                throw fail(node, index, "alpha \(alpha), gamma \(gamma); only SELU's standard constants are supported")
            }
            return .selu
        case "Gelu":
            let approximate = node.attribute.first(where: { $0.name == "approximate" }).map { String(decoding: $0.s, as: UTF8.self) } ?? "none"
            switch approximate {
            case "none": return .gelu(.exact)
            case "tanh": return .gelu(.tanh)
            default: throw fail(node, index, "approximate '\(approximate)' (ONNX knows 'none' and 'tanh')")
            }
        case "HardSigmoid":
            // ONNX's default (alpha 0.2) is Keras 2's; the .nnm hard sigmoid is relu6(x + 3) / 6.
            let alpha = Double(floatAttribute(node, "alpha", default: 0.2)), beta = Double(floatAttribute(node, "beta", default: 0.5))
            guard near(alpha, 1.0 / 6), near(beta, 0.5) else {
                throw fail(node, index, "alpha \(alpha), beta \(beta); only alpha 1/6, beta 0.5 (relu6(x + 3) / 6, PyTorch's Hardsigmoid) is supported")
            }
            return .hardSigmoid
        case "Clip":
            var low: Double?, high: Double?
            if opset < 11 {
                low = node.attribute.first(where: { $0.name == "min" }).map { Double($0.f) }
                high = node.attribute.first(where: { $0.name == "max" }).map { Double($0.f) }
            } else {
                func bound(_ i: Int) throws -> Double? {
                    guard node.input.count > i, !node.input[i].isEmpty else { return nil }
                    guard let t = try constant(node.input[i]), t.count == 1, t.dtype.isFloatingPoint else {
                        throw fail(node, index, "its bounds must be float constants")
                    }
                    return t.doubles()[0]
                }
                low = try bound(1)
                high = try bound(2)
            }
            guard low == 0, let high, high > 0, high.isFinite else {
                throw fail(node, index, "clips to [\(low.map { "\($0)" } ?? "-inf"), \(high.map { "\($0)" } ?? "inf")]; only Clip(0, m) with m > 0 (relu6, relu with a maximum) is supported")
            }
            return high == 6 ? .relu6 : .clippedRelu(maxValue: high)
        default:
            // Softmax and LogSoftmax over the features: axis 1 or -1 of [batch, features].
            // Before opset 13 the default axis 1 flattened the rest, which for 2-D inputs is the same.
            let axis = intAttribute(node, "axis", default: opset >= 13 ? -1 : 1)
            guard axis == 1 || axis == -1 else { throw fail(node, index, "axis \(axis); only the feature axis (1 or -1) is supported") }
            return node.opType == "Softmax" ? .softmax : .logSoftmax
        }
    }

    /// `Mul`/`Add`/`Sub`/`Div` by a constant before the first layer: a preprocessing step.
    mutating func arithmetic(_ node: Onnx_NodeProto, _ index: Int) throws {
        guard layers.isEmpty, spatial.built.isEmpty else {
            throw fail(node, index, "\(node.opType) after the first layer is not supported (only a MatMul's bias Add)")
        }
        guard node.input.count == 2, let declared = try constant(node.input[1]), declared.dtype.isFloatingPoint else {
            throw fail(node, index, "the second input must be a float constant")
        }
        var c = declared
        let m = spatial.inputShape
        if isSpatial, m.count == 3, c.shape == [m[2], m[0], m[1]] || c.shape == [1, m[2], m[0], m[1]] {
            // Per-pixel statistics over an NCHW input (our CNN export): in our HWC order.
            c = PyTorchLayout.loaded(c, .vectorAfterFlatten(height: m[0], width: m[1], channels: m[2]), shape: [c.count])
        }
        let values = c.doubles()
        if values.count == 1 {
            let v = values[0]
            switch node.opType {
            case "Mul": steps.append(.scale(factor: v, offset: 0))
            case "Div":
                guard v != 0 else { throw fail(node, index, "division by zero") }
                steps.append(.scale(factor: 1 / v, offset: 0))
                notes.append("\(GraphWalker.describe(node, index)): division by \(v) stored as scale by 1/\(v)")
            default:
                let offset = node.opType == "Add" ? v : -v
                if case let .scale(factor, previous)? = steps.last {
                    // x * f followed by + o is one scale step with an offset.
                    steps[steps.count - 1] = .scale(factor: factor, offset: previous + offset)
                } else {
                    steps.append(.scale(factor: 1, offset: offset))
                }
            }
            return
        }
        guard let features, values.count == features, c.shape == [features] || c.shape == [1, features] else {
            throw fail(node, index, "the constant has shape \(ShapeMath.describe(c.shape)); a scalar or one value per feature (\(features.map(String.init) ?? "unknown")) is expected")
        }
        // Per-feature constants become z-score steps (x - mean) / std.
        switch node.opType {
        case "Sub": addZScore(mean: values, std: [Double](repeating: 1, count: features), like: c)
        case "Add": addZScore(mean: values.map { -$0 }, std: [Double](repeating: 1, count: features), like: c)
        case "Mul":
            guard !values.contains(0) else { throw fail(node, index, "a per-feature factor of 0 cannot be stored as a z-score") }
            addZScore(mean: [Double](repeating: 0, count: features), std: values.map { 1 / $0 }, like: c)
            notes.append("\(GraphWalker.describe(node, index)): per-feature Mul stored as a z-score with std 1/factor")
        default:
            let zeros = values.filter { $0 == 0 }.count
            if zeros > 0 {
                notes.append("\(GraphWalker.describe(node, index)): \(zeros) divisors are 0: ONNX divides by them, the .nnm z-score only centres those features")
            }
            if case let .zscore(_, stdName)? = steps.last, let i = stepTensors.firstIndex(where: { $0.name == stdName }),
               stepTensors[i].tensor.doubles().allSatisfy({ $0 == 1 }) {
                // Sub then Div: the blog's normalize(), one z-score step.
                stepTensors[i].tensor = converted(values, like: reshapedVector(c, features))
            } else {
                addZScore(mean: [Double](repeating: 0, count: features), std: values, like: c)
            }
        }
    }

    /// `c` ([n] or [1, n]) as a vector of shape [n].
    func reshapedVector(_ c: Tensor, _ n: Int) -> Tensor {
        Tensor(dtype: c.dtype, shape: [n], storage: c.storage, byteOffset: c.byteOffset)
    }

    /// Adds a z-score step whose statistics have the dtype of the graph's constant `like`.
    mutating func addZScore(mean: [Double], std: [Double], like c: Tensor) {
        let k = steps.filter { if case .zscore = $0 { return true } else { return false } }.count
        let prefix = k == 0 ? "preprocessing" : "preprocessing.\(k)"
        let vector = reshapedVector(c, mean.count)
        stepTensors.append(NamedTensor("\(prefix).mean", converted(mean, like: vector)))
        stepTensors.append(NamedTensor("\(prefix).std", converted(std, like: vector)))
        steps.append(.zscore(mean: "\(prefix).mean", std: "\(prefix).std"))
    }
}
