import Foundation
import NNCore
import NNEngine
import NNFormat
import NNConvert
import NNModelFiles
import NNTestSupport
import Testing
@testable import NNONNX

let crosstoolDirectory = fixturesDirectory("crosstool")

/// One ONNX entry of Fixtures/crosstool/manifest.json (written by Fixtures/generate_crosstool.py).
struct ONNXFixture: CustomStringConvertible, Sendable {
    var id: String
    var file: String
    var expect: String
    var error: String?
    var input: [[Double]]
    var output: [[Double]]
    var atol: Double
    var path: String { "\(crosstoolDirectory)/\(file)" }
    var description: String { id }
}

let onnxFixtures: [ONNXFixture] = {
    let data = FileManager.default.contents(atPath: "\(crosstoolDirectory)/manifest.json")!
    let root = try! JSONSerialization.jsonObject(with: data) as! [String: Any]
    return (root["fixtures"] as! [[String: Any]]).filter { $0["kind"] as? String == "onnx" }.map { f in
        ONNXFixture(id: f["id"] as! String, file: f["file"] as! String, expect: f["expect"] as! String, error: f["error"] as? String,
                    input: f["input"] as? [[Double]] ?? [], output: f["output"] as? [[Double]] ?? [], atol: f["atol"] as? Double ?? 0)
    }
}()

func scratchDirectory() -> String { NNTestSupport.scratchDirectory("nnm-onnx") }

/// A deterministic MLP with `activations`, optional preprocessing, classes and a training record.
func mlp(_ sizes: [Int], _ activations: [Activation], preprocessing: [PreprocessingStep] = [], dtype: DType = .float32,
         seed: Int = 1) -> Model {
    var tensors: [NamedTensor] = []
    var layers: [Layer] = []
    var state = UInt64(seed) &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
    func next() -> Double {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return Double(Int64(bitPattern: state >> 11) % 2001 - 1000) / 1000
    }
    func tensor(_ values: [Double], _ shape: [Int]) -> Tensor {
        switch dtype {
        case .float64: return Tensor(values, shape: shape)
        case .float16:
            let bits = values.map { Float16(Float($0)).bitPattern }
            return bits.withUnsafeBytes { Tensor(dtype: .float16, shape: shape, copying: $0) }
        default: return Tensor(values.map { Float($0) }, shape: shape)
        }
    }
    for i in 0..<(sizes.count - 1) {
        let layer = Layer.dense(index: i, inputSize: sizes[i], outputSize: sizes[i + 1], activation: activations[i])
        tensors.append(NamedTensor(layer.weight!, tensor((0..<(sizes[i] * sizes[i + 1])).map { _ in next() * 0.8 }, [sizes[i], sizes[i + 1]])))
        tensors.append(NamedTensor(layer.bias!, tensor((0..<sizes[i + 1]).map { _ in next() * 0.3 }, [sizes[i + 1]])))
        layers.append(layer)
    }
    for step in preprocessing {
        if case let .zscore(mean, std) = step {
            tensors.append(NamedTensor(mean, Tensor((0..<sizes[0]).map { Double($0 % 7) * 0.25 }, shape: [sizes[0]])))
            // Every third feature has std 0: the blog only centres those.
            let stds: [Double] = (0..<sizes[0]).map { (f: Int) -> Double in f % 3 == 0 ? 0 : 0.5 + Double(f % 5) * 0.25 }
            tensors.append(NamedTensor(std, Tensor(stds, shape: [sizes[0]])))
        }
    }
    let meta = ModelMetadata(input: InputSpec(shape: [sizes[0]]), layers: layers, preprocessing: preprocessing,
                             classes: (0..<sizes.last!).map { "class \($0)" },
                             training: TrainingRecord(loss: "cross-entropy", optimizer: "sgd", epochs: 1),
                             provenance: Provenance(tool: "test", created: "2024-01-01T00:00:00Z"))
    return Model(metadata: meta, tensors: tensors)
}

/// Rows of deterministic inputs.
func inputs(_ rows: Int, _ features: Int, scale: Double = 1) -> [[Double]] {
    (0..<rows).map { (r: Int) -> [Double] in
        (0..<features).map { (f: Int) -> Double in Double((r * 31 + f * 17) % 23 - 11) / 11 * scale }
    }
}

/// A graph built in the test, for cases no fixture needs a file for.
func graphModel(opset: Int64, nodes: [Onnx_NodeProto], initializers: [Onnx_TensorProto], features: Int = 3, outputs: Int = 2) -> Onnx_ModelProto {
    var model = Onnx_ModelProto()
    model.irVersion = 7
    var op = Onnx_OperatorSetIdProto()
    op.version = opset
    model.opsetImport = [op]
    model.graph.node = nodes
    model.graph.initializer = initializers
    model.graph.input = [ONNXExport.valueInfo("x", features: features)]
    model.graph.output = [ONNXExport.valueInfo("y", features: outputs)]
    return model
}

func node(_ op: String, _ inputs: [String], _ output: String, name: String = "", attributes: [Onnx_AttributeProto] = []) -> Onnx_NodeProto {
    var n = Onnx_NodeProto()
    n.opType = op
    n.input = inputs
    n.output = [output]
    n.name = name
    n.attribute = attributes
    return n
}

@Suite("ONNX")
struct ONNXTests {
    @Test("graphs built with onnx.helper, against onnxruntime", arguments: onnxFixtures.filter { $0.expect == "load" })
    func loads(_ fixture: ONNXFixture) throws {
        let result = try ModelFiles.importModel(path: fixture.path)
        let got = try predictions(result.model, fixture.input)
        #expect(maxDifference(got, fixture.output) <= fixture.atol, "\(fixture.id): \(maxDifference(got, fixture.output))")
        #expect(result.model.metadata.provenance.sourceFormat == "onnx")
        #expect(result.format.hasPrefix("ONNX (opset "))
    }

    @Test("what the fixtures turn into")
    func structure() throws {
        let mnist = try ModelFiles.importModel(path: "\(crosstoolDirectory)/onnx_mnist_preprocessing.onnx").model.metadata
        #expect(mnist.input.shape == [1, 28, 28])
        #expect(mnist.preprocessing == [.scale(factor: 1.0 / 255, offset: 0), .zscore(mean: "preprocessing.mean", std: "preprocessing.std")])
        #expect(mnist.layers.map(\.activation) == [.relu, .softmax])
        let double = try ModelFiles.importModel(path: "\(crosstoolDirectory)/onnx_double_flatten_dropout.onnx").model
        #expect(double.metadata.input.shape == [3, 4])
        #expect(double.tensors.allSatisfy { $0.tensor.dtype == .float64 })
        #expect(double.metadata.layers.map(\.activation) == [.tanh, .identity])
        let constants = try ModelFiles.importModel(path: "\(crosstoolDirectory)/onnx_constant_nodes_opset9.onnx").model.metadata
        #expect(constants.preprocessing == [.scale(factor: 0.5, offset: -0.25)])
        let gemm = try ModelFiles.importModel(path: "\(crosstoolDirectory)/onnx_gemm_transb.onnx").model
        // transB=1: W (out, in) in the file, [in, out] in the model.
        #expect(gemm.tensor("layers.0.weight")?.shape == [12, 8])
    }

    /// bad_conv.onnx was refused before convolutions were read; it is a valid CNN now.
    @Test("bad files: one clear line each", arguments: onnxFixtures.filter { $0.expect == "error" && !$0.path.hasSuffix("/bad_conv.onnx") })
    func rejects(_ fixture: ONNXFixture) throws {
        let message = try #require(errorMessage { _ = try ModelFiles.importModel(path: fixture.path) })
        #expect(message.hasPrefix("\(fixture.path): "), "\(message)")
        #expect(message.contains(fixture.error!), "\(message)")
        #expect(!message.contains("\n"))
    }

    @Test("every truncation of a model is reported, never a crash")
    func truncations() throws {
        let dir = scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: "\(crosstoolDirectory)/onnx_gemm_transb.onnx")))
        let path = "\(dir)/cut.onnx"
        var truncated = 0
        for n in 0..<bytes.count {
            try Data(bytes[0..<n]).write(to: URL(fileURLWithPath: path))
            let message = errorMessage { _ = try ModelFiles.importModel(path: path) }
            #expect(message != nil, "prefix of \(n) bytes")
            if message?.contains("truncated") == true { truncated += 1 }
        }
        #expect(truncated > bytes.count / 2)
    }

    @Test("unsupported ops and opsets built in Swift")
    func unsupported() throws {
        var w = ONNXFile.initializer("W", [1, 2, 3, 4, 5, 6], shape: [3, 2])
        w.name = "W"
        let softsign = graphModel(opset: 13, nodes: [node("Gemm", ["x", "W"], "z"), node("Softsign", ["z"], "y", name: "act")], initializers: [w])
        #expect(errorMessage { _ = try ONNXImporter.importModel(softsign, path: "m.onnx", options: ImportOptions()) }
                == "m.onnx: node 'act' uses op Softsign, which is not supported (supported: \(ONNXImporter.supportedOperators.joined(separator: ", ")))")
        var custom = node("Relu", ["z"], "y")
        custom.domain = "com.microsoft"
        let ms = graphModel(opset: 13, nodes: [node("Gemm", ["x", "W"], "z"), custom], initializers: [w])
        #expect(errorMessage { _ = try ONNXImporter.importModel(ms, path: "m.onnx", options: ImportOptions()) }?
            .contains("uses op com.microsoft.Relu, which is not supported") == true)
        let old = graphModel(opset: 6, nodes: [node("Gemm", ["x", "W"], "y")], initializers: [w])
        #expect(errorMessage { _ = try ONNXImporter.importModel(old, path: "m.onnx", options: ImportOptions()) }
                == "m.onnx: opset 6 is not supported (supported: ai.onnx opsets 7 to 28)")
        var transA = Onnx_AttributeProto()
        transA.name = "transA"
        transA.type = .int
        transA.i = 1
        let ta = graphModel(opset: 13, nodes: [node("Gemm", ["x", "W"], "y", name: "g", attributes: [transA])], initializers: [w])
        #expect(errorMessage { _ = try ONNXImporter.importModel(ta, path: "m.onnx", options: ImportOptions()) }
                == "m.onnx: node 'g' (Gemm): transA 1 is not supported")
        let fine = graphModel(opset: 13, nodes: [node("Gemm", ["x", "W"], "y")], initializers: [w])
        #expect(try ONNXImporter.importModel(fine, path: "m.onnx", options: ImportOptions()).model.metadata.layers.count == 1)
        var empty = Onnx_ModelProto()
        empty.irVersion = 7
        #expect(errorMessage { _ = try ONNXFile.decode(try empty.serializedBytes(), path: "m.onnx") } == "m.onnx: not an ONNX model: no graph")
        #expect(errorMessage { _ = try ONNXFile.decode(Array("not a model at all".utf8), path: "m.onnx") }?.hasPrefix("m.onnx: not") == true)
    }

    @Test("the export: opset 13, input/probabilities, Mul/Sub/Div/Gemm/activations, std zeros as 1")
    func exportGraph() throws {
        let model = mlp([6, 5, 4, 3, 2], [.relu, .sigmoid, .tanh, .softmax],
                        preprocessing: [.scale(factor: 0.5, offset: 0.25), .zscore(mean: "preprocessing.mean", std: "preprocessing.std")])
        let (proto, notes) = try ONNXExport.modelProto(model)
        // The statistics are f64; the graph holds float32.
        #expect(notes == ["f64 tensors were converted to f32, the type ONNX runtimes compute in"])
        #expect(proto.opsetImport.map(\.version) == [13] && proto.irVersion == 7)
        #expect(proto.graph.node.map(\.opType) == ["Mul", "Add", "Sub", "Div", "Gemm", "Relu", "Gemm", "Sigmoid", "Gemm", "Tanh", "Gemm", "Softmax"])
        #expect(proto.graph.input.map(\.name) == ["input"] && proto.graph.output.map(\.name) == ["probabilities"])
        #expect(proto.graph.node.last?.attribute.first?.i == 1)
        let std = try #require(proto.graph.initializer.first { $0.name == "preprocessing.std" })
        let values = try ONNXFile.tensor(std, path: "x", what: "std").floats()
        #expect(values[0] == 1 && values[3] == 1 && values[1] == 0.75)
        let f64 = mlp([4, 3], [.identity], dtype: .float64)
        let (p64, n64) = try ONNXExport.modelProto(f64)
        #expect(n64 == ["f64 tensors were converted to f32, the type ONNX runtimes compute in"])
        #expect(p64.graph.node.map(\.opType) == ["Gemm"] && p64.graph.node[0].output == ["probabilities"])
    }

    @Test(".nnm -> .onnx -> .nnm keeps predictions, classes and input shape", arguments: [
        ([784, 16, 10], [Activation.relu, .softmax], [PreprocessingStep.zscore(mean: "preprocessing.mean", std: "preprocessing.std")], DType.float32),
        ([6, 5, 4, 1], [.tanh, .sigmoid, .sigmoid], [.scale(factor: 1.0 / 255, offset: 0)], .float16),
        ([5, 3], [.identity], [], .float64),
    ])
    func roundTrip(_ sizes: [Int], _ activations: [Activation], _ steps: [PreprocessingStep], _ dtype: DType) throws {
        let dir = scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var model = mlp(sizes, activations, preprocessing: steps, dtype: dtype)
        if sizes[0] == 784 { model.metadata.input = InputSpec(shape: [28, 28]) }
        try ONNXExport.write(model, to: "\(dir)/m.onnx")
        let result = try ModelFiles.importModel(path: "\(dir)/m.onnx")
        #expect(result.model.metadata.classes == model.metadata.classes)
        #expect(result.model.metadata.input == model.metadata.input)
        #expect(result.model.metadata.layers.map(\.activation) == activations)
        let x = inputs(4, sizes[0], scale: sizes[0] == 6 ? 255 : 1)
        let difference = maxDifference(try predictions(result.model, x), try predictions(model, x))
        // The graph holds float32 numbers: f64 weights and statistics, and 1/255, are rounded.
        #expect(difference <= 1e-5, "\(difference)")
    }

    @Test("inspect shows the graph and the model it converts to; validate checks it")
    func inspectAndValidate() throws {
        let path = "\(crosstoolDirectory)/onnx_mnist_preprocessing.onnx"
        let inspection = try ModelFiles.inspect(path: path)
        #expect(inspection.format == "ONNX model")
        let lines = inspection.render()
        #expect(lines.contains { $0.contains("IR version") && $0.contains("opsets ai.onnx 17") })
        #expect(lines.contains("  layer 0: dense 784 -> 16, relu, weight 'layers.0.weight', bias 'layers.0.bias'"), "\(lines)")
        #expect(lines.contains { $0.contains("@type = FLOAT [N, 1, 28, 28]") }, "\(lines)")
        let bad = try ModelFiles.inspect(path: "\(crosstoolDirectory)/bad_branch.onnx")
        #expect(bad.summary.contains { $0.hasPrefix("does not convert: ") && $0.contains("feeds 2 nodes") })
        let conv = try ModelFiles.inspect(path: "\(crosstoolDirectory)/bad_conv.onnx")
        #expect(conv.render().contains { $0.contains("conv2d 4x4x1 -> 2x2x1") }, "\(conv.render())")
        let report = try ModelFiles.validate(path: path)
        #expect(report.first == "\(path): valid ONNX (opset 17, from generate_crosstool): converts to a model with 6 tensors")
    }

    @Test("ONNX is recognised by content when the name does not say so")
    func detection() throws {
        let dir = scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = try Data(contentsOf: URL(fileURLWithPath: "\(crosstoolDirectory)/onnx_gemm_transb.onnx"))
        try data.write(to: URL(fileURLWithPath: "\(dir)/model.pb"))
        #expect(try ModelFiles.registry.format(of: "\(dir)/model.pb") is ONNXModelFormat)
        #expect(!(try ModelFiles.registry.format(of: "\(crosstoolDirectory)/st_sequential_f32.safetensors") is ONNXModelFormat))
        #expect(try ModelFiles.importModel(path: "\(dir)/model.pb").model.metadata.layers.count == 2)
    }
}
