import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NNCommandLine
import NNCore
import NNData
import NNEngine
import NNFormat
import NNImage
import NNTestSupport
import Testing
@testable import NNServe

/// A model whose logits are its first ten input values: 784 -> 10, weight 1 where the input
/// index equals the output index, else 0; no bias, no preprocessing, identity activation. So
/// the expected probabilities are the softmax of the first ten values, computed here by hand.
func pickModel(offset: Int = 0, history: Bool = true) -> Model {
    var weight = [Float](repeating: 0, count: 784 * 10)
    for j in 0..<10 { weight[(j + offset) * 10 + j] = 1 }
    let training = TrainingRecord(loss: "cross-entropy", optimizer: "sgd", epochs: 2,
                                  history: [EpochRecord(epoch: 1, trainLoss: 0.5, testAccuracy: 0.9),
                                            EpochRecord(epoch: 2, trainLoss: 0.25, testAccuracy: 0.95)])
    let meta = ModelMetadata(input: InputSpec(shape: [28, 28]),
                             layers: [Layer.dense(index: 0, inputSize: 784, outputSize: 10, activation: .identity)],
                             classes: ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"],
                             training: history ? training : nil,
                             provenance: Provenance(tool: "tests", created: "2026-12-05T00:00:00Z"))
    return Model(metadata: meta, tensors: [
        NamedTensor("layers.0.weight", Tensor(weight, shape: [784, 10])),
        NamedTensor("layers.0.bias", Tensor([Float](repeating: 0, count: 10), shape: [10])),
    ])
}

/// The default limits with a request time limit far above any test's: the tests share two CPUs
/// with long command-line suites, so a request may wait seconds for a thread, and only
/// `timeLimitIs408` is about the time limit.
func unhurriedLimits() -> ServeLimits {
    var limits = ServeLimits()
    limits.requestSeconds = 600
    return limits
}

/// A server on the pick model (named "pick"), with `limits`.
struct Fixture {
    let dir = scratchDirectory("nn-serve")
    let state: ServeState
    var path: String { "\(dir)/pick.nnm" }

    init(limits: ServeLimits = unhurriedLimits(), logger: Logger = Logger(label: "tests"), examplesPath: String? = "none") throws {
        try NNMFormat.write(pickModel(), to: "\(dir)/pick.nnm")
        var configuration = ServeConfiguration(sources: [try ModelSource(argument: "\(dir)/pick.nnm")])
        configuration.limits = limits
        let metrics = ServeMetrics()
        let registry = try NNServer.registry(configuration, importChoices: try ImportChoices.parse([]), metrics: metrics)
        let examples = try ExamplePictures.forModels(registry.all, path: examplesPath)
        state = ServeState(registry: registry, limits: limits, metrics: metrics, logger: logger, examples: examples)
    }

    func test(_ body: @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        try await NNServer.application(state: state, host: "127.0.0.1", port: 0).test(.router, body)
    }
}

/// Pixels 0..<784 with the first ten set to `logits` (the rest 7, which the pick model ignores).
func sample(_ logits: [Double]) -> [Double] { logits + [Double](repeating: 7, count: 784 - logits.count) }

func body(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }
func body(_ bytes: [UInt8]) -> ByteBuffer { ByteBuffer(bytes: bytes) }

/// The body as JSON, null when it is not.
func parsed(_ response: TestResponse) -> JSONValue { (try? json(response)) ?? .null }

func json(_ response: TestResponse) throws -> JSONValue { try JSONValue.parse(Array(response.body.readableBytesView)) }

/// The error message of a JSON error response, after checking its status.
func expectError(_ response: TestResponse, _ status: Int, containing text: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
    #expect(Int(response.status.code) == status, "\(String(buffer: response.body))", sourceLocation: sourceLocation)
    #expect(response.headers[.contentType] == "application/json", sourceLocation: sourceLocation)
    let message = try json(response)["error"]?.stringValue ?? ""
    #expect(message.contains(text), "\(message)", sourceLocation: sourceLocation)
}

func inferBody(shape: [Int], datatype: String = "FP32", data: String, extra: String = "") -> ByteBuffer {
    body("{\"inputs\":[{\"name\":\"input\",\"shape\":\(shape),\"datatype\":\"\(datatype)\",\"data\":\(data)}]\(extra)}")
}

func numbers(_ values: [Double]) -> String { "[" + values.map { String($0) }.joined(separator: ",") + "]" }

/// The probabilities output of a KServe response.
func probabilities(_ response: JSONValue) -> [Double] {
    let outputs = response["outputs"]?.arrayValue ?? []
    return outputs.first { $0["name"]?.stringValue == "probabilities" }?["data"]?.arrayValue?.compactMap(\.doubleValue) ?? []
}

func classes(_ response: JSONValue) -> [Int] {
    let outputs = response["outputs"]?.arrayValue ?? []
    return outputs.first { $0["name"]?.stringValue == "class" }?["data"]?.arrayValue?.compactMap(\.intValue) ?? []
}

let logitsA: [Double] = [0.5, 2, -1, 0, 3, 1, 0.25, -2, 1.5, 2.5]  // class 4
let logitsB: [Double] = [1, 0, 0, 0, 0, 0, 0, 0, 0, 9]              // class 9

@Suite struct ServeTests {
    /// Once graceful shutdown has started, readiness (server and model) answers 503 while
    /// liveness and inference still answer.
    @Test func readinessWhileDraining() async throws {
        let fixture = try Fixture()
        fixture.state.draining.start()
        try await fixture.test { client in
            for path in ["/v2/health/ready", "/v2/models/pick/ready", "/v2/models/pick/versions/1/ready"] {
                try await client.execute(uri: path, method: .get) { try expectError($0, 503, containing: "shutting down") }
            }
            try await client.execute(uri: "/v2/health/live", method: .get) { #expect($0.status == .ok) }
            try await client.execute(uri: "/v2/models/pick/infer", method: .post, body: inferBody(shape: [1, 784], data: numbers(sample(logitsB)))) {
                let answer = try json($0)
                #expect(classes(answer) == [9])
            }
        }
    }

    /// --examples: one picture per label in label order, from the IDX file and the labels file
    /// beside it; pictures that fit no model are refused; a model without examples lists none.
    @Test func examplePictures() async throws {
        let dir = scratchDirectory("nn-serve-examples")
        // 12 pictures whose pixels are all their index; labels chosen so that the first of each
        // label is at: label 3 -> 0, 1 -> 1, 0 -> 4, 2 -> 6 (by hand).
        let labels: [UInt8] = [3, 1, 3, 1, 0, 0, 2, 3, 2, 1, 0, 3]
        let pixels = (0..<12).flatMap { [UInt8](repeating: UInt8($0), count: 784) }
        try IDXWriter.write(pixels, dims: [12, 28, 28], to: "\(dir)/set-images-idx3-ubyte")
        try IDXWriter.write(labels, dims: [12], to: "\(dir)/set-labels-idx1-ubyte")
        let fixture = try Fixture(examplesPath: "\(dir)/set-images-idx3-ubyte")
        try await fixture.test { client in
            try await client.execute(uri: "/v1/models/pick/examples", method: .get) { response in
                let answer = try json(response)
                let examples = answer["examples"]?.arrayValue ?? []
                #expect(examples.compactMap { $0["index"]?.intValue } == [4, 1, 6, 0])
                #expect(examples.compactMap { $0["label"]?.intValue } == [0, 1, 2, 3])
                #expect(examples.compactMap { $0["name"]?.stringValue } == ["zero", "one", "two", "three"])
                #expect(examples.map { $0["pixels"]?.arrayValue?.compactMap(\.intValue) ?? [] } == [4, 1, 6, 0].map { [Int](repeating: $0, count: 784) })
                #expect(answer["width"]?.intValue == 28 && answer["height"]?.intValue == 28)
            }
            try await client.execute(uri: "/v1/models/nothere/examples", method: .get) { try expectError($0, 404, containing: "no model named 'nothere'") }
        }
        // Without labels: the first ten, no label.
        try IDXWriter.write(pixels, dims: [12, 28, 28], to: "\(dir)/plain.idx")
        try await Fixture(examplesPath: "\(dir)/plain.idx").test { client in
            try await client.execute(uri: "/v1/models/pick/examples", method: .get) { response in
                let examples = try json(response)["examples"]?.arrayValue ?? []
                #expect(examples.compactMap { $0["index"]?.intValue } == Array(0..<10))
                #expect(examples.allSatisfy { $0["label"] == nil })
            }
        }
        // No examples (the pick model's classes are not Fashion-MNIST's): an empty list.
        try await Fixture(examplesPath: nil).test { client in
            try await client.execute(uri: "/v1/models/pick/examples", method: .get) { response in
                let answer = try json(response)
                #expect(answer["examples"]?.arrayValue?.isEmpty == true)
            }
        }
        // Pictures of another size, and a file that is not 8-bit pictures.
        try IDXWriter.write([UInt8](repeating: 1, count: 2 * 100), dims: [2, 10, 10], to: "\(dir)/small.idx")
        #expect(throws: ToolError.self) { try Fixture(examplesPath: "\(dir)/small.idx") }
        try IDXWriter.write([UInt8](repeating: 1, count: 784), dims: [784], to: "\(dir)/flat.idx")
        let error = #expect(throws: ToolError.self) { try Fixture(examplesPath: "\(dir)/flat.idx") }
        #expect(error?.description.contains("flat.idx: examples must be 8-bit pictures") == true)
    }

    @Test func healthAndServerMetadata() async throws {
        try await Fixture().test { client in
            for path in ["/v2/health/live", "/v2/health/ready", "/v2/models/pick/ready", "/v2/models/pick/versions/1/ready"] {
                try await client.execute(uri: path, method: .get) { response in
                    #expect(response.status == .ok, "\(path)")
                    #expect(response.body.readableBytes == 0)
                }
            }
            try await client.execute(uri: "/v2", method: .get) { response in
                let server = try json(response)
                #expect(server["name"]?.stringValue == "nn-serve")
                #expect(server["extensions"]?.arrayValue?.contains("binary_tensor_data") == true)
            }
            try await client.execute(uri: "/v2/models/pick", method: .get) { response in
                let meta = try json(response)
                #expect(meta["name"]?.stringValue == "pick")
                #expect(meta["inputs"]?.arrayValue?.first?["shape"] == [-1, 28, 28])
                #expect(meta["inputs"]?.arrayValue?.first?["datatype"]?.stringValue == "FP32")
                #expect(meta["outputs"]?.arrayValue?.map { $0["name"]?.stringValue ?? "" } == ["probabilities", "class"])
                #expect(meta["outputs"]?.arrayValue?.first?["shape"] == [-1, 10])
            }
        }
    }

    @Test func unknownModelsVersionsAndRoutesAre404JSON() async throws {
        try await Fixture().test { client in
            try await client.execute(uri: "/v2/models/nope", method: .get) { try expectError($0, 404, containing: "no model named 'nope'; the models are: pick") }
            try await client.execute(uri: "/v2/models/nope/ready", method: .get) { try expectError($0, 404, containing: "no model named 'nope'") }
            try await client.execute(uri: "/v2/models/pick/versions/2", method: .get) { try expectError($0, 404, containing: "no version '2'") }
            try await client.execute(uri: "/v2/models/nope/infer", method: .post, body: body("{}")) { try expectError($0, 404, containing: "no model named") }
            try await client.execute(uri: "/v1/models/nope", method: .get) { try expectError($0, 404, containing: "no model named") }
            try await client.execute(uri: "/v1/models/nope/classify", method: .post, body: body("x")) { try expectError($0, 404, containing: "no model named") }
            try await client.execute(uri: "/nothing/here", method: .get) { try expectError($0, 404, containing: "no route for GET /nothing/here") }
            try await client.execute(uri: "/v2/models/pick/infer", method: .get) { try expectError($0, 404, containing: "no route for GET") }
        }
    }

    @Test func inferFP32ByHand() async throws {
        try await Fixture().test { client in
            let data = numbers(sample(logitsA) + sample(logitsB))
            try await client.execute(uri: "/v2/models/pick/infer", method: .post,
                                     body: inferBody(shape: [2, 784], data: data, extra: ",\"id\":\"req-7\"")) { response in
                #expect(response.status == .ok)
                let answer = try json(response)
                #expect(answer["model_name"]?.stringValue == "pick")
                #expect(answer["id"]?.stringValue == "req-7")
                let expected = softmaxRows([logitsA, logitsB]).flatMap { $0 }
                let got = probabilities(answer)
                #expect(got.count == 20)
                #expect(maxDifference([got], [expected]) < 1e-6)
                #expect(classes(answer) == [4, 9])
                let shape = answer["outputs"]?.arrayValue?.first?["shape"]
                #expect(shape == [2, 10])
            }
        }
    }

    @Test func inferShapesAndDatatypes() async throws {
        let logits: [Double] = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3]  // class 5
        let expected = softmaxRows([logits])[0]
        let pixels = sample(logits)
        // (1, 28, 28) nested UINT8, (1, 28, 28, 1) FP64, the model's own shape flat.
        let nested = "[[" + (0..<28).map { r in numbers(Array(pixels[(r * 28)..<(r * 28 + 28)])) }.joined(separator: ",") + "]]"
        let cases: [(shape: [Int], type: String, data: String)] = [
            ([1, 28, 28], "UINT8", nested.replacingOccurrences(of: ".0", with: "")),
            ([1, 28, 28, 1], "FP64", numbers(pixels)),
            ([1, 1, 28, 28], "FP32", numbers(pixels)),
        ]
        try await Fixture().test { client in
            for c in cases {
                try await client.execute(uri: "/v2/models/pick/infer", method: .post, body: inferBody(shape: c.shape, datatype: c.type, data: c.data)) { response in
                    #expect(response.status == .ok, "\(c.shape) \(c.type): \(String(buffer: response.body))")
                    let answer = try json(response)
                    #expect(maxDifference([probabilities(answer)], [expected]) < 1e-6, "\(c.shape) \(c.type)")
                    #expect(classes(answer) == [5])
                }
            }
        }
    }

    @Test func binaryTensorDataBothWays() async throws {
        try await Fixture().test { client in
            let header = Array("{\"inputs\":[{\"name\":\"input\",\"shape\":[1,784],\"datatype\":\"FP32\",\"parameters\":{\"binary_data_size\":3136}}],\"outputs\":[{\"name\":\"probabilities\",\"parameters\":{\"binary_data\":true}},{\"name\":\"class\"}]}".utf8)
            var bytes = header
            for v in sample(logitsA) { withUnsafeBytes(of: Float(v).bitPattern.littleEndian) { bytes += $0 } }
            try await client.execute(uri: "/v2/models/pick/infer", method: .post,
                                     headers: [HTTPFields.Element.Name("Inference-Header-Content-Length")!: String(header.count)],
                                     body: body(bytes)) { response in
                #expect(response.status == .ok, "\(String(buffer: response.body))")
                let all = Array(response.body.readableBytesView)
                let length = Int(response.headers[HTTPFields.Element.Name("Inference-Header-Content-Length")!] ?? "") ?? -1
                #expect(length > 0 && length + 40 == all.count)
                guard length > 0, length + 40 == all.count else { return }
                let answer = try JSONValue.parse(Array(all[..<length]))
                #expect(answer["outputs"]?.arrayValue?.first?["parameters"]?["binary_data_size"]?.intValue == 40)
                #expect(classes(answer) == [4])
                let floats = (0..<10).map { i in
                    Double(Float(bitPattern: UInt32(all[length + 4 * i]) | UInt32(all[length + 4 * i + 1]) << 8
                                 | UInt32(all[length + 4 * i + 2]) << 16 | UInt32(all[length + 4 * i + 3]) << 24))
                }
                #expect(maxDifference([floats], softmaxRows([logitsA])) < 1e-6)
            }
        }
    }

    /// Every way an inference request can be wrong, each a 4xx JSON error naming what is wrong.
    @Test func inferErrors() async throws {
        var limits = unhurriedLimits()
        limits.maxBatch = 3
        limits.maxTensorElements = 784 * 2
        limits.maxBodyBytes = 64 << 10
        let good = numbers(sample(logitsA))
        let cases: [(body: String, status: Int, message: String)] = [
            ("not json", 400, "the request is not JSON"),
            ("[1]", 400, "must be a JSON object"),
            ("{}", 400, "no 'inputs' array"),
            ("{\"inputs\":[]}", 400, "exactly one input"),
            ("{\"inputs\":[{\"name\":\"input\"},{\"name\":\"x\"}]}", 400, "exactly one input"),
            ("{\"inputs\":[{\"shape\":[1,784]}]}", 400, "has no 'name'"),
            ("{\"inputs\":[{\"name\":\"pixels\",\"shape\":[1,784],\"datatype\":\"FP32\",\"data\":\(good)}]}", 400, "unknown input 'pixels'"),
            ("{\"inputs\":[{\"name\":\"input\",\"shape\":[1,784],\"data\":\(good)}]}", 400, "no 'datatype'"),
            ("{\"inputs\":[{\"name\":\"input\",\"shape\":[1,784],\"datatype\":\"INT32\",\"data\":\(good)}]}", 400, "datatype 'INT32' is not supported"),
            ("{\"inputs\":[{\"name\":\"input\",\"datatype\":\"FP32\",\"data\":\(good)}]}", 400, "no 'shape' array"),
            ("{\"inputs\":[{\"name\":\"input\",\"shape\":[1,-784],\"datatype\":\"FP32\",\"data\":\(good)}]}", 400, "non-negative integers"),
            ("{\"inputs\":[{\"name\":\"input\",\"shape\":[1,100],\"datatype\":\"FP32\",\"data\":[1]}]}", 400, "input shape [1, 100] does not fit the model; it takes [-1, 28, 28] or [-1, 784]"),
            ("{\"inputs\":[{\"name\":\"input\",\"shape\":[0,784],\"datatype\":\"FP32\",\"data\":[]}]}", 400, "no samples"),
            ("{\"inputs\":[{\"name\":\"input\",\"shape\":[4,784],\"datatype\":\"FP32\",\"data\":[]}]}", 413, "4 samples, more than the limit of 3"),
            ("{\"inputs\":[{\"name\":\"input\",\"shape\":[3,784],\"datatype\":\"FP32\",\"data\":[]}]}", 413, "2352 elements, more than the limit of 1568"),
            ("{\"inputs\":[{\"name\":\"input\",\"shape\":[1,784],\"datatype\":\"FP32\"}]}", 400, "no 'data'"),
            ("{\"inputs\":[{\"name\":\"input\",\"shape\":[1,784],\"datatype\":\"FP32\",\"data\":[1,2,3]}]}", 400, "has 3 values, but its shape holds 784"),
            ("{\"inputs\":[{\"name\":\"input\",\"shape\":[1,784],\"datatype\":\"FP32\",\"data\":\(numbers(sample(logitsA) + [1]))}]}", 400, "more than the 784 values"),
            ("{\"inputs\":[{\"name\":\"input\",\"shape\":[1,784],\"datatype\":\"FP32\",\"data\":[\"a\"]}]}", 400, "value 0 is a string"),
            ("{\"inputs\":[{\"name\":\"input\",\"shape\":[1,784],\"datatype\":\"UINT8\",\"data\":[300]}]}", 400, "UINT8 data must be integers 0 to 255; value 0 is 300"),
            ("{\"inputs\":[{\"name\":\"input\",\"shape\":[1,784],\"datatype\":\"UINT8\",\"data\":[1.5]}]}", 400, "UINT8 data must be integers"),
            ("{\"inputs\":[{\"name\":\"input\",\"shape\":[1,784],\"datatype\":\"FP32\",\"data\":[1e39]}]}", 400, "out of FP32's range"),
            ("{\"inputs\":[{\"name\":\"input\",\"shape\":[1,784],\"datatype\":\"FP32\",\"parameters\":{\"binary_data_size\":3136}}]}", 400, "0 bytes after the JSON header, but binary_data_size is 3136"),
            ("{\"inputs\":[{\"name\":\"input\",\"shape\":[1,784],\"datatype\":\"FP32\",\"parameters\":{\"binary_data_size\":10}}]}", 400, "binary_data_size is 10 bytes, but [1, 784] FP32 takes 3136"),
            ("{\"inputs\":[{\"name\":\"input\",\"shape\":[1,784],\"datatype\":\"FP32\",\"parameters\":{\"binary_data_size\":\"x\"}}]}", 400, "binary_data_size must be an integer"),
            ("{\"inputs\":[{\"name\":\"input\",\"shape\":[1,784],\"datatype\":\"FP32\",\"data\":\(good)}],\"outputs\":[{\"name\":\"logits\"}]}", 400, "unknown output 'logits'"),
            ("{\"inputs\":[{\"name\":\"input\",\"shape\":[1,784],\"datatype\":\"FP32\",\"data\":\(good)}],\"outputs\":{}}", 400, "'outputs' must be an array"),
            ("{\"inputs\":[{\"name\":\"input\",\"shape\":[1,784],\"datatype\":\"FP32\",\"data\":\(good)}],\"outputs\":[{}]}", 400, "an entry of 'outputs' has no 'name'"),
            ("{\"inputs\":[{\"name\":\"input\",\"shape\":[1,784],\"datatype\":\"FP32\",\"data\":[" + String(repeating: "0,", count: 40_000) + "0]}]}", 413, "more than the limit of 65536 bytes"),
        ]
        try await Fixture(limits: limits).test { client in
            for c in cases {
                try await client.execute(uri: "/v2/models/pick/infer", method: .post, body: body(c.body)) { response in
                    try expectError(response, c.status, containing: c.message)
                }
            }
            let lengthField = HTTPFields.Element.Name("Inference-Header-Content-Length")!
            try await client.execute(uri: "/v2/models/pick/infer", method: .post, headers: [lengthField: "x"], body: body("{}")) {
                try expectError($0, 400, containing: "Inference-Header-Content-Length must be a number, not 'x'")
            }
            try await client.execute(uri: "/v2/models/pick/infer", method: .post, headers: [lengthField: "99"], body: body("{}")) {
                try expectError($0, 400, containing: "is 99, but the body has 2 bytes")
            }
            let goodJSON = "{\"inputs\":[{\"name\":\"input\",\"shape\":[1,784],\"datatype\":\"FP32\",\"data\":\(good)}]}"
            try await client.execute(uri: "/v2/models/pick/infer", method: .post, headers: [lengthField: String(goodJSON.utf8.count)], body: body(goodJSON + "xyz")) {
                try expectError($0, 400, containing: "3 bytes after the JSON header, but no input has binary_data_size")
            }
            // After all that, the model still answers.
            try await client.execute(uri: "/v2/models/pick/infer", method: .post, body: inferBody(shape: [1, 784], data: good)) { response in
                #expect(classes(parsed(response)) == [4])
            }
        }
    }

    @Test func concurrencyLimitIs429() async throws {
        var limits = unhurriedLimits()
        limits.maxConcurrentRequests = 1
        let fixture = try Fixture(limits: limits)
        // One request in flight (held here), so the next is one too many.
        #expect(fixture.state.active.enter())
        try await fixture.test { client in
            try await client.execute(uri: "/v2/models/pick", method: .get) { try expectError($0, 429, containing: "too many requests at once (the limit is 1)") }
            // Probes still answer.
            try await client.execute(uri: "/v2/health/ready", method: .get) { #expect($0.status == .ok) }
        }
        fixture.state.active.leave()
        try await fixture.test { client in
            try await client.execute(uri: "/v2/models/pick", method: .get) { #expect($0.status == .ok) }
        }
    }

    /// A responder slower than the time limit gives 408 (the responder, not the model, is slow:
    /// no timing races).
    @Test func timeLimitIs408() async throws {
        struct Slow: HTTPResponder {
            typealias Context = BasicRequestContext
            func respond(to request: Request, context: Context) async throws -> Response {
                try await Task.sleep(nanoseconds: 60_000_000_000)
                return Response(status: .ok)
            }
        }
        var limits = unhurriedLimits()
        limits.requestSeconds = 0.05
        let fixture = try Fixture(limits: limits)
        let app = Application(responder: ServeResponder(inner: Slow(), state: fixture.state))
        try await app.test(.router) { client in
            try await client.execute(uri: "/v2/models/pick", method: .get) {
                try expectError($0, 408, containing: "the request took longer than the limit of 0.050 s")
            }
        }
    }

    @Test func classifyPictureAsGiven() async throws {
        // A 28x28 picture whose first ten pixels are the logits (whole numbers, as a PNG holds).
        let logits: [Double] = [10, 20, 200, 40, 50, 60, 70, 80, 90, 100]
        let picture = GrayImage(width: 28, height: 28, pixels: sample(logits).map(Float.init))
        let png = try PNGWriter.encode(picture, name: "test")
        try await Fixture().test { client in
            try await client.execute(uri: "/v1/models/pick/classify?preprocess=none&top=2", method: .post, body: body(png)) { response in
                #expect(response.status == .ok, "\(String(buffer: response.body))")
                let answer = try json(response)
                let prediction = answer["predictions"]?.arrayValue?.first
                #expect(prediction?["class"]?.intValue == 2)
                #expect(prediction?["name"]?.stringValue == "two")
                let top = prediction?["top"]?.arrayValue ?? []
                #expect(top.map { $0["name"]?.stringValue ?? "" } == ["two", "nine"])
                let expected = softmaxRows([logits])[0]
                #expect(abs((top.first?["probability"]?.doubleValue ?? 0) - expected[2]) < 1e-6)
                #expect(answer["preprocess"]?.stringValue == "none")
                #expect(answer["picture"]?["pixels"]?.arrayValue?.compactMap(\.intValue) == picture.bytes.map(Int.init))
            }
        }
    }

    /// By default a picture gets MNIST's procedure, as nn-infer gives it (SampleSet.pictures).
    @Test func classifyPictureAsNNInferPreprocessesIt() async throws {
        var photo = GrayImage(width: 60, height: 90, value: 230)
        for y in 20..<70 { for x in 25..<33 { photo[x, y] = 20 } }  // a dark "1" on light paper
        let png = try PNGWriter.encode(photo, name: "test")
        let fixture = try Fixture()
        let file = "\(fixture.dir)/one.png"
        try Data(png).write(to: URL(fileURLWithPath: file))
        let reference = try SampleSet.pictures([(file, "one.png")], inputShape: [28, 28], mode: nil)
        try await fixture.test { client in
            try await client.execute(uri: "/v1/models/pick/classify", method: .post, body: body(png)) { response in
                let answer = try json(response)
                #expect(answer["preprocess"]?.stringValue == "mnist")
                let pixels = answer["picture"]?["pixels"]?.arrayValue?.compactMap(\.intValue) ?? []
                #expect(pixels == reference.features.map { Int(max(0, min(255, $0.rounded()))) })
                #expect(answer["picture"]?["width"]?.intValue == 28)
            }
        }
    }

    @Test func classifyIDX() async throws {
        // Two 28x28 samples in an IDX file (magic 0x00000803, big-endian dimensions).
        let idx: [UInt8] = [0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28]
            + sample([1, 2, 3, 4, 5, 6, 7, 8, 90, 10]).map { UInt8($0) } + sample([50, 2, 3, 4, 5, 6, 7, 8, 9, 10]).map { UInt8($0) }
        try await Fixture().test { client in
            try await client.execute(uri: "/v1/models/pick/classify?top=1", method: .post, body: body(idx)) { response in
                #expect(response.status == .ok, "\(String(buffer: response.body))")
                let answer = try json(response)
                #expect(answer["predictions"]?.arrayValue?.map { $0["name"]?.stringValue ?? "" } == ["eight", "zero"])
                #expect(answer["picture"] == nil)
            }
        }
    }

    @Test func classifyErrors() async throws {
        var limits = unhurriedLimits()
        limits.maxPixels = 1000
        limits.maxBatch = 1
        let idx3: [UInt8] = [0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28] + [UInt8](repeating: 0, count: 2 * 784)
        let idxWrong: [UInt8] = [0, 0, 8, 2, 0, 0, 0, 1, 0, 0, 0, 5] + [UInt8](repeating: 0, count: 5)
        let idxTruncated: [UInt8] = [0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 28, 0, 0, 0, 28, 1, 2]
        let big = try PNGWriter.encode(GrayImage(width: 40, height: 40, value: 0), name: "big")
        let small = try PNGWriter.encode(GrayImage(width: 20, height: 20, value: 0), name: "small")
        let cases: [(query: String, body: [UInt8], status: Int, message: String)] = [
            ("", [], 400, "the body is empty"),
            ("", Array("hello".utf8), 400, "not a picture this tool reads"),
            ("", Array(big[..<(big.count - 12)]), 413, "more than the limit of 1000 pixels"),
            ("", Array(small[..<40]), 400, "the picture"),
            ("?preprocess=none", small, 400, "--preprocess none needs 28x28"),
            ("?preprocess=blur", small, 400, "preprocess must be mnist, fit or none, not 'blur'"),
            ("?top=0", small, 400, "top must be a whole number from 1, not '0'"),
            ("?preprocess=fit", idx3, 400, "preprocess applies to pictures, not to an IDX body"),
            ("", idx3, 413, "2 samples, more than the limit of 1"),
            ("", idxWrong, 400, "the IDX body holds [1, 5]; the model takes [N, 28, 28]"),
            ("", idxTruncated, 400, "the IDX body"),
        ]
        try await Fixture(limits: limits).test { client in
            for c in cases {
                try await client.execute(uri: "/v1/models/pick/classify" + c.query, method: .post, body: body(c.body)) { response in
                    try expectError(response, c.status, containing: c.message)
                }
            }
        }
    }

    @Test func modelListAndDetailsWithHistory() async throws {
        try await Fixture().test { client in
            try await client.execute(uri: "/v1/models", method: .get) { response in
                let list = try json(response)["models"]?.arrayValue ?? []
                #expect(list.map { $0["name"]?.stringValue ?? "" } == ["pick"])
                #expect(list.first?["picture"]?["width"]?.intValue == 28)
            }
            try await client.execute(uri: "/v1/models/pick", method: .get) { response in
                let details = try json(response)
                #expect(details["classes"]?.arrayValue?.count == 10)
                #expect(details["format"]?.stringValue == "nnm")
                #expect(details["history"]?.arrayValue?.compactMap { $0["train_loss"]?.doubleValue } == [0.5, 0.25])
                #expect(details["metadata"]?["training"]?["epochs"]?.intValue == 2)
            }
        }
    }

    @Test func pageIsServedFromTheBinary() async throws {
        try await Fixture().test { client in
            try await client.execute(uri: "/", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "text/html; charset=utf-8")
                let page = String(buffer: response.body)
                #expect(page.contains("<canvas"))
                #expect(!page.contains("http://") && !page.contains("https://"), "no CDN")
            }
        }
    }

    @Test func metricsCountRequestsAndBatches() async throws {
        try await Fixture().test { client in
            try await client.execute(uri: "/v2/models/pick/infer", method: .post, body: inferBody(shape: [2, 784], data: numbers(sample(logitsA) + sample(logitsB)))) {
                #expect($0.status == .ok)
            }
            try await client.execute(uri: "/v2/models/nope", method: .get) { #expect($0.status == .notFound) }
            try await client.execute(uri: "/metrics", method: .get) { response in
                let text = String(buffer: response.body)
                #expect(response.headers[.contentType]?.hasPrefix("text/plain; version=0.0.4") == true)
                #expect(text.contains("nn_serve_requests_total{route=\"/v2/models/{name}/infer\",method=\"POST\",status=\"200\"} 1"), "\(text)")
                #expect(text.contains("nn_serve_requests_total{route=\"/v2/models/{name}\",method=\"GET\",status=\"404\"} 1"))
                #expect(text.contains("nn_serve_request_duration_seconds_bucket{route=\"/v2/models/{name}/infer\",le=\"+Inf\"} 1"))
                #expect(text.contains("nn_serve_batch_samples_sum{model=\"pick\"} 2"))
                #expect(text.contains("nn_serve_batch_samples_count{model=\"pick\"} 1"))
            }
        }
    }

    /// Requests announced before they submit are run in one forward pass (a long wait bound, so
    /// that the batch does not depend on timing: it closes when the last announced one arrives).
    @Test func announcedRequestsShareOneForwardPass() async throws {
        let engine = try InferenceEngine<Float>(model: pickModel())
        let records = RecordBox()
        let queue = BatchQueue(engine: engine, maxBatch: 64, maxWait: 30, name: "test") { records.append($0) }
        for _ in 0..<8 { queue.announce() }
        let results = try await withThrowingTaskGroup(of: (Int, [Float]).self) { group in
            for i in 0..<8 {
                group.addTask {
                    var logits = [Double](repeating: 0, count: 10)
                    logits[i] = 5
                    return (i, try await queue.submit(features: sample(logits).map(Float.init), count: 1))
                }
            }
            return try await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
        }
        for i in 0..<8 { #expect(results[i]?.firstIndex(of: 5) == i) }
        #expect(records.all.map(\.requests) == [8])
        #expect(records.all.map(\.samples) == [8])
        queue.close()
        queue.waitUntilFinished()
    }

    /// Many clients at once all get their own answers.
    @Test func concurrentRequestsGetTheirOwnAnswers() async throws {
        try await Fixture().test { client in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for i in 0..<32 {
                    group.addTask {
                        var logits = [Double](repeating: 0, count: 10)
                        logits[i % 10] = 4
                        try await client.execute(uri: "/v2/models/pick/infer", method: .post,
                                                 body: inferBody(shape: [1, 784], data: numbers(sample(logits)))) { response in
                            #expect(classes(parsed(response)) == [i % 10])
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
    }

    /// A reload swaps in a model only once it has loaded; a broken file keeps the old one.
    @Test func reloadIsAtomic() async throws {
        let fixture = try Fixture()
        let request = inferBody(shape: [1, 784], data: numbers(sample(logitsB)))  // class 9 with the pick model
        try await fixture.test { client in
            try await client.execute(uri: "/v2/models/pick/infer", method: .post, body: request) { #expect(classes(parsed($0)) == [9]) }
        }
        // The same file with a shifted pick: logits are pixels 1...10, so class 8 (pixel 9 = 9).
        try NNMFormat.write(pickModel(offset: 1), to: fixture.path)
        let lines = fixture.state.registry.reload()
        #expect(lines == ["pick: reloaded from \(fixture.path)"])
        try await fixture.test { client in
            try await client.execute(uri: "/v2/models/pick/infer", method: .post, body: request) { #expect(classes(parsed($0)) == [8]) }
        }
        // A truncated file: the model loaded before stays.
        let bytes = try Data(contentsOf: URL(fileURLWithPath: fixture.path))
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: fixture.path))
        let kept = fixture.state.registry.reload(changedOnly: true)
        #expect(kept.count == 1 && kept[0].hasPrefix("pick: kept the model loaded before; the new one failed: "), "\(kept)")
        // Not tried again until the file changes once more.
        #expect(fixture.state.registry.reload(changedOnly: true).isEmpty)
        try await fixture.test { client in
            try await client.execute(uri: "/v2/models/pick/infer", method: .post, body: request) { #expect(classes(parsed($0)) == [8]) }
        }
    }

    @Test func modelSourcesAndLimits() throws {
        #expect(try ModelSource(argument: "dir/fashion.nnm") == ModelSource(name: "fashion", path: "dir/fashion.nnm"))
        #expect(try ModelSource(argument: "digits=dir/a.onnx") == ModelSource(name: "digits", path: "dir/a.onnx"))
        #expect(try ModelSource(argument: "dir/x=y/m.nnm") == ModelSource(name: "m", path: "dir/x=y/m.nnm"))
        #expect(errorMessage { _ = try ModelSource(argument: "a b=m.nnm") }?.contains("a model's name must be letters") == true)
        let dir = scratchDirectory("nn-serve-sources")
        try NNMFormat.write(pickModel(), to: "\(dir)/m.nnm")
        #expect(errorMessage {
            _ = try NNServer.registry(ServeConfiguration(sources: [ModelSource(name: "m", path: "\(dir)/m.nnm"), ModelSource(name: "m", path: "\(dir)/m.nnm")]),
                                      importChoices: try ImportChoices.parse([]), metrics: ServeMetrics())
        } == "two models are named 'm'; name them apart as NAME=PATH")
        #expect(errorMessage { _ = try ServeLimits(maxBodyBytes: 0, maxPixels: 1, maxTensorElements: 1, maxBatch: 1, maxConcurrentRequests: 1, requestSeconds: 1, batchWaitSeconds: 0) }
                == "--max-body-bytes must be at least 1, not 0")
        #expect(errorMessage { _ = try ServeLimits(maxBodyBytes: 1, maxPixels: 1, maxTensorElements: 1, maxBatch: 1, maxConcurrentRequests: 1, requestSeconds: 0, batchWaitSeconds: 0) }?
                .hasPrefix("--request-timeout must be a positive number") == true)
        #expect(routePattern("/v2/models/abc/versions/1/infer") == "/v2/models/{name}/versions/{version}/infer")
        #expect(routePattern("/v1/models/abc/classify") == "/v1/models/{name}/classify")
        #expect(routePattern("/etc/passwd") == "other")
    }
}

final class RecordBox: @unchecked Sendable {
    private let lock = NSLock()
    private var records: [BatchQueue.BatchRecord] = []
    func append(_ r: BatchQueue.BatchRecord) { lock.withLock { records.append(r) } }
    var all: [BatchQueue.BatchRecord] { lock.withLock { records } }
}
