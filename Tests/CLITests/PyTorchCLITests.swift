import Foundation
import NNCore
import Testing

/// Files that torch 2.15 wrote (Fixtures/torch, made by Fixtures/generate_torch.py) through
/// `nnconv import` and `nn-infer`, against the outputs torch computed for the same 100 MNIST
/// test digits (`expected.npz`): top-1 identical, probabilities within 1e-4.
@Suite(.serialized) struct PyTorchCLI {
    let dir = temporaryDirectory()
    let torch = "\(packageRoot)/Fixtures/torch"

    var comparison: TorchComparison { TorchComparison(dir: dir) }
    func digits() async throws -> String { try await comparison.digits() }

    /// State dicts do not record activations or batch-norm epsilons: the defaults (ReLU, logits,
    /// 1e-5) fit mlp and mnist_cnn, and `--arch`/`--activations` state the others as a user would.
    static let seqCNNArch = ["--arch", "conv:8:3x3:p=1:identity,bn:relu,pool:2,conv:16:3x3:s=2:identity,bn:relu,avgpool:2:include-pad",
                             "--activations", "gelu,softmax"]
    static let lenetArch = ["--arch", "conv:6:5x5:p=2:tanh,avgpool:2:include-pad,conv:16:5x5:leaky_relu(alpha=0.1),avgpool:2:include-pad",
                            "--activations", "tanh,leaky_relu(alpha=0.1),log_softmax"]

    @Test(arguments: [("mlp_state.pth", "mlp", []), ("mlp_state_legacy.pt", "mlp", []), ("mlp_whole.pth", "mlp", []),
                      ("mnist_cnn_state.pth", "mnist_cnn", []), ("mnist_cnn_state_legacy.pt", "mnist_cnn", []),
                      ("mlp.safetensors", "mlp", []), ("mnist_cnn.safetensors", "mnist_cnn", []),
                      ("seq_cnn_whole.pth", "seq_cnn", []), ("lenet_avg_whole.pth", "lenet_avg", []),
                      ("seq_cnn_state.pth", "seq_cnn", seqCNNArch), ("seq_cnn_state_legacy.pt", "seq_cnn", seqCNNArch),
                      ("seq_cnn.safetensors", "seq_cnn", seqCNNArch),
                      ("lenet_avg_state.pth", "lenet_avg", lenetArch), ("lenet_avg_state_legacy.pt", "lenet_avg", lenetArch),
                      ("lenet_avg_state_f16.pth", "lenet_avg_f16", lenetArch), ("lenet_avg_state_bf16.pth", "lenet_avg_bf16", lenetArch),
                      ("lenet_avg.safetensors", "lenet_avg", lenetArch)] as [(String, String, [String])])
    func importsAndPredictsAsTorch(file: String, model: String, options: [String]) async throws {
        try await comparison.expectImportPredictsAsTorch(file: file, model: model, options: options)
    }

    /// nn-infer says what a model's outputs are and how it shows them: torch's logits (mlp, no
    /// Softmax module), log-probabilities (lenet_avg, LogSoftmax) and probabilities (seq_cnn,
    /// Softmax). `--raw` prints the outputs themselves, which must be torch's (`<model>_output`),
    /// as "value" unless they are probabilities.
    @Test(arguments: [("mlp_whole.pth", "mlp", "logits", "softmax"), ("lenet_avg_whole.pth", "lenet_avg", "log_probabilities", "exp"),
                      ("seq_cnn_whole.pth", "seq_cnn", "probabilities", "none")])
    func outputKinds(file: String, model: String, kind: String, conversion: String) async throws {
        let nnm = "\(dir)/kinds-\(model).nnm"
        let imported = try await run("nnconv", ["import", "\(torch)/\(file)", "-o", nnm, "--scale", "1/255"])
        #expect(imported.status == 0, "\(imported.stderr)")
        let shown = try await run("nn-infer", [nnm, try digits(), "--json", "--top", "10"])
        let raw = try await run("nn-infer", [nnm, try digits(), "--json", "--top", "10", "--raw"])
        #expect(shown.status == 0 && raw.status == 0, "\(shown.stderr) \(raw.stderr)")
        let json = "\(dir)/kinds-\(model)"
        try Data(shown.stdout.utf8).write(to: URL(fileURLWithPath: json + ".json"))
        try Data(raw.stdout.utf8).write(to: URL(fileURLWithPath: json + "-raw.json"))
        let compared = try await python(["-c", """
            import json, numpy as np
            e = np.load('\(torch)/expected.npz')
            shown, raw = json.load(open('\(json).json')), json.load(open('\(json)-raw.json'))
            assert (shown['output_kind'], shown['conversion']) == ('\(kind)', '\(conversion)'), (shown['output_kind'], shown['conversion'])
            assert (raw['output_kind'], raw['conversion']) == ('\(kind)', 'none'), (raw['output_kind'], raw['conversion'])
            worst = 0.0
            key = 'probability' if '\(kind)' == 'probabilities' else 'value'
            for i, p in enumerate(raw['predictions']):
                for t in p['top']:
                    worst = max(worst, abs(t[key] - e['\(model)_output'][i, t['class']]))
            assert worst <= 1e-4, worst
            """])
        #expect(compared.status == 0, "\(compared.stderr)")
        let text = try await run("nn-infer", [nnm, try digits(), "--top", "1"])
        let line = text.stdout.split(separator: "\n").first { $0.hasPrefix("outputs:") }.map(String.init)
        switch kind {
        case "logits": #expect(line == "outputs: the model outputs logits; the probabilities shown are their softmax (--raw shows the logits)")
        case "log_probabilities": #expect(line?.contains("log-probabilities") == true, "\(line ?? "none")")
        default: #expect(line == nil, "\(line ?? "")")
        }
    }

    /// A pickled nn.Sequential imported and exported again gives the state dict torch wrote
    /// itself (`<model>.safetensors`, by safetensors.torch.save_file), tensor for tensor and bit
    /// for bit: through our safetensors export, and through our `.pth` export read with Python's
    /// own unpickler (a restricted one: it builds arrays from the storages and fails on any
    /// global that is not a state dict's). seq_cnn has a Dropout module, which holds nothing, so
    /// its keys shift by one after it and the tensors are compared in module order; the batch
    /// counters are not compared (ours are 0).
    @Test(arguments: ["lenet_avg", "seq_cnn"])
    func exportsGiveTorchsOwnStateDict(model: String) async throws {
        let nnm = "\(dir)/\(model)-export.nnm"
        let imported = try await run("nnconv", ["import", "\(torch)/\(model)_whole.pth", "-o", nnm])
        #expect(imported.status == 0, "\(imported.stderr)")
        for suffix in ["safetensors", "pth"] {
            let exported = try await run("nnconv", ["export", nnm, "-o", "\(dir)/\(model)-export.\(suffix)"])
            #expect(exported.status == 0, "\(exported.stderr)")
        }
        let compared = try await python(["-c", """
            import pickle, zipfile, collections, numpy as np
            from safetensors.numpy import load_file
            def ordered(d):
                return sorted(((k, v) for k, v in d.items() if not k.endswith('num_batches_tracked')),
                              key=lambda kv: (int(kv[0].split('.')[0]), kv[0]))
            reference = ordered(load_file('\(torch)/\(model).safetensors'))
            class Storage:
                def __init__(self, dtype): self.dtype = dtype
            storage_types = {'FloatStorage': np.float32, 'DoubleStorage': np.float64, 'HalfStorage': np.float16, 'LongStorage': np.int64}
            def rebuild(storage, offset, shape, stride, requires_grad, hooks):
                a = np.frombuffer(storage, dtype=storage.dtype_, count=-1)
                return np.lib.stride_tricks.as_strided(a[offset:], shape, [s * a.itemsize for s in stride]).copy()
            class Bytes(bytes): pass
            class Restricted(pickle.Unpickler):
                def __init__(self, f, zf):
                    super().__init__(f); self.zf = zf
                def find_class(self, module, name):
                    if (module, name) == ('collections', 'OrderedDict'): return collections.OrderedDict
                    if (module, name) == ('torch._utils', '_rebuild_tensor_v2'): return rebuild
                    if module == 'torch' and name in storage_types: return Storage(storage_types[name])
                    raise pickle.UnpicklingError(f'global {module}.{name} refused')
                def persistent_load(self, pid):
                    kind, storage, key, location, count = pid
                    assert kind == 'storage' and location == 'cpu', pid
                    b = Bytes(self.zf.read(f'archive/data/{key}')); b.dtype_ = storage.dtype
                    assert len(b) == count * np.dtype(storage.dtype).itemsize, (key, len(b), count)
                    return b
            zf = zipfile.ZipFile('\(dir)/\(model)-export.pth')
            assert zf.read('archive/byteorder') == b'little' and zf.read('archive/version').strip() == b'3'
            from_pth = Restricted(zf.open('archive/data.pkl'), zf).load()
            assert isinstance(from_pth, collections.OrderedDict)
            for ours in (ordered(load_file('\(dir)/\(model)-export.safetensors')), ordered(from_pth)):
                ours = [(k, v) for k, v in ours if '.' in k and k.split('.')[0].isdigit()]
                assert len(ours) == len(reference), ([k for k, _ in ours], [k for k, _ in reference])
                for (k, v), (rk, rv) in zip(ours, reference):
                    assert k.split('.')[1] == rk.split('.')[1], (k, rk)
                    if '\(model)' == 'lenet_avg': assert k == rk, (k, rk)
                    assert v.dtype == rv.dtype and v.shape == rv.shape and np.array_equal(v, rv), (k, rk, v.shape, rv.shape)
            print(len(reference))
            """])
        #expect(compared.status == 0, "\(compared.stderr)")
    }

    /// `nnconv inspect` lists a zip checkpoint from its pickle and the archive's directory: with
    /// every storage's bytes garbled (so that reading one fails its CRC-32), the listing is
    /// complete and the import fails. A whole model's attributes print as Python shows them.
    @Test func inspectReadsNoStorages() async throws {
        let garbled = "\(dir)/garbled.pth"
        let made = try await python(["-c", """
            import zipfile, shutil
            shutil.copy('\(torch)/mnist_cnn_state.pth', '\(garbled)')
            data = bytearray(open('\(garbled)', 'rb').read())
            for info in zipfile.ZipFile('\(torch)/mnist_cnn_state.pth').infolist():
                if '/data/' in info.filename:
                    off = info.header_offset
                    start = off + 30 + int.from_bytes(data[off + 26:off + 28], 'little') + int.from_bytes(data[off + 28:off + 30], 'little')
                    for k in range(start, start + min(info.file_size, 64)): data[k] ^= 0xFF
            open('\(garbled)', 'wb').write(data)
            """])
        #expect(made.status == 0, "\(made.stderr)")
        let listed = try await run("nnconv", ["inspect", garbled])
        #expect(listed.status == 0, "\(listed.stderr)")
        #expect(listed.stdout.contains("  conv2.weight  f32 64x32x3x3 (18432 values)\n"))
        #expect(listed.stdout.contains("  fc2.bias  f32 10 (10 values)\n"))
        let imported = try await run("nnconv", ["import", garbled, "-o", "\(dir)/garbled.nnm"])
        #expect(imported.status == 65)
        #expect(imported.stderr.contains("fails its CRC-32 check"), "\(imported.stderr)")
        let whole = try await run("nnconv", ["inspect", "\(torch)/seq_cnn_whole.pth"])
        #expect(whole.stdout.contains("    @kernel_size = (3, 3)\n    @stride = (1, 1)\n    @padding = (1, 1)\n"), "\(whole.stdout)")
        #expect(whole.stdout.contains("    @padding_mode = 'zeros'\n"))
    }

    /// A legacy file is listed from its pickles and each storage's element count (read where
    /// it lies): the same tensors as its zip twin; cut inside its last storage, inspect says so.
    @Test func inspectOfALegacyFile() async throws {
        func tensorLines(_ file: String) async throws -> [Substring] {
            let result = try await run("nnconv", ["inspect", file])
            #expect(result.status == 0, "\(result.stderr)")
            return result.stdout.split(separator: "\n").filter { $0.hasPrefix("  ") }
        }
        let legacy = try await tensorLines("\(torch)/mnist_cnn_state_legacy.pt")
        #expect(legacy.count == 8)
        await #expect(legacy == (try tensorLines("\(torch)/mnist_cnn_state.pth")))
        let cut = "\(dir)/cut_legacy.pt"
        let bytes = try Data(contentsOf: URL(fileURLWithPath: "\(torch)/mnist_cnn_state_legacy.pt"))
        try bytes.prefix(bytes.count - 20).write(to: URL(fileURLWithPath: cut))
        let refused = try await run("nnconv", ["inspect", cut])
        #expect(refused.status == 65)
        #expect(refused.stderr.contains("needs 4718592 bytes, 4718572 remain"), "\(refused.stderr)")
    }

    /// Bad options and what the format cannot hold yet: one line each, 64 for usage, 65 for files.
    @Test(arguments: [
        (["mlp_state.pth", "--max-tensor-bytes", "0"], Int32(64), "nnconv import: --max-tensor-bytes must be positive, not 0"),
        (["mnist_cnn_state.pth", "--arch", "conv:32"], 64, "nnconv import: --arch: 'conv:32': expected conv:FILTERS:HxW, e.g. conv:8:3x3"),
        (["mnist_cnn_state.pth", "--arch", "conv:32:3x3"], 64, "nnconv import: --arch states conv, but TORCH/mnist_cnn_state.pth has conv, conv (conv1, conv2)"),
        (["seq_cnn_state.pth", "--arch", "conv:8:3x3:p=1,pool:2,conv:16:3x3:s=2,avgpool:2"], 64,
         "nnconv import: --arch states conv, conv, but TORCH/seq_cnn_state.pth has conv, bn, conv, bn (0, 1, 4, 5)"),
        (["mnist_cnn_state.pth", "--arch", "conv:32:3x3,conv:64:3x3"], 65,
         "nnconv import: TORCH/mnist_cnn_state.pth: fc1.weight: takes 9216 features, but the stated architecture gives 24x24x64 = 36864"),
        (["mlp_state.pth", "--max-tensor-bytes", "1000"], 65,
         "nnconv import: TORCH/mlp_state.pth: the tensors would take 407080 bytes, more than the 1000-byte budget for one import; raise it with --max-tensor-bytes if the file is trusted"),
    ] as [([String], Int32, String)])
    func refusals(arguments: [String], status: Int32, message: String) async throws {
        let result = try await run("nnconv", ["import", "\(torch)/\(arguments[0])", "-o", "\(dir)/refused.nnm"] + arguments.dropFirst())
        #expect(result.status == status, "\(result.stderr)")
        #expect(result.stderr == message.replacing("TORCH", with: torch) + "\n")
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/refused.nnm"))
    }

    @Test func customClassIsRefusedWithTheReason() async throws {
        let result = try await run("nnconv", ["import", "\(torch)/custom_net_whole.pth", "-o", "\(dir)/custom.nnm"])
        #expect(result.status == 65)
        #expect(result.stderr == "nnconv import: \(torch)/custom_net_whole.pth: the model is a __main__.Net, a class defined in Python code: its forward() is not in the file, so the model cannot be rebuilt (nothing was run); save model.state_dict() instead and state the architecture\n")
    }

    /// Every hostile file of Fixtures/torch/hostile is refused with one line and status 65, and
    /// nothing in it runs (each payload would print a marker).
    @Test func hostilePicklesAreRefused() async throws {
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(torch)/hostile/manifest.json"))) as! [String: Any]
        let cases = (manifest["files"] ?? manifest["cases"]) as! [[String: Any]]
        #expect(cases.count >= 30)
        for c in cases {
            let file = c["file"] as! String
            let result = try await run("nnconv", ["import", "\(torch)/hostile/\(file)", "-o", "\(dir)/hostile.nnm"])
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
