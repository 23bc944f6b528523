@testable import NNCore
import Testing

// Format 1.2 in the model description: the JSON forms of the new layers, activations, padding
// and output kind (expected texts written from Schemas/nnm-v1.md, not from the writer), the
// minor version a model needs, and the validation errors, one line each.

let provenance = Provenance(tool: "test", created: "2026-01-01T00:00:00Z")

/// The metadata read back from its own JSON text.
func reread(_ meta: ModelMetadata) throws -> ModelMetadata {
    try ModelMetadata(json: try JSONValue.parse(JSONValue.object(meta.json).serialized(indent: 1)))
}

/// A header with `input` and one layer given as JSON text.
func metadata(input: [Int], layer: String, output: String? = nil) throws -> ModelMetadata {
    let outputPart = output.map { #", "output": \#($0)"# } ?? ""
    let text = #"{"input": {"shape": \#(input)}, "layers": [\#(layer)]\#(outputPart), "provenance": {"tool": "t", "created": "2026-01-01T00:00:00Z"}}"#
    return try ModelMetadata(json: try JSONValue.parse(text))
}

/// The message of the error that `body` throws (nil when it does not throw).
func modelError(_ body: () throws -> Void) -> String? {
    do { try body(); return nil } catch { return "\(error)" }
}

func values(_ n: Int, _ value: Float = 1) -> [Float] { [Float](repeating: value, count: n) }

@Suite struct ActivationJSON {
    /// Each activation's written form, and that it reads back as itself.
    @Test(arguments: [
        (Activation.identity, #""identity""#), (.relu, #""relu""#), (.softmax, #""softmax""#),
        (.leakyRelu(alpha: 0.2), #"{"name":"leaky_relu","alpha":0.2}"#),
        (.elu(alpha: 1), #""elu""#), (.elu(alpha: 0.5), #"{"name":"elu","alpha":0.5}"#),
        (.selu, #""selu""#), (.gelu(.exact), #""gelu""#), (.gelu(.tanh), #"{"name":"gelu","approximate":"tanh"}"#),
        (.softplus, #""softplus""#), (.swish, #""swish""#), (.hardSigmoid, #""hard_sigmoid""#), (.relu6, #""relu6""#),
        (.clippedRelu(maxValue: 6), #"{"name":"relu","max_value":6.0}"#), (.logSoftmax, #""log_softmax""#),
    ])
    func writtenFormReadsBack(activation: Activation, text: String) throws {
        #expect(activation.json.serialized() == text)
        #expect(try Activation(json: try JSONValue.parse(text), location: "a") == activation)
    }

    /// Object forms and defaults that readers accept besides the written form.
    @Test(arguments: [
        (#"{"name": "relu"}"#, Activation.relu), (#"{"name": "elu"}"#, .elu(alpha: 1)),
        (#"{"name": "gelu", "approximate": "none"}"#, .gelu(.exact)), (#"{"name": "leaky_relu", "alpha": 1}"#, .leakyRelu(alpha: 1)),
        (#"{"name": "relu", "max_value": 2.5}"#, .clippedRelu(maxValue: 2.5)), (#"{"name": "swish"}"#, .swish),
    ])
    func otherFormsAreRead(text: String, activation: Activation) throws {
        #expect(try Activation(json: try JSONValue.parse(text), location: "a") == activation)
    }

    @Test(arguments: [
        (#""leaky_relu""#, #"layers[0].activation: expected {"name": "leaky_relu", "alpha": ...} (its slope has no common default), found "leaky_relu""#),
        (#"{"name": "leaky_relu"}"#, "layers[0].activation.alpha: expected a value, found nothing"),
        (#"{"name": "elu", "beta": 1}"#, "layers[0].activation.beta: expected only alpha as parameters of elu, found a member 'beta'"),
        (#"{"name": "selu", "alpha": 1}"#, "layers[0].activation.alpha: expected no parameters for selu, found a member 'alpha'"),
        (#"{"name": "gelu", "approximate": "fast"}"#, #"layers[0].activation.approximate: expected one of none, tanh, found "fast""#),
        (#"{"name": "mish"}"#, #"layers[0].activation.name: expected one of identity, relu, sigmoid, tanh, softmax, leaky_relu, elu, selu, gelu, softplus, swish, hard_sigmoid, relu6, log_softmax, found "mish""#),
        ("3", "layers[0].activation: expected an activation name or {\"name\": ..., parameters}, found a number"),
    ])
    func badFormsAreOneLine(text: String, message: String) throws {
        let layer = #"{"kind": "dense", "in": 2, "out": 2, "activation": \#(text), "weight": "w"}"#
        #expect(modelError { _ = try metadata(input: [2], layer: layer) } == message)
    }

    @Test func descriptionsNameTheParameters() {
        #expect(Activation.leakyRelu(alpha: 0.2).description == "leaky_relu(alpha=0.2)")
        #expect(Activation.clippedRelu(maxValue: 6).description == "relu(max_value=6.0)")
        #expect(Activation.gelu(.tanh).description == "gelu(approximate=tanh)")
        #expect(Activation.elu(alpha: 1).description == "elu")
        #expect(Activation.basic.map(\.description) == ["identity", "relu", "sigmoid", "tanh", "softmax"])
    }
}

@Suite struct LayerJSON {
    /// Each new layer: its exact JSON object, and a round trip through the header.
    @Test func batchNormAfterAConvolution() throws {
        let layer = try Layer.batchNorm(index: 1, inputShape: [4, 4, 3], epsilon: 0.001, activation: .relu)
        #expect(JSONValue.object(layer.json).serialized() == #"{"kind":"batch_norm","in":48,"out":48,"input_shape":[4,4,3],"epsilon":0.001,"activation":"relu","gamma":"layers.1.gamma","beta":"layers.1.beta","moving_mean":"layers.1.moving_mean","moving_variance":"layers.1.moving_variance"}"#)
        let read = try metadata(input: [48], layer: JSONValue.object(layer.json).serialized()).layers[0]
        #expect(read == layer)
    }

    @Test func batchNormWithoutGammaAndBeta() throws {
        let layer = try Layer.batchNorm(index: 0, inputShape: [5], epsilon: 1e-5, scale: false, center: false)
        #expect(JSONValue.object(layer.json).serialized() == #"{"kind":"batch_norm","in":5,"out":5,"input_shape":[5],"epsilon":1e-05,"activation":"identity","moving_mean":"layers.0.moving_mean","moving_variance":"layers.0.moving_variance"}"#)
        #expect(try metadata(input: [5], layer: JSONValue.object(layer.json).serialized()).layers[0] == layer)
    }

    @Test func averagePoolingWithExplicitPadding() throws {
        let layer = try Layer.avgPool2d(index: 0, inputShape: [5, 5, 2], pool: [3, 3], strides: [2, 1],
                                        padding: .explicit(top: 0, left: 1, bottom: 2, right: 0), countIncludePad: true)
        // Height (5 + 0 + 2 - 3) / 2 + 1 = 3, width (5 + 1 + 0 - 3) / 1 + 1 = 4.
        #expect(layer.spatial?.outputShape == [3, 4, 2])
        #expect(JSONValue.object(layer.json).serialized() == #"{"kind":"avg_pool2d","in":50,"out":24,"input_shape":[5,5,2],"output_shape":[3,4,2],"pool":[3,3],"strides":[2,1],"padding":[0,1,2,0],"count_include_pad":true,"activation":"identity"}"#)
        #expect(try metadata(input: [50], layer: JSONValue.object(layer.json).serialized()).layers[0] == layer)
    }

    @Test func convolutionWithExplicitPaddingAndNoBias() throws {
        let layer = try Layer.conv2d(index: 0, inputShape: [6, 6, 1], filters: 2, kernel: [3, 3], strides: [2, 2],
                                     padding: .explicit(top: 0, left: 0, bottom: 1, right: 1), activation: .relu6, bias: false)
        // TensorFlow's "same" for this input: ceil(6 / 2) = 3.
        #expect(layer.spatial?.outputShape == [3, 3, 2])
        #expect(JSONValue.object(layer.json).serialized() == #"{"kind":"conv2d","in":36,"out":18,"input_shape":[6,6,1],"output_shape":[3,3,2],"kernel":[3,3],"strides":[2,2],"padding":[0,0,1,1],"convention":"cross-correlation","activation":"relu6","weight":"layers.0.weight"}"#)
        #expect(try metadata(input: [36], layer: JSONValue.object(layer.json).serialized()).layers[0] == layer)
    }

    @Test(arguments: [true, false])
    func globalPooling(average: Bool) throws {
        let layer = try Layer.globalPool2d(index: 0, inputShape: [4, 3, 5], average: average)
        let kind = average ? "global_avg_pool2d" : "global_max_pool2d"
        #expect(JSONValue.object(layer.json).serialized() == #"{"kind":"\#(kind)","in":60,"out":5,"input_shape":[4,3,5],"activation":"identity"}"#)
        #expect(try metadata(input: [60], layer: JSONValue.object(layer.json).serialized()).layers[0] == layer)
    }

    @Test func denseWithAParameterizedActivation() throws {
        let layer = Layer(inputSize: 3, outputSize: 2, activation: .leakyRelu(alpha: 0.01), weight: "w", bias: nil)
        #expect(JSONValue.object(layer.json).serialized() == #"{"kind":"dense","in":3,"out":2,"activation":{"name":"leaky_relu","alpha":0.01},"weight":"w"}"#)
        #expect(try metadata(input: [3], layer: JSONValue.object(layer.json).serialized()).layers[0] == layer)
    }

    /// Members a kind does not interpret are kept, not dropped, even when another kind knows them.
    @Test func membersOfOtherKindsAreKept() throws {
        let meta = try metadata(input: [3], layer: #"{"kind": "dense", "in": 3, "out": 2, "activation": "relu", "weight": "w", "epsilon": 0.1}"#)
        #expect(meta.layers[0].unknownFields["epsilon"] == .number(0.1))
        #expect(try reread(meta) == meta)
    }

    @Test func summaries() throws {
        let bn = try Layer.batchNorm(index: 1, inputShape: [4, 4, 3], epsilon: 0.001, activation: .relu)
        #expect(bn.summary == "batch_norm 4x4x3, epsilon 0.001, relu")
        #expect(bn.shortSummary == "bn relu")
        let avg = try Layer.avgPool2d(index: 0, inputShape: [4, 4, 3], pool: [2, 2], padding: .explicit(top: 1, left: 1, bottom: 1, right: 1), countIncludePad: false)
        #expect(avg.summary == "avg_pool2d 4x4x3 -> 3x3x3, pool 2x2, strides 2x2, pads 1,1,1,1, padded cells not counted")
        #expect(avg.shortSummary == "avgpool2x2 3x3x3")
        let global = try Layer.globalPool2d(index: 0, inputShape: [4, 4, 3], average: true)
        #expect(global.summary == "global_avg_pool2d 4x4x3 -> 3")
        #expect(global.shortSummary == "globalavg 3")
        #expect(try Layer.globalPool2d(index: 0, inputShape: [4, 4, 3], average: false).shortSummary == "globalmax 3")
        let dense = Layer(inputSize: 3, outputSize: 2, activation: .gelu(.tanh), weight: "w", bias: nil)
        #expect(dense.summary == "dense 3 -> 2, gelu(approximate=tanh)")
    }
}

@Suite struct OutputKindAndVersion {
    @Test func statedOutputRoundTrips() throws {
        var meta = ModelMetadata(input: InputSpec(shape: [3]), layers: [.dense(index: 0, inputSize: 3, outputSize: 2, activation: .softmax)],
                                 classes: ["a", "b"], provenance: provenance)
        meta.output = OutputSpec(kind: .logits)
        let text = JSONValue.object(meta.json).serialized()
        #expect(text.contains(#""classes":["a","b"],"output":{"kind":"logits"},"provenance""#))
        #expect(try reread(meta) == meta)
        #expect(meta.outputKind == .logits)
        let read = try metadata(input: [3], layer: #"{"kind": "dense", "in": 3, "out": 2, "activation": "relu", "weight": "w"}"#,
                                output: #"{"kind": "log_probabilities", "note": "kept"}"#)
        #expect(read.outputKind == .logProbabilities)
        #expect(read.output?.unknownFields["note"] == .string("kept"))
        #expect(modelError { _ = try metadata(input: [3], layer: #"{"kind": "dense", "in": 3, "out": 2, "activation": "relu", "weight": "w"}"#,
                                               output: #"{"kind": "scores"}"#) }
                == #"output.kind: expected one of probabilities, log_probabilities, logits, found "scores""#)
    }

    @Test(arguments: [(Activation.softmax, OutputKind.probabilities), (.sigmoid, .probabilities), (.logSoftmax, .logProbabilities),
                      (.identity, .logits), (.relu, .logits), (.tanh, .logits), (.hardSigmoid, .logits)])
    func derivedFromTheLastActivation(activation: Activation, kind: OutputKind) {
        let meta = ModelMetadata(input: InputSpec(shape: [3]), layers: [.dense(index: 0, inputSize: 3, outputSize: 2, activation: activation)],
                                 provenance: provenance)
        #expect(meta.output == nil)
        #expect(meta.outputKind == kind)
    }

    @Test func minorVersionIsTheLowestThatDescribesTheModel() throws {
        func version(_ layers: [Layer], output: OutputKind? = nil) -> Int {
            var meta = ModelMetadata(input: InputSpec(shape: [layers[0].inputSize]), layers: layers, provenance: provenance)
            meta.output = output.map { OutputSpec(kind: $0) }
            return meta.minorVersion
        }
        let dense = Layer.dense(index: 0, inputSize: 16, outputSize: 4, activation: .softmax)
        #expect(version([dense]) == 1)
        #expect(version([try .conv2d(index: 0, inputShape: [4, 4, 1], filters: 2, kernel: [3, 3], padding: .same, activation: .relu)]) == 1)
        #expect(version([.dense(index: 0, inputSize: 16, outputSize: 4, activation: .swish)]) == 2)
        #expect(version([dense], output: .probabilities) == 2)
        #expect(version([try .maxPool2d(index: 0, inputShape: [4, 4, 1], pool: [2, 2], padding: .explicit(top: 0, left: 0, bottom: 1, right: 1))]) == 2)
        #expect(version([try .batchNorm(index: 0, inputShape: [16], epsilon: 0.001)]) == 2)
        #expect(version([try .globalPool2d(index: 0, inputShape: [4, 4, 1], average: true)]) == 2)
    }
}

@Suite struct Format12Validation {
    /// dense 4 -> 3, batch_norm over 3 channels, with these statistics.
    func normalized(epsilon: Double = 0.001, sizes: [String: Int] = [:], variance: [Float] = [1, 1, 1]) throws -> Model {
        let layers = [Layer.dense(index: 0, inputSize: 4, outputSize: 3, activation: .identity),
                      try Layer.batchNorm(index: 1, inputShape: [3], epsilon: 1)]
        var model = Model(metadata: ModelMetadata(input: InputSpec(shape: [4]), layers: layers, provenance: provenance),
                          tensors: [NamedTensor("layers.0.weight", Tensor(values(12), shape: [4, 3])),
                                    NamedTensor("layers.0.bias", Tensor(values(3), shape: [3]))])
        model.metadata.layers[1].batchNorm!.epsilon = epsilon
        for name in ["gamma", "beta", "moving_mean"] {
            let n = sizes[name] ?? 3
            model.setTensor("layers.1.\(name)", Tensor(values(n), shape: [n]))
        }
        let n = sizes["moving_variance"] ?? variance.count
        model.setTensor("layers.1.moving_variance", Tensor(n == variance.count ? variance : values(n), shape: [n]))
        return model
    }

    @Test func aValidModelPasses() throws {
        #expect(try normalized().validate().isEmpty)
    }

    @Test(arguments: [(0.0, "layers[1].epsilon: expected a finite number > 0, found 0.0"),
                      (-0.001, "layers[1].epsilon: expected a finite number > 0, found -0.001"),
                      (Double.infinity, "layers[1].epsilon: expected a finite number > 0, found inf")])
    func epsilonMustBePositive(epsilon: Double, message: String) throws {
        let model = try normalized(epsilon: epsilon)
        #expect(modelError { try model.validateStructure() } == message)
    }

    @Test(arguments: ["gamma", "beta", "moving_mean", "moving_variance"])
    func statisticsMustHaveOneValuePerChannel(name: String) throws {
        let model = try normalized(sizes: [name: 4])
        #expect(modelError { try model.validateStructure() }
                == "layers[1].\(name): expected tensor 'layers.1.\(name)' of shape [3] (one value per channel), found shape [4]")
    }

    @Test func aNegativeVarianceIsAWarning() throws {
        let warnings = try normalized(variance: [1, -0.5, 2]).validate()
        #expect(warnings.map(\.description) == ["tensor 'layers.1.moving_variance': layers[1] (batch_norm) has a negative moving variance (first at element 1)"])
    }

    @Test(arguments: [(Activation.leakyRelu(alpha: .infinity), "layers[0].activation.alpha: expected a finite number, found inf"),
                      (.elu(alpha: .nan), "layers[0].activation.alpha: expected a finite number, found nan"),
                      (.clippedRelu(maxValue: -.infinity), "layers[0].activation.max_value: expected a finite number, found -inf"),
                      (.clippedRelu(maxValue: 0), "layers[0].activation.max_value: expected a number > 0, found 0.0")])
    func activationParametersMustBeFinite(activation: Activation, message: String) {
        let model = Model(metadata: ModelMetadata(input: InputSpec(shape: [2]),
                                                  layers: [Layer(inputSize: 2, outputSize: 2, activation: activation, weight: "w", bias: nil)],
                                                  provenance: provenance),
                          tensors: [NamedTensor("w", Tensor(values(4), shape: [2, 2]))])
        #expect(modelError { try model.validateStructure() } == message)
    }

    @Test func aWindowMustFitThePaddedInput() {
        #expect(modelError { _ = try Layer.avgPool2d(index: 2, inputShape: [2, 2, 1], pool: [3, 3], padding: .explicit(top: 1, left: 0, bottom: 0, right: 0),
                                                     countIncludePad: false) }
                == "layers[2].pool: expected a window that fits the input 2x2x1 padded by [1, 0, 0, 0], found 3x3")
        // The same from a header.
        let layer = #"{"kind": "max_pool2d", "in": 4, "out": 1, "input_shape": [2, 2, 1], "output_shape": [1, 1, 1], "pool": [3, 3], "strides": [1, 1], "padding": [0, 0, 0, 0]}"#
        #expect(modelError { _ = try metadata(input: [4], layer: layer) }
                == "layers[0].pool: expected a window that fits the input 2x2x1 padded by [0, 0, 0, 0], found 3x3")
    }

    @Test func padsMustBeSmallerThanTheWindow() {
        #expect(modelError { _ = try Layer.maxPool2d(index: 0, inputShape: [4, 4, 1], pool: [2, 2], padding: .explicit(top: 2, left: 0, bottom: 0, right: 0)) }
                == "layers[0].padding: expected [top, left, bottom, right] pads from 0 to less than the pool 2x2, found [2, 0, 0, 0]")
        #expect(modelError { _ = try Layer.conv2d(index: 3, inputShape: [4, 4, 1], filters: 1, kernel: [3, 1], padding: .explicit(top: 0, left: 1, bottom: 0, right: 0),
                                                  activation: .relu) }
                == "layers[3].padding: expected [top, left, bottom, right] pads from 0 to less than the kernel 3x1, found [0, 1, 0, 0]")
        let layer = #"{"kind": "conv2d", "in": 16, "out": 16, "input_shape": [4, 4, 1], "output_shape": [4, 4, 1], "kernel": [3, 3], "strides": [1, 1], "padding": [1, 1, 3, 1], "convention": "cross-correlation", "activation": "identity", "weight": "w"}"#
        #expect(modelError { _ = try metadata(input: [16], layer: layer) }
                == "layers[0].padding: expected [top, left, bottom, right] pads from 0 to less than the kernel 3x3, found [1, 1, 3, 1]")
    }

    @Test func malformedMembersOfNewLayers() {
        let pool = #"{"kind": "avg_pool2d", "in": 16, "out": 4, "input_shape": [4, 4, 1], "output_shape": [2, 2, 1], "pool": [2, 2], "strides": [2, 2], "padding": "valid"}"#
        #expect(modelError { _ = try metadata(input: [16], layer: pool) } == "layers[0].count_include_pad: expected a value, found nothing")
        let pads = #"{"kind": "max_pool2d", "in": 16, "out": 4, "input_shape": [4, 4, 1], "output_shape": [2, 2, 1], "pool": [2, 2], "strides": [2, 2], "padding": [0, 0, 0]}"#
        #expect(modelError { _ = try metadata(input: [16], layer: pads) } == "layers[0].padding: expected 4 pads [top, left, bottom, right], found 3")
        let norm = #"{"kind": "batch_norm", "in": 6, "out": 6, "input_shape": [2, 3], "epsilon": 0.1, "moving_mean": "m", "moving_variance": "v"}"#
        #expect(modelError { _ = try metadata(input: [6], layer: norm) }
                == "layers[0].input_shape: expected [features] or [height, width, channels], each >= 1, at most 2147483647 features, found 2x3")
        let noEpsilon = #"{"kind": "batch_norm", "in": 6, "out": 6, "input_shape": [6], "moving_mean": "m", "moving_variance": "v"}"#
        #expect(modelError { _ = try metadata(input: [6], layer: noEpsilon) } == "layers[0].epsilon: expected a value, found nothing")
    }

    /// A batch_norm after a convolution must see the convolution's output shape.
    @Test func batchNormShapesChain() throws {
        let conv = try Layer.conv2d(index: 0, inputShape: [4, 4, 1], filters: 2, kernel: [3, 3], activation: .identity, bias: false)
        var model = Model(metadata: ModelMetadata(input: InputSpec(shape: [4, 4]),
                                                  layers: [conv, try .batchNorm(index: 1, inputShape: [8], epsilon: 0.1)], provenance: provenance),
                          tensors: [NamedTensor("layers.0.weight", Tensor(values(18), shape: [3, 3, 1, 2]))])
        for name in ["gamma", "beta", "moving_mean", "moving_variance"] { model.setTensor("layers.1.\(name)", Tensor(values(2), shape: [2])) }
        #expect(modelError { try model.validateStructure() } == "layers[1].input_shape: expected 2x2x2 (the previous layer's output), found 8")
        model.metadata.layers[1] = try .batchNorm(index: 1, inputShape: [2, 2, 2], epsilon: 0.1)
        #expect(throws: Never.self) { try model.validateStructure() }
    }
}
