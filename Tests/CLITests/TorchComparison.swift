import Foundation
import Testing

/// What the PyTorch and ONNX CLI tests share: torch's 100 MNIST digits (Fixtures/torch) as an IDX
/// file, and the check that a converted model predicts as torch did (`expected.npz`).
struct TorchComparison {
    let dir: String
    let torch = "\(packageRoot)/Fixtures/torch"

    /// The 100 digits of `inputs.npy` as an IDX file for nn-infer (written once into `dir`).
    func digits() async throws -> String {
        let idx = "\(dir)/digits.idx"
        if !FileManager.default.fileExists(atPath: idx) {
            let made = try await python(["-c", """
                import numpy as np, struct
                x = np.load('\(torch)/inputs.npy')
                open('\(idx)', 'wb').write(struct.pack('>BBBBIII', 0, 0, 8, 3, *x.shape) + x.tobytes())
                """])
            #expect(made.status == 0, "\(made.stderr)")
        }
        return idx
    }

    /// Imports `file` of Fixtures/torch with `--scale 1/255` and `options`, runs nn-infer on the
    /// digits and expects torch's classes (`<model>_argmax`) and probabilities (`<model>_probs`)
    /// within 1e-4.
    func expectImportPredictsAsTorch(file: String, model: String, options: [String] = [],
                                     sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let nnm = "\(dir)/\(file).nnm"
        let imported = try await run("nnconv", ["import", "\(torch)/\(file)", "-o", nnm, "--scale", "1/255"] + options)
        #expect(imported.status == 0, "\(imported.stderr)", sourceLocation: sourceLocation)
        let inferred = try await run("nn-infer", [nnm, try digits(), "--json", "--top", "10"])
        try await expectPredictionsAsTorch(inferred, file: file, model: model, sourceLocation: sourceLocation)
    }

    /// Runs nn-infer on `file` of Fixtures/torch itself (converted for the run, with `--scale
    /// 1/255` and `options`) and expects torch's classes and probabilities as above.
    /// - Returns: nn-infer's standard error (the converter's notes).
    @discardableResult
    func expectInferencePredictsAsTorch(file: String, model: String, options: [String] = [],
                                        sourceLocation: SourceLocation = #_sourceLocation) async throws -> String {
        let inferred = try await run("nn-infer", ["\(torch)/\(file)", try digits(), "--json", "--top", "10", "--scale", "1/255"] + options)
        try await expectPredictionsAsTorch(inferred, file: file, model: model, sourceLocation: sourceLocation)
        return inferred.stderr
    }

    private func expectPredictionsAsTorch(_ inferred: ProcessResult, file: String, model: String, sourceLocation: SourceLocation) async throws {
        #expect(inferred.status == 0, "\(inferred.stderr)", sourceLocation: sourceLocation)
        let json = "\(dir)/\(file).json"
        try Data(inferred.stdout.utf8).write(to: URL(fileURLWithPath: json))
        let compared = try await python(["-c", """
            import json, numpy as np
            e = np.load('\(torch)/expected.npz')
            probs, top = e['\(model)_probs'], e['\(model)_argmax']
            ours = json.load(open('\(json)'))['predictions']
            assert len(ours) == 100, len(ours)
            worst = 0.0
            for i, p in enumerate(ours):
                assert p['class'] == int(top[i]), (i, p['class'], int(top[i]))
                for entry in p['top']:
                    worst = max(worst, abs(entry['probability'] - probs[i, entry['class']]))
            assert worst <= 1e-4, worst
            print(worst)
            """])
        #expect(compared.status == 0, "\(compared.stderr)", sourceLocation: sourceLocation)
    }
}
