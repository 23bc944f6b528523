import Foundation
import NNCore
import Testing

/// ONNX graphs that torch 2.15 exported (Fixtures/torch, made by Fixtures/generate_torch.py):
/// the dynamo exporter's (`<model>.onnx` with its weights in `<model>.onnx.data`, opset 20) and
/// the TorchScript exporter's (`<model>_torchscript.onnx`, opset 17), through `nnconv import` and
/// `nn-infer`, against the outputs torch computed for the same 100 MNIST digits
/// (`expected.npz`): top-1 identical, probabilities within 1e-4. The graphs take pixels already
/// scaled by 1/255, so the import stores `--scale 1/255`.
@Suite(.serialized) struct ONNXCLI {
    let dir = temporaryDirectory()
    let torch = "\(packageRoot)/Fixtures/torch"
    let onnx = "\(packageRoot)/Fixtures/onnx"

    var comparison: TorchComparison { TorchComparison(dir: dir) }
    func digits() async throws -> String { try await comparison.digits() }

    @Test(arguments: [("mlp.onnx", "mlp"), ("mlp_torchscript.onnx", "mlp"), ("mnist_cnn.onnx", "mnist_cnn"),
                      ("seq_cnn.onnx", "seq_cnn"), ("seq_cnn_torchscript.onnx", "seq_cnn"),
                      ("lenet_avg.onnx", "lenet_avg"), ("lenet_avg_torchscript.onnx", "lenet_avg")])
    func importsAndPredictsAsTorch(file: String, model: String) async throws {
        try await comparison.expectImportPredictsAsTorch(file: file, model: model)
    }

    /// The output kind comes from the graph's end: logits without a softmax, log-probabilities
    /// after LogSoftmax, probabilities after Softmax.
    @Test(arguments: [("mlp.onnx", "logits"), ("lenet_avg.onnx", "log_probabilities"), ("seq_cnn_torchscript.onnx", "probabilities")])
    func outputKind(file: String, kind: String) async throws {
        let nnm = "\(dir)/kind-\(file).nnm"
        let imported = try await run("nnconv", ["import", "\(torch)/\(file)", "-o", nnm, "--scale", "1/255"])
        #expect(imported.status == 0, "\(imported.stderr)")
        let shown = try await run("nn-infer", [nnm, try digits(), "--json", "--top", "1"])
        #expect(shown.stdout.contains("\"output_kind\":\"\(kind)\"") || shown.stdout.contains("\"output_kind\": \"\(kind)\""), "\(shown.stdout.prefix(300))")
    }

    /// `nnconv inspect` describes a model with external data from the declarations alone: it
    /// works even when the data file is all zeros of the right size, and says what converts.
    @Test func inspectReadsNoWeightData() async throws {
        let copy = "\(dir)/inspect"
        try FileManager.default.createDirectory(atPath: copy, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: "\(torch)/lenet_avg.onnx", toPath: "\(copy)/lenet_avg.onnx")
        let size = try FileManager.default.attributesOfItem(atPath: "\(torch)/lenet_avg.onnx.data")[.size] as! Int
        // Zeros in mode 000 (unreadable unless the tests run as root): inspecting must not need
        // the data. That no byte is read is shown in NNONNXTests (the declared-only tensors are zeros).
        FileManager.default.createFile(atPath: "\(copy)/lenet_avg.onnx.data", contents: Data(count: size), attributes: [.posixPermissions: 0o000])
        let inspected = try await run("nnconv", ["inspect", "\(copy)/lenet_avg.onnx"])
        #expect(inspected.status == 0, "\(inspected.stderr)")
        #expect(inspected.stdout.contains("conv2d"), "\(inspected.stdout)")
        #expect(!inspected.stdout.contains("does not convert"), "\(inspected.stdout)")
    }

    /// Hostile external data (Fixtures/onnx, made by Fixtures/generate_onnx.py): each refused
    /// with one line that names the model and the problem, exit status 65, no output file.
    @Test(arguments: [
        ("absolute.onnx", "is an absolute path"),
        ("dotdot.onnx", "has a '..' component"),
        ("symlink_out.onnx", "outside the model's directory"),
        ("symlink_dir_out.onnx", "outside the model's directory"),
        ("missing.onnx", "is missing"),
        ("beyond.onnx", "lies beyond the end"),
        ("overflow.onnx", "lies beyond the end"),
        ("wrong_length.onnx", "disagrees with its dims"),
        ("fifo.onnx", "cannot be read"),
        ("device.onnx", "outside the model's directory"),
    ])
    func hostileExternalData(file: String, message: String) async throws {
        let work = "\(dir)/hostile"
        try prepareHostile(work)
        let out = "\(dir)/hostile-\(file).nnm"
        let result = try await run("nnconv", ["import", "\(work)/\(file)", "-o", out])
        #expect(result.status == 65, "\(result.status) \(result.stderr)")
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1 && lines[0].contains("\(work)/\(file)") && lines[0].contains(message), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    /// The hostile models in a scratch directory, with the links and the FIFO that git cannot
    /// hold: `outside.bin` one level up, `link.bin` -> it, `linked_dir` -> the parent, `fifo.bin`
    /// a FIFO, `device.bin` -> /dev/zero.
    func prepareHostile(_ work: String) throws {
        let fm = FileManager.default
        if fm.fileExists(atPath: "\(work)/fifo.bin") { return }
        try fm.createDirectory(atPath: work, withIntermediateDirectories: true)
        for name in try fm.contentsOfDirectory(atPath: onnx) where name.hasSuffix(".onnx") || name.hasSuffix(".bin") {
            try fm.copyItem(atPath: "\(onnx)/\(name)", toPath: "\(work)/\(name)")
        }
        fm.createFile(atPath: "\(dir)/outside.bin", contents: Data(count: 64))
        try fm.createSymbolicLink(atPath: "\(work)/link.bin", withDestinationPath: "\(dir)/outside.bin")
        try fm.createSymbolicLink(atPath: "\(work)/linked_dir", withDestinationPath: dir)
        try fm.createSymbolicLink(atPath: "\(work)/device.bin", withDestinationPath: "/dev/zero")
        #expect(mkfifo("\(work)/fifo.bin", 0o600) == 0)
    }
}
