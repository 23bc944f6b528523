import NNCommandLine
import NNCore
import NNImage

/// The Open Inference Protocol (KServe v2) over REST, as JSON: what the routes parse and write.
///
/// Tensors come as JSON numbers (flat or nested in row-major order), or, with the binary tensor
/// data extension that Triton's clients use by default, as raw little-endian bytes after a
/// JSON header whose length the `Inference-Header-Content-Length` header gives.
public enum KServe {
    /// The one input every model takes.
    public static let inputName = "input"
    /// The outputs: probabilities (FP32, [N, classes]) and the most probable class (INT64, [N]).
    public static let probabilitiesName = "probabilities"
    public static let className = "class"
    /// The request (and response) header giving the length of the JSON part of a body with
    /// binary tensors.
    public static let headerLengthField = "Inference-Header-Content-Length"

    /// The tensor datatypes an input may have, with their sizes in the binary form.
    enum Datatype: String {
        case fp32 = "FP32", fp64 = "FP64", uint8 = "UINT8"
        var size: Int { switch self { case .fp32: 4; case .fp64: 8; case .uint8: 1 } }
    }

    /// An output the client asked for.
    struct RequestedOutput: Equatable {
        var name: String
        var binary: Bool
    }

    /// A decoded inference request.
    struct InferRequest {
        var id: JSONValue?
        /// Raw features, `count` rows of the model's input size.
        var features: [Float]
        var count: Int
        var outputs: [RequestedOutput]
    }

    /// The input shapes a model accepts after the batch dimension: its own, flat, and for a
    /// one-channel picture (h, w), (h, w, 1) and (1, h, w).
    static func acceptedShapes(_ model: ServedModel) -> [[Int]] {
        var shapes = [model.inputShape, [model.inputSize]]
        if let size = Preprocess.pictureSize(ofInput: model.inputShape) {
            shapes += [[size.height, size.width], [size.height, size.width, 1], [1, size.height, size.width]]
        }
        var unique: [[Int]] = []
        for shape in shapes where !unique.contains(shape) { unique.append(shape) }
        return unique
    }

    /// `GET /v2/models/{name}`.
    static func metadata(_ model: ServedModel) -> JSONValue {
        .object(JSONObject([
            ("name", .string(model.name)),
            ("versions", ["1"]),
            ("platform", "nnm"),
            ("inputs", [.object(JSONObject([("name", .string(inputName)), ("datatype", "FP32"),
                                            ("shape", .array(([-1] + model.inputShape).map { .integer(Int64($0)) }))]))]),
            ("outputs", [
                .object(JSONObject([("name", .string(probabilitiesName)), ("datatype", "FP32"),
                                    ("shape", [-1, .integer(Int64(model.outputSize))])])),
                .object(JSONObject([("name", .string(className)), ("datatype", "INT64"), ("shape", [-1])])),
            ]),
        ]))
    }

    /// Decodes `POST /v2/models/{name}/infer`'s body for `model`; `headerLength` is the
    /// `Inference-Header-Content-Length` header's value, when there is one.
    static func decode(body: [UInt8], headerLength: Int?, model: ServedModel, limits: ServeLimits) throws(ServeError) -> InferRequest {
        let jsonPart: ArraySlice<UInt8>
        var binary: ArraySlice<UInt8> = []
        if let headerLength {
            guard headerLength >= 0, headerLength <= body.count else {
                throw .badRequest("\(headerLengthField) is \(headerLength), but the body has \(body.count) bytes")
            }
            jsonPart = body[..<headerLength]
            binary = body[headerLength...]
        } else {
            jsonPart = body[...]
        }
        let document: JSONValue
        do { document = try JSONValue.parse(Array(jsonPart)) } catch { throw .badRequest("the request is not JSON: \(error)") }
        guard case .object(let root) = document else { throw .badRequest("the request must be a JSON object, not \(document.kindName)") }
        guard let inputs = root["inputs"]?.arrayValue else { throw .badRequest("the request has no 'inputs' array") }
        guard inputs.count == 1, case .object(let input) = inputs[0] else {
            throw .badRequest("the request must have exactly one input (an object named '\(inputName)'), not \(inputs.count)")
        }
        guard let name = input["name"]?.stringValue else { throw .badRequest("the input has no 'name'") }
        guard name == inputName else { throw .badRequest("unknown input '\(name)'; the model's input is named '\(inputName)'") }
        guard let typeName = input["datatype"]?.stringValue else { throw .badRequest("the input has no 'datatype'") }
        guard let datatype = Datatype(rawValue: typeName) else {
            throw .badRequest("datatype '\(typeName)' is not supported; use FP32, FP64 or UINT8")
        }
        guard let shapeValues = input["shape"]?.arrayValue, !shapeValues.isEmpty else { throw .badRequest("the input has no 'shape' array") }
        var shape: [Int] = []
        for value in shapeValues {
            guard let d = value.intValue, d >= 0 else { throw .badRequest("the input's shape must be non-negative integers, not \(value.serialized())") }
            shape.append(d)
        }
        let sample = Array(shape.dropFirst())
        let accepted = acceptedShapes(model)
        guard accepted.contains(sample) else {
            throw .badRequest("input shape \(describe(shape)) does not fit the model; it takes " +
                              accepted.map { describe([-1] + $0) }.joined(separator: " or "))
        }
        let count = shape[0]
        guard count >= 1 else { throw .badRequest("the input has no samples (shape \(describe(shape)))") }
        guard count <= limits.maxBatch else {
            throw .tooLarge("the input has \(count) samples, more than the limit of \(limits.maxBatch) per request")
        }
        let elements = count * model.inputSize
        guard elements <= limits.maxTensorElements else {
            throw .tooLarge("the input has \(elements) elements, more than the limit of \(limits.maxTensorElements)")
        }
        let features: [Float]
        let binarySize = input["parameters"]?["binary_data_size"]
        if let binarySize {
            guard let size = binarySize.intValue else { throw .badRequest("binary_data_size must be an integer") }
            guard size == elements * datatype.size else {
                throw .badRequest("binary_data_size is \(size) bytes, but \(describe(shape)) \(typeName) takes \(elements * datatype.size)")
            }
            guard binary.count == size else {
                throw .badRequest("the body has \(binary.count) bytes after the JSON header, but binary_data_size is \(size)")
            }
            features = decodeBinary(binary, datatype: datatype, count: elements)
        } else {
            guard binary.isEmpty else { throw .badRequest("the body has \(binary.count) bytes after the JSON header, but no input has binary_data_size") }
            guard let data = input["data"] else { throw .badRequest("the input has no 'data' (and no binary_data_size)") }
            features = try decodeJSON(data, datatype: datatype, count: elements)
        }
        var outputs: [RequestedOutput] = []
        let binaryDefault = root["parameters"]?["binary_data_output"]?.boolValue ?? false
        if let requested = root["outputs"] {
            guard let list = requested.arrayValue else { throw .badRequest("'outputs' must be an array") }
            for entry in list {
                guard let name = entry["name"]?.stringValue else { throw .badRequest("an entry of 'outputs' has no 'name'") }
                guard name == probabilitiesName || name == className else {
                    throw .badRequest("unknown output '\(name)'; the outputs are '\(probabilitiesName)' and '\(className)'")
                }
                outputs.append(RequestedOutput(name: name, binary: entry["parameters"]?["binary_data"]?.boolValue ?? binaryDefault))
            }
        } else {
            outputs = [RequestedOutput(name: probabilitiesName, binary: binaryDefault), RequestedOutput(name: className, binary: binaryDefault)]
        }
        return InferRequest(id: root["id"], features: features, count: count, outputs: outputs)
    }

    private static func decodeBinary(_ bytes: ArraySlice<UInt8>, datatype: Datatype, count: Int) -> [Float] {
        var out = [Float](repeating: 0, count: count)
        bytes.withUnsafeBytes { raw in
            for i in 0..<count {
                switch datatype {
                case .uint8: out[i] = Float(raw[i])
                case .fp32: out[i] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
                case .fp64: out[i] = Float(Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))))
                }
            }
        }
        return out
    }

    /// The numbers of `data`, flat or nested, as `count` floats.
    private static func decodeJSON(_ data: JSONValue, datatype: Datatype, count: Int) throws(ServeError) -> [Float] {
        var out: [Float] = []
        out.reserveCapacity(count)
        func walk(_ value: JSONValue) throws(ServeError) {
            switch value {
            case .array(let items):
                for item in items { try walk(item) }
            case .integer, .number:
                guard out.count < count else { throw .badRequest("the input's data has more than the \(count) values its shape holds") }
                let d = value.doubleValue!
                if datatype == .uint8 {
                    guard let i = value.intValue, (0...255).contains(i) else {
                        throw .badRequest("UINT8 data must be integers 0 to 255; value \(out.count) is \(value.serialized())")
                    }
                    out.append(Float(i))
                } else {
                    guard Float(d).isFinite else { throw .badRequest("value \(out.count) of the input's data (\(value.serialized())) is out of FP32's range") }
                    out.append(Float(d))
                }
            default:
                throw .badRequest("the input's data must hold numbers; value \(out.count) is \(value.kindName)")
            }
        }
        try walk(data)
        guard out.count == count else { throw .badRequest("the input's data has \(out.count) values, but its shape holds \(count)") }
        return out
    }

    /// The response to an inference: its bytes, and the length of its JSON part when binary
    /// tensors follow.
    static func encode(modelName: String, id: JSONValue?, probabilities: [[Double]], outputs: [RequestedOutput]) -> (body: [UInt8], headerLength: Int?) {
        let classes = probabilities.map { topIndices($0[...], k: 1).first ?? 0 }
        let n = probabilities.count
        let width = probabilities.first?.count ?? 0
        var json = "{\"model_name\":" + JSONValue.string(modelName).serialized()
        json += ",\"model_version\":\"1\""
        if let id { json += ",\"id\":" + id.serialized() }
        json += ",\"outputs\":["
        var binary: [UInt8] = []
        for (i, output) in outputs.enumerated() {
            if i > 0 { json += "," }
            let isProbabilities = output.name == probabilitiesName
            json += "{\"name\":\"\(output.name)\",\"datatype\":\"\(isProbabilities ? "FP32" : "INT64")\",\"shape\":"
            json += isProbabilities ? "[\(n),\(width)]" : "[\(n)]"
            if output.binary {
                let start = binary.count
                if isProbabilities {
                    for row in probabilities { for p in row { withUnsafeBytes(of: Float(p).bitPattern.littleEndian) { binary += $0 } } }
                } else {
                    for c in classes { withUnsafeBytes(of: Int64(c).littleEndian) { binary += $0 } }
                }
                json += ",\"parameters\":{\"binary_data_size\":\(binary.count - start)}}"
            } else {
                json += ",\"data\":["
                if isProbabilities {
                    var first = true
                    for row in probabilities {
                        for p in row {
                            if !first { json += "," }
                            first = false
                            let f = Float(p)
                            json += f.isFinite ? f.description : "null"
                        }
                    }
                } else {
                    json += classes.map(String.init).joined(separator: ",")
                }
                json += "]}"
            }
        }
        json += "]}"
        let header = Array(json.utf8)
        return binary.isEmpty ? (header, nil) : (header + binary, header.count)
    }

    static func describe(_ shape: [Int]) -> String { "[" + shape.map(String.init).joined(separator: ", ") + "]" }
}
