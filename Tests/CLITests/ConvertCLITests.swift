import Foundation
import NNCore
import NNFormat
import Testing

let interop = "\(packageRoot)/Fixtures/interop"

@Suite(.serialized) struct ConvertCLI {
    let dir = temporaryDirectory()

    func expectFailure(_ arguments: [String], status: Int32, message: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let result = try await run("nnconv", arguments)
        #expect(result.status == status, "stderr: \(result.stderr)", sourceLocation: sourceLocation)
        #expect(result.stderr == "\(message)\n", sourceLocation: sourceLocation)
    }

    @Test func importsABlogFileAndPrintsItsDecisions() async throws {
        let out = "\(dir)/blog.nnm"
        let result = try await run("nnconv", ["import", "\(interop)/blog_rows_mnist_784_16_10_f32.h5", "-o", out, "--scale", "1/255"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("blog HDF5 (W1, b1, W2, b2, ..., rows)"))
        #expect(result.stdout.contains("note: activations relu, softmax"))
        #expect(result.stdout.hasSuffix("wrote \(out) (784-16-10 relu/softmax, f32, 12730 parameters)\n"))
        let model = try NNMFormat.read(path: out)
        #expect(model.metadata.preprocessing == [.scale(factor: 1.0 / 255, offset: 0)])
        #expect(model.metadata.provenance.sourceFormat == "hdf5-blog-rows")
    }

    @Test func exportRoundTripIsByteIdenticalInBothLayouts() async throws {
        let model = "\(dir)/formula.nnm"
        try NNMFormat.write(formulaModel(), to: model)
        for layout in ["rows", "columns"] {
            let h5 = "\(dir)/formula-\(layout).h5", back = "\(dir)/back-\(layout).nnm"
            let exported = try await run("nnconv", ["export", model, "-o", h5, "--layout", layout])
            #expect(exported.status == 0)
            let imported = try await run("nnconv", ["import", h5, "-o", back])
            #expect(imported.status == 0, "\(imported.stderr)")
            #expect(FileManager.default.contents(atPath: model) == FileManager.default.contents(atPath: back), "\(layout)")
        }
    }

    @Test func exportedHDF5LoadsInThreeLinesOfH5py() async throws {
        let model = "\(dir)/formula.nnm"
        try NNMFormat.write(formulaModel(), to: model)
        let h5 = "\(dir)/formula.h5"
        let exported = try await run("nnconv", ["export", model, "-o", h5])
        #expect(exported.status == 0)
        // The blog's own forward pass on the exported arrays must agree with the .nnm reference.
        let script = """
            import h5py, numpy as np, json, subprocess, sys
            with h5py.File(sys.argv[1]) as f:
                W1, b1, W2, b2 = (f[k][()] for k in ("W1", "b1", "W2", "b2"))
                mean, std = f["nnm_tensors/preprocessing.mean"][()], f["nnm_tensors/preprocessing.std"][()]
                assert f.attrs["activations"] == "relu,softmax" and f.attrs["layout"] == "rows"
            X = np.arange(2 * 784, dtype=np.float64).reshape(2, 784) % 256
            X = X - mean; m = std != 0; X[:, m] = X[:, m] / std[m]
            A1 = np.maximum(0, X @ W1 + b1); Z2 = A1 @ W2 + b2
            e = np.exp(Z2 - Z2.max(axis=1, keepdims=True)); print(json.dumps((e / e.sum(axis=1, keepdims=True)).argmax(axis=1).tolist()))
            """
        let result = try await python(["-c", script, h5])
        #expect(result.status == 0, "\(result.stderr)")
        let reference = try await python(["-c", """
            import sys, json, numpy as np
            sys.path.insert(0, sys.argv[2]); sys.argv = sys.argv[:2]
            import nnm
            h, t = nnm.load(sys.argv[1])
            X = np.arange(2 * 784, dtype=np.float64).reshape(2, 784) % 256
            X = X - t["preprocessing.mean"]; m = t["preprocessing.std"] != 0; X[:, m] = X[:, m] / t["preprocessing.std"][m]
            A1 = np.maximum(0, X @ t["layers.0.weight"] + t["layers.0.bias"]); Z2 = A1 @ t["layers.1.weight"] + t["layers.1.bias"]
            print(json.dumps(Z2.argmax(axis=1).tolist()))
            """, model, "\(packageRoot)/Schemas"])
        #expect(reference.status == 0, "\(reference.stderr)")
        #expect(result.stdout == reference.stdout)
    }

    @Test func zscoreStatisticsFromAnIDXFile() async throws {
        let out = "\(dir)/z.nnm"
        let result = try await run("nnconv", ["import", "\(interop)/blog_rows_mnist_784_16_10_f32.h5", "-o", out,
                                        "--normalize", "zscore", "--stats", fashionTestImages])
        #expect(result.status == 0, "\(result.stderr)")
        let model = try NNMFormat.read(path: out)
        // NumPy: X = t10k images as float64; X.mean(axis=0)[350], X.std(axis=0)[350].
        let stats = try await python(["-c", """
            import gzip, numpy as np, sys
            d = gzip.open(sys.argv[1]).read(); X = np.frombuffer(d, np.uint8, offset=16).reshape(-1, 784).astype(np.float64)
            print(repr(float(X.mean(axis=0)[350])), repr(float(X.std(axis=0)[350])), int((X.std(axis=0) == 0).sum()))
            """, fashionTestImages])
        let parts = stats.stdout.split(separator: " ").map { Double($0.trimmingCharacters(in: .whitespacesAndNewlines))! }
        let mean = model.tensor("preprocessing.mean")!.doubles(), std = model.tensor("preprocessing.std")!.doubles()
        #expect(abs(mean[350] - parts[0]) <= 1e-12 * abs(parts[0]))
        #expect(abs(std[350] - parts[1]) <= 1e-12 * abs(parts[1]))
        #expect(std.filter { $0 == 0 }.count == Int(parts[2]))
    }

    @Test func diffReportsDifferencesWithExitStatus1() async throws {
        let a = "\(dir)/a.nnm", b = "\(dir)/b.nnm"
        var model = formulaModel()
        try NNMFormat.write(model, to: a)
        var w = model.tensor("layers.1.bias")!.floats()
        w[0] += 0.5
        model.setTensor("layers.1.bias", Tensor(w, shape: [10]))
        try NNMFormat.write(model, to: b)
        let result = try await run("nnconv", ["diff", a, b, "--data", fashionTestImages, "--limit", "100"])
        #expect(result.status == 1)
        #expect(result.stdout.contains("layers.1.bias (f32 10): max abs 0.5, max rel 1.0: DIFFERS"))
        #expect(result.stdout.contains("predictions: "))
        #expect(result.stdout.hasSuffix("different\n"))
        let same = try await run("nnconv", ["diff", a, a])
        #expect(same.status == 0)
        #expect(same.stdout.hasSuffix("equivalent\n"))
    }

    @Test func validateFindsTheCorruptTensor() async throws {
        let path = "\(dir)/v.nnm"
        try NNMFormat.write(formulaModel(), to: path)
        let ok = try await run("nnconv", ["validate", path])
        #expect(ok.status == 0)
        #expect(ok.stdout == "\(path): valid .nnm 1.1: 6 tensors, all checksums match\n")
        var bytes = [UInt8](FileManager.default.contents(atPath: path)!)
        bytes[bytes.count - 100] ^= 1
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
        let bad = try await run("nnconv", ["validate", path])
        #expect(bad.status == 65)
        #expect(bad.stderr.hasPrefix("nnconv validate: \(path): corrupt: tensor 'preprocessing.std' fails its checksum"))
    }

    @Test func inspectListsEveryFormat() async throws {
        for file in ["tfkeras2_model.h5", "blog_cols_3layer_f64.h5", "k3_relu_softmax_legacy.h5"] {
            let result = try await run("nnconv", ["inspect", "\(interop)/\(file)"])
            #expect(result.status == 0, "\(file): \(result.stderr)")
            #expect(result.stdout.hasPrefix("\(interop)/\(file): HDF5\n"))
        }
        let json = try await run("nnconv", ["inspect", "\(interop)/blog_cols_3layer_f64.h5", "--json"])
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as! [String: Any]
        let tree = object["tree"] as! [String: Any]
        let names = (tree["children"] as! [[String: Any]]).map { $0["name"] as! String }
        #expect(names == ["W1", "W2", "W3", "b1", "b2", "b3"])
    }

    // MARK: Bad input

    @Test func notAModelFile() async throws {
        let out = "\(dir)/never.nnm"
        try await expectFailure(["import", "\(interop)/bad_text.h5", "-o", out], status: 65,
                          message: "nnconv import: \(interop)/bad_text.h5: not a model file: expected HDF5 (.h5), NumPy (.npz), Keras (.keras, .h5), .nnm, safetensors (.safetensors), ONNX (.onnx) or PyTorch (.pth, .pt)")
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    @Test func missingSource() async throws {
        try await expectFailure(["import", "\(dir)/absent.h5"], status: 66, message: "nnconv import: \(dir)/absent.h5: cannot open: No such file or directory")
    }

    @Test func emptySource() async throws {
        try await expectFailure(["import", "\(interop)/bad_empty.h5", "-o", "\(dir)/x.nnm"], status: 65,
                          message: "nnconv import: \(interop)/bad_empty.h5: the file is empty")
    }

    @Test func ambiguousNeedsLayout() async throws {
        let out = "\(dir)/square.nnm"
        try await expectFailure(["import", "\(interop)/ambiguous_square_8x8_f64.h5", "-o", out], status: 65,
                          message: "nnconv import: \(interop)/ambiguous_square_8x8_f64.h5: the shapes W1 8x8, b1 8; W2 8x8, b2 8 chain both as rows and as columns; pass --layout rows or --layout columns to choose")
        #expect(!FileManager.default.fileExists(atPath: out))
        let forced = try await run("nnconv", ["import", "\(interop)/ambiguous_square_8x8_f64.h5", "-o", out, "--layout", "rows"])
        #expect(forced.status == 0)
    }

    @Test func shapesThatDoNotChain() async throws {
        try await expectFailure(["import", "\(interop)/bad_shapes_dont_chain.h5", "-o", "\(dir)/c.nnm"], status: 65,
                          message: "nnconv import: \(interop)/bad_shapes_dont_chain.h5: W1, W2: the shapes W1 12x6, b1 1x6; W2 5x3, b2 1x3 chain neither as rows (W (in, out), b (1, out)) nor as columns (W (out, in), b (out, 1))")
    }

    @Test func stringWhereNumbersBelong() async throws {
        let result = try await run("nnconv", ["import", "\(interop)/bad_string_W1.h5", "-o", "\(dir)/s.nnm"])
        #expect(result.status == 65)
        #expect(result.stderr.hasPrefix("nnconv import: \(interop)/bad_string_W1.h5: /W1: expected floating-point or integer weights, found string"))
    }

    @Test func kerasBatchNormalizationImportsAndBadOnesAreOneLine() async throws {
        // Refused before format 1.2, with a garbled line for the legacy file.
        let result = try await run("nnconv", ["import", "\(interop)/k3_unsupported_batchnorm_legacy.h5", "-o", "\(dir)/k.nnm"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("(12 -> 6 relu, bn, 3 softmax, f32, 111 parameters)"), "\(result.stdout)")
        let keras = "\(packageRoot)/Fixtures/keras"
        try await expectFailure(["import", "\(keras)/bad_variance_size_legacy.h5", "-o", "\(dir)/v.nnm"], status: 65,
                          message: "nnconv import: \(keras)/bad_variance_size_legacy.h5: batch_normalization/moving_variance: expected 4, found 3")
        try await expectFailure(["import", "\(keras)/bad_unknown_activation.keras", "-o", "\(dir)/u.nnm"], status: 65,
                          message: "nnconv import: \(keras)/bad_unknown_activation.keras: Keras layer 'dense' uses activation 'mish', which is not supported (linear, relu, sigmoid, tanh, softmax, relu6, leaky_relu, elu, selu, gelu, softplus, silu, swish, hard_sigmoid, log_softmax)")
    }

    @Test func wrongActivationCount() async throws {
        try await expectFailure(["import", "\(interop)/blog_rows_2layer_f64.h5", "-o", "\(dir)/a.nnm", "--activations", "relu"], status: 64,
                          message: "nnconv import: --activations: \(interop)/blog_rows_2layer_f64.h5 has 2 layers, but 1 activations were given")
    }

    @Test func badOptionsAreUsageErrors() async throws {
        try await expectFailure(["import", "\(interop)/blog_rows_2layer_f64.h5", "--scale", "half"], status: 64,
                          message: "nnconv import: --scale expects a number or a fraction such as 1/255, found 'half'")
        try await expectFailure(["import", "\(interop)/blog_rows_2layer_f64.h5", "--normalize", "zscore"], status: 64,
                          message: "nnconv import: --normalize zscore needs --stats TRAIN-IMAGES.idx to compute the mean and std")
        try await expectFailure(["export", "\(dir)/nothing.nnm", "-o", "\(dir)/x.txt"], status: 64,
                          message: "nnconv export: \(dir)/x.txt: the output must end in .h5, .npz, .safetensors, .pth, .onnx or .keras")
    }

    @Test func aCrashInsideLibHDF5IsReportedNotSuffered() async throws {
        // Four flipped bits in a Keras file that make Debian's libhdf5 1.10.8 dereference NULL.
        let file = "\(packageRoot)/Tests/CLITests/Resources/crashes-libhdf5.h5"
        for command in [["inspect", file], ["import", file, "-o", "\(dir)/crash.nnm"]] {
            let result = try await run("nnconv", command)
            #expect(result.status == 65, "\(command): \(result.stderr)")
            #expect(result.stderr == "nnconv: \(file): a library crashed while reading (signal 11); the input is corrupt or hostile\n"
                    || result.stderr.hasPrefix("nnconv \(command[0]): \(file): "), "\(result.stderr)")
            #expect(result.stderr.split(separator: "\n").count == 1)
        }
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/crash.nnm"))
    }

    @Test func unwritableOutput() async throws {
        let result = try await run("nnconv", ["import", "\(interop)/blog_rows_2layer_f64.h5", "-o", "/nonexistent-dir/x.nnm"])
        #expect(result.status == 73)
        #expect(result.stderr == "nnconv import: /nonexistent-dir/x.nnm: cannot write: No such file or directory\n")
    }
}
