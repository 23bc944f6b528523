import Foundation
import NNCore
import NNFormat
import NNTestSupport
import Testing

/// Whether python3 can import Keras with the JAX backend. CI installs them (`make setup`); there a
/// missing package must fail the test rather than skip it.
let kerasReady: Bool = {
    if ProcessInfo.processInfo.environment["CI"] != nil { return true }
    return (try? runWaiting("/usr/bin/env", ["python3", "-c", "import keras, jax"], environment: ["KERAS_BACKEND": "jax"]))?.status == 0
}()

/// `nnconv export -o x.keras` and `-o x.h5 --keras` on Keras-made models (Fixtures/keras) and on
/// every model of Fixtures/layers: Keras loads each file and predicts what `nn-infer` does.
@Suite(.serialized) struct KerasExportCLI {
    let dir = temporaryDirectory()

    /// One model to export: its .nnm, its inputs as rows of the sample shape, and its classes.
    struct Case {
        var name: String
        var nnm: String
        var input: [[Double]]
        var shape: [Int]
        var classes: Int
    }

    /// A float32 IDX file of the rows; a 1-D sample becomes 1 x n, since nn-infer reads a rank-2
    /// file as one image.
    func writeIDX(_ rows: [[Double]], shape: [Int], to path: String) throws {
        let dims = [rows.count] + (shape.count == 1 ? [1] + shape : shape)
        var bytes: [UInt8] = [0, 0, 0x0D, UInt8(dims.count)]
        for d in dims { bytes += withUnsafeBytes(of: UInt32(d).bigEndian, Array.init) }
        for v in rows.joined() { bytes += withUnsafeBytes(of: Float(v).bitPattern.bigEndian, Array.init) }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    /// What nn-infer computes for the rows: every output, in class order.
    func ours(_ c: Case) async throws -> [[Double]] {
        let idx = "\(dir)/\(c.name).idx"
        try writeIDX(c.input, shape: c.shape, to: idx)
        let result = try await run("nn-infer", [c.nnm, idx, "--json", "--raw", "--top", String(c.classes), "--show", "all"])
        #expect(result.status == 0, "\(c.name): \(result.stderr)")
        let root = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [String: Any]
        return (root["predictions"] as! [[String: Any]]).map { p in
            var row = [Double](repeating: .nan, count: c.classes)
            for entry in p["top"] as! [[String: Any]] {
                let k = entry["class"] as! Int
                row[k] = entry.first { $0.key != "class" }!.value as! Double
            }
            return row
        }
    }

    func cases() async throws -> [Case] {
        var cases: [Case] = []
        let keras = "\(packageRoot)/Fixtures/keras"
        let root = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(keras)/expected.json"))) as! [String: Any]
        for c in root["cases"] as! [[String: Any]] {
            let name = c["name"] as! String, nnm = "\(dir)/k3_\(name).nnm"
            let imported = try await run("nnconv", ["import", "\(keras)/k3_\(name).keras", "-o", nnm])
            #expect(imported.status == 0, "\(imported.stderr)")
            cases.append(Case(name: "k3_\(name)", nnm: nnm, input: c["input"] as! [[Double]], shape: c["input_shape"] as! [Int],
                              classes: c["classes"] as! Int))
        }
        // Deterministic inputs: a small linear congruential stream.
        var state: UInt64 = 2026
        func inputs(_ rows: Int, _ features: Int, scale: Double, offset: Double) -> [[Double]] {
            (0..<rows).map { _ in (0..<features).map { _ in
                state = state &* 6364136223846793005 &+ 1442695040888963407
                return (Double(state >> 40) / Double(1 << 24) * scale + offset).rounded(.down)
            } }
        }
        // The format 1.1 fixtures: a CNN whose kernels are true convolutions (flipped for Keras).
        for name in ["v1.1-mlp", "v1.1-cnn"] {
            let nnm = "\(packageRoot)/Fixtures/layers/\(name).nnm"
            let meta = try NNMFormat.read(path: nnm).metadata
            cases.append(Case(name: name, nnm: nnm, input: inputs(4, meta.input.features, scale: 8, offset: -4),
                              shape: meta.input.shape, classes: meta.outputSize))
        }
        // Preprocessing: a scale step (Rescaling) and z-score statistics (Normalization) in which
        // a quarter of the features are constant (std 0: only centred).
        let stats = "\(dir)/stats.idx"
        var images: [UInt8] = [0, 0, 0x08, 3, 0, 0, 0, 5, 0, 0, 0, 28, 0, 0, 0, 28]
        for image in 0..<5 { for pixel in 0..<784 { images.append(pixel % 4 == 0 ? 7 : UInt8((pixel * 31 + image * 57) % 256)) } }
        try Data(images).write(to: URL(fileURLWithPath: stats))
        for (name, options) in [("blog_scale", ["--scale", "1/255"]), ("blog_zscore", ["--normalize", "zscore", "--stats", stats])] {
            let nnm = "\(dir)/\(name).nnm"
            let imported = try await run("nnconv", ["import", "\(packageRoot)/Fixtures/interop/blog_rows_mnist_784_16_10_f32.h5", "-o", nnm] + options)
            #expect(imported.status == 0, "\(imported.stderr)")
            cases.append(Case(name: name, nnm: nnm, input: inputs(4, 784, scale: 256, offset: 0), shape: [28, 28], classes: 10))
        }
        for (i, fixture) in LayerFixture.all.enumerated() {
            let model = try fixture.model(.float32)
            let nnm = "\(dir)/layers_\(i).nnm"
            try NNMFormat.write(try ValidatedModel(model), to: nnm)
            cases.append(Case(name: "layers_\(i) (\(fixture.name))", nnm: nnm, input: fixture.input, shape: model.metadata.input.shape,
                              classes: model.metadata.outputSize))
        }
        return cases
    }

    @Test(.enabled(if: kerasReady, "needs python3 with keras and jax"))
    func kerasLoadsOurExportsAndPredictsAsWeDo() async throws {
        var request: [[String: Any]] = []
        var expected: [String: (ours: [[Double]], name: String)] = [:]
        var refused: [String] = []
        for c in try await cases() {
            let outputs = try await ours(c)
            let safe = c.name.prefix { $0 != " " }
            for (file, extra) in [("\(dir)/\(safe).keras", [String]()), ("\(dir)/\(safe).h5", ["--keras"])] {
                // The Keras-made models go both ways; the layer models as .keras only (each load costs Keras a second).
                if extra == ["--keras"], c.name.hasPrefix("layers_") { continue }
                let result = try await run("nnconv", ["export", c.nnm, "-o", file] + extra)
                if result.status == 65 {
                    // One line, naming the output and what Keras cannot express.
                    #expect(result.stderr.hasPrefix("nnconv export: \(file): layers[") && result.stderr.hasSuffix("which a Keras model cannot express\n")
                            || result.stderr.contains("which a Keras model cannot express (Keras has GELU's tanh form"), "\(result.stderr)")
                    #expect(result.stderr.split(separator: "\n").count == 1)
                    #expect(!FileManager.default.fileExists(atPath: file))
                    refused.append(c.name)
                    continue
                }
                #expect(result.status == 0, "\(c.name): \(result.stderr)")
                #expect(result.stdout.hasPrefix("wrote \(file) (Keras "), "\(result.stdout)")
                request.append(["file": file, "input": c.input, "input_shape": c.shape])
                expected[file] = (outputs, c.name)
                // Our importer reads the export back (Rescaling, Normalization, Reshape and
                // ZeroPadding2D included) to a model that predicts the same.
                var back = c
                back.nnm = file + ".nnm"
                let imported = try await run("nnconv", ["import", file, "-o", back.nnm])
                #expect(imported.status == 0, "\(c.name): \(imported.stderr)")
                if imported.status == 0 {
                    let again = try await ours(back)
                    #expect(maxDifference(outputs, again) <= 1e-6, "\(c.name): \(file) imported back: \(maxDifference(outputs, again))")
                }
            }
        }
        // Exactly what Keras has no form for: padded-cell counting under 'same', ignored padded
        // cells or max pooling under explicit pads, and GELU's tanh form.
        #expect(refused.sorted() == [
            "layers_20 (avg_pool2d same count_include_pad True)", "layers_21 (avg_pool2d pads 1,1,1,1 count_include_pad False)",
            "layers_23 (avg_pool2d pads 0,1,2,0 count_include_pad False)", "layers_28 (max_pool2d pads 1,1,1,1 on negative inputs)",
            "layers_6 (activation gelu_approximatetanh)",
        ])
        let requestPath = "\(dir)/request.json"
        try JSONSerialization.data(withJSONObject: request).write(to: URL(fileURLWithPath: requestPath))
        let result = try await python(["\(packageRoot)/Tests/CLITests/keras_predict.py", requestPath])
        #expect(result.status == 0, "\(result.stderr)")
        let answers = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [String: Any]
        #expect(answers.count == expected.count)
        var worst = 0.0
        for (file, (ours, name)) in expected {
            guard let theirs = answers[file] as? [[Double]] else {
                Issue.record("\(name): \(file): \(answers[file] ?? "no answer")")
                continue
            }
            let difference = maxDifference(ours, theirs)
            worst = max(worst, difference)
            #expect(difference <= 1e-5, "\(name): \(file): max abs difference \(difference)")
            let top1 = { (rows: [[Double]]) in rows.map { r in r.indices.max { r[$0] < r[$1] }! } }
            #expect(top1(ours) == top1(theirs), "\(name): \(file)")
        }
        print("Keras export: \(expected.count) files loaded by Keras, max abs difference from nn-infer \(worst)")
    }

    @Test func kerasOptionNeedsAnH5Output() async throws {
        let result = try await run("nnconv", ["export", "\(packageRoot)/Fixtures/layers/v1.1-mlp.nnm", "-o", "\(dir)/m.npz", "--keras"])
        #expect(result.status == 64)
        #expect(result.stderr == "nnconv export: --keras: the output must end in .h5 (a .keras output is always a Keras model)\n")
    }
}
