import NNCore
import Testing

/// A valid CNN header: 6x6 input, conv2d 3x3 x4 -> max_pool2d 2x2 -> flatten -> dense 16->3.
func cnnHeader() -> JSONObject {
    JSONObject([
        ("input", ["shape": [6, 6], "features": 36]),
        ("layers", .array([
            .object(JSONObject([("kind", "conv2d"), ("in", 36), ("out", 64), ("input_shape", [6, 6, 1]), ("output_shape", [4, 4, 4]),
                                ("kernel", [3, 3]), ("strides", [1, 1]), ("padding", "valid"), ("convention", "cross-correlation"),
                                ("activation", "relu"), ("weight", "layers.0.weight"), ("bias", "layers.0.bias")])),
            .object(JSONObject([("kind", "max_pool2d"), ("in", 64), ("out", 16), ("input_shape", [4, 4, 4]), ("output_shape", [2, 2, 4]),
                                ("pool", [2, 2]), ("strides", [2, 2]), ("padding", "valid"), ("activation", "identity")])),
            .object(JSONObject([("kind", "flatten"), ("in", 16), ("out", 16), ("input_shape", [2, 2, 4]), ("activation", "identity")])),
            .object(JSONObject([("kind", "dense"), ("in", 16), ("out", 3), ("activation", "softmax"),
                                ("weight", "layers.3.weight"), ("bias", "layers.3.bias")])),
        ])),
        ("provenance", ["tool": "tests", "created": "2026-11-24T00:00:00Z"]),
    ])
}

/// The tensors the valid header names, with the given shapes.
func cnnModel(_ header: JSONObject, kernelShape: [Int] = [3, 3, 1, 4], biasShape: [Int] = [4]) throws -> Model {
    let meta = try ModelMetadata(json: .object(header))
    func zeros(_ shape: [Int]) -> Tensor { Tensor([Float](repeating: 0, count: shape.reduce(1, *)), shape: shape) }
    return Model(metadata: meta, tensors: [NamedTensor("layers.0.weight", zeros(kernelShape)), NamedTensor("layers.0.bias", zeros(biasShape)),
                                           NamedTensor("layers.3.weight", zeros([16, 3])), NamedTensor("layers.3.bias", zeros([3]))])
}

/// The header with member `key` of layer `index` set to `value` (nil removes it).
func cnnHeader(layer index: Int, _ key: String, _ value: JSONValue?) -> JSONObject {
    var h = cnnHeader()
    var layers = h["layers"]!.arrayValue!
    var layer = layers[index].objectValue!
    layer[key] = value
    layers[index] = .object(layer)
    h["layers"] = .array(layers)
    return h
}

struct CNNCase: CustomTestStringConvertible, Sendable {
    let name: String
    let header: JSONObject
    let message: String
    var testDescription: String { name }
}

let cnnCases: [CNNCase] = [
    CNNCase(name: "no input_shape", header: cnnHeader(layer: 0, "input_shape", nil), message: "layers[0].input_shape: expected a value, found nothing"),
    CNNCase(name: "input_shape of rank 2", header: cnnHeader(layer: 0, "input_shape", [6, 6]),
            message: "layers[0].input_shape: expected [height, width, channels], each >= 1, found 6x6"),
    CNNCase(name: "input_shape with 0", header: cnnHeader(layer: 0, "input_shape", [6, 0, 1]),
            message: "layers[0].input_shape[1]: expected an integer in 1...2147483647, found 0"),
    CNNCase(name: "kernel larger than the input", header: cnnHeader(layer: 0, "kernel", [7, 3]),
            message: "layers[0].kernel: expected a window that fits the input 6x6x1 with 'valid' padding, found 7x3"),
    CNNCase(name: "kernel of rank 3", header: cnnHeader(layer: 0, "kernel", [3, 3, 3]),
            message: "layers[0].kernel: expected [height, width], each 1...65536, found 3x3x3"),
    CNNCase(name: "kernel side 2^17", header: cnnHeader(layer: 0, "kernel", [131072, 1]),
            message: "layers[0].kernel[0]: expected an integer in 1...65536, found 131072"),
    CNNCase(name: "stride 0", header: cnnHeader(layer: 0, "strides", [0, 1]),
            message: "layers[0].strides[0]: expected an integer in 1...65536, found 0"),
    CNNCase(name: "unknown padding", header: cnnHeader(layer: 0, "padding", "causal"),
            message: "layers[0].padding: expected one of valid, same or [top, left, bottom, right], found \"causal\""),
    CNNCase(name: "no convention", header: cnnHeader(layer: 0, "convention", nil), message: "layers[0].convention: expected a value, found nothing"),
    CNNCase(name: "unknown convention", header: cnnHeader(layer: 0, "convention", "correlation"),
            message: "layers[0].convention: expected one of cross-correlation, convolution, found \"correlation\""),
    CNNCase(name: "output_shape that does not follow", header: cnnHeader(layer: 0, "output_shape", [5, 5, 4]),
            message: "layers[0].output_shape: expected 4x4x4, found 5x5x4"),
    CNNCase(name: "output_shape of rank 2", header: cnnHeader(layer: 0, "output_shape", [16, 4]),
            message: "layers[0].output_shape: expected [height, width, channels], found 16x4"),
    CNNCase(name: "in that is not the input_shape's product", header: cnnHeader(layer: 0, "in", 35),
            message: "layers[0].in: expected 36 (the product of input_shape), found 35"),
    CNNCase(name: "out that is not the output_shape's product", header: cnnHeader(layer: 0, "out", 63),
            message: "layers[0].out: expected 64 (the product of the output shape), found 63"),
    CNNCase(name: "pooling with a weight", header: cnnHeader(layer: 1, "weight", "layers.0.weight"),
            message: "layers[1].weight: expected no parameters for a max_pool2d layer, found a tensor name"),
    CNNCase(name: "pooling that changes channels", header: cnnHeader(layer: 1, "output_shape", [2, 2, 3]),
            message: "layers[1].output_shape: expected 2x2x4, found 2x2x3"),
    CNNCase(name: "pool window as a number", header: cnnHeader(layer: 1, "pool", 2), message: "layers[1].pool: expected an array, found a number"),
    CNNCase(name: "flatten with in != out", header: cnnHeader(layer: 2, "out", 15),
            message: "layers[2].out: expected 16 (the product of the output shape), found 15"),
    CNNCase(name: "flatten of rank 9", header: cnnHeader(layer: 2, "input_shape", .array([JSONValue](repeating: 1, count: 9))),
            message: "layers[2].input_shape: expected 1 to 8 dimensions of at most 2147483647 features, found 1x1x1x1x1x1x1x1x1"),
    CNNCase(name: "flatten of 2^62 features", header: cnnHeader(layer: 2, "input_shape", [2147483647, 2147483647, 2]),
            message: "layers[2].input_shape: expected 1 to 8 dimensions of at most 2147483647 features, found 2147483647x2147483647x2"),
    CNNCase(name: "output over 2^31 features", header: cnnHeader(layer: 0, "output_shape", [4, 4, 2147483647]),
            message: "layers[0]: expected at most 2147483647 features, found 4x4x2147483647"),
]

@Suite struct CNNLayerMalformed {
    @Test(arguments: cnnCases) func header(_ c: CNNCase) {
        expectMessage(c.message) { _ = try ModelMetadata(json: .object(c.header)) }
    }

    @Test func theValidHeaderReadsAndRoundTrips() throws {
        let model = try cnnModel(cnnHeader())
        try model.validateStructure()
        #expect(try ModelMetadata(json: .object(model.metadata.json)) == model.metadata)
        #expect(model.metadata.layers[0].spatial?.outputShape == [4, 4, 4])
    }

    @Test func chainAndTensorShapes() throws {
        expectMessage("tensor 'layers.0.weight': expected shape 3x3x1x4, found 3x3x4x1") {
            try cnnModel(cnnHeader(), kernelShape: [3, 3, 4, 1]).validateStructure()
        }
        expectMessage("tensor 'layers.0.bias': expected shape 4, found 3") {
            try cnnModel(cnnHeader(), biasShape: [3]).validateStructure()
        }
        // A pooling layer whose input is not the convolution's output, though the sizes agree.
        var h = cnnHeader(layer: 1, "input_shape", [8, 8, 1])
        h = { var x = h; var layers = x["layers"]!.arrayValue!; var l = layers[1].objectValue!
              l["output_shape"] = [4, 4, 1]; l["out"] = 16; layers[1] = .object(l); x["layers"] = .array(layers); return x }()
        expectMessage("layers[1].input_shape: expected 4x4x4 (the previous layer's output), found 8x8x1") {
            try cnnModel(h).validateStructure()
        }
    }
}
