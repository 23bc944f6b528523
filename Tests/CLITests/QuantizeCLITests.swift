import Foundation
import NNFormat
import Testing

/// `nnconv quantize` on models trained here by `nn-train`'s presets (one epoch each on the first
/// 12,000 Fashion-MNIST training images: what the quantization loses does not need the whole
/// epoch, which the debug build trains in a minute for the cnn, and `make bench` measures it on
/// the whole epoch): int8 and bf16 copies lose at most 0.5 percentage points of test accuracy
/// (the issue's goal), as `nnconv quantize` measures it by running both models through nn-infer's
/// code; nn-infer names the kernels it ran, on the AVX2 path (forced with NNM_KERNELS) and on the
/// best one.
@Suite(.serialized) struct QuantizeCLITests {
    /// The presets' training images (`nn-train --limit`), as the suite's comment says.
    static let trainingImages = "12000"

    /// The change in accuracy `nnconv quantize` printed, in percentage points.
    static func accuracyChange(_ stdout: String) -> Double? {
        guard let line = stdout.split(separator: "\n").first(where: { $0.hasPrefix("accuracy on ") }),
              let open = line.lastIndex(of: "("), let end = line.range(of: " percentage points)") else { return nil }
        return Double(line[line.index(after: open)..<end.lowerBound])
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: fashionTestImages), "Fashion-MNIST is not installed"),
          arguments: ["blog", "capstone", "cnn"])
    func quantizedPresetsKeepTheirAccuracy(_ recipe: String) async throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = "\(dir)/\(recipe).nnm"
        let train = try await run("nn-train", ["--recipe", recipe, "--epochs", "1", "--limit", Self.trainingImages, "--save", model])
        try #require(train.status == 0, "\(train.stderr)")
        for bf16 in [false, true] {
            let out = "\(dir)/\(recipe).\(bf16 ? "bf16" : "int8").nnm"
            let q = try await run("nnconv", ["quantize", model, "-o", out, "--images", fashionTestImages, "--labels", fashionTestLabels] + (bf16 ? ["--bf16"] : []))
            #expect(q.status == 0, "\(q.stderr)")
            let change = try #require(Self.accuracyChange(q.stdout), "\(q.stdout)")
            #expect(abs(change) <= 0.5, "\(recipe) \(bf16 ? "bf16" : "int8"): \(q.stdout)")
            let validate = try await run("nnconv", ["validate", out])
            #expect(validate.status == 0 && validate.stdout.contains(bf16 ? "valid .nnm 1." : "valid .nnm 1.3"), "\(validate.stdout)\(validate.stderr)")
        }
        // 7-bit weights (and 7-bit activations): as accurate, and on the AVX2 path (the MLPs'
        // hidden layers) multiplied on bytes.
        let sevenBit = "\(dir)/\(recipe).w7.nnm"
        let q7 = try await run("nnconv", ["quantize", model, "-o", sevenBit, "--weight-bits", "7", "--images", fashionTestImages, "--labels", fashionTestLabels])
        #expect(q7.status == 0 && q7.stdout.contains("int8 (7-bit weights)"), "\(q7.stdout)\(q7.stderr)")
        let change = try #require(Self.accuracyChange(q7.stdout), "\(q7.stdout)")
        #expect(abs(change) <= 0.5, "\(recipe) 7-bit: \(q7.stdout)")
        if recipe != "cnn" {
            // The kernel the AVX2 path names for the 8-bit copy decides what it names for the 7-bit
            // one: avx2 becomes avx2_maddubs; AVX-VNNI (or the portable kernel) stays.
            var names: [String] = []
            for path in ["\(dir)/\(recipe).int8.nnm", sevenBit] {
                let infer = try await run("nn-infer", [path, fashionTestImages, "--show", "0", "--json"], environment: ["NNM_KERNELS": "avx2"])
                #expect(infer.status == 0, "\(infer.stderr)")
                // 7-bit weights take 7-bit activations, on every kernel.
                #expect(infer.stdout.contains(path == sevenBit ? "7-bit activations per row" : "u8 activations per row"), "\(infer.stdout.prefix(600))")
                let kernel = infer.stdout.components(separatedBy: "int8 weights: ").dropFirst().first?.prefix { $0 != " " }
                names.append(String(try #require(kernel, "\(infer.stdout.prefix(400))")))
            }
            #expect(names[1] == (names[0] == "avx2" ? "avx2_maddubs" : names[0]), "\(names)")
        }
        for kernels in ["avx2", "auto"] {
            let infer = try await run("nn-infer", ["\(dir)/\(recipe).int8.nnm", fashionTestImages, "--show", "0", "--json"], environment: ["NNM_KERNELS": kernels])
            #expect(infer.status == 0, "\(infer.stderr)")
            // The int8 layers ran on an int8 kernel, as direct convolutions of one channel (AVX-512),
            // or (a few outputs or filters) in f32 from their input.
            #expect(["int8 weights: ", "int8 convolutions of one channel", "outputs or filters: as f32"].contains { infer.stdout.contains($0) },
                    "\(infer.stdout.prefix(400))")
        }
    }

    /// `--calibration` (format 1.4) on the blog preset: each layer's inputs get one scale and zero
    /// point fitted on the test images, the accuracy stays within 0.5 points, the file says 1.4
    /// and nn-infer says it quantizes with the calibrated scales; the scales differ with the
    /// percentile (the first layer's z-scored pixels reach far past their central 99.99 %).
    @Test(.enabled(if: FileManager.default.fileExists(atPath: fashionTestImages), "Fashion-MNIST is not installed"))
    func calibratedActivationsKeepTheAccuracy() async throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = "\(dir)/blog.nnm", out = "\(dir)/blog.int8.nnm"
        let train = try await run("nn-train", ["--recipe", "blog", "--epochs", "1", "--limit", Self.trainingImages, "--save", model])
        try #require(train.status == 0, "\(train.stderr)")
        let q = try await run("nnconv", ["quantize", model, "-o", out, "--calibration", fashionTestImages,
                                   "--images", fashionTestImages, "--labels", fashionTestLabels])
        #expect(q.status == 0, "\(q.stderr)")
        #expect(q.stdout.contains("activations of 2 layers calibrated on 10000 images of \(fashionTestImages) (99.99 % of each layer's inputs in range)"), "\(q.stdout)")
        let change = try #require(Self.accuracyChange(q.stdout), "\(q.stdout)")
        #expect(abs(change) <= 0.5, "\(q.stdout)")
        let file = try NNMFormat.open(path: out)
        #expect(file.header.minorVersion == 4)
        let first = try #require(file.model.metadata.layers[0].inputQuantization)
        let infer = try await run("nn-infer", [out, fashionTestImages, "--show", "0", "--json"])
        #expect(infer.status == 0 && infer.stdout.contains("u8 activations with calibrated scales"), "\(infer.stdout.prefix(600))\(infer.stderr)")
        let wide = try await run("nnconv", ["quantize", model, "-o", "\(dir)/wide.nnm", "--calibration", fashionTestImages, "--percentile", "100"])
        #expect(wide.status == 0, "\(wide.stderr)")
        let widest = try #require(try NNMFormat.open(path: "\(dir)/wide.nnm").model.metadata.layers[0].inputQuantization)
        #expect(widest.scale > first.scale, "\(widest) vs \(first)")
        // Images of another size are refused before anything is written.
        let small = "\(dir)/small.idx"
        try Data([0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3, 4]).write(to: URL(fileURLWithPath: small))
        let wrong = try await run("nnconv", ["quantize", model, "-o", "\(dir)/wrong.nnm", "--calibration", small])
        #expect(wrong.status == 65 && wrong.stderr.contains("\(small): images are 2x2 (4 features) but \(model) expects 28x28 (784 features)") && wrong.stderr.split(separator: "\n").count == 1, "\(wrong.stderr)")
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/wrong.nnm"))
        // No images at all: nothing to fit a range to.
        let none = "\(dir)/none.idx"
        try Data([0, 0, 8, 3, 0, 0, 0, 0, 0, 0, 0, 28, 0, 0, 0, 28]).write(to: URL(fileURLWithPath: none))
        let empty = try await run("nnconv", ["quantize", model, "-o", "\(dir)/empty.nnm", "--calibration", none])
        #expect(empty.status == 65 && empty.stderr == "nnconv quantize: \(none): holds no images to calibrate on\n", "\(empty.stderr)")
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/empty.nnm"))
    }

    @Test func usageErrors() async throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = "\(dir)/m.nnm"
        try NNMFormat.write(formulaModel(), to: path)
        let same = try await run("nnconv", ["quantize", path, "-o", path])
        #expect(same.status == 64 && same.stderr.contains("would overwrite"))
        let half = try await run("nnconv", ["quantize", path, "-o", "\(dir)/q.nnm", "--images", fashionTestImages])
        #expect(half.status == 64 && half.stderr.contains("--images and --labels go together"))
        for (arguments, message) in [(["--calibration", fashionTestImages, "--bf16"], "--calibration applies to int8"),
                                     (["--percentile", "99.9"], "--percentile applies to --calibration"),
                                     (["--calibration", fashionTestImages, "--percentile", "40"], "--percentile must be above 50 and at most 100, not 40.0"),
                                     (["--weight-bits", "6"], "--weight-bits must be 7 or 8, not 6"),
                                     (["--bf16", "--weight-bits", "7"], "--weight-bits applies to int8")] {
            let usage = try await run("nnconv", ["quantize", path, "-o", "\(dir)/q.nnm"] + arguments)
            #expect(usage.status == 64 && usage.stderr.contains(message), "\(usage.stderr)")
        }
        let missing = try await run("nnconv", ["quantize", "\(dir)/absent.nnm", "-o", "\(dir)/q.nnm"])
        #expect(missing.status == 66, "\(missing.stderr)")
    }
}
