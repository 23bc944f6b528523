import Foundation
import NNConvert
import NNCore
import NNModelFiles
import NNTestSupport
import Testing

// Models using format 1.2 through the exports that carry the `.nnm` metadata (HDF5, .npz,
// safetensors): they come back bit for bit. (The ONNX export of every layer fixture is checked in
// onnxruntime by Tests/NNONNXTests/ONNXCNNExportTests.swift.)

@Suite struct Format12Exports {
    static let names = ["batch_norm after conv2d without bias, then max_pool2d", "batch_norm without gamma and beta",
                        "avg_pool2d pads 1,1,1,1 count_include_pad True", "global_max_pool2d then dense",
                        "activation gelu_approximatetanh", "dense without bias, logits stated", "conv2d pads 0,0,1,1 stride 2 (TF same)"]

    @Test(arguments: LayerFixture.all.filter { names.contains($0.name) }, ["h5", "npz", "safetensors"])
    func exportsCarryTheModel(fixture: LayerFixture, suffix: String) throws {
        let model = try fixture.model(.float32)
        let path = scratchDirectory("nnm-export-12") + "/model.\(suffix)"
        _ = try ModelFiles.export(try ValidatedModel(model), to: path)
        let back = try ModelFiles.importModel(path: path).model
        #expect(back.metadata.input == model.metadata.input)
        #expect(back.metadata.layers == model.metadata.layers)
        #expect(back.metadata.output == model.metadata.output)
        #expect(back.tensors.map(\.name) == model.tensors.map(\.name))
        for t in model.tensors { #expect(t.tensor.isBitIdentical(to: back.tensor(t.name)!), "\(t.name)") }
    }

    /// Every layer fixture PyTorch can express goes to safetensors in PyTorch's layout and comes
    /// back bit for bit; those it cannot (max pooling with asymmetric padding, an average that
    /// does not count asymmetric padding) are refused by name. With NNM_KEEP_PYTORCH_EXPORTS=DIR
    /// the files are kept there with their inputs and NumPy's outputs, for
    /// Fixtures/check_pytorch_exports.py, which runs them in torch.
    @Test func pytorchLayoutOfEveryLayerFixture() throws {
        let keep = ProcessInfo.processInfo.environment["NNM_KEEP_PYTORCH_EXPORTS"]
        let dir = keep ?? scratchDirectory("nnm-export-pt")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var exported = 0, cases: [JSONValue] = []
        for (i, fixture) in LayerFixture.all.enumerated() {
            let model = try fixture.model(.float32)
            let path = "\(dir)/case\(i).safetensors"
            do {
                _ = try ModelFiles.export(try ValidatedModel(model), to: path)
            } catch {
                #expect("\(error)".contains("PyTorch has no standard module for it"), "\(fixture.name): \(error)")
                continue
            }
            exported += 1
            let back = try ModelFiles.importModel(path: path).model
            #expect(back.metadata.layers == model.metadata.layers, "\(fixture.name)")
            for t in model.tensors { #expect(t.tensor.isBitIdentical(to: back.tensor(t.name)!), "\(fixture.name): \(t.name)") }
            cases.append(.object(JSONObject([("file", .string("case\(i).safetensors")), ("name", .string(fixture.name)),
                                              ("input_shape", .array(model.metadata.input.shape.map { .integer(Int64($0)) })),
                                              ("input", .array(fixture.input.map { .array($0.map { .number($0) }) })),
                                              ("expected", .array(fixture.expected.map { .array($0.map { .number($0) }) }))])))
        }
        #expect(exported >= LayerFixture.all.count - 3, "\(exported) of \(LayerFixture.all.count)")
        if keep != nil {
            try Data(JSONValue.array(cases).serialized().utf8).write(to: URL(fileURLWithPath: "\(dir)/cases.json"))
        }
    }

    @Test func fixtureNamesExist() {
        #expect(LayerFixture.all.filter { Self.names.contains($0.name) }.count == Self.names.count)
    }
}
