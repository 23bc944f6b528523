import Foundation
import NNCore
import NNData
import NNFormat
import Testing

@Suite(.serialized) struct InferCLI {
    let dir = temporaryDirectory()

    func writeFormulaModel() throws -> String {
        let path = "\(dir)/formula.nnm"
        try NNMFormat.write(formulaModel(), to: path)
        return path
    }

    @Test(arguments: [[], ["--threads", "1"]])
    func wholeTestSetMatchesTheNumPyReference(options: [String]) async throws {
        let model = try writeFormulaModel()
        let result = try await run("nn-infer", [model, fashionTestImages, "--labels", fashionTestLabels, "--json"] + options)
        #expect(result.status == 0, "\(result.stderr)")
        let ours = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [String: Any]
        let reference = try await python(["\(packageRoot)/Tests/CLITests/reference_infer.py", model, fashionTestImages, fashionTestLabels])
        #expect(reference.status == 0, "\(reference.stderr)")
        let expected = try JSONSerialization.jsonObject(with: Data(reference.stdout.utf8)) as! [String: Any]
        let predictions = ours["predictions"] as! [[String: Any]]
        #expect(predictions.count == 10_000)
        let expectedClasses = expected["predicted"] as! [Int]
        let ourClasses = predictions.map { $0["class"] as! Int }
        // f32 against NumPy's f64: allow a handful of near-ties to flip.
        let disagreements = zip(ourClasses, expectedClasses).filter { $0 != $1 }.count
        #expect(disagreements <= 3, "\(disagreements) predictions differ from NumPy")
        let correct = ours["correct"] as! Int
        #expect(abs(correct - (expected["correct"] as! Int)) <= disagreements)
        #expect(ours["images"] as? Int == 10_000)
        let matrix = ours["confusion_matrix"] as! [[Int]]
        #expect(matrix.flatMap { $0 }.reduce(0, +) == 10_000)
        #expect((0..<10).map { matrix[$0][$0] }.reduce(0, +) == correct)
    }

    /// The three most probable classes of every test image and their probabilities, as NumPy
    /// computes them in f64: for a model whose last layer is a softmax (shown as they are) and for
    /// the same model giving logits (shown as their softmax).
    @Test(arguments: [false, true])
    func topThreeProbabilitiesMatchNumPy(logits: Bool) async throws {
        var model = formulaModel()
        if logits {
            var layers = model.metadata.layers
            layers[layers.count - 1].activation = .identity
            model.metadata.layers = layers
        }
        let path = "\(dir)/top3-\(logits).nnm"
        try NNMFormat.write(model, to: path)
        let result = try await run("nn-infer", [path, fashionTestImages, "--json", "--top", "3"])
        #expect(result.status == 0, "\(result.stderr)")
        let ours = (try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [String: Any])["predictions"] as! [[String: Any]]
        let reference = try await python(["\(packageRoot)/Tests/CLITests/reference_infer.py", path, fashionTestImages])
        #expect(reference.status == 0, "\(reference.stderr)")
        let expected = (try JSONSerialization.jsonObject(with: Data(reference.stdout.utf8)) as! [String: Any])["top4"] as! [[[Double]]]
        #expect(ours.count == 10_000 && expected.count == 10_000)
        var compared = 0
        for (prediction, top) in zip(ours, expected) {
            let shown = (prediction["top"] as! [[String: Any]]).map { ($0["class"] as! Int, $0["probability"] as! Double) }
            #expect(shown.count == 3)
            for (rank, (ourClass, ourValue)) in shown.enumerated() {
                // f32 with z-scores of raw pixels (logits in the tens) against f64: 1e-5 apart at most.
                #expect(abs(ourValue - top[rank][1]) < 1e-4, "image \(prediction["index"]!): \(shown) against \(top)")
                // f32 against f64: classes are compared where NumPy's values are not near ties.
                let apart = (rank == 0 || top[rank - 1][1] - top[rank][1] > 1e-4) && top[rank][1] - top[rank + 1][1] > 1e-4
                if apart {
                    compared += 1
                    #expect(ourClass == Int(top[rank][0]), "image \(prediction["index"]!): \(shown) against \(top)")
                }
            }
        }
        #expect(compared > 10_000)
    }

    /// OpenBLAS is loaded (dlopen) when a product needs it, f64 here, and never for f32 on our
    /// kernels, whose thread count still follows OpenBLAS's variables. The dynamic loader's own
    /// trace (LD_DEBUG=files, on stderr) names every library a process loads.
    @Test func openBLASLoadsOnlyWhenAProductNeedsIt() async throws {
        let model = try writeFormulaModel()
        let f32 = try await run("nn-infer", [model, fashionTestImages, "--show", "0"],
                                environment: ["LD_DEBUG": "files", "OPENBLAS_NUM_THREADS": "1"])
        #expect(f32.status == 0, "\(f32.stderr)")
        #expect(!f32.stderr.contains("libopenblas"), "\(f32.stderr)")
        #expect(f32.stdout.contains("(ours, 1 thread)"), "\(f32.stdout)")
        let f64 = try await run("nn-infer", [model, fashionTestImages, "--show", "0", "--precision", "f64"],
                                environment: ["LD_DEBUG": "files", "OPENBLAS_NUM_THREADS": "1"])
        #expect(f64.status == 0, "\(f64.stderr)")
        #expect(f64.stderr.contains("file=libopenblas.so.0 [0];  dynamically loaded by"), "\(f64.stderr)")
        #expect(f64.stdout.contains("kernels: f64 batch: OpenBLAS ("), "\(f64.stdout)")
        #expect(f64.stdout.contains(", 1 thread)"), "\(f64.stdout)")
    }

    /// An OpenBLAS that cannot be loaded (NNM_OPENBLAS naming a missing file, or a library
    /// without its symbols) stops the first product that needs it, f64 here, with one line naming
    /// the library and status 69 (unavailable); f32 never loads it and runs. NNM_OPENBLAS naming
    /// Debian's soname loads as usual.
    @Test func missingOpenBLASIsOneLineAndStatus69() async throws {
        let model = try writeFormulaModel()
        let f64 = [model, fashionTestImages, "--show", "0", "--precision", "f64"]
        let missing = try await run("nn-infer", f64, environment: ["NNM_OPENBLAS": "/nonexistent/libopenblas.so"])
        #expect(missing.status == 69, "\(missing.stderr)")
        #expect(missing.stderr == "nn-infer: OpenBLAS is needed (f64 products, NNM_KERNELS=openblas, weights too large to pack) but cannot be loaded: "
                + "/nonexistent/libopenblas.so: cannot open shared object file: No such file or directory (Debian: apt-get install libopenblas0)\n")
        #expect(!missing.stdout.contains("accuracy") && !missing.stdout.contains("images: 10000"), "\(missing.stdout)")
        let wrong = try await run("nn-infer", f64, environment: ["NNM_OPENBLAS": "libz.so.1"])
        #expect(wrong.status == 69, "\(wrong.stderr)")
        #expect(wrong.stderr == "nn-infer: OpenBLAS is needed (f64 products, NNM_KERNELS=openblas, weights too large to pack) but cannot be loaded: "
                + "libz.so.1 has no cblas_sgemm (Debian: apt-get install libopenblas0)\n")
        let f32 = try await run("nn-infer", [model, fashionTestImages, "--show", "0"], environment: ["NNM_OPENBLAS": "/nonexistent/libopenblas.so"])
        #expect(f32.status == 0 && f32.stderr.isEmpty, "\(f32.stderr)")
        let chosen = try await run("nn-infer", f64, environment: ["NNM_OPENBLAS": "libopenblas.so.0"])
        #expect(chosen.status == 0, "\(chosen.stderr)")
        #expect(chosen.stdout.contains("kernels: f64 batch: OpenBLAS ("), "\(chosen.stdout)")
    }

    @Test func textReportPrintsAccuracyAndConfusionMatrix() async throws {
        let model = try writeFormulaModel()
        let result = try await run("nn-infer", [model, fashionTestImages, "--labels", fashionTestLabels, "--show", "2"])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines[1].hasSuffix("(10000 images of 28x28)"))
        #expect(lines.contains { $0.hasPrefix("accuracy: ") && $0.contains("/10000 = ") })
        #expect(lines.contains("confusion matrix (rows: true class, columns: predicted class):"))
        #expect(lines.contains("(9998 more not listed; --show all lists every image)"))
    }

    @Test func oneImageFilePrintsItsClass() async throws {
        let model = try writeFormulaModel()
        // Image 0 of the Fashion-MNIST test set as a rank-2 (28x28) IDX file.
        let all = try IDXFile(path: fashionTestImages)
        let first: [UInt8] = all.withUnsafeDataBytes { Array($0.prefix(784)) }
        let one = "\(dir)/one.idx"
        try IDXWriter.write(first, dims: [28, 28], to: one)
        let result = try await run("nn-infer", [model, one, "--top", "2"])
        #expect(result.status == 0, "\(result.stderr)")
        let reference = try await python(["\(packageRoot)/Tests/CLITests/reference_infer.py", model, one])
        let expected = try JSONSerialization.jsonObject(with: Data(reference.stdout.utf8)) as! [String: Any]
        let expectedClass = (expected["predicted"] as! [Int])[0]
        #expect(result.stdout.contains("(1 image of 28x28)"))
        let line = result.stdout.split(separator: "\n").first { $0.hasPrefix("     0  ") }
        #expect(line?.hasPrefix("     0  \(expectedClass) ") == true, "\(result.stdout)")
    }

    @Test func schemaValidatesTheWrittenFile() async throws {
        let model = try writeFormulaModel()
        let result = try await python(["\(packageRoot)/Schemas/nnm.py", "validate", model])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == "\(model): valid\n")
    }

    // MARK: Bad input: one line naming the file, and the documented exit status.

    func expectFailure(_ arguments: [String], status: Int32, message: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let result = try await run("nn-infer", arguments)
        #expect(result.status == status, "stderr: \(result.stderr)", sourceLocation: sourceLocation)
        #expect(result.stderr == "nn-infer: \(message)\n", sourceLocation: sourceLocation)
        #expect(result.stdout.isEmpty, sourceLocation: sourceLocation)
    }

    @Test func missingModel() async throws {
        try await expectFailure(["\(dir)/absent.nnm", fashionTestImages], status: 66, message: "\(dir)/absent.nnm: cannot open: No such file or directory")
    }

    @Test func emptyModel() async throws {
        _ = FileManager.default.createFile(atPath: "\(dir)/empty.nnm", contents: Data())
        try await expectFailure(["\(dir)/empty.nnm", fashionTestImages], status: 65, message: "\(dir)/empty.nnm: the file is empty")
    }

    /// A file that is not .nnm goes to the converter, which knows no format for it either.
    @Test func notAModel() async throws {
        try await expectFailure([fashionTestImages, fashionTestImages], status: 65,
                          message: "\(fashionTestImages): not a model file: expected HDF5 (.h5), NumPy (.npz), Keras (.keras, .h5), .nnm, safetensors (.safetensors), ONNX (.onnx) or PyTorch (.pth, .pt)")
        try await expectFailure([fashionTestImages, fashionTestImages, "--require-nnm"], status: 65,
                          message: "\(fashionTestImages): is not a .nnm model (--require-nnm); convert it with: nnconv import \(fashionTestImages)")
    }

    @Test func corruptTensorIsNamed() async throws {
        let model = try writeFormulaModel()
        var bytes = [UInt8](FileManager.default.contents(atPath: model)!)
        let header = try NNMFormat.readHeader(path: model)
        let entry = header.tensors.first { $0.name == "layers.1.weight" }!
        bytes[header.dataOffset + entry.offset + 17] ^= 0x10
        _ = FileManager.default.createFile(atPath: "\(dir)/corrupt.nnm", contents: Data(bytes))
        let result = try await run("nn-infer", ["\(dir)/corrupt.nnm", fashionTestImages])
        #expect(result.status == 65)
        #expect(result.stderr.hasPrefix("nn-infer: \(dir)/corrupt.nnm: corrupt: tensor 'layers.1.weight' fails its checksum"))
    }

    @Test func nanWeightsWarnButRun() async throws {
        var model = formulaModel()
        var bias = model.tensor("layers.1.bias")!.floats()
        bias[3] = .infinity
        model.setTensor("layers.1.bias", Tensor(bias, shape: [10]))
        try NNMFormat.write(model, to: "\(dir)/inf.nnm")
        let result = try await run("nn-infer", ["\(dir)/inf.nnm", fashionTestImages, "--show", "0"])
        #expect(result.status == 0)
        #expect(result.stderr == "nn-infer: \(dir)/inf.nnm: warning: tensor 'layers.1.bias': holds NaN or infinite values (first at element 3)\n")
    }

    @Test func imageSizeThatDoesNotFitTheModel() async throws {
        let model = try writeFormulaModel()
        let small = "\(dir)/small.idx"
        try IDXWriter.write([UInt8](repeating: 1, count: 392), dims: [2, 14, 14], to: small)
        try await expectFailure([model, small], status: 65, message: "\(small): images are 14x14 (196 features) but \(model) expects 28x28 (784 features)")
    }

    @Test func wrongIDXMagic() async throws {
        let model = try writeFormulaModel()
        let bad = "\(dir)/bad.idx"
        _ = FileManager.default.createFile(atPath: bad, contents: Data([0x01, 0x02, 0x08, 0x01, 0, 0, 0, 1, 7]))
        try await expectFailure([model, bad], status: 65,
                          message: "\(bad): not an IDX file: it starts with 01 02 08 01, an IDX file starts with 00 00, a type code and a rank")
    }

    @Test func truncatedGzipImages() async throws {
        let model = try writeFormulaModel()
        let data = FileManager.default.contents(atPath: fashionTestImages)!
        let cut = "\(dir)/cut.idx.gz"
        _ = FileManager.default.createFile(atPath: cut, contents: data.prefix(data.count / 2))
        let result = try await run("nn-infer", [model, cut, "--show", "0"])
        #expect(result.status == 65)
        #expect(result.stderr.hasPrefix("nn-infer: \(cut): "))
        #expect(result.stderr.contains("truncated"))
        #expect(result.stderr.split(separator: "\n").count == 1)
    }

    @Test func labelCountThatDoesNotMatch() async throws {
        let model = try writeFormulaModel()
        let labels = "\(dir)/labels.idx"
        try IDXWriter.write([UInt8]([1, 2, 3]), dims: [3], to: labels)
        try await expectFailure([model, fashionTestImages, "--labels", labels], status: 65, message: "\(labels): 3 labels for 10000 images")
    }

    @Test func labelOutsideTheClasses() async throws {
        let model = try writeFormulaModel()
        let one = "\(dir)/one-image.idx"
        try IDXWriter.write([UInt8](repeating: 0, count: 784), dims: [1, 28, 28], to: one)
        let labels = "\(dir)/label12.idx"
        try IDXWriter.write([UInt8]([12]), dims: [1], to: labels)
        try await expectFailure([model, one, "--labels", labels], status: 65,
                          message: "\(labels): label 12 at index 0 is outside the model's 10 classes (0...9)")
    }

    @Test func badOptions() async throws {
        let model = try writeFormulaModel()
        try await expectFailure([model, fashionTestImages, "--precision", "f16"], status: 64, message: "--precision must be f32 or f64, not 'f16'")
        try await expectFailure([model, fashionTestImages, "--batch", "0"], status: 64, message: "--batch must be at least 1")
        try await expectFailure([model, fashionTestImages, "--threads", "0"], status: 64, message: "--threads must be between 1 and 64, not 0")
        try await expectFailure([model, fashionTestImages, "--threads", "65"], status: 64, message: "--threads must be between 1 and 64, not 65")
    }
}
