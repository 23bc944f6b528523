import NNCore
import NNSystem
import NNConvert
import SwiftProtobuf

/// The ONNX graph `nnconv export` writes for a `.nnm` MLP.
///
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
        try requireDenseLayers(model, path: path, format: "ONNX")
        // The graph has operators for the basic five; the activations of format 1.2 are not
        // written yet (ONNX has most of them, but this export is only tested with those five).
        if let (i, layer) = model.metadata.layers.enumerated().first(where: { !Activation.basic.contains($0.element.activation) }) {
            throw InteropError.badConfig(path: path, detail: "layer \(i) uses the activation \(layer.activation); the ONNX export writes "
                                         + Activation.basic.map(\.name).joined(separator: ", ") + " only (export to .h5 or .npz instead)")
        }
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
                graph.initializer.append(ONNXFile.initializer(mean, floats(mean), shape: [features]))
                // Dividing by 1 where the std is 0 leaves those features only centred, as the
                // blog's normalize() does: the same values as the .nnm model, not an approximation.
                var divisor = ONNXFile.initializer(std, floats(std).map { $0 == 0 ? 1 : $0 }, shape: [features])
                divisor.docString = "the standard deviation with its zeros replaced by 1: those features are only centred"
                graph.initializer.append(divisor)
                node("Sub", "\(prefix).sub", inputs: [current, mean], output: "\(prefix).centred")
                node("Div", "\(prefix).div", inputs: [current, std], output: "\(prefix).normalized")
            }
        }
        for (i, layer) in meta.layers.enumerated() {
            let prefix = "layers.\(i)"
            let weight = layer.weight!  // dense only (checked by write)
            graph.initializer.append(ONNXFile.initializer(weight, floats(weight), shape: [layer.inputSize, layer.outputSize]))
            var inputs = [current, weight]
            if let bias = layer.bias {
                graph.initializer.append(ONNXFile.initializer(bias, floats(bias), shape: [layer.outputSize]))
                inputs.append(bias)
            }
            let last = i == meta.layers.count - 1
            let z = last && layer.activation == .identity ? outputName : "\(prefix).z"
            node("Gemm", "\(prefix).gemm", inputs: inputs, output: z)
            let out = last ? outputName : "\(prefix).out"
            switch layer.activation {
            case .identity: break
            case .relu: node("Relu", "\(prefix).relu", inputs: [current], output: out)
            case .sigmoid: node("Sigmoid", "\(prefix).sigmoid", inputs: [current], output: out)
            case .tanh: node("Tanh", "\(prefix).tanh", inputs: [current], output: out)
            case .softmax:
                var axis = Onnx_AttributeProto()
                axis.name = "axis"
                axis.type = .int
                axis.i = 1
                node("Softmax", "\(prefix).softmax", inputs: [current], output: out, [axis])
            case .leakyRelu, .elu, .selu, .gelu, .softplus, .swish, .hardSigmoid, .relu6, .clippedRelu, .logSoftmax:
                preconditionFailure("write refuses \(layer.activation) before building the graph")
            }
        }
        graph.input = [valueInfo(inputName, features: meta.input.features)]
        graph.output = [valueInfo(outputName, features: meta.outputSize)]

        var proto = Onnx_ModelProto()
        proto.irVersion = irVersion
        var opset = Onnx_OperatorSetIdProto()
        opset.domain = ""
        opset.version = self.opset
        proto.opsetImport = [opset]
        proto.producerName = "nnconv"
        proto.producerVersion = ProjectVersion.string
        proto.docString = "An MLP converted from .nnm: input [batch, \(meta.input.features)] raw features (one sample of shape \(ShapeMath.describe(meta.input.shape)), flattened row-major), output [batch, \(meta.outputSize)]."
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
