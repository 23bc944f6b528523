import Foundation
import NNFormat
import Testing

/// `nn-train` on the inputs people have: a folder with one sub-folder per class, a Kaggle
/// `train.csv`, `.npy` images with `.npy` labels, made from the same MNIST digits as IDX files.
@Suite(.serialized) struct TrainingInputsCLI {
    let dir = temporaryDirectory()

    /// The first 3,000 MNIST test digits for training and the last 1,000 for testing, in every
    /// form (written by NumPy and a plain zlib PNG writer, not by the code under test).
    func writeInputs() async throws {
        guard !FileManager.default.fileExists(atPath: "\(dir)/test-y.npy") else { return }
        let made = try await python(["-c", """
            import gzip, os, struct, zlib, numpy as np
            def idx(p):
                b = gzip.open(p).read(); nd = b[3]
                dims = struct.unpack('>' + 'I' * nd, b[4:4 + 4 * nd])
                return np.frombuffer(b[4 + 4 * nd:], np.uint8).reshape(dims)
            X, Y = idx('\(mnistTestImages)'), idx('\(mnistTestLabels)')
            def write_idx(p, a):
                open(p, 'wb').write(struct.pack('>BBBB', 0, 0, 8, a.ndim) + struct.pack('>' + 'I' * a.ndim, *a.shape) + a.tobytes())
            def png(p, a):
                h, w = a.shape
                raw = b''.join(b'\\x00' + a[r].tobytes() for r in range(h))
                def chunk(t, d): return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
                open(p, 'wb').write(b'\\x89PNG\\r\\n\\x1a\\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 0, 0, 0, 0))
                                    + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b''))
            d = '\(dir)'
            for part, sl in (('train', slice(0, 3000)), ('test', slice(9000, 10000))):
                x, y = X[sl], Y[sl]
                write_idx(f'{d}/{part}-images.idx', x); write_idx(f'{d}/{part}-labels.idx', y)
                np.save(f'{d}/{part}-x.npy', x); np.save(f'{d}/{part}-y.npy', y.astype(np.int64))
                with open(f'{d}/{part}.csv', 'w') as f:
                    f.write('label,' + ','.join(f'pixel{i}' for i in range(784)) + '\\n')
                    for image, label in zip(x, y): f.write(f'{label},' + ','.join(map(str, image.ravel())) + '\\n')
                for i, (image, label) in enumerate(zip(x, y)):
                    os.makedirs(f'{d}/{part}-folder/{label}', exist_ok=True)
                    png(f'{d}/{part}-folder/{label}/{i:05d}.png', image)
            """])
        #expect(made.status == 0, "\(made.stderr)")
    }

    /// Trains 5 epochs of the blog recipe and returns the final test accuracy in percent.
    func train(_ data: [String], model: String) async throws -> Double {
        let result = try await run("nn-train", data + ["--epochs", "5", "--save", "\(dir)/\(model)"])
        #expect(result.status == 0, "\(result.stderr)")
        let line = result.stdout.split(separator: "\n").first { $0.hasPrefix("final test accuracy ") }
        return Double(line?.dropFirst("final test accuracy ".count).split(separator: " ").first ?? "") ?? -1
    }

    @Test func reachesTheAccuracyOfIDX() async throws {
        try await writeInputs()
        let idx = try await train(["--train-images", "\(dir)/train-images.idx", "--train-labels", "\(dir)/train-labels.idx",
                             "--test-images", "\(dir)/test-images.idx", "--test-labels", "\(dir)/test-labels.idx"], model: "idx.nnm")
        #expect(idx > 80, "the IDX baseline: \(idx) %")
        // The same digits in the same order: the very same training, tensor for tensor.
        let csv = try await train(["--train-images", "\(dir)/train.csv", "--test-images", "\(dir)/test.csv"], model: "csv.nnm")
        let npy = try await train(["--train-images", "\(dir)/train-x.npy", "--train-labels", "\(dir)/train-y.npy",
                             "--test-images", "\(dir)/test-x.npy", "--test-labels", "\(dir)/test-y.npy"], model: "npy.nnm")
        #expect(csv == idx && npy == idx)
        for other in ["csv.nnm", "npy.nnm"] {
            let diff = try await run("nnconv", ["diff", "\(dir)/idx.nnm", "\(dir)/\(other)"])
            #expect(diff.status == 0, "\(other): \(diff.stdout)")
        }
        // A class folder holds the digits sorted by class, so the shuffles differ: close, not equal.
        let folder = try await train(["--train-images", "\(dir)/train-folder", "--test-images", "\(dir)/test-folder", "--preprocess", "none"],
                               model: "folder.nnm")
        #expect(abs(folder - idx) <= 2, "folder \(folder) % against IDX \(idx) %")
        let model = try NNMFormat.read(path: "\(dir)/folder.nnm")
        #expect(model.metadata.classes == (0...9).map(String.init))
        // nn-infer labels the test folder by the model's class names and agrees with nn-train.
        let inferred = try await run("nn-infer", ["\(dir)/folder.nnm", "\(dir)/test-folder", "--preprocess", "none", "--show", "0"])
        #expect(inferred.status == 0, "\(inferred.stderr)")
        let accuracy = inferred.stdout.split(separator: "\n").first { $0.hasPrefix("accuracy: ") }
        #expect(accuracy?.hasSuffix("= \(String(format: "%.2f", folder)) %") == true, "\(accuracy ?? "none")")
    }

    @Test func badTrainingInputsAreOneLine() async throws {
        try await writeInputs()
        let d = dir
        try FileManager.default.createDirectory(atPath: "\(d)/odd-test/7", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: "\(d)/odd-test/seven", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: "\(d)/test-folder/7/\(try firstFile("\(d)/test-folder/7"))", toPath: "\(d)/odd-test/seven/a.png")
        try FileManager.default.copyItem(atPath: "\(d)/test-folder/7/\(try firstFile("\(d)/test-folder/7"))", toPath: "\(d)/odd-test/7/a.png")
        _ = try await python(["-c", "import numpy as np; np.save('\(d)/short-y.npy', np.zeros(5, np.int64)); np.save('\(d)/float-y.npy', np.zeros(3000))"])
        try "pixel0,pixel1\n0,0\n".write(toFile: "\(d)/unlabelled.csv", atomically: true, encoding: .utf8)
        let cases: [([String], Int32, String)] = [
            (["--train-images", "\(d)/train-x.npy"], 64, "\(d)/train-x.npy: .npy images need a .npy of labels (--train-labels, --test-labels)"),
            (["--train-images", "\(d)/train-folder", "--train-labels", "\(d)/train-y.npy"], 64,
             "\(d)/train-folder: a folder of class sub-folders is labelled by them; drop its labels option"),
            (["--train-images", "\(d)/train-images.idx"], 64, "\(d)/train-images.idx: IDX images need their IDX labels (--train-labels, --test-labels)"),
            (["--train-images", "\(d)/train-x.npy", "--train-labels", "\(d)/short-y.npy"], 65,
             "\(d)/short-y.npy: shape (5,): expected (3000,), one label per sample"),
            (["--train-images", "\(d)/train-x.npy", "--train-labels", "\(d)/float-y.npy"], 65,
             "\(d)/float-y.npy: dtype '<f8': expected integer labels ('<i8', '<i4', '|u1', ...)"),
            (["--train-images", "\(d)/train-folder", "--test-images", "\(d)/odd-test"], 65,
             "\(d)/odd-test/seven: 'seven' is not one of the 10 classes (0, 1, 2, 3, 4, 5, 6, 7, 8, 9)"),
            (["--train-images", "\(d)/test-folder/7"], 65, "\(d)/test-folder/7: no class sub-folders (DIR/<class>/*.png)"),
            (["--train-images", "\(d)/unlabelled.csv", "--input-shape", "2"], 65,
             "\(d)/unlabelled.csv: no 'label' column (Kaggle's test.csv has none): training and test data need labels"),
            (["--train-images", "\(d)/train.csv", "--preprocess", "mnist"], 64, "--preprocess applies to folders of pictures; \(d)/train.csv is not one"),
            (["--train-images", "\(d)/train.csv", "--test-last", "3000"], 64, "--test-last 3000 must be between 1 and 2999, the 3000 training samples less one"),
            (["--train-images", "\(d)/train.csv", "--test-images", "\(d)/test.csv", "--test-last", "10"], 64,
             "--test-last splits the training data; give it or --test-images, not both"),
        ]
        for (arguments, status, message) in cases {
            let result = try await run("nn-train", arguments + ["--epochs", "1", "--save", "\(d)/never.nnm"])
            #expect(result.status == status, "\(arguments): \(result.stderr)")
            #expect(result.stderr == "nn-train: \(message)\n")
            #expect(!FileManager.default.fileExists(atPath: "\(d)/never.nnm"))
        }
    }

    func firstFile(_ folder: String) throws -> String {
        try FileManager.default.contentsOfDirectory(atPath: folder).sorted()[0]
    }
}
