import Foundation
import Testing

/// nn-infer on the inputs people have (Fixtures/photos, made by Fixtures/generate_photos.py from
/// the real MNIST test set) with the MLP torch trained on MNIST (Fixtures/torch/mlp_state.pth,
/// imported with --scale 1/255): pictures of paper with MNIST's preprocessing against the same
/// digits as 28x28 IDX images; CSV, .npy and folders against the IDX file of the same images;
/// bad inputs one line each.
@Suite(.serialized) struct PictureInputCLI {
    let dir = temporaryDirectory()
    let photos = "\(packageRoot)/Fixtures/photos"

    func model() async throws -> String {
        let nnm = "\(dir)/mlp.nnm"
        if !FileManager.default.fileExists(atPath: nnm) {
            let imported = try await run("nnconv", ["import", "\(packageRoot)/Fixtures/torch/mlp_state.pth", "-o", nnm, "--scale", "1/255"])
            #expect(imported.status == 0, "\(imported.stderr)")
        }
        return nnm
    }

    /// The JSON document of `nn-infer --json`.
    func infer(_ arguments: [String]) async throws -> (json: [String: Any], stderr: String) {
        let result = try await run("nn-infer", [try model()] + arguments + ["--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any] ?? [:]
        return (json, result.stderr)
    }

    func classes(_ json: [String: Any]) -> [Int] {
        (json["predictions"] as? [[String: Any]] ?? []).map { $0["class"] as! Int }
    }

    func sources(_ json: [String: Any]) -> [String] {
        (json["predictions"] as? [[String: Any]] ?? []).map { $0["source"] as? String ?? "" }
    }

    @Test func mnistPreprocessingMatchesTheOriginalDigits() async throws {
        let labels = "\(photos)/labels.idx"
        let original = try await infer(["\(photos)/digits.idx", "--labels", labels]).json
        let pictures = try await infer(["\(photos)/pictures", "--labels", labels]).json
        let fit = try await infer(["\(photos)/pictures", "--labels", labels, "--preprocess", "fit"]).json
        let a = original["accuracy"] as! Double, p = pictures["accuracy"] as! Double, f = fit["accuracy"] as! Double
        // Measured: 0.97, 0.96 and 0.11.
        #expect(a >= 0.9)
        #expect(abs(a - p) <= 0.02, "pictures \(p) vs original digits \(a)")
        #expect(f <= 0.25, "without MNIST's procedure: \(f)")
        #expect(pictures["preprocess"] as? String == "mnist")
        #expect(sources(pictures).prefix(3) == ["img_000.png", "img_001.jpg", "img_002.png"])
        let none = try await run("nn-infer", [try model(), "\(photos)/pictures", "--preprocess", "none"])
        #expect(none.status == 65)
        #expect(none.stderr == "nn-infer: img_000.png: the picture is 268x161 but --preprocess none needs 28x28, the model's input\n")
        let text = try await run("nn-infer", [try model(), "\(photos)/pictures/img_003.jpg"])
        #expect(text.status == 0)
        #expect(text.stdout.contains("preprocess: mnist (MNIST's procedure"), "\(text.stdout)")
    }

    @Test func otherInputsPredictAsTheIDXFile() async throws {
        let same = "\(photos)/same"
        let reference = try await infer(["\(same)/same.idx"]).json
        let expected = classes(reference)
        #expect(expected.count == 20)
        let csv = try await infer(["\(same)/same.csv"]).json
        #expect(classes(csv) == expected)
        #expect(sources(csv).first == "same.csv:2")
        #expect(csv["accuracy"] != nil, "a label column reports accuracy")
        #expect(classes(try await infer(["\(same)/same_test.csv"]).json) == expected)
        #expect(classes(try await infer(["\(same)/same_u8.npy"]).json) == expected)
        #expect(classes(try await infer(["\(same)/same_f32.npy"]).json) == expected)
        let folder = try await infer(["\(same)/folder", "--preprocess", "none"])
        #expect(classes(folder.json) == expected)
        #expect(sources(folder.json).first == "00.png")
        #expect(folder.stderr.contains("skipped 1 entry that are not pictures (README.txt)"), "\(folder.stderr)")
    }

    @Test func submissionAndPreprocessedPictures() async throws {
        let out = "\(dir)/submission.csv", pictures = "\(dir)/seen"
        let result = try await run("nn-infer", [try model(), "\(photos)/same/same_test.csv", "--csv-out", out])
        #expect(result.status == 0, "\(result.stderr)")
        let expected = await classes(try infer(["\(photos)/same/same.idx"]).json)
        let rows = try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(rows == ["ImageId,Label"] + expected.enumerated().map { "\($0.offset + 1),\($0.element)" })
        let saved = try await run("nn-infer", [try model(), "\(photos)/pictures", "--save-preprocessed", pictures, "--show", "0"])
        #expect(saved.status == 0, "\(saved.stderr)")
        let names = try FileManager.default.contentsOfDirectory(atPath: pictures).sorted()
        #expect(names.count == 100 && names.first == "img_000.png" && names.contains("img_001.png"))
    }

    @Test func badInputsAreOneLineEach() async throws {
        let bad = "\(dir)/bad"
        try FileManager.default.createDirectory(atPath: "\(bad)/empty", withIntermediateDirectories: true)
        let png = try Data(contentsOf: URL(fileURLWithPath: "\(photos)/pictures/img_000.png"))
        let jpeg = try Data(contentsOf: URL(fileURLWithPath: "\(photos)/pictures/img_001.jpg"))
        try png.prefix(png.count / 2).write(to: URL(fileURLWithPath: "\(bad)/cut.png"))
        try jpeg.prefix(jpeg.count / 2).write(to: URL(fileURLWithPath: "\(bad)/cut.jpg"))
        try Data("label,pixel0\n1,2\n".utf8).write(to: URL(fileURLWithPath: "\(bad)/columns.csv"))
        let made = try await python(["-c", """
            import numpy as np
            np.save('\(bad)/shape.npy', np.zeros((3, 27, 28), np.uint8))
            np.save('\(bad)/dtype.npy', np.zeros((3, 784), np.int64))
            header = 'label,' + ','.join('pixel%d' % i for i in range(784))
            row = ['0'] * 785
            words = row.copy(); words[5] = 'abc'
            high = row.copy(); high[9] = '300'
            short = row[:700]
            for name, line in [('word', words), ('high', high), ('short', short)]:
                open('\(bad)/%s.csv' % name, 'w').write(header + '\\n' + ','.join(row) + '\\n' + ','.join(line) + '\\n')
            """])
        #expect(made.status == 0, "\(made.stderr)")
        let cases: [(String, Int32, String)] = [
            ("\(bad)/cut.png", 65, "\(bad)/cut.png: corrupt or truncated PNG: the file is truncated"),
            ("\(bad)/cut.jpg", 65, "\(bad)/cut.jpg: corrupt or truncated JPEG: "),
            ("\(photos)/bad/bomb.png", 65, "\(photos)/bad/bomb.png: the picture declares 100000x100000 pixels, more than the limit of 50000000 pixels; refused before decoding"),
            ("\(photos)/bad/bomb.jpg", 65, "\(photos)/bad/bomb.jpg: the picture declares 65000x65000 pixels"),
            ("\(bad)/empty", 65, "\(bad)/empty: the folder holds no pictures (.png, .jpg, .jpeg, .pgm, .ppm)"),
            ("\(bad)/columns.csv", 65, "\(bad)/columns.csv:1: the header names 1 pixel column but the model takes 784 values (28x28)"),
            ("\(bad)/short.csv", 65, "\(bad)/short.csv:3: 700 cells where the header has 785"),
            ("\(bad)/word.csv", 65, "\(bad)/word.csv:3: column 6: 'abc' is not a number"),
            ("\(bad)/high.csv", 65, "\(bad)/high.csv:3: column 10: the pixel value 300 is outside 0...255"),
            ("\(bad)/shape.npy", 65, "\(bad)/shape.npy: shape 3x27x28: expected (N, 28, 28) or (N, 784) for the model's input 28x28"),
            ("\(bad)/dtype.npy", 65, "\(bad)/dtype.npy: dtype '<i8': expected uint8 pixels ('|u1') or floats ('<f4', '<f8')"),
            ("\(bad)/missing.png", 66, "\(bad)/missing.png: cannot read: "),
        ]
        for (input, status, message) in cases {
            let result = try await run("nn-infer", [try model(), input])
            #expect(result.status == status, "\(input): \(result.stderr)")
            #expect(result.stderr.hasPrefix("nn-infer: " + message), "\(input): \(result.stderr)")
            #expect(result.stderr.split(separator: "\n").count == 1, "\(input): \(result.stderr)")
            #expect(result.stdout.isEmpty, "\(input): \(result.stdout)")
        }
        let notPictures = try await run("nn-infer", [try model(), "\(photos)/same/same.idx", "--preprocess", "mnist"])
        #expect(notPictures.status == 64)
        // An uncreatable submission is refused before any prediction is printed.
        let noOutput = try await run("nn-infer", [try model(), "\(photos)/same/same.csv", "--csv-out", "\(bad)/missing/sub.csv"])
        #expect(noOutput.status == 73 && noOutput.stdout.isEmpty)
        #expect(noOutput.stderr == "nn-infer: \(bad)/missing/sub.csv: cannot create output file: No such file or directory\n")
    }
}
