import NNCore
import NNConvert
import NNModelFiles
import NNZip
import NNNumPy
import Testing

/// A Keras `config.json` of a Sequential model with `layers` (JSON texts of layer objects).
func kerasConfig(_ layers: [String]) -> String {
    #"{"class_name": "Sequential", "config": {"name": "s", "layers": ["# + layers.joined(separator: ", ") + "]}}"
}

func dense(_ name: String = "d", units: String = "4", activation: String = #""relu""#) -> String {
    #"{"class_name": "Dense", "config": {"name": "\#(name)", "units": \#(units), "activation": \#(activation)}}"#
}

func conv(kernel: String = "[3, 3]", extra: String = "") -> String {
    #"{"class_name": "Conv2D", "config": {"name": "c", "filters": 4, "kernel_size": \#(kernel), "activation": "relu"\#(extra)}}"#
}

let kerasCases: [MalformedCase] = {
    let p = "k.json: "
    let deep = String(repeating: "[", count: 65) + String(repeating: "]", count: 65)
    func text(_ s: String) -> [UInt8] { Array(s.utf8) }
    let supported = "which is not supported (linear, relu, sigmoid, tanh, softmax, relu6, leaky_relu, elu, selu, gelu, softplus, silu, swish, hard_sigmoid, log_softmax)"
    return [
        MalformedCase("not JSON", text("model: dense"), p + "the Keras model configuration is not valid JSON: invalid JSON at byte 0: unexpected character 'm'"),
        MalformedCase("empty", [], p + "the Keras model configuration is not valid JSON: invalid JSON at byte 0: unexpected end of text"),
        MalformedCase("65 nested arrays", text(deep), p + "the Keras model configuration is not valid JSON: invalid JSON at byte 64: nesting deeper than 64 levels"),
        // The depth is checked before the space after a colon is skipped.
        MalformedCase("65 nested layer configs", text(kerasConfig([String(repeating: #"{"a": "#, count: 62) + "1" + String(repeating: "}", count: 62)])),
                      p + "the Keras model configuration is not valid JSON: invalid JSON at byte 429: nesting deeper than 64 levels"),
        MalformedCase("duplicate keys", text(#"{"class_name": "Sequential", "class_name": "Functional"}"#),
                      p + "the Keras model configuration is not valid JSON: invalid JSON at byte 41: duplicate member name \"class_name\""),
        MalformedCase("an array", text("[1, 2]"), p + "the Keras model configuration has no class_name"),
        MalformedCase("class_name a number", text(#"{"class_name": 3}"#), p + "the Keras model configuration has no class_name"),
        MalformedCase("a subclassed model", text(#"{"class_name": "MyModel", "config": []}"#),
                      p + "Keras model class MyModel is not supported (Sequential or a Functional chain)"),
        MalformedCase("no layer list", text(#"{"class_name": "Sequential", "config": {"name": "s"}}"#), p + "the Keras model configuration has no layer list"),
        MalformedCase("layers an object", text(#"{"class_name": "Sequential", "config": {"layers": {}}}"#), p + "the Keras model configuration has no layer list"),
        MalformedCase("layer without config", text(kerasConfig([#"{"class_name": "Dense"}"#])), p + "Keras layer 0 has no class_name or config"),
        MalformedCase("layer a string", text(kerasConfig([dense(), #""Dense""#])), p + "Keras layer 1 has no class_name or config"),
        MalformedCase("no Dense layers", text(kerasConfig([#"{"class_name": "Dropout", "config": {"name": "x"}}"#])), p + "the Keras model has no Dense layers"),
        MalformedCase("no units", text(kerasConfig([#"{"class_name": "Dense", "config": {"name": "d"}}"#])), p + "Keras layer 'd' has no positive 'units'"),
        MalformedCase("units 0", text(kerasConfig([dense(units: "0")])), p + "Keras layer 'd' has no positive 'units'"),
        MalformedCase("units negative", text(kerasConfig([dense(units: "-3")])), p + "Keras layer 'd' has no positive 'units'"),
        MalformedCase("units a string", text(kerasConfig([dense(units: #""8""#)])), p + "Keras layer 'd' has no positive 'units'"),
        MalformedCase("units fractional", text(kerasConfig([dense(units: "1.5")])), p + "Keras layer 'd' has no positive 'units'"),
        MalformedCase("activation mish", text(kerasConfig([dense(activation: #""mish""#)])), p + "Keras layer 'd' uses activation 'mish', " + supported),
        MalformedCase("activation object hard_silu", text(kerasConfig([dense(activation: #"{"class_name": "function", "config": "hard_silu"}"#)])),
                      p + "Keras layer 'd' uses activation 'hard_silu', " + supported),
        MalformedCase("activation parameter a string", text(kerasConfig([dense(activation: #"{"class_name": "function", "config": {"name": "leaky_relu", "negative_slope": "x"}}"#)])),
                      p + "Keras layer 'd': activation parameter 'negative_slope' must be a finite number, found \"x\""),
        MalformedCase("activation a number", text(kerasConfig([dense(activation: "5")])), p + "Keras layer 'd' uses activation 5, " + supported),
        MalformedCase("a convolution without filters", text(kerasConfig([#"{"class_name": "Conv2D", "config": {"name": "c"}}"#, dense()])),
                      p + "Keras layer 'c' has no 'filters' in 1...65536"),
        MalformedCase("a convolution without a kernel size", text(kerasConfig([conv(kernel: "null"), dense()])),
                      p + "Keras layer 'c': 'kernel_size' must be two integers in 1...65536, found null"),
        MalformedCase("a kernel size 0", text(kerasConfig([conv(kernel: "[0, 3]"), dense()])),
                      p + "Keras layer 'c': 'kernel_size' must be two integers in 1...65536, found [0,3]"),
        MalformedCase("a kernel of three sides", text(kerasConfig([conv(kernel: "[3, 3, 3]"), dense()])),
                      p + "Keras layer 'c': 'kernel_size' must be two integers in 1...65536, found [3,3,3]"),
        MalformedCase("a dilated convolution", text(kerasConfig([conv(extra: #", "dilation_rate": [2, 2]"#), dense()])),
                      p + "Keras layer 'c' (Conv2D): dilation is not supported"),
        MalformedCase("channels first", text(kerasConfig([conv(extra: #", "data_format": "channels_first""#), dense()])),
                      p + "Keras layer 'c' (Conv2D): data_format channels_first is not supported (only channels_last)"),
        MalformedCase("causal padding", text(kerasConfig([conv(extra: #", "padding": "causal""#), dense()])),
                      p + "Keras layer 'c': padding 'causal' is not supported (valid or same)"),
        MalformedCase("a pool size as text", text(kerasConfig([#"{"class_name": "MaxPooling2D", "config": {"name": "m", "pool_size": "2"}}"#, dense()])),
                      p + "Keras layer 'm': 'pool_size' must be two integers in 1...65536, found \"2\""),
        MalformedCase("Flatten after Dense", text(kerasConfig([dense(), #"{"class_name": "Flatten", "config": {"name": "f"}}"#])),
                      p + "Keras layer 'f' (Flatten): Flatten after a Dense layer is not supported"),
        MalformedCase("Activation first", text(kerasConfig([#"{"class_name": "Activation", "config": {"name": "a", "activation": "relu"}}"#, dense()])),
                      p + "Keras layer 'a' (Activation): an activation before any layer is not supported"),
        MalformedCase("Activation after relu", text(kerasConfig([dense(), #"{"class_name": "Activation", "config": {"name": "a", "activation": "tanh"}}"#])),
                      p + "Keras layer 'a' (Activation): the layer before it already applies relu, and an activation of its own after that is not supported"),
        MalformedCase("an unknown layer", text(kerasConfig([conv(), #"{"class_name": "PReLU", "config": {"name": "p"}}"#])),
                      p + "Keras layer 'p' of type PReLU is not supported (supported: \(KerasModelConfig.supportedLayers))"),
        MalformedCase("BatchNormalization over axis 1 of a list", text(kerasConfig([conv(), #"{"class_name": "BatchNormalization", "config": {"name": "b", "axis": [1, 2]}}"#])),
                      p + "Keras layer 'b' (BatchNormalization): axis [1,2] is not supported (only the last axis, -1)"),
        MalformedCase("BatchNormalization epsilon 0", text(kerasConfig([conv(), #"{"class_name": "BatchNormalization", "config": {"name": "b", "epsilon": 0}}"#])),
                      p + "Keras layer 'b': epsilon must be positive, found 0.0"),
        MalformedCase("BatchNormalization epsilon text", text(kerasConfig([conv(), #"{"class_name": "BatchNormalization", "config": {"name": "b", "epsilon": "small"}}"#])),
                      p + "Keras layer 'b': 'epsilon' must be a finite number, found \"small\""),
        MalformedCase("BatchNormalization center not a flag", text(kerasConfig([conv(), #"{"class_name": "BatchNormalization", "config": {"name": "b", "center": 1}}"#])),
                      p + "Keras layer 'b': 'center' must be true or false, found 1"),
        MalformedCase("ReLU with a slope", text(kerasConfig([conv(), #"{"class_name": "ReLU", "config": {"name": "r", "negative_slope": 0.1}}"#])),
                      p + "Keras layer 'r' (ReLU): negative_slope 0.1 is not supported (only 0; use LeakyReLU)"),
        MalformedCase("ReLU with a threshold", text(kerasConfig([conv(), #"{"class_name": "ReLU", "config": {"name": "r", "threshold": 1}}"#])),
                      p + "Keras layer 'r' (ReLU): threshold 1.0 is not supported (only 0)"),
        MalformedCase("ReLU with a negative max_value", text(kerasConfig([conv(), #"{"class_name": "ReLU", "config": {"name": "r", "max_value": -1}}"#])),
                      p + "Keras layer 'r': max_value must be positive, found -1.0"),
        MalformedCase("Softmax over axis 1", text(kerasConfig([conv(), #"{"class_name": "Softmax", "config": {"name": "s", "axis": 1}}"#])),
                      p + "Keras layer 's' (Softmax): axis 1 is not supported (only -1)"),
        MalformedCase("global pooling keeping dimensions", text(kerasConfig([conv(), #"{"class_name": "GlobalAveragePooling2D", "config": {"name": "g", "keepdims": true}}"#])),
                      p + "Keras layer 'g' (GlobalAveragePooling2D): keepdims true is not supported (only false)"),
        MalformedCase("an adapted Normalization", text(kerasConfig([#"{"class_name": "Normalization", "config": {"name": "n", "axis": [-1]}}"#, dense()])),
                      p + "Keras layer 'n' (Normalization): only a Normalization with its 'mean' in the configuration is supported (not an adapted one)"),
        MalformedCase("a Reshape to nothing", text(kerasConfig([#"{"class_name": "Reshape", "config": {"name": "r", "target_shape": [0, 3]}}"#, dense()])),
                      p + "Keras layer 'r' (Reshape): target_shape [0,3] is not supported (positive sizes only)"),
        MalformedCase("ZeroPadding2D of text", text(kerasConfig([#"{"class_name": "ZeroPadding2D", "config": {"name": "z", "padding": "1"}}"#, conv()])),
                      p + "Keras layer 'z': 'padding' must be ((top, bottom), (left, right)), found \"1\""),
        MalformedCase("use_bias not a flag", text(kerasConfig([conv(extra: #", "use_bias": "no""#)])),
                      p + "Keras layer 'c': 'use_bias' must be true or false, found \"no\""),
    ]
}()

@Suite struct KerasConfigMalformed {
    @Test(arguments: kerasCases) func config(_ c: MalformedCase) {
        expectMessage(c.message) {
            let config = try KerasModelConfig(json: String(decoding: c.bytes, as: UTF8.self), path: "k.json")
            if config.isConvolutional {
                _ = try config.stages(path: "k.json")
            } else {
                _ = try config.denseLayers(path: "k.json")
            }
        }
    }

    @Test func aValidChainParses() throws {
        let config = try KerasModelConfig(json: kerasConfig([
            #"{"class_name": "InputLayer", "config": {"name": "in", "batch_shape": [null, 28, 28]}}"#,
            #"{"class_name": "Flatten", "config": {"name": "f"}}"#, dense(activation: "null"),
            #"{"class_name": "Activation", "config": {"name": "a", "activation": "softmax"}}"#,
        ]), path: "k.json")
        #expect(config.inputShape == [28, 28])
        #expect(try config.denseLayers(path: "k.json").map(\.activation) == [.softmax])
    }
}

/// The converter's front door on files that are no model, or a damaged one.
@Suite struct ImporterMalformed {
    func expectImport(_ bytes: [UInt8], name: String, _ message: (String) -> String,
                      sourceLocation: SourceLocation = #_sourceLocation) {
        let dir = ScratchDirectory()
        let path = dir.write(bytes, to: name)
        expectMessage(message(path), sourceLocation: sourceLocation) { _ = try ModelFiles.importModel(path: path) }
    }

    @Test func notModels() {
        expectImport([], name: "empty.h5") { "\($0): the file is empty" }
        // The list of formats grows with the importers, so only the start of the detail is fixed.
        let dir = ScratchDirectory()
        let notes = dir.write(Array("just some text".utf8), to: "notes.txt")
        do {
            _ = try ModelFiles.importModel(path: notes)
            Issue.record("a text file was imported")
        } catch let InteropError.unknownFormat(path, detail) {
            #expect(path == notes)
            #expect(detail.hasPrefix("not a model file: expected HDF5 (.h5), NumPy (.npz), Keras (.keras, .h5)"), "\(detail)")
        } catch {
            Issue.record("unexpected error \(error)")
        }
        expectImport(smallNPY, name: "W1.npy") {
            "\($0): a .npy file holds a single array, not a model; save the weights together with np.savez (W1, b1, W2, b2, ...)"
        }
    }

    @Test func damagedFilesOfEachKind() {
        expectImport(Small.valid.prefixArray(100), name: "cut.nnm") {
            "\($0): truncated: the metadata header needs \(Small.valid.count) bytes, the file has 100"
        }
        expectImport(ZipImage(parts: [.stored("W1.npy", smallNPY)]).bytes.dropLast(3).map { $0 }, name: "cut.npz") {
            "\($0): corrupt zip: no end-of-central-directory record (the file is truncated or is not a zip archive)"
        }
        expectImport(ZipImage(parts: [.stored("W1.npy", npyBytes(header: npyHeader(shape: "(4, 2)"), data: [UInt8](repeating: 0, count: 32)))]).bytes,
                     name: "nobias.npz") { "\($0): missing 'b1': W1 has no bias" }
        expectImport(ZipImage(parts: [.stored("W1.npy", npyBytes(header: npyHeader("<U3", shape: "()"), data: [0x41, 0, 0, 0, 0x42, 0, 0, 0, 0x43, 0, 0, 0]))]).bytes,
                     name: "text.npz") { "\($0): W1: expected floating-point or integer weights, found strings (<U3)" }
        // A .keras archive whose config is rejected before libhdf5 sees the weights.
        expectImport(ZipImage(parts: [.stored("config.json", Array(#"{"class_name": "Subclassed"}"#.utf8)),
                                      .stored("model.weights.h5", [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A])]).bytes,
                     name: "m.keras") { "\($0): Keras model class Subclassed is not supported (Sequential or a Functional chain)" }
    }
}
