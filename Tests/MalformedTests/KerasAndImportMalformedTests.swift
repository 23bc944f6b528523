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
    let supported = "which is not supported (linear, relu, sigmoid, tanh, softmax)"
    let layerTypes = "is not supported (supported: InputLayer, Dense, Conv2D, MaxPooling2D, Flatten, Dropout, Activation)"
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
        MalformedCase("activation gelu", text(kerasConfig([dense(activation: #""gelu""#)])), p + "Keras layer 'd' uses activation 'gelu', " + supported),
        MalformedCase("activation object swish", text(kerasConfig([dense(activation: #"{"class_name": "function", "config": "swish"}"#)])),
                      p + "Keras layer 'd' uses activation 'swish', " + supported),
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
                      p + "Keras layer 'c' of type Conv2D with dilation " + layerTypes),
        MalformedCase("channels first", text(kerasConfig([conv(extra: #", "data_format": "channels_first""#), dense()])),
                      p + "Keras layer 'c' of type Conv2D with data_format channels_first (only channels_last) " + layerTypes),
        MalformedCase("causal padding", text(kerasConfig([conv(extra: #", "padding": "causal""#), dense()])),
                      p + "Keras layer 'c': padding 'causal' is not supported (valid or same)"),
        MalformedCase("a pool size as text", text(kerasConfig([#"{"class_name": "MaxPooling2D", "config": {"name": "m", "pool_size": "2"}}"#, dense()])),
                      p + "Keras layer 'm': 'pool_size' must be two integers in 1...65536, found \"2\""),
        MalformedCase("Activation after a relu convolution", text(kerasConfig([conv(), #"{"class_name": "Activation", "config": {"name": "a", "activation": "tanh"}}"#])),
                      p + "Keras layer 'a' of type Activation not directly after a linear Conv2D or Dense layer " + layerTypes),
        MalformedCase("Flatten after Dense", text(kerasConfig([dense(), #"{"class_name": "Flatten", "config": {"name": "f"}}"#])),
                      p + "Keras layer 'f' of type Flatten after a Dense layer " + layerTypes),
        MalformedCase("Activation first", text(kerasConfig([#"{"class_name": "Activation", "config": {"name": "a", "activation": "relu"}}"#, dense()])),
                      p + "Keras layer 'a' of type Activation not directly after a linear Dense layer " + layerTypes),
        MalformedCase("Activation after relu", text(kerasConfig([dense(), #"{"class_name": "Activation", "config": {"name": "a", "activation": "tanh"}}"#])),
                      p + "Keras layer 'a' of type Activation not directly after a linear Dense layer " + layerTypes),
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
