import Foundation
import NNCore
import NNFormat
import Testing

let crosstool = "\(packageRoot)/Fixtures/crosstool"

/// `nnconv` with safetensors and ONNX: export, import, inspect, validate, diff, and bad input.
@Suite(.serialized) struct CrossToolCLI {
    let dir = temporaryDirectory()

    func expectFailure(_ arguments: [String], status: Int32, message: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let result = try await run("nnconv", arguments)
        #expect(result.status == status, "stderr: \(result.stderr)", sourceLocation: sourceLocation)
        #expect(result.stderr == "\(message)\n", sourceLocation: sourceLocation)
    }

    @Test func safetensorsRoundTripIsByteIdentical() async throws {
        let model = "\(dir)/formula.nnm", st = "\(dir)/formula.safetensors", back = "\(dir)/back.nnm"
        try NNMFormat.write(formulaModel(), to: model)
        let exported = try await run("nnconv", ["export", model, "-o", st])
        #expect(exported.status == 0, "\(exported.stderr)")
        #expect(exported.stdout == "wrote \(st) (PyTorch nn.Sequential(nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 10), nn.Softmax(dim=1)) on inputs N x 784; .nnm metadata in __metadata__)\n")
        let imported = try await run("nnconv", ["import", st, "-o", back])
        #expect(imported.status == 0, "\(imported.stderr)")
        #expect(imported.stdout.hasPrefix("\(st): nnm safetensors export\n"))
        #expect(FileManager.default.contents(atPath: model) == FileManager.default.contents(atPath: back))
    }

    @Test func onnxExportImportsBackEquivalent() async throws {
        let model = "\(dir)/formula.nnm", onnx = "\(dir)/formula.onnx", back = "\(dir)/from-onnx.nnm"
        try NNMFormat.write(formulaModel(), to: model)
        let exported = try await run("nnconv", ["export", model, "-o", onnx])
        #expect(exported.status == 0, "\(exported.stderr)")
        #expect(exported.stdout.hasSuffix("wrote \(onnx) (ONNX opset 13: input 'input' [batch, 784], output 'probabilities' [batch, 10])\n"))
        #expect(try await run("nnconv", ["import", onnx, "-o", back]).status == 0)
        let validate = try await run("nnconv", ["validate", onnx])
        #expect(validate.status == 0 && validate.stdout.hasPrefix("\(onnx): valid ONNX (opset 13, from nnconv "), "\(validate.stdout)")
        let inspect = try await run("nnconv", ["inspect", onnx])
        #expect(inspect.status == 0 && inspect.stdout.contains("Gemm 'layers.0.gemm'"), "\(inspect.stdout)")
        // The graph divides by 1 where the std is 0: that tensor differs, the predictions do not.
        let diff = try await run("nnconv", ["diff", model, onnx, "--data", fashionTestImages, "--limit", "200"])
        #expect(diff.stdout.contains("  preprocessing.std (f32 784): max abs 1.0, max rel 1.0: DIFFERS\n"), "\(diff.stdout)")
        #expect(diff.stdout.contains("  predictions: 200/200 agree (100.00 %), max probability difference 0.0\n"), "\(diff.stdout)")
    }

    @Test func importsPyTorchAndONNXFixtures() async throws {
        let st = try await run("nnconv", ["import", "\(crosstool)/st_named_fc_f16.safetensors", "-o", "\(dir)/fc.nnm"])
        #expect(st.status == 0, "\(st.stderr)")
        #expect(st.stdout.contains("note: layer order fc1, fc2, fc3: the only order in which the shapes chain; --layer-order overrides"))
        let ordered = try await run("nnconv", ["import", "\(crosstool)/st_ambiguous_square.safetensors", "-o", "\(dir)/sq.nnm",
                                         "--layer-order", "encoder,decoder", "--activations", "relu,identity"])
        #expect(ordered.status == 0, "\(ordered.stderr)")
        let onnx = try await run("nnconv", ["import", "\(crosstool)/onnx_mnist_preprocessing.onnx", "-o", "\(dir)/mnist.nnm", "--json"])
        #expect(onnx.status == 0, "\(onnx.stderr)")
        #expect(onnx.stdout.contains("\"format\": \"ONNX (opset 17, from generate_crosstool)\""), "\(onnx.stdout)")
    }

    @Test func badInputIsOneLineAndStatus65() async throws {
        try await expectFailure(["import", "\(crosstool)/bad_overlap.safetensors", "-o", "\(dir)/x.nnm"], status: 65,
                          message: "nnconv import: \(crosstool)/bad_overlap.safetensors: tensor 'b': data_offsets [4, 12] overlap tensor 'a' [0, 8]")
        try await expectFailure(["import", "\(crosstool)/st_ambiguous_square.safetensors", "-o", "\(dir)/x.nnm"], status: 65,
                          message: "nnconv import: \(crosstool)/st_ambiguous_square.safetensors: the layers decoder, encoder chain in more than one order (e.g. decoder, encoder and encoder, decoder); pass --layer-order decoder,encoder to choose")
        // (bad_conv.onnx is a valid CNN since convolutions are read.)
        try await expectFailure(["import", "\(crosstool)/bad_branch.onnx", "-o", "\(dir)/x.nnm"], status: 65,
                          message: "nnconv import: \(crosstool)/bad_branch.onnx: 'a' feeds 2 nodes (node 'gate', node 'candidate'); only a chain of nodes is supported")
        try await expectFailure(["import", "\(crosstool)/bad_truncated.onnx", "-o", "\(dir)/x.nnm"], status: 65,
                          message: "nnconv import: \(crosstool)/bad_truncated.onnx: not a valid ONNX model: the protobuf data is truncated (the file ends inside a field)")
        try await expectFailure(["import", "\(crosstool)/st_ambiguous_square.safetensors", "-o", "\(dir)/x.nnm", "--layer-order", "encoder"], status: 64,
                          message: "nnconv import: --layer-order: \(crosstool)/st_ambiguous_square.safetensors has the layers decoder, encoder, but encoder was given")
        try await expectFailure(["import", "\(dir)/absent.onnx", "-o", "\(dir)/x.nnm"], status: 66,
                          message: "nnconv import: \(dir)/absent.onnx: cannot open: No such file or directory")
    }
}
