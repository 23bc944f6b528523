import Foundation
import NNCore
import NNEngine
import NNFormat
import NNTestSupport
import Testing
@testable import NNConvert
import NNModelFiles
import NNPyTorch
@testable import NNZip
@testable import NNNumPy
@testable import NNSafetensors

let crosstoolDirectory = fixturesDirectory("crosstool")

/// One entry of Fixtures/crosstool/manifest.json (written by Fixtures/generate_crosstool.py).
struct CrossToolFixture: CustomStringConvertible, Sendable {
    var id: String
    var file: String
    var kind: String
    var expect: String
    var error: String?
    var activations: [Activation]?
    var input: [[Double]]
    var output: [[Double]]
    var atol: Double
    var path: String { "\(crosstoolDirectory)/\(file)" }
    var description: String { id }
}

let crosstoolFixtures: [CrossToolFixture] = {
    let data = FileManager.default.contents(atPath: "\(crosstoolDirectory)/manifest.json")!
    let root = try! JSONSerialization.jsonObject(with: data) as! [String: Any]
    return (root["fixtures"] as! [[String: Any]]).map { f in
        let options = f["options"] as? [String: Any]
        return CrossToolFixture(id: f["id"] as! String, file: f["file"] as! String, kind: f["kind"] as! String,
                                expect: f["expect"] as! String, error: f["error"] as? String,
                                activations: (options?["activations"] as? [String])?.map { Activation(name: $0)! },
                                input: f["input"] as? [[Double]] ?? [], output: f["output"] as? [[Double]] ?? [],
                                atol: f["atol"] as? Double ?? 0)
    }
}()

func scratchDirectory() -> String { NNTestSupport.scratchDirectory("nnm-safetensors") }

/// A model with every kind of part a round trip must keep: z-score statistics with a zero std,
/// f16 and bf16 layers, no bias on one layer, classes, a training record with optimizer state.
func richModel() -> Model {
    func values(_ n: Int, _ f: (Int) -> Double) -> [Double] { (0..<n).map(f) }
    let w0 = values(6 * 5) { Double(($0 * 37) % 23 - 11) / 16 }
    let w1 = values(5 * 4) { Double(($0 * 53) % 19 - 9) / 8 }
    let w2 = values(4 * 3) { Double(($0 * 29) % 17 - 8) / 4 }
    let half = w1.map { Float16(Float($0)).bitPattern }
    let brain = w2.map { UInt16(Float($0).bitPattern >> 16) }
    var layers = [Layer.dense(index: 0, inputSize: 6, outputSize: 5, activation: .tanh),
                  Layer.dense(index: 1, inputSize: 5, outputSize: 4, activation: .relu),
                  Layer.dense(index: 2, inputSize: 4, outputSize: 3, activation: .softmax)]
    layers[1].bias = nil
    var training = TrainingRecord(loss: "cross-entropy", optimizer: "momentum", hyperparameters: JSONObject([("lr", .number(0.01))]),
                                  epochs: 2, history: [EpochRecord(epoch: 1, trainLoss: 0.5, testAccuracy: 0.75)],
                                  optimizerState: [(parameter: "layers.0.weight", tensor: "optimizer.velocity.layers.0.weight")], step: 12)
    training.unknownFields["note"] = .string("kept")
    let meta = ModelMetadata(input: InputSpec(shape: [2, 3]), layers: layers,
                             preprocessing: [.scale(factor: 0.5, offset: 0.25), .zscore(mean: "preprocessing.mean", std: "preprocessing.std")],
                             classes: ["a", "b", "c"], training: training,
                             provenance: Provenance(tool: "test", created: "2024-01-01T00:00:00Z"))
    return Model(metadata: meta, tensors: [
        NamedTensor("layers.0.weight", Tensor(w0.map { Float($0) }, shape: [6, 5])),
        NamedTensor("layers.0.bias", Tensor([0.5, -0.25, 0, 0.125, 1], shape: [5])),
        NamedTensor("layers.1.weight", half.withUnsafeBytes { Tensor(dtype: .float16, shape: [5, 4], copying: $0) }),
        NamedTensor("layers.2.weight", brain.withUnsafeBytes { Tensor(dtype: .bfloat16, shape: [4, 3], copying: $0) }),
        NamedTensor("layers.2.bias", Tensor([0.1, 0.2, 0.3] as [Double], shape: [3])),
        NamedTensor("preprocessing.mean", Tensor([0.5, 1, 1.5, 2, 2.5, 3] as [Double], shape: [6])),
        NamedTensor("preprocessing.std", Tensor([1, 0, 2, 0.5, 0, 4] as [Double], shape: [6])),
        NamedTensor("optimizer.velocity.layers.0.weight", Tensor([Float](repeating: 0.01, count: 30), shape: [6, 5])),
    ])
}

/// A safetensors file from its parts, for inputs the reference writer would never produce.
func safetensorsBytes(_ header: String, data: [UInt8], length: UInt64? = nil) -> [UInt8] {
    let text = Array(header.utf8)
    var n = length ?? UInt64(text.count)
    var bytes: [UInt8] = []
    for _ in 0..<8 {
        bytes.append(UInt8(truncatingIfNeeded: n))
        n >>= 8
    }
    return bytes + text + data
}

@Suite("safetensors")
struct SafetensorsTests {
    @Test("state dicts written by the safetensors package", arguments: crosstoolFixtures.filter { $0.kind == "safetensors" && $0.expect == "load" })
    func loads(_ fixture: CrossToolFixture) throws {
        var options = ImportOptions()
        options.activations = fixture.activations
        let result = try ModelFiles.importModel(path: fixture.path, options: options)
        // Without --activations the last Linear gives logits (nn-infer shows their softmax); the
        // fixtures' reference is the softmax the generator applied.
        var got = try predictions(result.model, fixture.input)
        if result.model.metadata.outputKind == .logits && fixture.activations == nil { got = softmaxRows(got) }
        #expect(maxDifference(got, fixture.output) <= fixture.atol, "\(fixture.id): \(got) vs \(fixture.output)")
        #expect(result.model.metadata.provenance.sourceFormat == "safetensors-pytorch")
    }

    @Test("f16 and bf16 weights stay f16 and bf16")
    func halfPrecisionKept() throws {
        let f16 = try ModelFiles.importModel(path: "\(crosstoolDirectory)/st_named_fc_f16.safetensors").model
        #expect(f16.tensors.allSatisfy { $0.tensor.dtype == .float16 })
        var options = ImportOptions()
        options.activations = [.sigmoid, .sigmoid]
        let bf16 = try ModelFiles.importModel(path: "\(crosstoolDirectory)/st_bf16_nobias.safetensors", options: options).model
        #expect(bf16.tensors.map(\.tensor.dtype) == [.bfloat16, .bfloat16])
        #expect(bf16.metadata.layers.allSatisfy { $0.bias == nil })
    }

    @Test("layers.10 comes after layers.9, not after layers.1")
    func numericOrder() throws {
        let result = try ModelFiles.importModel(path: "\(crosstoolDirectory)/st_layers_numeric_f64.safetensors")
        #expect(result.model.metadata.layers.map(\.inputSize) == [6, 5, 7, 4, 6, 5, 7, 4, 6, 5, 7])
        #expect(result.format.hasSuffix("layers.8, layers.9, layers.10)"))
    }

    @Test("default activations are announced; chained order is announced")
    func notes() throws {
        let result = try ModelFiles.importModel(path: "\(crosstoolDirectory)/st_named_fc_f16.safetensors")
        #expect(result.notes.contains { $0.hasPrefix("layer order fc1, fc2, fc3: the only order in which the shapes chain; --layer-order overrides") })
        #expect(result.notes.contains { $0.hasPrefix("activations relu, relu, identity: a PyTorch state dict does not record them") })
    }

    @Test("--layer-order resolves square layers; a wrong list is a usage error")
    func layerOrder() throws {
        let path = "\(crosstoolDirectory)/st_ambiguous_square.safetensors"
        var options = ImportOptions()
        options.layerOrder = ["encoder", "decoder"]
        let model = try ModelFiles.importModel(path: path, options: options).model
        #expect(model.metadata.layers.count == 2)
        options.layerOrder = ["encoder"]
        let message = errorMessage { _ = try ModelFiles.importModel(path: path, options: options) }
        #expect(message == "--layer-order: \(path) has the layers decoder, encoder, but encoder was given")
    }

    @Test("bad files: one clear line each", arguments: crosstoolFixtures.filter { $0.kind == "safetensors" && $0.expect == "error" })
    func rejects(_ fixture: CrossToolFixture) throws {
        let message = try #require(errorMessage { _ = try ModelFiles.importModel(path: fixture.path) })
        #expect(message.hasPrefix("\(fixture.path): "), "\(message)")
        #expect(message.contains(fixture.error!), "\(message)")
        #expect(!message.contains("\n"))
    }

    @Test("a .nnm -> safetensors -> .nnm round trip is bit-identical")
    func roundTrip() throws {
        let dir = scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = richModel()
        try model.validate()
        try NNMFormat.write(model, to: "\(dir)/a.nnm")
        let read = try NNMFormat.read(path: "\(dir)/a.nnm")
        try SafetensorsExport.write(read, to: "\(dir)/a.safetensors")
        let result = try ModelFiles.importModel(path: "\(dir)/a.safetensors")
        #expect(result.format == "nnm safetensors export")
        try NNMFormat.write(result.model, to: "\(dir)/b.nnm")
        let a = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/a.nnm"))
        let b = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/b.nnm"))
        #expect(a == b)
    }

    @Test("the export is laid out for nn.Sequential: N.weight (out, in), padded header, our metadata")
    func exportLayout() throws {
        let dir = scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = richModel()
        try SafetensorsExport.write(model, to: "\(dir)/m.safetensors")
        let header = try Safetensors.readHeader(path: "\(dir)/m.safetensors")
        #expect(header.headerLength % 8 == 0)
        let byName = Dictionary(uniqueKeysWithValues: header.entries.map { ($0.name, $0) })
        // tanh at 1, relu at 3, softmax at 5: the Linear modules are 0, 2 and 4.
        #expect(byName["0.weight"]?.shape == [5, 6] && byName["0.weight"]?.type == .f32)
        #expect(byName["2.weight"]?.shape == [4, 5] && byName["2.weight"]?.type == .f16 && byName["2.bias"] == nil)
        #expect(byName["4.weight"]?.shape == [3, 4] && byName["4.weight"]?.type == .bf16 && byName["4.bias"]?.type == .f64)
        #expect(byName["preprocessing.std"]?.type == .f64)
        #expect(header.metadata("format") == "pt")
        #expect(header.metadata("pytorch_module") == "nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 4, bias=False), nn.ReLU(), nn.Linear(4, 3), nn.Softmax(dim=1))")
        #expect(header.metadata(SafetensorsExport.metadataKey) != nil)
    }

    @Test("a safetensors file is recognised by its header when its name does not say so")
    func detection() throws {
        let dir = scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let source = try Data(contentsOf: URL(fileURLWithPath: "\(crosstoolDirectory)/st_sequential_f32.safetensors"))
        try source.write(to: URL(fileURLWithPath: "\(dir)/weights.bin"))
        #expect(try ModelFiles.registry.format(of: "\(dir)/weights.bin") is SafetensorsModelFormat)
        try Data("{\"not\": \"safetensors\"}".utf8).write(to: URL(fileURLWithPath: "\(dir)/text.json"))
        #expect(throws: InteropError.self) { try ModelFiles.registry.format(of: "\(dir)/text.json") }
        #expect(try ModelFiles.importModel(path: "\(dir)/weights.bin").model.metadata.layers.count == 2)
    }

    @Test("inspect lists the tensors and metadata from the header")
    func inspect() throws {
        let inspection = try ModelFiles.inspect(path: "\(crosstoolDirectory)/st_sequential_f32.safetensors")
        #expect(inspection.format == "safetensors")
        let lines = inspection.render()
        #expect(lines.contains("  0.weight  F32 8x12 (96 values)"), "\(lines)")
        #expect(lines.contains("  @format = pt"), "\(lines)")
        let dir = scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try SafetensorsExport.write(richModel(), to: "\(dir)/m.safetensors")
        let own = try ModelFiles.inspect(path: "\(dir)/m.safetensors")
        #expect(own.summary.contains("classes: a, b, c"))
    }

    @Test("hand-made bad headers", arguments: [
        ("{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,8]}}", [UInt8](repeating: 0, count: 8),
         "tensor 'a': shape 4611686018427387904x4 is too large (its size overflows)"),
        ("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", [UInt8](repeating: 0, count: 8),
         "tensor 'a': shape must hold non-negative integers"),
        ("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", [UInt8](repeating: 0, count: 8),
         "tensor 'a': data_offsets must be two non-negative integers [begin, end]"),
        ("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", [UInt8](repeating: 0, count: 8),
         "tensor 'a' ends at byte 16 of the data buffer, which has only 8 bytes (a truncated file)"),
        ("{\"a\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,1]}}", [UInt8](repeating: 0, count: 1),
         "tensor 'a': 3 elements of F4 do not fill whole bytes"),
        ("{\"a.weight\":{\"dtype\":\"I32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", [UInt8](repeating: 0, count: 16),
         "a.weight: expected floating-point or integer weights, found I32"),
        ("{\"a.weight\":{\"dtype\":\"F8_E4M3\",\"shape\":[2,2],\"data_offsets\":[0,4]}}", [UInt8](repeating: 0, count: 4),
         "a.weight: expected floating-point or integer weights, found F8_E4M3"),
        ("{\"model.embed\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", [UInt8](repeating: 0, count: 8),
         "unexpected 'model.embed': expected nn.Linear or nn.Conv2d parameters named <module>.weight and <module>.bias, or nn.BatchNorm's weight, bias, running_mean and running_var"),
        ("{\"fc.bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", [UInt8](repeating: 0, count: 8),
         "unexpected 'fc.bias': a bias without fc.weight"),
        ("{\"a.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},\"b.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[24,48]}}",
         [UInt8](repeating: 0, count: 48), "the weights a 2x3, b 2x3 (out, in) chain in no order"),
        ("{}", [], "the file holds no tensors"),
        ("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]} trailing", [UInt8](repeating: 0, count: 8),
         "header: invalid JSON at byte"),
    ] as [(String, [UInt8], String)])
    func badHeaders(_ header: String, _ data: [UInt8], _ expected: String) throws {
        let dir = scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = "\(dir)/bad.safetensors"
        try Data(safetensorsBytes(header, data: data)).write(to: URL(fileURLWithPath: path))
        let message = try #require(errorMessage { _ = try ModelFiles.importModel(path: path) })
        #expect(message.hasPrefix("\(path): ") && message.contains(expected), "\(message)")
    }

    @Test("every truncation and many corruptions of a valid file are reported, never a crash")
    func truncationsAndFlips() throws {
        let dir = scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: "\(crosstoolDirectory)/st_sequential_f32.safetensors")))
        let path = "\(dir)/cut.safetensors"
        for n in 0..<bytes.count {
            try Data(bytes[0..<n]).write(to: URL(fileURLWithPath: path))
            #expect(errorMessage { _ = try ModelFiles.importModel(path: path) } != nil, "prefix of \(n) bytes")
        }
        // Flips in the length and the header; data bytes are not checksummed, as in the format.
        let headerEnd = 8 + Int(bytes[0]) + Int(bytes[1]) << 8
        for i in 0..<headerEnd {
            var flipped = bytes
            flipped[i] ^= 0x20
            try Data(flipped).write(to: URL(fileURLWithPath: path))
            _ = errorMessage { _ = try ModelFiles.importModel(path: path) }
        }
    }
}
