import NNCore
import NNEngine
import Testing

/// `cnn_pieces_*.h5`: seed 002's own `conv2d` and `max_pool` on single images, run through the
/// engine's layers. `conv` is scipy's `convolve2d(mode='valid')`, a TRUE convolution (the kernel
/// flipped in both directions, unlike the cross-correlation deep-learning libraries call
/// convolution), strided by keeping every stride-th row and column of the full valid output: a
/// conv2d layer with `"convention": "convolution"`, 'valid' padding and that stride. `pool` is 2x2
/// max pooling at stride 2 on (h, w) or (h, w, c), dropping a last odd row or column: a
/// max_pool2d layer with 'valid' padding.
@Suite struct CNNPiecesFixture {
    @Test(arguments: ["f64", "f32"]) func convolution(_ precision: String) throws {
        let fx = try Fixture("cnn_pieces_\(precision)")
        let tol = precision == "f64" ? Tolerance.f64 : Tolerance.f32
        var cases = 0
        while fx.has("conv/\(cases)") {
            let g = "conv/\(cases)/"
            let imageShape = try fx.shape("\(g)image"), kernelShape = try fx.shape("\(g)kernel")
            let stride = try fx.ints("\(g)stride")[0]
            // A one-layer model: the blog's kernel as a 1-in, 1-out HWIO kernel, no bias.
            let layer = try Layer.conv2d(index: 0, inputShape: imageShape + [1], filters: 1, kernel: kernelShape,
                                         strides: [stride, stride], convention: .convolution, activation: .identity, bias: false)
            let model = Model(metadata: ModelMetadata(input: InputSpec(shape: imageShape), layers: [layer],
                                                      provenance: Provenance(tool: "tests", created: "2026-11-24T00:00:00Z")),
                              tensors: [NamedTensor("layers.0.weight", Tensor(try fx.doubles("\(g)kernel"), shape: kernelShape + [1, 1]))])
            let out = try InferenceEngine<Double>(model: model).predict(raw: try fx.doubles("\(g)image"), count: 1)
            #expect(layer.spatial!.outputShape.prefix(2).elementsEqual(try fx.shape("\(g)output")), "conv case \(cases): shape")
            expectClose(out, try fx.doubles("\(g)output"), tol, "cnn_pieces_\(precision) conv \(cases)")
            cases += 1
        }
        #expect(cases >= 5)
    }

    @Test(arguments: ["f64", "f32"]) func maxPooling(_ precision: String) throws {
        let fx = try Fixture("cnn_pieces_\(precision)")
        var cases = 0
        while fx.has("pool/\(cases)") {
            let g = "pool/\(cases)/"
            let shape = try fx.shape("\(g)input"), x = try fx.doubles("\(g)input")
            let layer = try Layer.maxPool2d(index: 0, inputShape: shape.count == 3 ? shape : shape + [1], pool: [2, 2])
            var out = [Double](repeating: .nan, count: layer.outputSize)
            SpatialKernels.maxPool(x, count: 1, geometry: layer.spatial!, into: &out, argmax: nil)
            let expectedShape = try fx.shape("\(g)output")
            #expect(layer.spatial!.outputShape.prefix(expectedShape.count).elementsEqual(expectedShape), "pool case \(cases): shape")
            expectIdentical(out, try fx.doubles("\(g)output"), "cnn_pieces_\(precision) pool \(cases)")
            cases += 1
        }
        #expect(cases >= 4)
    }
}
