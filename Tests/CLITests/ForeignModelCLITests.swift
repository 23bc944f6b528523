import Foundation
import Testing

/// `nn-infer` on models that are not `.nnm`: converted by nnconv for the run, with the import
/// options passed on, the converter's notes on standard error, and one-line errors.
@Suite(.serialized) struct ForeignModelCLI {
    let dir = temporaryDirectory()
    var comparison: TorchComparison { TorchComparison(dir: dir) }

    /// Every container torch writes, run directly: the classes and probabilities are torch's own
    /// (expected.npz), as after an explicit `nnconv import`.
    @Test(arguments: [("mlp_whole.pth", "mlp", []), ("mlp_state_legacy.pt", "mlp", []), ("mnist_cnn.safetensors", "mnist_cnn", []),
                      ("lenet_avg_state.pth", "lenet_avg", PyTorchCLI.lenetArch), ("lenet_avg.onnx", "lenet_avg", []),
                      ("seq_cnn_torchscript.onnx", "seq_cnn", [])] as [(String, String, [String])])
    func predictsAsTorchWithoutImport(file: String, model: String, options: [String]) async throws {
        let notes = try await comparison.expectInferencePredictsAsTorch(file: file, model: model, options: options)
        #expect(notes.contains("nn-infer: \(comparison.torch)/\(file): note: "), "\(notes)")
        #expect(notes.contains("converted by nnconv for this run"), "\(notes)")
    }

    /// A Keras file and a blog .h5 give the same JSON predictions directly as through `nnconv
    /// import` (the import itself is checked against Keras and NumPy elsewhere); the JSON names
    /// the format and carries the notes.
    @Test(arguments: [("Fixtures/interop/k3_cnn.keras", [String]()),
                      ("Fixtures/interop/blog_rows_mnist_784_16_10_f32.h5", ["--activations", "relu,softmax", "--scale", "1/255"])])
    func sameAsImportThenInfer(file: String, options: [String]) async throws {
        let source = "\(packageRoot)/\(file)"
        let nnm = "\(dir)/converted.nnm"
        let imported = try await run("nnconv", ["import", source, "-o", nnm] + options)
        #expect(imported.status == 0, "\(imported.stderr)")
        let digits = try await comparison.digits()
        let viaImport = try await run("nn-infer", [nnm, digits, "--json", "--top", "10"])
        let direct = try await run("nn-infer", [source, digits, "--json", "--top", "10"] + options)
        #expect(viaImport.status == 0 && direct.status == 0, "\(viaImport.stderr)\(direct.stderr)")
        let a = try JSONSerialization.jsonObject(with: Data(viaImport.stdout.utf8)) as! [String: Any]
        let b = try JSONSerialization.jsonObject(with: Data(direct.stdout.utf8)) as! [String: Any]
        #expect(NSArray(array: a["predictions"] as! [Any]).isEqual(to: b["predictions"] as! [Any]))
        #expect(a["model_format"] == nil)
        #expect((b["model_format"] as? String)?.isEmpty == false)
        #expect(b["model_notes"] is [String])
    }

    @Test func requireNNMRefusesOtherFormats() async throws {
        let refused = try await run("nn-infer", ["\(comparison.torch)/mlp_whole.pth", try comparison.digits(), "--require-nnm"])
        #expect(refused.status == 65)
        #expect(refused.stderr == "nn-infer: \(comparison.torch)/mlp_whole.pth: is not a .nnm model (--require-nnm); convert it with: nnconv import \(comparison.torch)/mlp_whole.pth\n")
        #expect(refused.stdout.isEmpty)
    }

    @Test func importOptionsOnANNMModelAreUsageErrors() async throws {
        let nnm = "\(dir)/mlp.nnm"
        #expect(try await run("nnconv", ["import", "\(comparison.torch)/mlp_whole.pth", "-o", nnm]).status == 0)
        let refused = try await run("nn-infer", [nnm, try comparison.digits(), "--scale", "1/255"])
        #expect(refused.status == 64)
        #expect(refused.stderr == "nn-infer: --scale applies to models that nn-infer converts; \(nnm) is already .nnm\n")
    }

    /// The converter's errors become nn-infer's, one line with nnconv's status: a bad option, a
    /// hostile pickle, a file of no known format.
    @Test func converterErrorsAreOneLine() async throws {
        let digits = try await comparison.digits()
        let junk = "\(dir)/junk.bin"
        try Data((0..<64).map { UInt8($0 * 7 & 0xff) }).write(to: URL(fileURLWithPath: junk))
        let cases: [([String], Int32, String)] = [
            (["\(comparison.torch)/mlp_state.pth", digits, "--scale", "abc"], 64, "nn-infer: --scale expects a number or a fraction"),
            (["\(comparison.torch)/hostile/global_posix_system.pth", digits], 65, "nn-infer: \(comparison.torch)/hostile/global_posix_system.pth: "),
            ([junk, digits], 65, "nn-infer: \(junk): not a model file"),
        ]
        for (arguments, status, prefix) in cases {
            let result = try await run("nn-infer", arguments)
            #expect(result.status == status, "\(arguments): \(result.stderr)")
            #expect(result.stderr.hasPrefix(prefix), "\(result.stderr)")
            #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
            #expect(result.stdout.isEmpty)
        }
    }

    /// Without nnconv beside it or on PATH, a model that is not .nnm is refused with status 69.
    @Test func missingConverterIsStatus69() async throws {
        let alone = "\(dir)/alone"
        try FileManager.default.createDirectory(atPath: alone, withIntermediateDirectories: true)
        try? FileManager.default.removeItem(atPath: "\(alone)/nn-infer")
        try FileManager.default.copyItem(atPath: "\(productsDirectory)/nn-infer", toPath: "\(alone)/nn-infer")
        let result = try await run("\(alone)/nn-infer", ["\(comparison.torch)/mlp_whole.pth", try comparison.digits()], environment: ["PATH": "/usr/bin:/bin"])
        #expect(result.status == 69)
        #expect(result.stderr.contains("needs nnconv, which is neither beside nn-infer nor on PATH"), "\(result.stderr)")
    }
}
