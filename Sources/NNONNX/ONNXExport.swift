import NNCore
import NNSystem
import NNConvert
import NNPyTorch
import SwiftProtobuf

/// The ONNX graph `nnconv export` writes for a `.nnm` model.
///
/// CNNs (any model with spatial layers) take an NCHW input [batch, channels, height, width], as
/// PyTorch users expect: convolutions are `Conv` with OIHW kernels (a true convolution's kernel
/// turned by 180 degrees) and explicit `pads`, pooling `MaxPool`/`AveragePool` (with
/// `count_include_pad` as the layer says), global pooling `GlobalAveragePool`/`GlobalMaxPool`
/// then `Flatten`, batch normalization `BatchNormalization`, our flatten `Flatten` (which
/// flattens channel-first, so the next dense layer's rows are permuted back with
/// `PyTorchLayout`), and a z-score's statistics are laid out [channels, height, width].
/// Activations beyond the basic five: `LeakyRelu`, `Elu`, `Selu`, `Softplus`, `HardSigmoid`
/// (alpha 1/6, beta 0.5), `Clip` for relu6 and relu with a maximum, `LogSoftmax`, swish as
/// `x * Sigmoid(x)`, and GELU as its formula (opset 13 has no `Gelu`): the exact one as
/// PyTorch's TorchScript exporter writes it, the tanh one with `Tanh`.
///
/// MLPs:
/// One float input `input` of shape [batch, features] (samples flattened in row-major order,
/// raw values as the `.nnm` model takes them) and one output `probabilities` [batch, outputs].
/// The preprocessing comes first, as graph operators: `scale` is `Mul` (and `Add` for an offset);
/// `zscore` is `Sub` of the mean then `Div` by the standard deviation with its zeros replaced by
/// 1, which is exactly the blog's "features whose std is 0 are only centred". Each layer is a
/// `Gemm` with the `[in, out]` weight as `B` (no transpose needed, `transB` 0) and the bias as
/// `C`, followed by `Relu`, `Sigmoid`, `Tanh` or `Softmax(axis=1)`, or nothing for identity.
/// Opset 13, IR version 7: read by every onnxruntime since 1.6. Weights are stored as float32
/// (f64, f16 and bf16 are converted), the type ONNX runtimes are fed. The model's `.nnm`
/// metadata JSON is kept in the `nnm_metadata` property, from which an import takes the class
/// names and the input shape back.
public enum ONNXExport {
    /// The ai.onnx operator set the graphs use.
    public static let opset: Int64 = 13
    /// The IR version that goes with opset 13 (ONNX 1.8).
    public static let irVersion: Int64 = 7
    /// The names of the graph's input and output.
    public static let inputName = "input", outputName = "probabilities"
    /// The model property holding the `.nnm` metadata JSON.
    public static let metadataKey = "nnm_metadata"

    /// Writes `model` to `path` atomically and returns notes about conversions made on the way
    /// (weights narrowed to float32).
    @discardableResult
    public static func write(_ model: Model, to path: String) throws -> [String] {
        let (proto, notes) = try modelProto(model)
        let bytes: [UInt8]
        do {
            bytes = try proto.serializedBytes()
        } catch {
            throw InteropError.badConfig(path: path, detail: "the ONNX model could not be serialized: \(error)")
        }
        try AtomicFileWriter.write(bytes, to: path)
        return notes
    }

    /// The ModelProto for `model`, and notes about conversions.
    static func modelProto(_ model: Model) throws -> (Onnx_ModelProto, [String]) {
        try model.validate()
        let meta = model.metadata
        var graph = Onnx_GraphProto()
        graph.name = "nnm"
        var notes: [String] = []
        var narrowed = Set<String>()
        var current = inputName
        // A model with spatial layers takes NCHW images; imageShape is [height, width, channels].
        let spatial = takesImages(meta)
        let imageShape = meta.input.shape.count == 3 ? meta.input.shape : meta.input.shape.count == 2 ? meta.input.shape + [1] : [meta.input.features, 1, 1]

        func node(_ op: String, _ name: String, inputs: [String], output: String, _ attributes: [Onnx_AttributeProto] = []) {
            var n = Onnx_NodeProto()
            n.opType = op
            n.name = name
            n.input = inputs
            n.output = [output]
            n.attribute = attributes
            graph.node.append(n)
            current = output
        }
        func floats(_ name: String) -> [Float] {
            let t = model.tensor(name)!
            if t.dtype != .float32 { narrowed.insert(t.dtype.rawValue) }
            return t.floats()
        }

        for (i, step) in meta.preprocessing.enumerated() {
            let prefix = "preprocessing.\(i)"
            switch step {
            case let .scale(factor, offset):
                graph.initializer.append(ONNXFile.initializer("\(prefix).factor", [Float(factor)], shape: []))
                node("Mul", "\(prefix).mul", inputs: [current, "\(prefix).factor"], output: "\(prefix).scaled")
                if offset != 0 {
                    graph.initializer.append(ONNXFile.initializer("\(prefix).offset", [Float(offset)], shape: []))
                    node("Add", "\(prefix).add", inputs: [current, "\(prefix).offset"], output: "\(prefix).shifted")
                }
            case let .zscore(mean, std):
                let features = meta.input.features
                // In an NCHW graph the statistics are laid out [channels, height, width].
                let shape = spatial ? [imageShape[2], imageShape[0], imageShape[1]] : [features]
                func laidOut(_ name: String) -> [Float] {
                    guard spatial else { return floats(name) }
                    let t = Tensor(floats(name), shape: [features])
                    return PyTorchLayout.stored(t, .vectorAfterFlatten(height: imageShape[0], width: imageShape[1], channels: imageShape[2])).floats()
                }
                graph.initializer.append(ONNXFile.initializer(mean, laidOut(mean), shape: shape))
                // Dividing by 1 where the std is 0 leaves those features only centred, as the
                // blog's normalize() does: the same values as the .nnm model, not an approximation.
                var divisor = ONNXFile.initializer(std, laidOut(std).map { $0 == 0 ? 1 : $0 }, shape: shape)
                divisor.docString = "the standard deviation with its zeros replaced by 1: those features are only centred"
                graph.initializer.append(divisor)
                node("Sub", "\(prefix).sub", inputs: [current, mean], output: "\(prefix).centred")
                node("Div", "\(prefix).div", inputs: [current, std], output: "\(prefix).normalized")
            }
        }
        // The [height, width, channels] map most recently flattened, until the dense layer
        // (or batch normalization) that reads its features channel-first.
        var flattened: [Int]?
        func attribute(_ name: String, _ type: Onnx_AttributeProto.AttributeType, _ value: (inout Onnx_AttributeProto) -> Void) -> Onnx_AttributeProto {
            var a = Onnx_AttributeProto()
            a.name = name
            a.type = type
            value(&a)
            return a
        }
        func attribute(_ name: String, ints: [Int]) -> Onnx_AttributeProto { attribute(name, .ints) { $0.ints = ints.map(Int64.init) } }
        func attribute(_ name: String, int: Int) -> Onnx_AttributeProto { attribute(name, .int) { $0.i = Int64(int) } }
        func attribute(_ name: String, float: Double) -> Onnx_AttributeProto { attribute(name, .float) { $0.f = Float(float) } }
        func scalar(_ name: String, _ value: Double) -> String {
            if !graph.initializer.contains(where: { $0.name == name }) {
                graph.initializer.append(ONNXFile.initializer(name, [Float(value)], shape: []))
            }
            return name
        }
        /// A per-feature vector in the graph's order: channel-first right after a flatten.
        func vector(_ name: String) -> [Float] {
            let values = floats(name)
            guard let map = flattened, map[0] * map[1] > 1 else { return values }
            return PyTorchLayout.stored(Tensor(values, shape: [values.count]), .vectorAfterFlatten(height: map[0], width: map[1], channels: map[2])).floats()
        }
        // A model that ends in a map (a convolution or pooling last) gives it flattened in our
        // height-width-channel order: transposed to NHWC, then flattened.
        let endsInMap = spatial && (meta.layers.last?.spatial?.outputShape.count ?? 0) == 3 && meta.layers.last?.kind != .flatten
        for (i, layer) in meta.layers.enumerated() {
            let prefix = "layers.\(i)"
            let last = i == meta.layers.count - 1 && !endsInMap
            let z = last && layer.activation == .identity ? outputName : "\(prefix).z"
            switch layer.kind {
            case .dense:
                let weight = layer.weight!
                var inputs = [current, weight]
                var attributes: [Onnx_AttributeProto] = []
                if let map = flattened, map[0] * map[1] > 1 {
                    // The graph's features arrive channel-first: (out, in) with the inputs reordered.
                    let t = Tensor(floats(weight), shape: [layer.inputSize, layer.outputSize])
                    let stored = PyTorchLayout.stored(t, .linearAfterFlatten(height: map[0], width: map[1], channels: map[2]))
                    graph.initializer.append(ONNXFile.initializer(weight, stored.floats(), shape: [layer.outputSize, layer.inputSize]))
                    attributes.append(attribute("transB", int: 1))
                } else {
                    graph.initializer.append(ONNXFile.initializer(weight, floats(weight), shape: [layer.inputSize, layer.outputSize]))
                }
                flattened = nil
                if let bias = layer.bias {
                    graph.initializer.append(ONNXFile.initializer(bias, floats(bias), shape: [layer.outputSize]))
                    inputs.append(bias)
                }
                node("Gemm", "\(prefix).gemm", inputs: inputs, output: z, attributes)
            case .conv2d:
                let g = layer.spatial!, weight = layer.weight!
                let t = Tensor(floats(weight), shape: [g.window[0], g.window[1], g.inputShape[2], g.outputShape[2]])
                let oihw = PyTorchLayout.stored(t, .kernel(flipped: g.convention == .convolution))
                graph.initializer.append(ONNXFile.initializer(weight, oihw.floats(), shape: oihw.shape))
                var inputs = [current, weight]
                if let bias = layer.bias {
                    graph.initializer.append(ONNXFile.initializer(bias, floats(bias), shape: [g.outputShape[2]]))
                    inputs.append(bias)
                }
                node("Conv", "\(prefix).conv", inputs: inputs, output: z,
                     [attribute("kernel_shape", ints: g.window), attribute("strides", ints: g.strides), attribute("pads", ints: PyTorchLayout.pads(g))])
            case .maxPool2d, .avgPool2d:
                let g = layer.spatial!
                var attributes = [attribute("kernel_shape", ints: g.window), attribute("strides", ints: g.strides), attribute("pads", ints: PyTorchLayout.pads(g))]
                if layer.kind == .avgPool2d { attributes.append(attribute("count_include_pad", int: layer.countIncludePad ? 1 : 0)) }
                node(layer.kind == .maxPool2d ? "MaxPool" : "AveragePool", "\(prefix).pool", inputs: [current], output: z, attributes)
            case .globalAvgPool2d, .globalMaxPool2d:
                node(layer.kind == .globalAvgPool2d ? "GlobalAveragePool" : "GlobalMaxPool", "\(prefix).pool", inputs: [current], output: "\(prefix).pooled")
                // [N, C, 1, 1] -> [N, C]: the layer's output is one value per channel.
                node("Flatten", "\(prefix).flatten", inputs: [current], output: z, [attribute("axis", int: 1)])
            case .flatten:
                if let map = layer.spatial?.inputShape, map.count == 3 { flattened = map }
                node("Flatten", "\(prefix).flatten", inputs: [current], output: z, [attribute("axis", int: 1)])
            case .batchNorm:
                let bn = layer.batchNorm!
                let channels = layer.spatial?.inputShape.last ?? layer.inputSize
                let mean = vector(bn.movingMean)
                let names = ["\(prefix).scale", "\(prefix).shift", bn.movingMean, bn.movingVariance]
                let values = [bn.gamma.map(vector) ?? [Float](repeating: 1, count: channels), bn.beta.map(vector) ?? [Float](repeating: 0, count: channels),
                              mean, vector(bn.movingVariance)]
                for (name, v) in zip(names, values) { graph.initializer.append(ONNXFile.initializer(name, v, shape: [channels])) }
                node("BatchNormalization", "\(prefix).bn", inputs: [current] + names, output: z, [attribute("epsilon", float: bn.epsilon)])
            }
            let out = last ? outputName : "\(prefix).out"
            let x = current
            switch layer.activation {
            case .identity: break
            case .relu: node("Relu", "\(prefix).relu", inputs: [x], output: out)
            case .sigmoid: node("Sigmoid", "\(prefix).sigmoid", inputs: [x], output: out)
            case .tanh: node("Tanh", "\(prefix).tanh", inputs: [x], output: out)
            case .softmax: node("Softmax", "\(prefix).softmax", inputs: [x], output: out, [attribute("axis", int: 1)])
            case .logSoftmax: node("LogSoftmax", "\(prefix).log_softmax", inputs: [x], output: out, [attribute("axis", int: 1)])
            case let .leakyRelu(alpha): node("LeakyRelu", "\(prefix).leaky_relu", inputs: [x], output: out, [attribute("alpha", float: alpha)])
            case let .elu(alpha): node("Elu", "\(prefix).elu", inputs: [x], output: out, [attribute("alpha", float: alpha)])
            case .selu: node("Selu", "\(prefix).selu", inputs: [x], output: out)
            case .softplus: node("Softplus", "\(prefix).softplus", inputs: [x], output: out)
            case .hardSigmoid:
                node("HardSigmoid", "\(prefix).hard_sigmoid", inputs: [x], output: out, [attribute("alpha", float: 1.0 / 6), attribute("beta", float: 0.5)])
            case .relu6: node("Clip", "\(prefix).relu6", inputs: [x, scalar("const.zero", 0), scalar("const.six", 6)], output: out)
            case let .clippedRelu(m): node("Clip", "\(prefix).clip", inputs: [x, scalar("const.zero", 0), scalar("\(prefix).max", m)], output: out)
            case .swish:
                node("Sigmoid", "\(prefix).sigmoid", inputs: [x], output: "\(prefix).sigmoid")
                node("Mul", "\(prefix).swish", inputs: [x, current], output: out)
            case .gelu(.exact):
                // x * (1 + erf(x / sqrt 2)) * 0.5, as PyTorch's TorchScript exporter writes it.
                node("Div", "\(prefix).gelu.div", inputs: [x, scalar("const.sqrt2", 2.0.squareRoot())], output: "\(prefix).gelu.scaled")
                node("Erf", "\(prefix).gelu.erf", inputs: [current], output: "\(prefix).gelu.erf")
                node("Add", "\(prefix).gelu.add", inputs: [current, scalar("const.one", 1)], output: "\(prefix).gelu.plus1")
                node("Mul", "\(prefix).gelu.mul", inputs: [x, current], output: "\(prefix).gelu.product")
                node("Mul", "\(prefix).gelu.half", inputs: [current, scalar("const.half", 0.5)], output: out)
            case .gelu(.tanh):
                // 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))).
                node("Mul", "\(prefix).gelu.sq", inputs: [x, x], output: "\(prefix).gelu.sq")
                node("Mul", "\(prefix).gelu.cube", inputs: [current, x], output: "\(prefix).gelu.cube")
                node("Mul", "\(prefix).gelu.c", inputs: [current, scalar("const.gelu_c", 0.044715)], output: "\(prefix).gelu.c")
                node("Add", "\(prefix).gelu.inner", inputs: [x, current], output: "\(prefix).gelu.inner")
                node("Mul", "\(prefix).gelu.k", inputs: [current, scalar("const.gelu_k", (2 / Double.pi).squareRoot())], output: "\(prefix).gelu.k")
                node("Tanh", "\(prefix).gelu.tanh", inputs: [current], output: "\(prefix).gelu.tanh")
                node("Add", "\(prefix).gelu.add", inputs: [current, scalar("const.one", 1)], output: "\(prefix).gelu.plus1")
                node("Mul", "\(prefix).gelu.mul", inputs: [x, current], output: "\(prefix).gelu.product")
                node("Mul", "\(prefix).gelu.half", inputs: [current, scalar("const.half", 0.5)], output: out)
            }
        }
        if endsInMap {
            node("Transpose", "output.nhwc", inputs: [current], output: "output.nhwc", [attribute("perm", ints: [0, 2, 3, 1])])
            node("Flatten", "output.flatten", inputs: [current], output: outputName, [attribute("axis", int: 1)])
        }
        graph.input = [spatial ? imageInfo(inputName, shape: imageShape) : valueInfo(inputName, features: meta.input.features)]
        graph.output = [valueInfo(outputName, features: meta.outputSize)]

        var proto = Onnx_ModelProto()
        proto.irVersion = irVersion
        var opset = Onnx_OperatorSetIdProto()
        opset.domain = ""
        opset.version = self.opset
        proto.opsetImport = [opset]
        proto.producerName = "nnconv"
        proto.producerVersion = ProjectVersion.string
        proto.docString = spatial
            ? "A CNN converted from .nnm: input [batch, \(imageShape[2]), \(imageShape[0]), \(imageShape[1])] raw images (NCHW), output [batch, \(meta.outputSize)]."
            : "An MLP converted from .nnm: input [batch, \(meta.input.features)] raw features (one sample of shape \(ShapeMath.describe(meta.input.shape)), flattened row-major), output [batch, \(meta.outputSize)]."
        var property = Onnx_StringStringEntryProto()
        property.key = metadataKey
        property.value = JSONValue.object(meta.json).serialized()
        proto.metadataProps = [property]
        proto.graph = graph
        if !narrowed.isEmpty {
            notes.append("\(narrowed.sorted().joined(separator: ", ")) tensors were converted to f32, the type ONNX runtimes compute in")
        }
        return (proto, notes)
    }

    /// Whether the graph of `meta` takes NCHW images: it has convolutions or pooling over a
    /// sample with height and width. Batch normalization between dense layers does not count.
    public static func takesImages(_ meta: ModelMetadata) -> Bool {
        meta.input.shape.count >= 2 && meta.layers.contains { [.conv2d, .maxPool2d, .avgPool2d, .globalAvgPool2d, .globalMaxPool2d].contains($0.kind) }
    }

    /// A float image input [batch, channels, height, width] for a [height, width, channels] sample.
    static func imageInfo(_ name: String, shape: [Int]) -> Onnx_ValueInfoProto {
        var info = valueInfo(name, features: shape[2])
        for size in [shape[0], shape[1]] {
            var d = Onnx_TensorShapeProto.Dimension()
            d.dimValue = Int64(size)
            info.type.tensorType.shape.dim.append(d)
        }
        return info
    }

    /// A float tensor value of shape [batch, features], `batch` symbolic.
    static func valueInfo(_ name: String, features: Int) -> Onnx_ValueInfoProto {
        var batch = Onnx_TensorShapeProto.Dimension()
        batch.dimParam = "batch"
        var width = Onnx_TensorShapeProto.Dimension()
        width.dimValue = Int64(features)
        var tensorType = Onnx_TypeProto.Tensor()
        tensorType.elemType = ONNXFile.ElementType.float.rawValue
        tensorType.shape.dim = [batch, width]
        var info = Onnx_ValueInfoProto()
        info.name = name
        info.type.tensorType = tensorType
        return info
    }
}
