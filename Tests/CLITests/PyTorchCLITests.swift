import Foundation
import NNCore
import Testing

/// Files that torch 2.15 wrote (Fixtures/torch, made by Fixtures/generate_torch.py) through
/// `nnconv import` and `nn-infer`, against the outputs torch computed for the same 100 MNIST
/// test digits (`expected.npz`): top-1 identical, probabilities within 1e-4.
@Suite(.serialized) struct PyTorchCLI {
    let dir = temporaryDirectory()
    let torch = "\(packageRoot)/Fixtures/torch"

    /// The 100 digits of `inputs.npy` as an IDX file for nn-infer.
    func digits() throws -> String {
        let idx = "\(dir)/digits.idx"
        if !FileManager.default.fileExists(atPath: idx) {
            let made = try python(["-c", """
                import numpy as np, struct
                x = np.load('\(torch)/inputs.npy')
                open('\(idx)', 'wb').write(struct.pack('>BBBBIII', 0, 0, 8, 3, *x.shape) + x.tobytes())
                """])
            #expect(made.status == 0, "\(made.stderr)")
        }
        return idx
    }

    @Test(arguments: [("mlp_state.pth", "mlp"), ("mlp_state_legacy.pt", "mlp"), ("mlp_whole.pth", "mlp"),
                      ("mnist_cnn_state.pth", "mnist_cnn"), ("mnist_cnn_state_legacy.pt", "mnist_cnn"),
                      ("mlp.safetensors", "mlp"), ("mnist_cnn.safetensors", "mnist_cnn")])
    func importsAndPredictsAsTorch(file: String, model: String) throws {
        let nnm = "\(dir)/\(file).nnm"
        let imported = try run("nnconv", ["import", "\(torch)/\(file)", "-o", nnm, "--scale", "1/255"])
        #expect(imported.status == 0, "\(imported.stderr)")
        let inferred = try run("nn-infer", [nnm, try digits(), "--json", "--top", "10"])
        #expect(inferred.status == 0, "\(inferred.stderr)")
        let json = "\(dir)/\(file).json"
        try Data(inferred.stdout.utf8).write(to: URL(fileURLWithPath: json))
        let compared = try python(["-c", """
            import json, numpy as np
            e = np.load('\(torch)/expected.npz')
            probs, top = e['\(model)_probs'], e['\(model)_argmax']
            ours = json.load(open('\(json)'))['predictions']
            assert len(ours) == 100, len(ours)
            worst = 0.0
            for i, p in enumerate(ours):
                assert p['class'] == int(top[i]), (i, p['class'], int(top[i]))
                for entry in p['top']:
                    worst = max(worst, abs(entry['probability'] - probs[i, entry['class']]))
            assert worst <= 1e-4, worst
            print(worst)
            """])
        #expect(compared.status == 0, "\(compared.stderr)")
    }

    /// Bad options and what the format cannot hold yet: one line each, 64 for usage, 65 for files.
    @Test(arguments: [
        (["mlp_state.pth", "--max-tensor-bytes", "0"], Int32(64), "nnconv import: --max-tensor-bytes must be positive, not 0"),
        (["mnist_cnn_state.pth", "--arch", "conv:32"], 64, "nnconv import: --arch: 'conv:32': expected conv:FILTERS:HxW, e.g. conv:8:3x3"),
        (["mnist_cnn_state.pth", "--arch", "conv:32:3x3"], 64, "nnconv import: --arch states 1 convolutions, but TORCH/mnist_cnn_state.pth has 2 (conv1, conv2)"),
        (["mnist_cnn_state.pth", "--arch", "conv:32:3x3,conv:64:3x3"], 65,
         "nnconv import: TORCH/mnist_cnn_state.pth: fc1.weight: takes 9216 features, but the stated architecture gives 24x24x64 = 36864"),
        (["mlp_state.pth", "--max-tensor-bytes", "1000"], 65,
         "nnconv import: TORCH/mlp_state.pth: the tensors would take 407080 bytes, more than the 1000-byte budget for one import; raise it with --max-tensor-bytes if the file is trusted"),
        (["seq_cnn_state.pth"], 65, "nnconv import: TORCH/seq_cnn_state.pth: PyTorch module '1' (BatchNorm) is not supported: the .nnm format has no batch normalization layer yet"),
        (["seq_cnn.safetensors"], 65, "nnconv import: TORCH/seq_cnn.safetensors: PyTorch module '1' (BatchNorm) is not supported: the .nnm format has no batch normalization layer yet"),
        (["lenet_avg_whole.pth"], 65, "nnconv import: TORCH/lenet_avg_whole.pth: PyTorch module '2' (AvgPool2d) is not supported: the .nnm format has no such layer yet"),
    ] as [([String], Int32, String)])
    func refusals(arguments: [String], status: Int32, message: String) throws {
        let result = try run("nnconv", ["import", "\(torch)/\(arguments[0])", "-o", "\(dir)/refused.nnm"] + arguments.dropFirst())
        #expect(result.status == status, "\(result.stderr)")
        #expect(result.stderr == message.replacing("TORCH", with: torch) + "\n")
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/refused.nnm"))
    }

    @Test func customClassIsRefusedWithTheReason() throws {
        let result = try run("nnconv", ["import", "\(torch)/custom_net_whole.pth", "-o", "\(dir)/custom.nnm"])
        #expect(result.status == 65)
        #expect(result.stderr == "nnconv import: \(torch)/custom_net_whole.pth: the model is a __main__.Net, a class defined in Python code: its forward() is not in the file, so the model cannot be rebuilt (nothing was run); save model.state_dict() instead and state the architecture\n")
    }

    /// Every hostile file of Fixtures/torch/hostile is refused with one line and status 65, and
    /// nothing in it runs (each payload would print a marker).
    @Test func hostilePicklesAreRefused() throws {
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(torch)/hostile/manifest.json"))) as! [String: Any]
        let cases = (manifest["files"] ?? manifest["cases"]) as! [[String: Any]]
        #expect(cases.count >= 30)
        for c in cases {
            let file = c["file"] as! String
            let result = try run("nnconv", ["import", "\(torch)/hostile/\(file)", "-o", "\(dir)/hostile.nnm"])
            #expect(!result.stdout.contains("NNM_HOSTILE_FIXTURE_EXECUTED") && !result.stderr.contains("NNM_HOSTILE_FIXTURE_EXECUTED"))
            if (c["expect"] as? String) == "error_or_load" { continue }
            #expect(result.status == 65, "\(file): \(result.status) \(result.stderr)")
            #expect(result.stderr.split(separator: "\n").count == 1, "\(file): \(result.stderr)")
            if let keywords = c["error_keywords_any"] as? [String], !keywords.isEmpty {
                #expect(keywords.contains { result.stderr.contains($0) }, "\(file): \(result.stderr) lacks \(keywords)")
            }
        }
    }
}
