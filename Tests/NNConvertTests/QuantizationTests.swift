import Foundation
import NNConvert
import NNCore
import NNEngine
import NNFormat
import NNTestSupport
import Testing

/// `nnconv quantize`'s library side and format 1.3: int8 and bf16 copies of a model written,
/// read back and checked against the original values; malformed scale tensors refused by the
/// reader with one line naming the file.
@Suite struct QuantizationTests {
    /// A 5-3-2 model with hand-picked weights: column 1 of layer 0 is all zeros (scale 1).
    static func model() -> Model {
        let meta = ModelMetadata(
            input: InputSpec(shape: [5]),
            layers: [Layer.dense(index: 0, inputSize: 5, outputSize: 3, activation: .relu),
                     Layer.dense(index: 1, inputSize: 3, outputSize: 2, activation: .softmax)],
            provenance: Provenance(tool: "tests", created: "2026-12-05T00:00:00Z"))
        let w0: [Float] = [0.5, 0, -1.27, -0.25, 0, 0.3, 0.125, 0, 0.9, 1, 0, -0.6, -0.75, 0, 0.01]
        let w1: [Float] = [2, -4, 0.5, 1, -0.254, 3]
        return Model(metadata: meta, tensors: [
            NamedTensor("layers.0.weight", Tensor(w0, shape: [5, 3])), NamedTensor("layers.0.bias", Tensor([0.1, 0.2, 0.3] as [Float], shape: [3])),
            NamedTensor("layers.1.weight", Tensor(w1, shape: [3, 2])), NamedTensor("layers.1.bias", Tensor([0, 1] as [Float], shape: [2])),
        ])
    }

    @Test func int8RoundTripsThroughTheReader() throws {
        let original = Self.model()
        let (quantized, converted) = try Quantization.int8(original, sourcePath: "m.nnm")
        #expect(converted == ["layers.0.weight", "layers.1.weight"])
        let path = scratchDirectory("quantize") + "/m.int8.nnm"
        try NNMFormat.write(quantized, to: path)
        let file = try NNMFormat.open(path: path)
        #expect(file.header.minorVersion == 3)
        let layer0 = file.model.metadata.layers[0]
        #expect(layer0.weightScale == "layers.0.weight_scale")
        #expect(file.model.tensor("layers.0.weight")?.dtype == .int8)
        // Hand-computed: column maxima 1, 0, 1.27 -> scales 1/127, 1 (all zero), 0.01.
        let scales = try #require(file.model.tensor("layers.0.weight_scale")).floats()
        #expect(scales == [Float(1) / 127, 1, Float(1.27) / 127])
        #expect(try #require(file.model.tensor("layers.0.weight")).integers() == [64, 0, -127, -32, 0, 30, 16, 0, 90, 127, 0, -60, -95, 0, 1])
        // Every dequantized weight within half a step of the original.
        for (layer, read) in zip(original.metadata.layers, file.model.metadata.layers) {
            let w = original.tensor(layer.weight)!.floats(), back = try #require(file.model.floatWeight(of: read)).floats()
            let s = try #require(file.model.tensor(read.weightScale)).floats()
            for i in w.indices { #expect(abs(w[i] - back[i]) <= s[i % s.count] / 2 * 1.0001) }
        }
        // The bias and metadata are untouched; a second quantization changes nothing.
        #expect(file.model.tensor("layers.0.bias")?.floats() == [0.1, 0.2, 0.3])
        #expect(try Quantization.int8(file.model, sourcePath: path).converted.isEmpty)
        // Other formats get the f32 values (no scale tensor).
        let plain = file.model.dequantized()
        #expect(plain.tensor("layers.0.weight_scale") == nil && plain.metadata.layers[0].weightScale == nil)
        #expect(plain.tensor("layers.0.weight")?.dtype == .float32)
    }

    /// `weightBits: 7` (`nnconv quantize --weight-bits 7`): every weight in -63...63, each
    /// column's largest magnitude at 63 (scale = max |w| / 63, as `Float(1.27) / 63` by hand for
    /// column 2), every dequantized weight within half a step of the original. An 8-bit model
    /// given to it is quantized again from its f32 values; a 7-bit model given to the 8-bit
    /// quantizer stays as it is (its weights lie in -127...127 already).
    @Test func sevenBitWeights() throws {
        let original = Self.model()
        let (quantized, converted) = try Quantization.int8(original, sourcePath: "m.nnm", weightBits: 7)
        #expect(converted == ["layers.0.weight", "layers.1.weight"])
        #expect(try #require(quantized.tensor("layers.0.weight_scale")).floats() == [Float(1) / 63, 1, Float(1.27) / 63])
        for layer in quantized.metadata.layers {
            let q = try #require(quantized.tensor(layer.weight)?.integers()), s = try #require(quantized.tensor(layer.weightScale)).floats()
            #expect(q.allSatisfy { abs($0) <= 63 })
            for j in s.indices where s[j] != 1 { #expect(stride(from: j, to: q.count, by: s.count).map { abs(q[$0]) }.max() == 63) }
            let w = original.tensor(layer.weight)!.floats(), back = try #require(quantized.floatWeight(of: layer)).floats()
            for i in w.indices { #expect(abs(w[i] - back[i]) <= s[i % s.count] / 2 * 1.0001) }
        }
        let eightBit = try Quantization.int8(original, sourcePath: "m.nnm").model
        let again = try Quantization.int8(eightBit, sourcePath: "m.int8.nnm", weightBits: 7)
        #expect(again.converted == ["layers.0.weight", "layers.1.weight"])
        #expect(try #require(again.model.tensor("layers.0.weight")?.integers()).allSatisfy { abs($0) <= 63 })
        #expect(again.model.tensors.count == eightBit.tensors.count)  // the scale tensors replaced, not added
        #expect(try Quantization.int8(quantized, sourcePath: "m.w7.nnm").converted.isEmpty)
    }

    /// Format 1.4: calibrated input quantizations written beside the int8 weights, read back
    /// as written, dropped with the scales by `dequantized()`. Hand-computed: the range
    /// [-1, 2] gives scale 3 / 255 and zero point round(1 / (3 / 255)) = 85; [0.5, 3] counts
    /// from 0 (scale 3 / 255, zero point 0); an empty range scale 1, zero point 0.
    @Test func calibratedInputsRoundTripThroughTheReader() throws {
        #expect(InputQuantization(range: -1, 2) == InputQuantization(scale: Float(3) / 255, zeroPoint: 85))
        #expect(InputQuantization(range: 0.5, 3) == InputQuantization(scale: Float(3) / 255, zeroPoint: 0))
        #expect(InputQuantization(range: 0, 0) == InputQuantization(scale: 1, zeroPoint: 0))
        #expect(InputQuantization(range: -2, -1) == InputQuantization(scale: Float(2) / 255, zeroPoint: 255))
        let inputs = [0: InputQuantization(range: -1, 2), 1: InputQuantization(scale: 0.02, zeroPoint: 0)]
        let (quantized, _) = try Quantization.int8(Self.model(), sourcePath: "m.nnm", inputs: inputs)
        let path = scratchDirectory("quantize") + "/m.calibrated.nnm"
        try NNMFormat.write(quantized, to: path)
        let file = try NNMFormat.open(path: path)
        #expect(file.header.minorVersion == 4)
        #expect(file.model.metadata.layers.map(\.inputQuantization) == [inputs[0], inputs[1]])
        // The f32 scale written as the double it is exactly, so that it reads back unchanged.
        #expect(JSONValue.object(file.header.header).serialized().contains(#""input_quantization":{"scale":0.019999999552965164,"zero_point":0}"#))
        // Calibrating a model whose weights are int8 already adds the quantizations alone.
        let again = try Quantization.int8(try Quantization.int8(Self.model(), sourcePath: "m.nnm").model, sourcePath: "m.nnm", inputs: inputs)
        #expect(again.converted.isEmpty && again.model.metadata.layers.map(\.inputQuantization) == [inputs[0], inputs[1]])
        let plain = file.model.dequantized()
        #expect(plain.metadata.layers.allSatisfy { $0.inputQuantization == nil })
        #expect(plain.metadata.minorVersion == 1)
    }

    @Test func bfloat16RoundTripsThroughTheReader() throws {
        let (quantized, _) = Quantization.bfloat16(Self.model(), sourcePath: "m.nnm")
        let path = scratchDirectory("quantize") + "/m.bf16.nnm"
        try NNMFormat.write(quantized, to: path)
        let file = try NNMFormat.open(path: path)
        #expect(file.model.tensor("layers.1.weight")?.dtype == .bfloat16)
        // The layers ask for bf16 products (format 1.3 "compute"); an imported bf16 weight would not.
        #expect(file.header.minorVersion == 3 && file.model.metadata.layers.allSatisfy(\.bfloat16Compute))
        // bf16 holds 8 significant bits: -0.254 becomes -0.25390625 (0xBE82), the others are exact.
        #expect(file.model.tensor("layers.1.weight")?.floats() == [2, -4, 0.5, 1, -0.25390625, 3])
    }

    /// int8 and bf16 models on every int8/bf16 kernel this CPU runs: a sample alone gives the bits
    /// of its row in a batch (one-sample calls run the batch kernels), in blocks and on 1 or 2 threads.
    @Test(arguments: MatrixKernel.allCases.filter { $0 != .openblas && $0.isSupported })
    func quantizedSamplesDoNotDependOnTheirBatch(_ kernel: MatrixKernel) throws {
        let sizes = [301, 130, 10]
        var tensors: [NamedTensor] = [], layers: [Layer] = []
        for l in 0..<2 {
            let w = (0..<(sizes[l] * sizes[l + 1])).map { Float(sin(Double($0 * 7919 + l * 104_729) * 0.001) * 0.5) }
            tensors.append(NamedTensor("layers.\(l).weight", Tensor(w, shape: [sizes[l], sizes[l + 1]])))
            tensors.append(NamedTensor("layers.\(l).bias", Tensor((0..<sizes[l + 1]).map { Float($0 % 7) * 0.1 - 0.3 }, shape: [sizes[l + 1]])))
            layers.append(Layer.dense(index: l, inputSize: sizes[l], outputSize: sizes[l + 1], activation: l == 0 ? .relu : .softmax))
        }
        let meta = ModelMetadata(input: InputSpec(shape: [301]), layers: layers, preprocessing: [.scale(factor: 1.0 / 255, offset: 0)],
                                 provenance: Provenance(tool: "tests", created: "2026-12-05T00:00:00Z"))
        let model = Model(metadata: meta, tensors: tensors)
        let calibrated = [0: InputQuantization(range: 0, 0.8), 1: InputQuantization(range: -0.5, 1.5)]
        for (name, quantized) in [("int8", try Quantization.int8(model, sourcePath: "m.nnm").model),
                                  ("int8", try Quantization.int8(model, sourcePath: "m.nnm", inputs: calibrated).model),
                                  ("bf16", Quantization.bfloat16(model, sourcePath: "m.nnm").model)] {
            let engine = try InferenceEngine<Float>(model: quantized, kernel: kernel)
            #expect(engine.kernelDescription.contains("\(name) weights: "), "\(engine.kernelDescription)")
            let failures = batchInvarianceFailures(engine, count: 11)
            #expect(failures.isEmpty, "\(kernel.rawValue), \(name): \(failures.prefix(3))")
            // Bytes in: an int8 first layer quantizes them as it reads them; bf16 widens first.
            let bytes = byteInputFailures(engine, count: 11)
            #expect(bytes.isEmpty, "\(kernel.rawValue), \(name), bytes: \(bytes.prefix(3))")
        }
    }

    /// A small CNN (conv 3 x 3 x 8 with ReLU on a 12 x 12 one-channel image, max pool 2, dense
    /// 10 softmax) quantized to int8 with 8- and 7-bit weights, per sample and calibrated, on every
    /// kernel this CPU runs: its convolution runs on a direct kernel (the report names it: VNNI on
    /// the AVX-512 int8 kernels, AVX2 on bytes for 7-bit weights and on int16 pairs for 8-bit ones),
    /// a sample alone gives the bits of its row in a batch, in blocks, as bytes and in a batch of
    /// more than `blockParallelMinimum`; and the probabilities stay within 0.02 of the f32
    /// model's (the quantization moves each pixel by at most half its step).
    @Test(arguments: MatrixKernel.allCases.filter { $0 != .openblas && $0.isSupported })
    func int8ConvolutionsOfOneChannel(_ kernel: MatrixKernel) throws {
        let conv = try Layer.conv2d(index: 0, inputShape: [12, 12, 1], filters: 8, kernel: [3, 3], activation: .relu)
        let pool = try Layer.maxPool2d(index: 1, inputShape: conv.spatial!.outputShape, pool: [2, 2])
        let flat = Layer.flatten(inputShape: pool.spatial!.outputShape)
        let dense = Layer.dense(index: 3, inputSize: flat.outputSize, outputSize: 10, activation: .softmax)
        let meta = ModelMetadata(input: InputSpec(shape: [12, 12, 1]), layers: [conv, pool, flat, dense],
                                 preprocessing: [.scale(factor: 1.0 / 255, offset: 0)],
                                 provenance: Provenance(tool: "tests", created: "2026-12-07T00:00:00Z"))
        let w0 = (0..<72).map { Float(sin(Double($0) * 1.7)) * 0.6 }, w3 = (0..<(flat.outputSize * 10)).map { Float(cos(Double($0) * 0.37)) * 0.2 }
        let model = Model(metadata: meta, tensors: [
            NamedTensor("layers.0.weight", Tensor(w0, shape: [3, 3, 1, 8])),
            NamedTensor("layers.0.bias", Tensor((0..<8).map { Float($0 % 3) * 0.05 - 0.05 }, shape: [8])),
            NamedTensor("layers.3.weight", Tensor(w3, shape: [flat.outputSize, 10])),
            NamedTensor("layers.3.bias", Tensor([Float](repeating: 0.01, count: 10), shape: [10])),
        ])
        let f32 = try InferenceEngine<Float>(model: model, kernel: kernel)
        let count = 13
        let x = testPixels(count: count, features: 144).map(Float.init)
        let reference = f32.predict(raw: x, count: count)
        for inputs in [[:], [0: InputQuantization(range: 0, 1), 3: InputQuantization(range: 0, 2)]] as [[Int: InputQuantization]] {
            for bits in [8, 7] {
                let quantized = try Quantization.int8(model, sourcePath: "m.nnm", inputs: inputs, weightBits: bits).model
                let engine = try InferenceEngine<Float>(model: quantized, kernel: kernel)
                // AVX512-VNNI for the AVX-512 families; AVX2 on bytes for 7-bit weights, on pairs for
                // 8-bit ones (not where AVX-VNNI runs the family).
                let direct = engine.int8Kernel == .vnni || engine.int8Kernel == .amx ? "avx512_vnni"
                    : engine.int8Kernel == .avx2 ? (bits == 7 ? "avx2_maddubs" : "avx2") : nil
                let description = engine.kernelDescription
                #expect(description.contains("int8 convolutions of one channel") == (direct != nil), "\(description)")
                if let direct { #expect(description.contains("one channel: \(direct) direct"), "\(description)") }
                let failures = batchInvarianceFailures(engine, count: 11) + byteInputFailures(engine, count: 11) + largeBatchFailures(engine)
                #expect(failures.isEmpty, "\(kernel.rawValue), \(bits) bits, \(inputs.isEmpty ? "per sample" : "calibrated"): \(failures.prefix(3))")
                let got = engine.predict(raw: x, count: count)
                let worst = zip(got, reference).map { abs($0 - $1) }.max()!
                #expect(worst <= 0.02, "\(kernel.rawValue), \(bits) bits: probabilities differ by \(worst)")
            }
        }
    }

    /// An int8 convolution of several channels on the im2col path (9 x 9 x 3 input, 3 x 3 window,
    /// "same" padding, 40 filters, wider than every narrow form, ReLU; the model's output is its
    /// flattened map) against a reference computed here: each sample quantized once as a whole
    /// (range [min(x, 0), max(x, 0)] onto 0...255, round to nearest even; or with the layer's
    /// calibrated scale and zero point, values outside clipped), the padding as the zero point,
    /// the windows' int32 sums exact, dequantized in Double with the bias, then ReLU; within
    /// 1e-5 of the largest term. Per sample and calibrated, on every kernel this CPU runs; a
    /// sample alone gives the bits of its row in a batch. Fails when the windows are quantized
    /// one by one or the padding is 0 instead of the zero point.
    @Test(arguments: MatrixKernel.allCases.filter { $0 != .openblas && $0.isSupported })
    func int8ConvolutionsQuantizeEachSampleOnce(_ kernel: MatrixKernel) throws {
        let (h, w, channels, filters) = (9, 9, 3, 40)
        let conv = try Layer.conv2d(index: 0, inputShape: [h, w, channels], filters: filters, kernel: [3, 3], padding: .same, activation: .relu)
        let flat = Layer.flatten(inputShape: conv.spatial!.outputShape)
        let meta = ModelMetadata(input: InputSpec(shape: [h, w, channels]), layers: [conv, flat],
                                 provenance: Provenance(tool: "tests", created: "2026-12-07T00:00:00Z"))
        let weight = (0..<(9 * channels * filters)).map { Float(sin(Double($0) * 1.3)) * 0.4 }
        let bias = (0..<filters).map { Float($0 % 5) * 0.03 - 0.06 }
        let model = Model(metadata: meta, tensors: [
            NamedTensor("layers.0.weight", Tensor(weight, shape: [3, 3, channels, filters])),
            NamedTensor("layers.0.bias", Tensor(bias, shape: [filters])),
        ])
        let count = 5, size = h * w * channels
        let x = (0..<(count * size)).map { Float(sin(Double($0) * 0.71)) * 1.5 + 0.2 }
        for inputs in [[:], [0: InputQuantization(range: -1, 1.2)]] as [[Int: InputQuantization]] {
            let quantized = try Quantization.int8(model, sourcePath: "m.nnm", inputs: inputs).model
            let engine = try InferenceEngine<Float>(model: quantized, kernel: kernel)
            if engine.int8Kernel != nil && inputs.isEmpty {
                #expect(engine.kernelDescription.contains("u8 convolution inputs per sample"), "\(engine.kernelDescription)")
            }
            let q = try #require(quantized.tensor("layers.0.weight")).floats().map { Int($0) }
            let scales = try #require(quantized.tensor("layers.0.weight_scale")).floats()
            let got = engine.predict(raw: x, count: count)
            for n in 0..<count {
                let sample = x[(n * size)..<((n + 1) * size)]
                let (s, zero): (Float, Int)
                if let fixed = inputs[0] {
                    (s, zero) = (fixed.scale, fixed.zeroPoint)
                } else {
                    let lo = min(sample.min()!, 0), hi = max(sample.max()!, 0)
                    s = (hi - lo) / 255
                    zero = Int(min(max((-lo / s).rounded(.toNearestOrEven), 0), 255))
                }
                let inverse = 1 / s
                let values = sample.map { Int(min(max(($0 * inverse).rounded(.toNearestOrEven) + Float(zero), 0), 255)) }
                for oy in 0..<h {
                    for ox in 0..<w {
                        for f in 0..<filters {
                            var sum = 0, weightSum = 0
                            for u in 0..<3 {
                                for v in 0..<3 {
                                    for c in 0..<channels {
                                        let iy = oy + u - 1, ix = ox + v - 1
                                        let value = iy >= 0 && iy < h && ix >= 0 && ix < w ? values[(iy * w + ix) * channels + c] : zero
                                        let wq = q[((u * 3 + v) * channels + c) * filters + f]
                                        sum += value * wq
                                        weightSum += wq
                                    }
                                }
                            }
                            let term = Double(s) * Double(scales[f]) * Double(sum - zero * weightSum)
                            let expected = max(term + Double(bias[f]), 0)
                            let value = Double(got[n * h * w * filters + (oy * w + ox) * filters + f])
                            guard abs(value - expected) <= 1e-5 * max(abs(term), abs(Double(bias[f])), 1e-3) else {
                                Issue.record("\(kernel.rawValue), \(inputs.isEmpty ? "per sample" : "calibrated"), sample \(n) (\(oy), \(ox)) filter \(f): \(value) vs \(expected)")
                                return
                            }
                        }
                    }
                }
            }
            let failures = batchInvarianceFailures(engine, count: 7)
            #expect(failures.isEmpty, "\(kernel.rawValue): \(failures.prefix(3))")
        }
    }

    /// A first layer preprocesses its rows as it packs them (f32, 40 outputs: wider than a
    /// vector) or quantizes them (int8), for z-score, scale with an offset and scale alone: the
    /// outputs equal, bit for bit, those of the same model without preprocessing given the rows
    /// the engine's `preprocess` writes; one sample and a batch, int8 per row and calibrated, on
    /// every kernel this CPU runs. Fails when a prologue rounds otherwise (a fused multiply-add for
    /// scale and offset, a reciprocal for the z-score).
    @Test(arguments: MatrixKernel.allCases.filter { $0 != .openblas && $0.isSupported })
    func firstLayersPreprocessAsTheyPack(_ kernel: MatrixKernel) throws {
        let k = 37
        let x: [Float] = (0..<(50 * k)).map { Float(($0 * 7919) % 256) }
        for steps: [PreprocessingStep] in [[.zscore(mean: "mean", std: "std")], [.scale(factor: 1.0 / 255, offset: -0.3)], [.scale(factor: 0.1, offset: 0)]] {
            let model = Self.preprocessingModel(inputs: k, steps: steps, weightScale: 1)
            let calibrations: [[Int: InputQuantization]?] = [nil, [:], [0: InputQuantization(range: -1, 3), 1: InputQuantization(range: 0, 2)]]
            for inputs in calibrations {
                let quantized = try inputs.map { try Quantization.int8(model, sourcePath: "m.nnm", inputs: $0).model } ?? model
                var plain = quantized
                plain.metadata.preprocessing = []
                let fused = try InferenceEngine<Float>(model: quantized, kernel: kernel), separate = try InferenceEngine<Float>(model: plain, kernel: kernel)
                var rows = x
                rows.withUnsafeMutableBufferPointer { fused.preprocess($0.baseAddress!, count: 50) }
                for count in [1, 50] {
                    let a = fused.predict(raw: Array(x.prefix(count * k)), count: count)
                    let b = separate.predict(raw: Array(rows.prefix(count * k)), count: count)
                    let differing = zip(a, b).filter { $0.bitPattern != $1.bitPattern }.count
                    #expect(a.count == b.count && differing == 0, "\(kernel.rawValue), \(steps), \(inputs.map { $0.isEmpty ? "int8" : "int8 calibrated" } ?? "f32"), \(count) sample(s): \(differing) outputs differ")
                }
            }
        }
    }

    /// The engine's preprocessing (the kernels' vectorized loop, in place and into the first
    /// layer) is the spec's formula in f32, bit for bit: (x - mean) / std with std 0 read as 1,
    /// x * factor + offset rounded twice; rows of 37 and 301 values (vector tails), 1 and 7
    /// samples. Expected values from the formula written here in scalar Swift. Fails when the
    /// loop uses a reciprocal or a fused multiply-add.
    @Test func preprocessingIsTheFormula() throws {
        for k in [37, 301] {
            let mean: [Float] = (0..<k).map { Float($0 % 11) * 9.5 }
            let std: [Float] = (0..<k).map { (i: Int) -> Float in i % 13 == 0 ? 0 : Float(1 + i % 5) * 17.25 }
            for steps: [PreprocessingStep] in [[.zscore(mean: "mean", std: "std")], [.scale(factor: 1.0 / 255, offset: -0.3)], [.scale(factor: 0.1, offset: 0)]] {
                let model = Self.preprocessingModel(inputs: k, steps: steps, weightScale: 1)
                let engine = try InferenceEngine<Float>(model: model), preprocessor = Preprocessor<Float>(model: model)
                for count in [1, 7] {
                    let x: [Float] = (0..<(count * k)).map { Float(($0 * 7919) % 256) + Float($0 % 7) / 3 }
                    let expected: [Float] = x.indices.map { i in
                        let j = i % k
                        switch steps[0] {
                        case .zscore: return (x[i] - mean[j]) / (std[j] == 0 ? 1 : std[j])
                        case let .scale(factor, offset):
                            let product = x[i] * Float(factor)
                            return offset == 0 ? product : product + Float(offset)
                        }
                    }
                    var y = x
                    y.withUnsafeMutableBufferPointer { engine.preprocess($0.baseAddress!, count: count) }
                    var z = [Float](repeating: 0, count: x.count)
                    x.withUnsafeBufferPointer { source in
                        z.withUnsafeMutableBufferPointer { preprocessor.apply(source.baseAddress!, into: $0.baseAddress!, count: count) }
                    }
                    for (name, values) in [("in place", y), ("into another buffer", z)] {
                        let differing = zip(values, expected).filter { $0.bitPattern != $1.bitPattern }.count
                        #expect(differing == 0, "k \(k), \(steps), \(count) sample(s), \(name): \(differing) values differ")
                    }
                }
            }
        }
    }

    /// k -> 40 (ReLU) -> 3 (softmax), with `steps` of preprocessing over tensors "mean" and "std"
    /// (means up to 95, standard deviations with zeros): what the prologue tests run.
    static func preprocessingModel(inputs k: Int, steps: [PreprocessingStep], weightScale: Float) -> Model {
        let hidden = 40
        let w0: [Float] = (0..<(k * hidden)).map { Float(sin(Double($0) * 0.7)) * weightScale }
        let w1: [Float] = (0..<(hidden * 3)).map { Float(cos(Double($0) * 1.3)) }
        let mean: [Float] = (0..<k).map { Float($0 % 11) * 9.5 }
        let std: [Float] = (0..<k).map { (i: Int) -> Float in i % 13 == 0 ? 0 : Float(1 + i % 5) * 17.25 }
        let tensors = [NamedTensor("layers.0.weight", Tensor(w0, shape: [k, hidden])), NamedTensor("layers.0.bias", Tensor((0..<hidden).map { Float($0) * 0.01 }, shape: [hidden])),
                       NamedTensor("layers.1.weight", Tensor(w1, shape: [hidden, 3])), NamedTensor("layers.1.bias", Tensor([0.1, 0, -0.1] as [Float], shape: [3])),
                       NamedTensor("mean", Tensor(mean, shape: [k])), NamedTensor("std", Tensor(std, shape: [k]))]
        let layers = [Layer.dense(index: 0, inputSize: k, outputSize: hidden, activation: .relu), Layer.dense(index: 1, inputSize: hidden, outputSize: 3, activation: .softmax)]
        let meta = ModelMetadata(input: InputSpec(shape: [k]), layers: layers, preprocessing: steps, provenance: Provenance(tool: "tests", created: "2026-12-06T00:00:00Z"))
        return Model(metadata: meta, tensors: tensors)
    }

    /// Bytes (an IDX file's pixels) into a first layer that reads them as it packs (f32) or
    /// quantizes (int8) its rows, with z-score, scale and offset, or no preprocessing: the outputs
    /// of their floats, to the bit. 301 inputs: an int8 row crosses the prologue's chunks of 256.
    /// Fails when a chunk takes the wrong means or the bytes the wrong scale.
    @Test(arguments: MatrixKernel.allCases.filter { $0 != .openblas && $0.isSupported })
    func bytesGoIntoTheFirstProduct(_ kernel: MatrixKernel) throws {
        for steps: [PreprocessingStep] in [[.zscore(mean: "mean", std: "std")], [.scale(factor: 1.0 / 255, offset: -0.3)], []] {
            let model = Self.preprocessingModel(inputs: 301, steps: steps, weightScale: 0.1)
            for (name, variant) in [("f32", model), ("int8", try Quantization.int8(model, sourcePath: "m.nnm").model),
                                    ("int8 calibrated", try Quantization.int8(model, sourcePath: "m.nnm", inputs: [0: InputQuantization(range: -1, 3)]).model)] {
                let failures = byteInputFailures(try InferenceEngine<Float>(model: variant, kernel: kernel), count: 11)
                #expect(failures.isEmpty, "\(kernel.rawValue), \(steps), \(name): \(failures.prefix(3))")
            }
        }
    }

    @Test func refusesNonFiniteWeights() {
        var model = Self.model()
        model.setTensor("layers.1.weight", Tensor([2, -4, .nan, 1, 0, 3] as [Float], shape: [3, 2]))
        #expect(throws: ModelError.self) { try Quantization.int8(model, sourcePath: "m.nnm") }
    }

    /// A file whose scales are zero, negative, NaN, of the wrong length or dtype, or missing:
    /// written past the writer's validation, refused by the reader with one line naming the file
    /// and the tensor or member.
    @Test(arguments: ["zero", "negative", "nan", "length", "dtype", "missing", "float weight",
                      "input scale", "input infinite", "input zero point", "input on float weight"])
    func malformedScalesAreRefused(_ fault: String) throws {
        var (model, _) = try Quantization.int8(Self.model(), sourcePath: "m.nnm", inputs: [1: InputQuantization(scale: 0.1, zeroPoint: 3)])
        let name = "layers.1.weight_scale"
        switch fault {
        case "zero": model.setTensor(name, Tensor([0.1, 0] as [Float], shape: [2]))
        case "negative": model.setTensor(name, Tensor([-0.1, 0.2] as [Float], shape: [2]))
        case "nan": model.setTensor(name, Tensor([0.1, .nan] as [Float], shape: [2]))
        case "length": model.setTensor(name, Tensor([0.1, 0.2, 0.3] as [Float], shape: [3]))
        case "dtype": model.setTensor(name, Tensor([0.1, 0.2] as [Double], shape: [2]))
        case "missing": model.tensors.removeAll { $0.name == name }
        case "input scale": model.metadata.layers[1].inputQuantization = InputQuantization(scale: 0, zeroPoint: 3)
        case "input infinite": model.metadata.layers[1].inputQuantization = InputQuantization(scale: .infinity, zeroPoint: 3)
        case "input zero point": model.metadata.layers[1].inputQuantization = InputQuantization(scale: 0.1, zeroPoint: 256)
        case "input on float weight":
            model.metadata.layers[0].inputQuantization = InputQuantization(scale: 0.1, zeroPoint: 3)
            model = model.dequantized()
            model.metadata.layers[0].inputQuantization = InputQuantization(scale: 0.1, zeroPoint: 3)
        default:
            model.metadata.layers[1].inputQuantization = nil
            model.setTensor("layers.1.weight", Tensor([2, -4, 0.5, 1, -0.254, 3] as [Float], shape: [3, 2]))
        }
        let path = scratchDirectory("quantize") + "/bad.nnm"
        try NNMFormat.write(ValidatedModel(checked: model, warnings: []), to: path)
        let message = errorMessage { _ = try NNMFormat.open(path: path) }
        let text = try #require(message)
        #expect(text.hasPrefix(path))
        #expect(!text.contains("\n"))
        let expected = fault == "float weight" ? "layers[1].weight" : fault == "input on float weight" ? "layers[0].input_quantization"
            : fault.hasPrefix("input") ? "layers[1].input_quantization" : name
        #expect(text.contains(expected), "\(text)")
    }
}
