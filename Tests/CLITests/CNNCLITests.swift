import Foundation
import NNCore
import NNFormat
import Testing

/// The CNN through every tool: nn-train --cnn, nn-infer, nnconv inspect/export/import/diff.
@Suite(.serialized) struct CNNCLI {
    let dir = temporaryDirectory()

    @Test func trainInferExportImport() async throws {
        let paths = try writeQuadrantIDX(in: dir)
        let model = "\(dir)/c.nnm"
        // 4x4 images: a 2x2 kernel at stride 2 sees each quadrant once; 'same' pooling at stride 1
        // keeps the 2x2 map.
        let trained = try await run("nn-train", ["--data", dir, "--cnn", "conv:4:2x2:s=2:relu,pool:2:s=1:same", "--layers", "4",
                                           "--epochs", "5", "--lr", "0.1", "--init", "he", "--save", model, "--save-h5", "\(dir)/c-train.h5"])
        #expect(trained.status == 0, "\(trained.stderr)")
        #expect(trained.stdout.contains("training conv2x2 2x2x4 relu, pool2x2 2x2x4, flatten, 4 softmax, cross-entropy"), "\(trained.stdout)")
        let m = try NNMFormat.read(path: model)
        #expect(m.metadata.layers.map(\.kind) == [.conv2d, .maxPool2d, .flatten, .dense])
        #expect(m.tensor("layers.0.weight")?.shape == [2, 2, 1, 4])
        #expect(m.tensor("layers.3.weight")?.shape == [16, 4])
        let accuracy = try #require(m.metadata.training?.history.last?.testAccuracy)
        #expect(accuracy > 0.9, "the quadrant task is easy; test accuracy \(accuracy)")

        #expect(try await run("nnconv", ["diff", model, "\(dir)/c-train.h5"]).status == 0, "the --save-h5 copy holds the same model")

        // nn-infer agrees with the trainer's own evaluation.
        let inferred = try await run("nn-infer", [model, paths[2], "--labels", paths[3], "--show", "0"])
        #expect(inferred.status == 0, "\(inferred.stderr)")
        let correct = Int((accuracy * 50).rounded())
        #expect(inferred.stdout.contains("accuracy: \(correct)/50 = "), "\(inferred.stdout)")

        // The pictures: the confusion matrix from nn-infer, the filters from nnconv inspect.
        let pictured = try await run("nn-infer", [model, paths[2], "--labels", paths[3], "--show", "0", "--confusion-svg", "\(dir)/confusion.svg"])
        #expect(pictured.status == 0, "\(pictured.stderr)")
        let confusion = try String(contentsOfFile: "\(dir)/confusion.svg", encoding: .utf8)
        #expect(confusion.hasPrefix("<svg") && confusion.contains("accuracy \(formatDecimal(Double(correct) * 2, digits: 2)) % (\(correct) of 50)"), "\(confusion.prefix(600))")
        let noLabels = try await run("nn-infer", [model, paths[2], "--confusion-svg", "\(dir)/c2.svg"])
        #expect(noLabels.status == 64 && noLabels.stderr == "nn-infer: --confusion-svg needs --labels (the true classes)\n", "\(noLabels.stderr)")
        let plotted = try await run("nnconv", ["inspect", model, "--plot", "\(dir)/filters.svg"])
        #expect(plotted.status == 0, "\(plotted.stderr)")
        let filters = try String(contentsOfFile: "\(dir)/filters.svg", encoding: .utf8)
        #expect(filters.contains("layer 0, 4 filters 2x2 over 1 channel") && filters.contains("filter 3") && !filters.contains("filter 4"))
        let dense = try await run("nn-train", ["--data", dir, "--layers", "16,4", "--epochs", "1", "--save", "\(dir)/dense.nnm"])
        #expect(dense.status == 0)
        let noConv = try await run("nnconv", ["inspect", "\(dir)/dense.nnm", "--plot", "\(dir)/none.svg"])
        #expect(noConv.status == 64 && noConv.stderr == "nnconv inspect: --plot: \(dir)/dense.nnm has no conv2d layer whose filters could be drawn\n", "\(noConv.stderr)")
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/none.svg"))

        // inspect describes the geometry.
        let inspected = try await run("nnconv", ["inspect", model])
        #expect(inspected.stdout.contains("layer 0: conv2d 4x4x1 -> 2x2x4, kernel 2x2, strides 2x2, valid, cross-correlation, relu, weight 'layers.0.weight', bias 'layers.0.bias'"), "\(inspected.stdout)")
        #expect(inspected.stdout.contains("layer 1: max_pool2d 2x2x4 -> 2x2x4, pool 2x2, strides 1x1, same"))
        #expect(inspected.stdout.contains("layer 2: flatten 2x2x4 -> 16"))

        // HDF5 and NumPy exports (W1 = the kernel HWIO, W2 the dense weight) convert back to the same bytes.
        for (ext, layout) in [("h5", "rows"), ("npz", "rows"), ("h5", "columns")] {
            let exported = "\(dir)/c-\(layout).\(ext)", back = "\(dir)/c-\(layout)-\(ext).nnm"
            let export = try await run("nnconv", ["export", model, "-o", exported, "--layout", layout])
            #expect(export.status == 0, "\(export.stderr)")
            let imported = try await run("nnconv", ["import", exported, "-o", back])
            #expect(imported.status == 0, "\(imported.stderr)")
            let original = try Data(contentsOf: URL(fileURLWithPath: model)), again = try Data(contentsOf: URL(fileURLWithPath: back))
            #expect(original == again, "\(ext) \(layout) round trip changed the file")
        }
        let h5 = try await python(["-c", """
            import h5py
            f = h5py.File('\(dir)/c-rows.h5')
            print(sorted(k for k in f.keys() if k[0] in 'Wb'), f['W1'].shape, f['b1'].shape, f['W2'].shape)
            """])
        #expect(h5.stdout == "['W1', 'W2', 'b1', 'b2'] (2, 2, 1, 4) (1, 4) (16, 4)\n", "\(h5.stderr)")

        // ONNX holds CNNs too (NCHW input), and the export imports back.
        let exported = try await run("nnconv", ["export", model, "-o", "\(dir)/c.onnx"])
        #expect(exported.status == 0, "\(exported.stderr)")
        let back = try await run("nnconv", ["import", "\(dir)/c.onnx", "-o", "\(dir)/c-back.nnm"])
        #expect(back.status == 0, "\(back.stderr)")
    }

    @Test func defaultsForAddedStages() async throws {
        _ = try writeQuadrantIDX(in: dir)
        // The blog preset plus --cnn: He initialization instead of randn * 0.01; with the cnn
        // preset (one dense layer) and a deeper --layers, hidden dense layers are ReLU.
        let blog = try await run("nn-train", ["--data", dir, "--cnn", "conv:4:2x2:s=2", "--layers", "4", "--epochs", "1", "--save", "\(dir)/b.nnm"])
        #expect(blog.status == 0, "\(blog.stderr)")
        #expect(try NNMFormat.read(path: "\(dir)/b.nnm").metadata.training?.hyperparameters["init"] == .string("he"))
        let deeper = try await run("nn-train", ["--data", dir, "--recipe", "cnn", "--cnn", "conv:4:2x2:s=2", "--layers", "8,4", "--epochs", "1",
                                          "--save", "\(dir)/d.nnm"])
        #expect(deeper.status == 0, "\(deeper.stderr)")
        let layers = try NNMFormat.read(path: "\(dir)/d.nnm").metadata.layers
        #expect(layers.map(\.kind) == [.conv2d, .flatten, .dense, .dense])
        #expect(layers.map(\.activation) == [.relu, .identity, .relu, .softmax])
        #expect(layers[2].inputSize == 16 && layers[2].outputSize == 8)
    }

    @Test func badStages() async throws {
        _ = try writeQuadrantIDX(in: dir)
        func failure(_ cnn: String, _ message: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
            let result = try await run("nn-train", ["--data", dir, "--cnn", cnn, "--layers", "4", "--save", "\(dir)/x.nnm"])
            #expect(result.status == 64, "\(result.stderr)", sourceLocation: sourceLocation)
            #expect(result.stderr == "nn-train: \(message)\n", sourceLocation: sourceLocation)
        }
        try await failure("conv:4:5x5", "--cnn: layers[0].kernel: expected a window that fits the input 4x4x1 with 'valid' padding, found 5x5")
        try await failure("conv:4", "--cnn: 'conv:4': expected conv:FILTERS:HxW, e.g. conv:8:3x3")
        try await failure("conv:4:3x3:mish", "--cnn: 'conv:4:3x3:mish': unknown option 'mish' (expected s=N, p=N, valid, same or an activation)")
        try await failure("conv:4:3x3:softmax", "--cnn: softmax is only supported on the output layer")
        try await failure("gap,bn", "--cnn: a global pooling stage (gap, gmp) leaves one value per channel, so it must be the last stage")
        try await failure("pool:0", "--cnn: 'pool:0': the pool window must be N or HxW with values 1...65536, found '0'")
        try await failure("dense:4", "--cnn: 'dense:4': a stage is conv:FILTERS:HxW[:options], pool:N[:options], avgpool:N[:options], bn[:options], gap or gmp")
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/x.nnm"))
    }
}
