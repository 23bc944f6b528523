import Foundation
import Hummingbird
import Logging
import NNCommandLine
import NNCore
import NNData
import NNImage

/// Everything a request handler needs: the models, the limits, the metrics, the log.
public struct ServeState: Sendable {
    public let registry: ModelRegistry
    public let limits: ServeLimits
    public let metrics: ServeMetrics
    public let logger: Logger
    /// Test pictures for the page, by model name.
    public let examples: [String: ExamplePictures]
    let active: ActiveRequests
    /// Set once graceful shutdown starts: readiness answers 503 from then on.
    public let draining = Flag()

    public init(registry: ModelRegistry, limits: ServeLimits, metrics: ServeMetrics, logger: Logger,
                examples: [String: ExamplePictures] = [:]) {
        self.registry = registry
        self.examples = examples
        self.limits = limits
        self.metrics = metrics
        self.logger = logger
        active = ActiveRequests(limit: limits.maxConcurrentRequests)
    }

    func model(_ context: BasicRequestContext) throws(ServeError) -> ServedModel {
        let name = context.parameters.get("name") ?? ""
        guard let model = registry.model(name) else {
            throw .notFound("no model named '\(name)'; the models are: \(registry.sources.map(\.name).joined(separator: ", "))")
        }
        if let version = context.parameters.get("version"), version != "1" {
            throw .notFound("model '\(name)' has no version '\(version)'; its one version is '1'")
        }
        return model
    }

    /// The request's body, refused past `maxBodyBytes` (413) whether or not it declares its length.
    func body(_ request: Request) async throws -> [UInt8] {
        if let declared = request.headers[.contentLength].flatMap(Int.init), declared > limits.maxBodyBytes {
            throw ServeError.tooLarge("the body is \(declared) bytes, more than the limit of \(limits.maxBodyBytes) bytes")
        }
        do {
            let buffer = try await request.body.collect(upTo: limits.maxBodyBytes)
            return Array(buffer.readableBytesView)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw ServeError.tooLarge("the body is more than the limit of \(limits.maxBodyBytes) bytes")
        }
    }
}

/// Counts the requests being handled, up to a limit.
final class ActiveRequests: @unchecked Sendable {
    // @unchecked Sendable: `count` is guarded by `lock`.
    private let lock = NSLock()
    private var count = 0
    let limit: Int
    init(limit: Int) { self.limit = limit }
    func enter() -> Bool { lock.withLock { if count >= limit { return false }; count += 1; return true } }
    func leave() { lock.withLock { count -= 1 } }
}

/// A flag set once, read from any thread.
public final class Flag: @unchecked Sendable {
    // @unchecked Sendable: `value` is guarded by `lock`.
    private let lock = NSLock()
    private var value = false
    public init() {}
    public var isSet: Bool { lock.withLock { value } }
    public func start() { lock.withLock { value = true } }
}

/// A JSON response.
func jsonResponse(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
    bytesResponse(Array(value.serialized().utf8), contentType: "application/json", status: status)
}

func bytesResponse(_ bytes: [UInt8], contentType: String, status: HTTPResponse.Status = .ok, headers extra: HTTPFields = [:]) -> Response {
    var headers: HTTPFields = [.contentType: contentType]
    headers.append(contentsOf: extra)
    return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
}

/// The routes of nn-serve (README, "nn-serve").
public func makeRouter(_ state: ServeState) -> Router<BasicRequestContext> {
    let router = Router()
    // The page.
    router.get("/") { _, _ in
        bytesResponse(Array(WebPage.html.utf8), contentType: "text/html; charset=utf-8",
                      headers: [.contentSecurityPolicy: "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'"])
    }
    router.get("/metrics") { _, _ in
        bytesResponse(state.metrics.text(), contentType: "text/plain; version=0.0.4; charset=utf-8")
    }

    // Open Inference Protocol (KServe v2): health is the status alone, with an empty body.
    router.get("/v2/health/live") { _, _ in Response(status: .ok) }
    router.get("/v2/health/ready") { _, _ in
        if state.draining.isSet { throw ServeError(503, "shutting down: the requests in flight are being answered") }
        return Response(status: .ok)
    }
    router.get("/v2") { _, _ in
        jsonResponse(.object(JSONObject([("name", "nn-serve"), ("version", .string(ProjectVersion.string)),
                                         ("extensions", ["binary_tensor_data"])])))
    }
    for prefix in ["/v2/models/:name", "/v2/models/:name/versions/:version"] {
        router.get(RouterPath(prefix)) { _, context in jsonResponse(KServe.metadata(try state.model(context))) }
        router.get(RouterPath(prefix + "/ready")) { _, context in
            _ = try state.model(context)
            if state.draining.isSet { throw ServeError(503, "shutting down: the requests in flight are being answered") }
            return Response(status: .ok)
        }
        router.post(RouterPath(prefix + "/infer")) { request, context in try await infer(request, context, state) }
    }

    // Convenience routes.
    router.get("/v1/models") { _, _ in
        jsonResponse(.object(JSONObject([("models", .array(state.registry.all.map { summary($0) }))])))
    }
    router.get("/v1/models/:name") { _, context in
        let model = try state.model(context)
        var object = summary(model).objectValue!
        object["path"] = .string(model.path)
        object["format"] = .string(model.format)
        object["loaded"] = .string(model.loaded)
        object["history"] = model.model.metadata.json["training"]?["history"] ?? .array([])
        object["metadata"] = .object(model.model.metadata.json)
        return jsonResponse(.object(object))
    }
    router.get("/v1/models/:name/examples") { _, context in
        let model = try state.model(context)
        let examples = state.examples[model.name]
        let pictures: [JSONValue] = (examples?.pictures ?? []).map { picture in
            var object = JSONObject([("index", .integer(Int64(picture.index)))])
            if let label = picture.label {
                object["label"] = .integer(Int64(label))
                object["name"] = label < model.classes.count ? .string(model.classes[label]) : .string(String(label))
            }
            object["pixels"] = .array(picture.pixels.map { .integer(Int64($0)) })
            return .object(object)
        }
        var object = JSONObject([("model", .string(model.name)), ("examples", .array(pictures))])
        if let examples {
            object["source"] = .string(examples.path)
            object["width"] = .integer(Int64(examples.width))
            object["height"] = .integer(Int64(examples.height))
        }
        return jsonResponse(.object(object))
    }
    router.post("/v1/models/:name/classify") { request, context in try await classify(request, context, state) }
    return router
}

/// A model in a list: name, input, classes, what its outputs are.
private func summary(_ model: ServedModel) -> JSONValue {
    .object(JSONObject([
        ("name", .string(model.name)),
        ("input_shape", .array(model.inputShape.map { .integer(Int64($0)) })),
        ("classes", .array(model.classes.map { .string($0) })),
        ("picture", Preprocess.pictureSize(ofInput: model.inputShape).map { size in
            .object(JSONObject([("width", .integer(Int64(size.width))), ("height", .integer(Int64(size.height)))]))
        } ?? .null),
    ]))
}

/// `POST /v2/models/{name}/infer`.
private func infer(_ request: Request, _ context: BasicRequestContext, _ state: ServeState) async throws -> Response {
    let model = try state.model(context)
    model.queue.announce()
    var submitted = false
    defer { if !submitted { model.queue.withdraw() } }
    let body = try await state.body(request)
    var headerLength: Int?
    if let field = HTTPFields.Element.Name(KServe.headerLengthField), let text = request.headers[field] {
        guard let value = Int(text) else { throw ServeError.badRequest("\(KServe.headerLengthField) must be a number, not '\(text)'") }
        headerLength = value
    }
    let decoded = try KServe.decode(body: body, headerLength: headerLength, model: model, limits: state.limits)
    submitted = true
    let probabilities = try await model.probabilities(features: decoded.features, count: decoded.count)
    let encoded = KServe.encode(modelName: model.name, id: decoded.id, probabilities: probabilities, outputs: decoded.outputs)
    if let length = encoded.headerLength, let field = HTTPFields.Element.Name(KServe.headerLengthField) {
        return bytesResponse(encoded.body, contentType: "application/octet-stream", headers: [field: String(length)])
    }
    return bytesResponse(encoded.body, contentType: "application/json")
}

/// `POST /v1/models/{name}/classify`: a PNG or JPEG picture (preprocessed as nn-infer does) or
/// an IDX file of samples; answers each sample's top classes with their names, and for a
/// picture the picture the model saw.
private func classify(_ request: Request, _ context: BasicRequestContext, _ state: ServeState) async throws -> Response {
    let model = try state.model(context)
    let query = request.uri.queryParameters
    var top = min(3, model.outputSize)
    if let text = query["top"] {
        guard let k = Int(text), k >= 1 else { throw ServeError.badRequest("top must be a whole number from 1, not '\(text)'") }
        top = min(k, model.outputSize)
    }
    var mode: PreprocessMode?
    if let text = query["preprocess"] {
        guard let m = PreprocessMode(rawValue: String(text)) else {
            throw ServeError.badRequest("preprocess must be mnist, fit or none, not '\(text)'")
        }
        mode = m
    }
    model.queue.announce()
    var submitted = false
    defer { if !submitted { model.queue.withdraw() } }
    let body = try await state.body(request)
    guard !body.isEmpty else { throw ServeError.badRequest("the body is empty; send a PNG or JPEG picture or an IDX file") }
    var features: [Float]
    var count: Int
    var picture: GrayImage?
    var usedMode: PreprocessMode?
    if body.count >= 4, body[0] == 0, body[1] == 0 {
        // IDX: samples as nn-infer reads them, no preprocessing but the model's own.
        guard mode == nil else { throw ServeError.badRequest("preprocess applies to pictures, not to an IDX body") }
        let idx: IDXFile
        do { idx = try IDXFile(bytes: body, name: "the IDX body") } catch { throw ServeError.badRequest("\(error)") }
        let dims = idx.dims
        let perSample = dims.count > 1 ? dims.dropFirst().reduce(1, *) : 0
        guard dims.count >= 2, perSample == model.inputSize else {
            throw ServeError.badRequest("the IDX body holds \(KServe.describe(dims)); the model takes [N, \(model.inputShape.map(String.init).joined(separator: ", "))]")
        }
        count = dims[0]
        guard count >= 1 else { throw ServeError.badRequest("the IDX body holds no samples") }
        guard count <= state.limits.maxBatch else {
            throw ServeError.tooLarge("the IDX body holds \(count) samples, more than the limit of \(state.limits.maxBatch) per request")
        }
        guard count * perSample <= state.limits.maxTensorElements else {
            throw ServeError.tooLarge("the IDX body holds \(count * perSample) values, more than the limit of \(state.limits.maxTensorElements)")
        }
        features = idx.floats()
    } else {
        let image: GrayImage
        do { image = try ImageReader(maxPixels: state.limits.maxPixels).decode(body, name: "the picture") } catch {
            if case .tooLarge = error { throw ServeError.tooLarge("\(error)") }
            throw ServeError.badRequest("\(error)")
        }
        do {
            let input = try Preprocess.modelInput(image, inputShape: model.inputShape, mode: mode, name: "the picture")
            picture = input.picture
            usedMode = input.mode
        } catch { throw ServeError.badRequest("\(error)") }
        features = picture!.pixels
        count = 1
    }
    submitted = true
    let rows = try await model.probabilities(features: features, count: count)
    features = []
    var predictions: [JSONValue] = []
    for row in rows {
        let best = topIndices(row[...], k: top)
        let entries: [JSONValue] = best.map { c in
            .object(JSONObject([("class", .integer(Int64(c))), ("name", .string(model.classes[c])), ("probability", .number(row[c]))]))
        }
        predictions.append(.object(JSONObject([("class", .integer(Int64(best[0]))), ("name", .string(model.classes[best[0]])),
                                               ("top", .array(entries))])))
    }
    var object = JSONObject([("model", .string(model.name)), ("predictions", .array(predictions))])
    object["probabilities"] = .array(rows.map { .array($0.map { .number($0) }) })
    if let picture {
        object["preprocess"] = .string(usedMode!.rawValue)
        object["picture"] = .object(JSONObject([("width", .integer(Int64(picture.width))), ("height", .integer(Int64(picture.height))),
                                                ("pixels", .array(picture.bytes.map { .integer(Int64($0)) }))]))
    }
    return jsonResponse(.object(object))
}
