import NNCore
import NNEngine
import Testing

/// A 3x3x1 input through conv2d (2 filters 2x2) -> max_pool2d 2x2 -> flatten -> dense 2->1,
/// all computed by hand below.
///
///     input [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
///     filter 0 [[1, 0], [0, -1]]: every window gives x[i][j] - x[i+1][j+1] = -4
///     filter 1 [[0, 1], [1, 0]]: x[i][j+1] + x[i+1][j] = 6, 8 / 12, 14
///     bias [0.5, -1]
func handModel(convention: ConvolutionConvention, padding: Padding = .valid, strides: [Int] = [1, 1],
               pool: Bool = true) throws -> Model {
    // HWIO: w[u][v][0][f]
    let kernel: [Double] = [1, 0, /* u0 v1 */ 0, 1, /* u1 v0 */ 0, 1, /* u1 v1 */ -1, 0]
    var layers = [try Layer.conv2d(index: 0, inputShape: [3, 3, 1], filters: 2, kernel: [2, 2], strides: strides, padding: padding,
                                   convention: convention, activation: .identity)]
    var shape = layers[0].spatial!.outputShape
    if pool {
        layers.append(try Layer.maxPool2d(index: 1, inputShape: shape, pool: [2, 2]))
        shape = layers[1].spatial!.outputShape
    }
    layers.append(.flatten(inputShape: shape))
    let features = shape.reduce(1, *)
    layers.append(.dense(index: layers.count, inputSize: features, outputSize: 1, activation: .identity))
    let meta = ModelMetadata(input: InputSpec(shape: [3, 3]), layers: layers,
                             provenance: Provenance(tool: "tests", created: "2026-11-24T00:00:00Z"))
    let dense = layers.count - 1
    return Model(metadata: meta, tensors: [
        NamedTensor("layers.0.weight", Tensor(kernel, shape: [2, 2, 1, 2])),
        NamedTensor("layers.0.bias", Tensor([0.5, -1], shape: [2])),
        NamedTensor("layers.\(dense).weight", Tensor([Double](repeating: 1, count: features), shape: [features, 1])),
        NamedTensor("layers.\(dense).bias", Tensor([0.0], shape: [1])),
    ])
}

let handInput: [Double] = [1, 2, 3, 4, 5, 6, 7, 8, 9]

@Suite struct ConvolutionEngine {
    @Test func crossCorrelationPoolFlattenDense() throws {
        // Max over the 2x2 map: filter 0 -> -4 + 0.5 = -3.5, filter 1 -> 14 - 1 = 13; sum 9.5.
        let engine = try InferenceEngine<Double>(model: try handModel(convention: .crossCorrelation))
        #expect(engine.predict(raw: handInput, count: 1) == [9.5])
        // Two samples in one batch: the second is the first times 2 (filter 0: -8, filter 1: 28).
        #expect(engine.predict(raw: handInput + handInput.map { $0 * 2 }, count: 2) == [9.5, -7.5 + 27])
    }

    @Test func trueConvolutionFlipsTheKernel() throws {
        // Flipped, filter 0 is [[-1, 0], [0, 1]]: +4 + 0.5 = 4.5; filter 1 is symmetric: 13. Sum 17.5.
        let engine = try InferenceEngine<Double>(model: try handModel(convention: .convolution))
        #expect(engine.predict(raw: handInput, count: 1) == [17.5])
    }

    @Test func samePaddingAndStrides() throws {
        // 'same', strides 2 on 3x3 with a 2x2 kernel: out ceil(3/2) = 2, pad total 1, all after.
        // Windows start at rows/cols 0 and 2; row/column 3 is padding (zeros).
        // filter 0 (x[i][j] - x[i+1][j+1]): (0,0) 1-5 = -4, (0,1) 3-0 = 3, (1,0) 7-0 = 7, (1,1) 9
        // filter 1 (x[i][j+1] + x[i+1][j]):  (0,0) 2+4 = 6,  (0,1) 0+6 = 6, (1,0) 8+0 = 8, (1,1) 0
        // Biases +0.5 / -1, then the dense sums all eight: (-3.5 + 3.5 + 7.5 + 9.5) + (5 + 5 + 7 - 1) = 33
        let model = try handModel(convention: .crossCorrelation, padding: .same, strides: [2, 2], pool: false)
        #expect(model.metadata.layers[0].spatial!.outputShape == [2, 2, 2])
        let engine = try InferenceEngine<Double>(model: model)
        #expect(engine.predict(raw: handInput, count: 1) == [33])
        // f32 gives the same exactly (small integers).
        #expect(try InferenceEngine<Float>(model: model).predict(raw: handInput.map { Float($0) }, count: 1) == [33])
    }

    @Test func flattenAppliesItsActivation() throws {
        // Without pooling the conv map is filter 0: -3.5 x4, filter 1: 5, 7, 11, 13; the dense
        // layer sums them to 22. A ReLU on the flatten layer zeroes filter 0 first: 36.
        var model = try handModel(convention: .crossCorrelation, pool: false)
        #expect(try InferenceEngine<Double>(model: model).predict(raw: handInput, count: 1) == [22])
        model.metadata.layers[1].activation = .relu
        #expect(model.metadata.layers[1].kind == .flatten)
        #expect(try InferenceEngine<Double>(model: model).predict(raw: handInput, count: 1) == [36])
        #expect(try InferenceEngine<Double>(model: model).predict(raw: handInput + handInput, count: 2) == [36, 36])
    }

    @Test func maxPoolingWithSamePaddingIgnoresThePadding() throws {
        // 3x3x1 all negative, pool 2x2 'same' (out 2x2, padding after): the padded windows take
        // the maximum of the real values only, never the zero padding.
        let layer = try Layer.maxPool2d(index: 0, inputShape: [3, 3, 1], pool: [2, 2], padding: .same)
        let input: [Double] = [-9, -8, -7, -6, -5, -4, -3, -2, -1]
        var output = [Double](repeating: 0, count: 4)
        var argmax = [Int32](repeating: -1, count: 4)
        SpatialKernels.maxPool(input, count: 1, geometry: layer.spatial!, into: &output, argmax: &argmax)
        #expect(output == [-5, -4, -2, -1])
        #expect(argmax == [4, 5, 7, 8])
    }

    /// f32 max pooling for inference runs in C, vectorized over channels (NNKernels/Pooling.c):
    /// the same values as the Swift loops (run here in f64 with argmax, which stays in Swift),
    /// with NaN in first and in later window cells, signed zeros, channels below, at and above
    /// one vector, 'same' padding and overlapping windows (2x2 windows inside the input take an
    /// unrolled path), on one and two threads.
    @Test func float32MaxPoolingMatchesTheSwiftLoops() throws {
        for (channels, pool, strides, padding) in [(3, [2, 2], [2, 2], Padding.valid), (8, [2, 2], [2, 2], .valid),
                                                   (11, [3, 3], [2, 2], .same), (16, [3, 2], [1, 1], .same),
                                                   (12, [2, 2], [1, 1], .same), (19, [2, 2], [2, 2], .same)] {
            let layer = try Layer.maxPool2d(index: 0, inputShape: [9, 7, channels], pool: pool, strides: strides, padding: padding)
            let g = layer.spatial!, count = 40
            var x = (0..<(count * 63 * channels)).map { Float((($0 * 7919) % 1001) - 500) / 37 }
            for i in stride(from: 5, to: x.count, by: 97) { x[i] = .nan }
            for i in stride(from: 11, to: x.count, by: 53) { x[i] = (i % 2 == 0) ? 0 : -0.0 }
            let outputs = count * g.outputFeatures
            var want = [Double](repeating: 7, count: outputs), argmax = [Int32](repeating: 0, count: outputs)
            SpatialKernels.maxPool(x.map(Double.init), count: count, geometry: g, into: &want, argmax: &argmax)
            let saved = BLAS.threadCount
            defer { BLAS.setThreadCount(saved) }
            for threads in [1, 2] {
                BLAS.setThreadCount(threads)
                var got = [Float](repeating: 7, count: outputs)
                SpatialKernels.maxPool(x, count: count, geometry: g, into: &got, argmax: nil)
                let same = zip(got, want).allSatisfy { ($0.isNaN && $1.isNaN) || (Double($0) == $1 && $0.sign == $1.sign) }
                #expect(same, "\(channels) channels, pool \(pool), \(padding), \(threads) thread(s)")
            }
            #expect(want.contains { $0.isNaN })
        }
    }

    @Test func im2colAndItsAdjoint() throws {
        // <im2col(x), y> == <x, col2im(y)> for any x, y: the backward pass's scatter is the
        // exact transpose of the gather.
        let g = try SpatialGeometry(inputShape: [5, 4, 2], window: [3, 2], strides: [2, 1], padding: .same, outputChannels: 1,
                                    convention: .crossCorrelation, location: "test")
        let x = (0..<40).map { Double(($0 * 7) % 11) - 5 }
        let rows = SpatialKernels.positions(g) * SpatialKernels.patchSize(g)
        let y = (0..<rows).map { Double(($0 * 5) % 13) - 6 }
        var cols = [Double](repeating: .nan, count: rows)
        SpatialKernels.im2col(x, count: 1, geometry: g, into: &cols)
        var back = [Double](repeating: 0, count: 40)
        SpatialKernels.col2imAdding(y, count: 1, geometry: g, into: &back)
        let left = zip(cols, y).reduce(0) { $0 + $1.0 * $1.1 }, right = zip(x, back).reduce(0) { $0 + $1.0 * $1.1 }
        #expect(left == right)
        #expect(!cols.contains { $0.isNaN })
    }

    /// `im2col(bytes:)` (an int8 convolution's rows, `nn_im2col_u8`) gives the float `im2col`'s
    /// windows, with each sample's zero point where the float rows hold the padding's 0 (the
    /// floats are the bytes plus one, so a 0 there is padding only): 'same' and 'valid', strides
    /// 1 and 2, 1 to 32 channels, windows of 3 x 3 and 2 x 3, three samples with three zero points.
    @Test func im2colOfBytesPadsWithEachSamplesZeroPoint() throws {
        for (channels, window, stride, padding) in [(1, [3, 3], 1, Padding.same), (3, [3, 3], 2, .same), (32, [3, 3], 1, .valid),
                                                    (5, [2, 3], 1, .same), (2, [3, 3], 2, .valid)] {
            let g = try SpatialGeometry(inputShape: [7, 9, channels], window: window, strides: [stride, stride], padding: padding,
                                        outputChannels: 4, convention: .crossCorrelation, location: "test")
            let count = 3, size = 7 * 9 * channels, zeroPoints: [Int32] = [17, 200, 0]
            let bytes = (0..<count * size).map { UInt8(($0 * 37 + 11) % 255) }
            let rows = count * SpatialKernels.positions(g) * SpatialKernels.patchSize(g)
            var floats = [Float](repeating: .nan, count: rows), got = [UInt8](repeating: 99, count: rows)
            SpatialKernels.im2col(bytes.map { Float($0) + 1 }, count: count, geometry: g, into: &floats)
            bytes.withUnsafeBufferPointer { b in
                got.withUnsafeMutableBufferPointer { SpatialKernels.im2col(bytes: b.baseAddress!, count: count, geometry: g, zeroPoints: zeroPoints, into: $0.baseAddress!) }
            }
            let perSample = rows / count
            let want = floats.enumerated().map { i, f in f == 0 ? UInt8(zeroPoints[i / perSample]) : UInt8(f - 1) }
            #expect(got == want, "\(channels) channels, window \(window), stride \(stride), \(padding)")
            if padding == .same { #expect(floats.contains(0)) }
        }
    }

    @Test func geometryThatDoesNotFitIsRejected() {
        #expect(throws: ModelError.self) {
            _ = try Layer.conv2d(index: 0, inputShape: [2, 2, 1], filters: 1, kernel: [3, 3], activation: .relu)
        }
        #expect(throws: ModelError.self) {
            _ = try Layer.conv2d(index: 0, inputShape: [28, 28], filters: 1, kernel: [3, 3], activation: .relu)
        }
    }
}
