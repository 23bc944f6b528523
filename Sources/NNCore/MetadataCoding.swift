// The JSON form of ModelMetadata: the `.nnm` header (see Schemas/nnm-v1.md) and the
// `nnm_metadata` attribute of HDF5 exports use it alike.

/// Reads typed members out of a JSON object, reporting the path of anything wrong.
struct FieldReader {
    let object: JSONObject
    let path: String

    init(_ value: JSONValue?, path: String) throws(ModelError) {
        guard let value else { throw .invalidField(location: path, expected: "an object", found: "nothing") }
        guard case let .object(o) = value else { throw .invalidField(location: path, expected: "an object", found: value.kindName) }
        object = o
        self.path = path
    }

    func location(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    func value(_ key: String) throws(ModelError) -> JSONValue {
        guard let v = object[key] else { throw .invalidField(location: location(key), expected: "a value", found: "nothing") }
        return v
    }

    /// Member `key` as a `T` (`convert` returns nil for any other kind of value, which is
    /// reported as not being `expected`).
    func typed<T>(_ key: String, expected: String, _ convert: (JSONValue) -> T?) throws(ModelError) -> T {
        try typed(key, try value(key), expected: expected, convert)
    }

    /// As `typed`, but an absent or null member is nil.
    func optionalTyped<T>(_ key: String, expected: String, _ convert: (JSONValue) -> T?) throws(ModelError) -> T? {
        guard let v = object[key], v != .null else { return nil }
        return try typed(key, v, expected: expected, convert)
    }

    private func typed<T>(_ key: String, _ v: JSONValue, expected: String, _ convert: (JSONValue) -> T?) throws(ModelError) -> T {
        guard let t = convert(v) else { throw .invalidField(location: location(key), expected: expected, found: v.kindName) }
        return t
    }

    func string(_ key: String) throws(ModelError) -> String { try typed(key, expected: "a string", \.stringValue) }
    func optionalString(_ key: String) throws(ModelError) -> String? { try optionalTyped(key, expected: "a string", \.stringValue) }
    func double(_ key: String) throws(ModelError) -> Double { try typed(key, expected: "a number", \.doubleValue) }
    func optionalDouble(_ key: String) throws(ModelError) -> Double? { try optionalTyped(key, expected: "a number", \.doubleValue) }
    func array(_ key: String) throws(ModelError) -> [JSONValue] { try typed(key, expected: "an array", \.arrayValue) }
    func optionalObject(_ key: String) throws(ModelError) -> JSONObject? { try optionalTyped(key, expected: "an object", \.objectValue) }

    func int(_ key: String, range: ClosedRange<Int> = 0...Int(Int32.max)) throws(ModelError) -> Int {
        let i = try typed(key, expected: "an integer", \.intValue)
        guard range.contains(i) else {
            throw .invalidField(location: location(key), expected: "an integer in \(range.lowerBound)...\(range.upperBound)", found: String(i))
        }
        return i
    }

    func intArray(_ key: String, range: ClosedRange<Int>) throws(ModelError) -> [Int] {
        var out: [Int] = []
        for (i, v) in try array(key).enumerated() {
            guard let n = v.intValue, range.contains(n) else {
                throw .invalidField(location: "\(location(key))[\(i)]", expected: "an integer in \(range.lowerBound)...\(range.upperBound)",
                                    found: v.intValue.map(String.init) ?? v.kindName)
            }
            out.append(n)
        }
        return out
    }

    func enumValue<E: RawRepresentable>(_ key: String, _ type: E.Type, allowed: [String]) throws(ModelError) -> E where E.RawValue == String {
        let s = try string(key)
        guard let e = E(rawValue: s) else {
            throw .invalidField(location: location(key), expected: "one of " + allowed.joined(separator: ", "), found: "\"\(s)\"")
        }
        return e
    }

    /// The members not in `known`.
    func unknown(known: Set<String>) -> JSONObject {
        var o = JSONObject()
        for m in object where !known.contains(m.key) { o[m.key] = m.value }
        return o
    }
}

/// Largest layer width or input dimension a model may declare (2^31 - 1).
let maximumDimension = Int(Int32.max)

extension ModelMetadata {
    /// Top-level header members this version interprets (besides the container's `tensors`).
    public static let knownTopLevelKeys: Set<String> = ["input", "layers", "preprocessing", "classes", "output", "training", "provenance"]

    /// Reads the metadata from a header object; members it does not know are kept.
    public init(json: JSONValue) throws(ModelError) {
        let root = try FieldReader(json, path: "")
        let inputReader = try FieldReader(root.object["input"], path: "input")
        let shape = try inputReader.intArray("shape", range: 1...maximumDimension)
        guard shape.count <= 8 else { throw .invalidField(location: "input.shape", expected: "at most 8 dimensions", found: "\(shape.count)") }
        guard ShapeMath.byteCount(shape, elementSize: 1).map({ $0 <= maximumDimension }) == true else {
            throw .invalidField(location: "input.shape", expected: "at most \(maximumDimension) features", found: ShapeMath.describe(shape))
        }
        input = InputSpec(shape: shape)

        layers = []
        for (i, v) in try root.array("layers").enumerated() {
            layers.append(try Layer(json: v, location: "layers[\(i)]"))
        }

        preprocessing = []
        if root.object["preprocessing"] != nil {
            for (i, v) in try root.array("preprocessing").enumerated() {
                let r = try FieldReader(v, path: "preprocessing[\(i)]")
                switch try r.string("op") {
                case "scale":
                    preprocessing.append(.scale(factor: try r.double("factor"), offset: try r.optionalDouble("offset") ?? 0))
                case "zscore":
                    preprocessing.append(.zscore(mean: try r.string("mean"), std: try r.string("std")))
                case let other:
                    throw .invalidField(location: "preprocessing[\(i)].op", expected: "\"scale\" or \"zscore\"", found: "\"\(other)\"")
                }
            }
        }

        classes = []
        if root.object["classes"] != nil {
            for (i, v) in try root.array("classes").enumerated() {
                guard let s = v.stringValue else { throw .invalidField(location: "classes[\(i)]", expected: "a string", found: v.kindName) }
                classes.append(s)
            }
        }

        if let o = root.object["output"], o != .null {
            let r = try FieldReader(o, path: "output")
            output = OutputSpec(kind: try r.enumValue("kind", OutputKind.self, allowed: OutputKind.allCases.map(\.rawValue)))
            output?.unknownFields = r.unknown(known: ["kind"])
        } else {
            output = nil
        }

        if let t = root.object["training"], t != .null {
            training = try TrainingRecord(json: t)
        } else {
            training = nil
        }

        let p = try FieldReader(root.object["provenance"], path: "provenance")
        provenance = Provenance(tool: try p.string("tool"), created: try p.string("created"),
                                sourceFile: try p.optionalString("source_file"), sourceFormat: try p.optionalString("source_format"))
        provenance.unknownFields = p.unknown(known: ["tool", "created", "source_file", "source_format"])

        unknownFields = root.unknown(known: ModelMetadata.knownTopLevelKeys.union(["tensors"]))
    }

    /// The metadata as a header object (without the container's `tensors` table).
    public var json: JSONObject {
        var root = JSONObject()
        root["input"] = .object(JSONObject([("shape", .array(input.shape.map { .integer(Int64($0)) })),
                                            ("features", .integer(Int64(input.features)))]))
        root["layers"] = .array(layers.map { .object($0.json) })
        root["preprocessing"] = .array(preprocessing.map { step in
            switch step {
            case let .scale(factor, offset):
                return .object(JSONObject([("op", "scale"), ("factor", .number(factor)), ("offset", .number(offset))]))
            case let .zscore(mean, std):
                return .object(JSONObject([("op", "zscore"), ("mean", .string(mean)), ("std", .string(std))]))
            }
        })
        root["classes"] = .array(classes.map { .string($0) })
        if let output {
            var o = JSONObject([("kind", .string(output.kind.rawValue))])
            for m in output.unknownFields { o[m.key] = m.value }
            root["output"] = .object(o)
        }
        if let training { root["training"] = .object(training.json) }
        var p = JSONObject([("tool", .string(provenance.tool)), ("created", .string(provenance.created))])
        if let s = provenance.sourceFile { p["source_file"] = .string(s) }
        if let s = provenance.sourceFormat { p["source_format"] = .string(s) }
        for m in provenance.unknownFields { p[m.key] = m.value }
        root["provenance"] = .object(p)
        for m in unknownFields { root[m.key] = m.value }
        return root
    }
}

extension Layer {
    static let knownKeys: Set<String> = ["kind", "in", "out", "activation", "weight", "weight_scale", "compute", "input_quantization", "bias", "input_shape", "output_shape",
                                         "kernel", "pool", "strides", "padding", "convention"]
    /// Members only batch_norm layers interpret (on another kind they are kept as unknown).
    static let batchNormKeys: Set<String> = ["epsilon", "gamma", "beta", "moving_mean", "moving_variance"]

    /// Reads one member of the header's `layers` array.
    init(json: JSONValue, location: String) throws(ModelError) {
        let r = try FieldReader(json, path: location)
        let kind = try r.enumValue("kind", Kind.self, allowed: Kind.allCases.map(\.rawValue))
        let inputSize = try r.int("in", range: 1...maximumDimension)
        let outputSize = try r.int("out", range: 1...maximumDimension)
        var spatial: SpatialGeometry?
        var batchNorm: BatchNormalization?
        var countIncludePad = false
        switch kind {
        case .dense:
            break
        case .conv2d, .maxPool2d, .avgPool2d:
            let inputShape = try r.intArray("input_shape", range: 1...maximumDimension)
            let windowKey = kind == .conv2d ? "kernel" : "pool"
            let window = try r.intArray(windowKey, range: 1...SpatialGeometry.maximumWindow)
            let strides = try r.intArray("strides", range: 1...SpatialGeometry.maximumWindow)
            let padding = try Self.padding(r)
            let convention = kind == .conv2d
                ? try r.enumValue("convention", ConvolutionConvention.self, allowed: ConvolutionConvention.allCases.map(\.rawValue))
                : .crossCorrelation
            if kind == .avgPool2d {
                let v = try r.value("count_include_pad")
                guard let flag = v.boolValue else {
                    throw .invalidField(location: r.location("count_include_pad"), expected: "true or false", found: v.kindName)
                }
                countIncludePad = flag
            }
            let declared = try r.intArray("output_shape", range: 1...maximumDimension)
            guard declared.count == 3 else {
                throw .invalidField(location: r.location("output_shape"), expected: "[height, width, channels]", found: ShapeMath.describe(declared))
            }
            let geometry = try SpatialGeometry(inputShape: inputShape, window: window, strides: strides, padding: padding,
                                               outputChannels: kind == .conv2d ? declared[2] : (inputShape.last ?? 0),
                                               convention: convention, location: location, windowKey: windowKey)
            guard geometry.outputShape == declared else {
                throw .invalidField(location: r.location("output_shape"), expected: ShapeMath.describe(geometry.outputShape),
                                    found: ShapeMath.describe(declared))
            }
            spatial = geometry
        case .flatten:
            let inputShape = try r.intArray("input_shape", range: 1...maximumDimension)
            guard (1...8).contains(inputShape.count),
                  let features = ShapeMath.byteCount(inputShape, elementSize: 1), features <= maximumDimension else {
                throw .invalidField(location: r.location("input_shape"), expected: "1 to 8 dimensions of at most \(maximumDimension) features",
                                    found: ShapeMath.describe(inputShape))
            }
            spatial = SpatialGeometry(flattening: inputShape)
        case .globalAvgPool2d, .globalMaxPool2d:
            spatial = try SpatialGeometry(globalPooling: try r.intArray("input_shape", range: 1...maximumDimension), location: location)
        case .batchNorm:
            spatial = try SpatialGeometry(normalizing: try r.intArray("input_shape", range: 1...maximumDimension), location: location)
            batchNorm = BatchNormalization(gamma: try r.optionalString("gamma"), beta: try r.optionalString("beta"),
                                           movingMean: try r.string("moving_mean"), movingVariance: try r.string("moving_variance"),
                                           epsilon: try r.double("epsilon"))
        }
        if let spatial {
            guard spatial.inputFeatures == inputSize else {
                throw .invalidField(location: r.location("in"), expected: "\(spatial.inputFeatures) (the product of input_shape)", found: String(inputSize))
            }
            guard spatial.outputFeatures == outputSize else {
                throw .invalidField(location: r.location("out"), expected: "\(spatial.outputFeatures) (the product of the output shape)", found: String(outputSize))
            }
        }
        let parameterized = kind.hasWeight
        self.init(kind: kind, inputSize: inputSize, outputSize: outputSize,
                  activation: parameterized || r.object["activation"] != nil
                      ? try Activation(json: try r.value("activation"), location: r.location("activation")) : .identity,
                  weight: parameterized ? try r.string("weight") : nil,
                  bias: parameterized ? try r.optionalString("bias") : nil,
                  spatial: spatial)
        if parameterized {
            weightScale = try r.optionalString("weight_scale")
            if let compute = try r.optionalString("compute") {
                guard compute == "bf16" else { throw .invalidField(location: r.location("compute"), expected: "\"bf16\"", found: "\"\(compute)\"") }
                bfloat16Compute = true
            }
            if let q = try r.optionalObject("input_quantization") {
                let qr = try FieldReader(.object(q), path: r.location("input_quantization"))
                inputQuantization = InputQuantization(scale: Float(try qr.double("scale")), zeroPoint: try qr.int("zero_point", range: 0...255))
            }
        }
        if !parameterized, r.object["weight"] != nil || r.object["bias"] != nil || r.object["weight_scale"] != nil || r.object["input_quantization"] != nil {
            throw .invalidField(location: r.location("weight"), expected: "no parameters for a \(kind.rawValue) layer", found: "a tensor name")
        }
        self.batchNorm = batchNorm
        self.countIncludePad = countIncludePad
        var known = Self.knownKeys
        if kind == .batchNorm { known.formUnion(Self.batchNormKeys) }
        if kind == .avgPool2d { known.insert("count_include_pad") }
        unknownFields = r.unknown(known: known)
    }

    /// `"valid"`, `"same"` or `[top, left, bottom, right]` (format 1.2).
    private static func padding(_ r: FieldReader) throws(ModelError) -> Padding {
        let v = try r.value("padding")
        if let name = v.stringValue {
            guard let p = Padding(name: name) else {
                throw .invalidField(location: r.location("padding"), expected: "one of \(Padding.names.joined(separator: ", ")) or [top, left, bottom, right]", found: "\"\(name)\"")
            }
            return p
        }
        guard v.arrayValue != nil else {
            throw .invalidField(location: r.location("padding"), expected: "\"valid\", \"same\" or [top, left, bottom, right]", found: v.kindName)
        }
        let pads = try r.intArray("padding", range: 0...SpatialGeometry.maximumWindow)
        guard pads.count == 4 else {
            throw .invalidField(location: r.location("padding"), expected: "4 pads [top, left, bottom, right]", found: "\(pads.count)")
        }
        return .explicit(top: pads[0], left: pads[1], bottom: pads[2], right: pads[3])
    }

    /// The layer as a member of the header's `layers` array.
    var json: JSONObject {
        func dims(_ d: [Int]) -> JSONValue { .array(d.map { .integer(Int64($0)) }) }
        var o = JSONObject([("kind", .string(kind.rawValue)),
                            ("in", .integer(Int64(inputSize))),
                            ("out", .integer(Int64(outputSize)))])
        if let g = spatial {
            o["input_shape"] = dims(g.inputShape)
            if !g.window.isEmpty {
                o["output_shape"] = dims(g.outputShape)
                o[kind == .conv2d ? "kernel" : "pool"] = dims(g.window)
                o["strides"] = dims(g.strides)
                o["padding"] = g.padding.pads.map(dims) ?? .string(g.padding.description)
            }
            if kind == .conv2d { o["convention"] = .string(g.convention.rawValue) }
            if kind == .avgPool2d { o["count_include_pad"] = .bool(countIncludePad) }
        }
        if let bn = batchNorm {
            o["epsilon"] = .number(bn.epsilon)
        }
        o["activation"] = activation.json
        if let w = weight { o["weight"] = .string(w) }
        if let s = weightScale { o["weight_scale"] = .string(s) }
        if bfloat16Compute { o["compute"] = .string("bf16") }
        if let q = inputQuantization {
            o["input_quantization"] = .object(JSONObject([("scale", .number(Double(q.scale))), ("zero_point", .integer(Int64(q.zeroPoint)))]))
        }
        if let b = bias { o["bias"] = .string(b) }
        if let bn = batchNorm {
            if let g = bn.gamma { o["gamma"] = .string(g) }
            if let b = bn.beta { o["beta"] = .string(b) }
            o["moving_mean"] = .string(bn.movingMean)
            o["moving_variance"] = .string(bn.movingVariance)
        }
        for m in unknownFields { o[m.key] = m.value }
        return o
    }
}

extension Activation {
    /// Reads an activation: a name (`"relu"`), or an object with a name and parameters
    /// (`{"name": "leaky_relu", "alpha": 0.2}`). An object may hold only the members its
    /// function knows: an unknown parameter would change what the function computes.
    init(json: JSONValue, location: String) throws(ModelError) {
        let names = "one of " + Activation.names.joined(separator: ", ")
        if let name = json.stringValue {
            if let a = Activation(name: name) {
                self = a
                return
            }
            if name == "leaky_relu" {
                throw .invalidField(location: location, expected: "{\"name\": \"leaky_relu\", \"alpha\": ...} (its slope has no common default)",
                                    found: "\"leaky_relu\"")
            }
            throw .invalidField(location: location, expected: names, found: "\"\(name)\"")
        }
        guard json.objectValue != nil else {
            throw .invalidField(location: location, expected: "an activation name or {\"name\": ..., parameters}", found: json.kindName)
        }
        let r = try FieldReader(json, path: location)
        let name = try r.string("name")
        let parameters: [String]
        switch name {
        case "leaky_relu":
            parameters = ["alpha"]
            self = .leakyRelu(alpha: try r.double("alpha"))
        case "elu":
            parameters = ["alpha"]
            self = .elu(alpha: try r.optionalDouble("alpha") ?? 1)
        case "gelu":
            parameters = ["approximate"]
            self = .gelu(r.object["approximate"] == nil ? GELUApproximation.exact
                         : try r.enumValue("approximate", GELUApproximation.self, allowed: GELUApproximation.allCases.map(\.rawValue)))
        case "relu":
            parameters = ["max_value"]
            self = try r.optionalDouble("max_value").map { .clippedRelu(maxValue: $0) } ?? .relu
        default:
            guard let a = Activation(name: name) else { throw .invalidField(location: r.location("name"), expected: names, found: "\"\(name)\"") }
            parameters = []
            self = a
        }
        if let extra = r.object.keys.first(where: { $0 != "name" && !parameters.contains($0) }) {
            throw .invalidField(location: r.location(extra),
                                expected: parameters.isEmpty ? "no parameters for \(name)" : "only \(parameters.joined(separator: ", ")) as parameters of \(name)",
                                found: "a member '\(extra)'")
        }
    }

    /// The shortest form: the bare name when there are no parameters or they are the defaults
    /// (ELU's alpha 1, exact GELU), else an object.
    var json: JSONValue {
        switch self {
        case let .leakyRelu(alpha):
            return .object(JSONObject([("name", "leaky_relu"), ("alpha", .number(alpha))]))
        case let .elu(alpha) where alpha != 1:
            return .object(JSONObject([("name", "elu"), ("alpha", .number(alpha))]))
        case .gelu(.tanh):
            return .object(JSONObject([("name", "gelu"), ("approximate", "tanh")]))
        case let .clippedRelu(maxValue):
            return .object(JSONObject([("name", "relu"), ("max_value", .number(maxValue))]))
        default:
            return .string(name)
        }
    }
}

extension TrainingRecord {
    static let knownKeys: Set<String> = ["loss", "optimizer", "hyperparameters", "epochs", "dataset", "history", "optimizer_state"]

    init(json: JSONValue) throws(ModelError) {
        let r = try FieldReader(json, path: "training")
        loss = try r.string("loss")
        optimizer = try r.string("optimizer")
        hyperparameters = try r.optionalObject("hyperparameters") ?? JSONObject()
        epochs = try r.int("epochs")
        dataset = try r.optionalObject("dataset") ?? JSONObject()
        history = []
        if r.object["history"] != nil {
            for (i, v) in try r.array("history").enumerated() {
                let e = try FieldReader(v, path: "training.history[\(i)]")
                history.append(EpochRecord(epoch: try e.int("epoch"),
                                           trainLoss: try e.optionalDouble("train_loss"),
                                           testLoss: try e.optionalDouble("test_loss"),
                                           trainAccuracy: try e.optionalDouble("train_accuracy"),
                                           testAccuracy: try e.optionalDouble("test_accuracy"),
                                           validationLoss: try e.optionalDouble("validation_loss"),
                                           validationAccuracy: try e.optionalDouble("validation_accuracy"),
                                           seconds: try e.optionalDouble("seconds")))
            }
        }
        optimizerState = []
        step = 0
        if let s = try r.optionalObject("optimizer_state") {
            let sr = try FieldReader(.object(s), path: "training.optimizer_state")
            step = try sr.int("step", range: 0...Int.max)
            if let tensors = try sr.optionalObject("tensors") {
                for m in tensors {
                    guard let name = m.value.stringValue else {
                        throw .invalidField(location: "training.optimizer_state.tensors.\(m.key)", expected: "a tensor name", found: m.value.kindName)
                    }
                    optimizerState.append((m.key, name))
                }
            }
        }
        unknownFields = r.unknown(known: TrainingRecord.knownKeys)
    }

    var json: JSONObject {
        var o = JSONObject([("loss", .string(loss)), ("optimizer", .string(optimizer)),
                            ("hyperparameters", .object(hyperparameters)), ("epochs", .integer(Int64(epochs))),
                            ("dataset", .object(dataset))])
        o["history"] = .array(history.map { e in
            var h = JSONObject([("epoch", .integer(Int64(e.epoch)))])
            func put(_ k: String, _ v: Double?) { if let v, v.isFinite { h[k] = .number(v) } }
            put("train_loss", e.trainLoss)
            put("test_loss", e.testLoss)
            put("train_accuracy", e.trainAccuracy)
            put("test_accuracy", e.testAccuracy)
            put("validation_loss", e.validationLoss)
            put("validation_accuracy", e.validationAccuracy)
            put("seconds", e.seconds)
            return .object(h)
        })
        if !optimizerState.isEmpty || step > 0 {
            o["optimizer_state"] = .object(JSONObject([
                ("step", .integer(Int64(step))),
                ("tensors", .object(JSONObject(optimizerState.map { ($0.parameter, JSONValue.string($0.tensor)) }))),
            ]))
        }
        for m in unknownFields { o[m.key] = m.value }
        return o
    }
}
