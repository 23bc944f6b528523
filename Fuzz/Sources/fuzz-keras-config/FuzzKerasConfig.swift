import FuzzSupport
import NNCore
import NNConvert

// The Keras model configuration parser (`model_config` of a legacy .h5, `config.json` of a
// .keras) and the JSON parser under it. The input is the text itself.
//
// Checks beyond "no crash": a document `JSONValue.parse` accepts serializes (compact and
// pretty) to text that parses back to an equal value.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzKerasConfig(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = fuzzBytes(data, size)
    if let value = try? JSONValue.parse(bytes) {
        for indent in [0, 2] {
            let text = value.serialized(indent: indent)
            guard let again = try? JSONValue.parse(text) else {
                fatalError("serialized JSON does not parse: \(text.prefix(200))")
            }
            precondition(again == value, "JSON changed in a serialize/parse round trip: \(text.prefix(200))")
        }
        // The same JSON as a .nnm header's metadata (errors are expected; crashes are not).
        _ = try? ModelMetadata(json: value)
    }
    do {
        let config = try KerasModelConfig(json: String(decoding: bytes, as: UTF8.self), path: "config.json")
        if config.isConvolutional {
            for case let .convolution(c) in try config.stages(path: "config.json") {
                precondition(c.filters > 0 && c.kernel.allSatisfy { $0 > 0 } && c.strides.allSatisfy { $0 > 0 }, "stages returned an unusable convolution")
            }
        } else {
            let dense = try config.denseLayers(path: "config.json")
            precondition(!dense.isEmpty && dense.allSatisfy { $0.units > 0 }, "denseLayers returned an unusable chain")
        }
        for layer in config.layers { _ = KerasModelConfig.snakeCase(layer.className) }
    } catch {
        precondition(error.description.hasPrefix("config.json: "), "an error message does not start with the path: \(error)")
    }
    return 0
}

@main enum Main {
    static func main() { FuzzMain.run(fuzzKerasConfig) }
}
