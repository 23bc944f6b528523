import Foundation
import NNCore
import NNEngine
import NNHDF5
import NNTestSupport
import Testing
@testable import NNConvert
import NNModelFiles
@testable import NNZip
@testable import NNNumPy
@testable import NNSafetensors

let interopDirectory = fixturesDirectory("interop")

/// One entry of Fixtures/interop/manifest.json.
struct FixtureCase: CustomStringConvertible, Sendable {
    var id: String
    var file: String
    var format: String
    var expect: String
    var error: String?
    var needs: [String]
    var layout: String?
    var activations: [String]?
    var atol: Double
    var description: String { id }
}

let fixtureCases: [FixtureCase] = {
    let data = FileManager.default.contents(atPath: "\(interopDirectory)/manifest.json")!
    let root = try! JSONSerialization.jsonObject(with: data) as! [String: Any]
    return (root["fixtures"] as! [[String: Any]]).map { f in
        let hints = f["cli_hints"] as? [String: Any]
        let expected = f["expected"] as? [String: Any]
        return FixtureCase(id: f["id"] as! String, file: f["file"] as! String, format: f["format"] as! String,
                           expect: f["expect"] as! String, error: f["error"] as? String, needs: f["needs"] as? [String] ?? [],
                           layout: hints?["layout"] as? String, activations: hints?["activations"] as? [String],
                           atol: expected?["atol"] as? Double ?? 0)
    }
}()

func options(for fixture: FixtureCase) -> ImportOptions {
    var o = ImportOptions()
    if fixture.needs.contains("layout") {
        // A square network's file says nothing about its convention, so neither its orientation
        // nor its activations can be defaulted: the test gives both, as a user would.
        o.layout = WeightLayout(rawValue: fixture.layout!)
        o.activations = fixture.activations!.map { Activation(name: $0)! }
    }
    if fixture.needs.contains("activations") { o.activations = fixture.activations!.map { Activation(name: $0)! } }
    return o
}

/// The NumPy reference input and output for a fixture, from expected.h5.
func expectedValues(_ id: String) throws -> (input: [Double], rows: Int, output: [Double]) {
    let file = try HDF5File.open(path: "\(interopDirectory)/expected.h5")
    let input = try file.dataset("\(id)/input")
    return (try input.readDoubles(), input.shape[0], try file.dataset("\(id)/output").readDoubles())
}

let loadable = fixtureCases.filter { ["load", "convert"].contains($0.expect) && $0.format != "npy" }
let failing = fixtureCases.filter { $0.expect == "error" }

@Suite struct ImportFixtures {
    @Test(arguments: loadable)
    func importedModelReproducesNumPy(fixture: FixtureCase) throws {
        let result = try ModelFiles.importModel(path: "\(interopDirectory)/\(fixture.file)", options: options(for: fixture))
        let (input, rows, output) = try expectedValues(fixture.id)
        let engine = try InferenceEngine<Double>(model: result.model)
        let ours = engine.predict(raw: input, count: rows)
        #expect(ours.count == output.count)
        let worst = zip(ours, output).map { abs($0 - $1) }.max() ?? .infinity
        #expect(worst <= fixture.atol, "max abs error \(worst)")
        if let activations = fixture.activations {
            #expect(result.model.metadata.layers.map(\.activation.name) == activations)
        }
    }

    @Test(arguments: failing)
    func badFileIsRejectedWithItsKind(fixture: FixtureCase) throws {
        let path = "\(interopDirectory)/\(fixture.file)"
        do {
            _ = try ModelFiles.importModel(path: path, options: options(for: fixture))
            Issue.record("\(fixture.id) imported; expected \(fixture.error ?? "an error")")
        } catch let error as InteropError {
            let kind: String
            switch error {
            case .unknownFormat: kind = "not_hdf5"
            case .missingTensor: kind = "missing_tensor"
            case .unexpectedTensor: kind = "unexpected_tensor"
            case let .badShape(_, _, detail): kind = detail.contains("2-D") ? "bad_rank" : "shape_mismatch"
            case .badDType: kind = "bad_dtype"
            case .unsupportedLayer: kind = "unsupported_layer"
            default: kind = "\(error)"
            }
            #expect(kind == fixture.error, "\(error)")
            #expect(error.description.hasPrefix(path + ": "), "\(error)")
        } catch let error as ZipError {
            #expect(fixture.error == "corrupt_zip", "\(error)")
            #expect(error.description.hasPrefix(path + ": "), "\(error)")
        } catch let error as NumPyFileError {
            if case .pickledObjects = error {
                #expect(fixture.error == "pickle_required", "\(error)")
            } else {
                #expect(fixture.error == "bad_npy", "\(error)")
            }
            #expect(error.description.hasPrefix(path + ": "), "\(error)")
        }
    }

    @Test func ambiguousSquareMatricesNameTheFlag() {
        let path = "\(interopDirectory)/ambiguous_square_8x8_f64.h5"
        #expect(throws: InteropError.ambiguous(path: path, detail: "the shapes W1 8x8, b1 8; W2 8x8, b2 8 chain both as rows and as columns",
                                               flag: "--layout rows or --layout columns")) {
            try ModelFiles.importModel(path: path)
        }
    }

    @Test func messagesForCommonMistakes() throws {
        let dir = interopDirectory
        #expect(throws: InteropError.missingTensor(path: "\(dir)/bad_missing_b2.h5", name: "b2", detail: "W2 has no bias")) {
            try ModelFiles.importModel(path: "\(dir)/bad_missing_b2.h5")
        }
        #expect(throws: InteropError.badShape(path: "\(dir)/bad_3d_weight.h5", name: "W1", detail: "expected a 2-D weight matrix, found shape 2x12x6")) {
            try ModelFiles.importModel(path: "\(dir)/bad_3d_weight.h5")
        }
        #expect(throws: InteropError.unknownFormat(path: "\(dir)/bad_empty.h5", detail: "the file is empty")) {
            try ModelFiles.importModel(path: "\(dir)/bad_empty.h5")
        }
    }

    @Test func defaultsAreAnnounced() throws {
        let result = try ModelFiles.importModel(path: "\(interopDirectory)/blog_rows_2layer_f64.h5")
        #expect(result.notes.contains { $0.hasPrefix("layout rows (W (in, out)), inferred from the shapes of W1, W2") })
        #expect(result.notes.contains { $0.hasPrefix("activations relu, softmax: blog files do not record them") })
        #expect(result.model.metadata.provenance.sourceFormat == "hdf5-blog-rows")
    }

    @Test func functionalKerasModelIsReadAsAChain() throws {
        let fixture = fixtureCases.first { $0.id == "k3_functional_keras" }!
        let result = try ModelFiles.importModel(path: "\(interopDirectory)/\(fixture.file)")
        let (input, rows, output) = try expectedValues(fixture.id)
        let ours = try InferenceEngine<Double>(model: result.model).predict(raw: input, count: rows)
        #expect(zip(ours, output).map { abs($0 - $1) }.max()! <= fixture.atol)
    }

    @Test func npzExportRoundTripIsBitIdentical() throws {
        let source = try ModelFiles.importModel(path: "\(interopDirectory)/blog_rows_3layer_f32.h5").model
        for layout in WeightLayout.allCases {
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("rt-\(UUID().uuidString).npz").path
            try NumPyExport.write(source, to: path, layout: layout)
            let back = try ModelFiles.importModel(path: path).model
            #expect(back.metadata == source.metadata)
            for t in source.tensors { #expect(t.tensor.isBitIdentical(to: back.tensor(t.name)!), "\(layout) \(t.name)") }
        }
    }

    @Test func forcedLayoutThatDoesNotFit() {
        var o = ImportOptions()
        o.layout = .columns
        let path = "\(interopDirectory)/blog_rows_2layer_f64.h5"
        #expect(throws: InteropError.self) { try ModelFiles.importModel(path: path, options: o) }
    }
}
