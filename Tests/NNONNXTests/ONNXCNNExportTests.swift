import Foundation
import NNConvert
import NNCore
import NNModelFiles
import NNTestSupport
import Testing
@testable import NNONNX

/// Every layer fixture (Fixtures/layers/expected.json: convolutions with every padding, pools,
/// global pools, batch normalization before and after a flatten, every format-1.2 activation)
/// exported to ONNX and run in onnxruntime: the same outputs as our engine (f32) and as NumPy's
/// definitions within 1e-5; CNNs take NCHW inputs.
@Suite("CNN exports run in onnxruntime")
struct ONNXCNNExportTests {
    @Test(.enabled(if: pythonToolsReady, "needs python3 with numpy, onnx, onnxruntime and safetensors"), arguments: LayerFixture.all)
    func layerFixtureRunsInOnnxruntime(fixture: LayerFixture) throws {
        let dir = scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = try fixture.model(.float32)
        try ONNXExport.write(model, to: "\(dir)/m.onnx")
        let ours = try predictions(model, fixture.input)
        let theirs = try runPythonCheck(["input": fixture.input, "onnx": "\(dir)/m.onnx", "safetensors": NSNull()], directory: dir)
        let onnx = try #require(theirs["onnx"])
        #expect(maxDifference(onnx, ours) <= 1e-5, "\(fixture.name): onnxruntime differs from our engine by \(maxDifference(onnx, ours))")
        #expect(maxDifference(onnx, fixture.expected) <= 1e-5, "\(fixture.name): onnxruntime differs from NumPy by \(maxDifference(onnx, fixture.expected))")
    }

    /// An export comes back through the importer with the same kinds of layers and the same
    /// outputs (kernels OIHW and back, the first dense layer's rows permuted and back). Swish
    /// and tanh-GELU are written as formulas the importer does not read back.
    @Test(arguments: LayerFixture.all.filter { f in !f.name.contains("gelu_approximatetanh") && !f.name.contains("swish") })
    func cnnExportImportsBack(fixture: LayerFixture) throws {
        let dir = scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = try fixture.model(.float32)
        try ONNXExport.write(model, to: "\(dir)/m.onnx")
        let back = try ModelFiles.importModel(path: "\(dir)/m.onnx").model
        #expect(back.metadata.layers.map(\.kind) == model.metadata.layers.map(\.kind), "\(fixture.name)")
        let ours = try predictions(model, fixture.input), again = try predictions(back, fixture.input)
        #expect(maxDifference(ours, again) <= 1e-6, "\(fixture.name): \(maxDifference(ours, again))")
    }
}

/// What `nnconv inspect` uses: external data located and checked, never read (its tensors are
/// zeros), while an import reads torch's weights.
@Test func declaredOnlyReadsNoExternalData() throws {
    var root = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { root.deleteLastPathComponent() }
    let path = root.appendingPathComponent("Fixtures/torch/lenet_avg.onnx").path
    let proto = try ONNXFile.read(path: path)
    let declared = try ONNXImporter.importModel(proto, path: path, options: ImportOptions(), declaredOnly: true).model
    let imported = try ONNXImporter.importModel(proto, path: path, options: ImportOptions()).model
    // 0.weight (6x1x5x5) is external in the dynamo export.
    #expect(declared.tensor("layers.0.weight")!.doubles().allSatisfy { $0 == 0 })
    #expect(imported.tensor("layers.0.weight")!.doubles().contains { $0 != 0 })
    #expect(declared.metadata.layers == imported.metadata.layers)
}

/// Convolutions the `.nnm` format cannot hold are refused with one line naming the node.
@Suite("ONNX convolutions refused")
struct ONNXConvRefusals {
    func ints(_ name: String, _ values: [Int64]) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .ints
        a.ints = values
        return a
    }

    func convModel(_ attributes: [Onnx_AttributeProto], kernelShape: [Int] = [2, 1, 3, 3], irVersion: Int64 = 7) -> Onnx_ModelProto {
        let count = kernelShape.reduce(1, *)
        let w = ONNXFile.initializer("W", (0..<count).map { Float($0) / 10 }, shape: kernelShape)
        var model = graphModel(opset: 13, nodes: [node("Conv", ["x", "W"], "y", name: "conv", attributes: attributes)], initializers: [w])
        model.irVersion = irVersion
        model.graph.input = [ONNXExport.imageInfo("x", shape: [6, 6, 2])]
        return model
    }

    @Test func dilationGroupAndCeilMode() throws {
        var group = Onnx_AttributeProto()
        group.name = "group"
        group.type = .int
        group.i = 2
        #expect(errorMessage { _ = try ONNXImporter.importModel(convModel([ints("dilations", [2, 2])]), path: "m.onnx", options: ImportOptions()) }
                == "m.onnx: node 'conv' (Conv): dilations [2, 2]; only dilation 1 is supported")
        #expect(errorMessage { _ = try ONNXImporter.importModel(convModel([group]), path: "m.onnx", options: ImportOptions()) }
                == "m.onnx: node 'conv' (Conv): group 2; only group 1 is supported")
        #expect(errorMessage { _ = try ONNXImporter.importModel(convModel([], irVersion: 15), path: "m.onnx", options: ImportOptions()) }
                == "m.onnx: IR version 15 is not supported (supported: 3 to 14)")
    }

    /// auto_pad SAME_UPPER puts the odd padding cell at the end, SAME_LOWER at the start.
    @Test func autoPad() throws {
        for (mode, pads) in [("SAME_UPPER", [0, 0, 1, 1]), ("SAME_LOWER", [1, 1, 0, 0]), ("VALID", [0, 0, 0, 0])] {
            var auto = Onnx_AttributeProto()
            auto.name = "auto_pad"
            auto.type = .string
            auto.s = Data(mode.utf8)
            let model = convModel([auto, ints("strides", [2, 2]), ints("kernel_shape", [3, 3])], kernelShape: [2, 2, 3, 3])
            let result = try ONNXImporter.importModel(model, path: "m.onnx", options: ImportOptions())
            let g = try #require(result.model.metadata.layers.first?.spatial)
            let expected: Padding = pads == [0, 0, 0, 0] ? .valid : .explicit(top: pads[0], left: pads[1], bottom: pads[2], right: pads[3])
            #expect(g.padding == expected, "\(mode): \(g.padding)")
            #expect(g.outputShape == (mode == "VALID" ? [2, 2, 2] : [3, 3, 2]), "\(mode)")
        }
    }
}
