import Foundation
import NNCompression
import NNCore
import NNFormat
import Testing

/// The command-line side of the converter architecture: a model truncated while nn-infer has
/// it mapped, and validation warnings that `nnconv import` reports as notes.
@Suite(.serialized) struct ArchitectureCLI {
    let dir = temporaryDirectory()

    /// A 784-8192-10 model of 25.7 MB: over the 16 MiB below which models are read instead of
    /// mapped, so nn-infer uses the file's pages in place.
    func writeLargeModel(_ path: String) throws {
        let hidden = 8192
        let w0 = (0..<(784 * hidden)).map { Float(($0 * 7919) % 97 - 48) / 4000 }
        let w1 = (0..<(hidden * 10)).map { Float(($0 * 104_729) % 89 - 44) / 1000 }
        let meta = ModelMetadata(
            input: InputSpec(shape: [28, 28]),
            layers: [Layer.dense(index: 0, inputSize: 784, outputSize: hidden, activation: .relu),
                     Layer.dense(index: 1, inputSize: hidden, outputSize: 10, activation: .softmax)],
            preprocessing: [.scale(factor: 1.0 / 255, offset: 0)], classes: [],
            provenance: Provenance(tool: "tests", created: "2026-12-04T00:00:00Z"))
        var tensors = [NamedTensor("layers.0.weight", Tensor(w0, shape: [784, hidden]))]
        tensors.append(NamedTensor("layers.0.bias", Tensor([Float](repeating: 0, count: hidden), shape: [hidden])))
        tensors.append(NamedTensor("layers.1.weight", Tensor(w1, shape: [hidden, 10])))
        tensors.append(NamedTensor("layers.1.bias", Tensor([Float](repeating: 0, count: 10), shape: [10])))
        try NNMFormat.write(Model(metadata: meta, tensors: tensors), to: path)
    }

    @Test func truncatingAMappedModelDuringInferenceIsOneLineAndStatus75() throws {
        let model = "\(dir)/large.nnm", fifo = "\(dir)/images.fifo"
        try writeLargeModel(model)
        #expect(mkfifo(fifo, 0o600) == 0)
        // The test set as it is on disk, gunzipped: the 16-byte IDX header, then the pixels.
        let idx = try readMaybeGzip(path: fashionTestImages, maxBytes: 1 << 24)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "\(productsDirectory)/nn-infer")
        process.arguments = [model, fifo, "--batch", "100", "--show", "0"]
        let err = Pipe()
        process.standardOutput = FileHandle.nullDevice
        process.standardError = err
        try process.run()
        // Opening the FIFO for writing waits until nn-infer opens it, which it does after it has
        // opened, mapped and verified the model: the model is in use from here on.
        let writer = FileHandle(forWritingAtPath: fifo)!
        #expect(truncate(model, 4096) == 0)
        // nn-infer may stop reading as soon as it fails: a broken pipe is expected.
        signal(SIGPIPE, SIG_IGN)
        try? writer.write(contentsOf: Data(idx))
        try? writer.close()
        let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationReason == .exit, "nn-infer died of a signal")
        #expect(process.terminationStatus == 75, "\(message)")
        #expect(message == "nn-infer: \(model): the file was truncated or replaced in place while it was in use; nothing more was read from it\n")
    }

    @Test func importReportsNaNWeightsAsNotes() async throws {
        let h5 = "\(dir)/nan.h5"
        let made = try await python(["-c", """
            import h5py, numpy as np
            with h5py.File('\(h5)', 'w') as f:
                w = np.ones((4, 3), dtype='f4'); w[1, 2] = np.nan
                f['W1'] = w; f['b1'] = np.zeros((1, 3), dtype='f4')
            """])
        #expect(made.status == 0, "\(made.stderr)")
        let result = try await run("nnconv", ["import", h5, "-o", "\(dir)/nan.nnm"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("  note: warning: tensor 'layers.0.weight': "), "\(result.stdout)")
        #expect(result.stdout.contains("NaN"), "\(result.stdout)")
    }

    /// With SOURCE_DATE_EPOCH, two conversions of one file are the same bytes (the creation time
    /// is the only thing that differed).
    @Test func sourceDateEpochMakesImportsReproducible() async throws {
        let source = "\(packageRoot)/Fixtures/interop/blog_rows_mnist_784_16_10_f32.h5"
        var outputs: [Data] = []
        for i in 0..<2 {
            let out = "\(dir)/reproducible-\(i).nnm"
            let result = try await run("nnconv", ["import", source, "-o", out], environment: ["SOURCE_DATE_EPOCH": "1764806400"])
            #expect(result.status == 0, "\(result.stderr)")
            outputs.append(try Data(contentsOf: URL(fileURLWithPath: out)))
            if i == 0 { sleep(1) }
        }
        #expect(outputs[0] == outputs[1])
        #expect(try NNMFormat.read(path: "\(dir)/reproducible-0.nnm").metadata.provenance.created == "2025-12-04T00:00:00Z")
    }

    /// The file layer's refusal of something that is not a regular file: one line, status 66.
    @Test func aDirectoryIsNoInputFile() async throws {
        let result = try await run("nnconv", ["import", dir, "-o", "\(dir)/x.nnm"])
        #expect(result.status == 66)
        #expect(result.stderr == "nnconv import: \(dir): cannot open: not a regular file\n")
    }

    @Test func unknownFormatIsOneLineListingTheFormats() async throws {
        let path = "\(dir)/notes.txt"
        try Data("just some text".utf8).write(to: URL(fileURLWithPath: path))
        let result = try await run("nnconv", ["inspect", path])
        #expect(result.status == 65)
        #expect(result.stderr == "nnconv inspect: \(path): not a model file: expected HDF5 (.h5), NumPy (.npz), Keras (.keras, .h5), .nnm, safetensors (.safetensors), ONNX (.onnx) or PyTorch (.pth, .pt)\n")
    }

    /// Errors that ArgumentParser finds are one line too, status 64; help still prints whole.
    @Test(arguments: [
        ("nn-train", ["--epochs", "abc", "--save", "x.nnm"], "nn-train: The value 'abc' is invalid for '--epochs <epochs>' (see 'nn-train --help')"),
        ("nnconv", ["import"], "nnconv: Missing expected argument '<source>' (see 'nnconv --help')"),
        ("nnconv", ["frobnicate"], "nnconv: Unexpected argument 'frobnicate' (see 'nnconv --help')"),
        ("nn-infer", ["model.nnm", "digits.idx", "--top", "two"], "nn-infer: The value 'two' is invalid for '--top <top>' (see 'nn-infer --help')"),
    ] as [(String, [String], String)])
    func usageErrorsAreOneLine(tool: String, arguments: [String], message: String) async throws {
        let result = try await run(tool, arguments)
        #expect(result.status == 64)
        #expect(result.stderr == message + "\n")
        let help = try await run(tool, ["--help"])
        #expect(help.status == 0 && help.stdout.contains("USAGE:"))
    }
}
