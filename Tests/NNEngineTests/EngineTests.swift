import Foundation
import NNCore
import NNEngine
import Testing

/// A 6-5-4-3 model (ReLU, sigmoid, softmax) with weights given by simple formulas; the expected
/// outputs below were computed by NumPy with the blog's formulas (see the comments).
func referenceModel(zscore: Bool) -> Model {
    // W1 = (arange(30).reshape(6,5) % 7 - 3) / 8, b1 = (arange(5) - 2) / 16
    let w1 = (0..<30).map { Double($0 % 7 - 3) / 8 }
    let b1 = (0..<5).map { Double($0 - 2) / 16 }
    // W2 = (arange(20).reshape(5,4) % 5 - 2) / 4, b2 = [0.25, -0.5, 0, 0.125]
    let w2 = (0..<20).map { Double($0 % 5 - 2) / 4 }
    let b2 = [0.25, -0.5, 0.0, 0.125]
    // W3 = (arange(12).reshape(4,3) % 3 - 1) / 2, b3 = [0.1, 0, -0.1]
    let w3 = (0..<12).map { Double($0 % 3 - 1) / 2 }
    let b3 = [0.1, 0.0, -0.1]
    var tensors = [
        NamedTensor("layers.0.weight", Tensor(w1, shape: [6, 5])), NamedTensor("layers.0.bias", Tensor(b1, shape: [5])),
        NamedTensor("layers.1.weight", Tensor(w2, shape: [5, 4])), NamedTensor("layers.1.bias", Tensor(b2, shape: [4])),
        NamedTensor("layers.2.weight", Tensor(w3, shape: [4, 3])), NamedTensor("layers.2.bias", Tensor(b3, shape: [3])),
    ]
    var steps: [PreprocessingStep] = [.scale(factor: 1.0 / 255, offset: 0)]
    if zscore {
        // NumPy: X.mean(axis=0), X.std(axis=0) with std[2] set to 0.
        tensors.append(NamedTensor("preprocessing.mean", Tensor([136.66666666666666, 88.33333333333333, 40.0, 77.0, 114.0, 151.0], shape: [6])))
        tensors.append(NamedTensor("preprocessing.std", Tensor([97.6296858314906, 97.6296858314906, 0.0, 27.760883751542686, 27.760883751542686, 27.760883751542686], shape: [6])))
        steps = [.zscore(mean: "preprocessing.mean", std: "preprocessing.std")]
    }
    let meta = ModelMetadata(input: InputSpec(shape: [2, 3]),
                             layers: [Layer.dense(index: 0, inputSize: 6, outputSize: 5, activation: .relu),
                                      Layer.dense(index: 1, inputSize: 5, outputSize: 4, activation: .sigmoid),
                                      Layer.dense(index: 2, inputSize: 4, outputSize: 3, activation: .softmax)],
                             preprocessing: steps, provenance: Provenance(tool: "tests", created: "2026-11-24T00:00:00Z"))
    return Model(metadata: meta, tensors: tensors)
}

/// X = (arange(18).reshape(3,6) * 37 % 256) as float.
let referenceInput: [Double] = (0..<18).map { Double($0 * 37 % 256) }

/// NumPy's softmax outputs for referenceInput scaled by 1/255.
let expectedScaled = [0.10870582478304222, 0.2616266874669525, 0.6296674877500053, 0.10651287779006678, 0.25979967897958267,
                      0.6336874432303505, 0.107552555247604, 0.26067068315398534, 0.6317767615984107]
/// NumPy's softmax outputs for referenceInput z-scored as the blog's normalize().
let expectedZscore = [0.06242533117368436, 0.21271896355250544, 0.7248557052738102, 0.10279488706926432, 0.25661196454177254,
                      0.6405931483889631, 0.0775790374858007, 0.2315161548802836, 0.6909048076339157]

func maxRelativeError<T: BinaryFloatingPoint>(_ a: [T], _ b: [Double]) -> Double {
    zip(a, b).map { abs(Double($0) - $1) / max(abs($1), 1e-300) }.max() ?? .infinity
}

@Suite struct InferenceEngineTests {
    @Test(arguments: [false, true])
    func float64MatchesNumPy(zscore: Bool) throws {
        let engine = try InferenceEngine<Double>(model: referenceModel(zscore: zscore))
        let out = engine.predict(raw: referenceInput, count: 3)
        #expect(maxRelativeError(out, zscore ? expectedZscore : expectedScaled) <= 1e-12)
    }

    @Test(arguments: [false, true])
    func float32MatchesNumPy(zscore: Bool) throws {
        let engine = try InferenceEngine<Float>(model: referenceModel(zscore: zscore))
        let out = engine.predict(raw: referenceInput.map(Float.init), count: 3)
        #expect(maxRelativeError(out, zscore ? expectedZscore : expectedScaled) <= 1e-5)
    }

    /// `observeInputs` (what `nnconv quantize --calibration` measures): per layer the range of
    /// its inputs, 0 included, against the layers computed here in Double from the formulas of
    /// `referenceModel` (X / 255; ReLU; sigmoid), on all three samples and on one.
    @Test func observedInputsAreEachLayersInputs() throws {
        let model = referenceModel(zscore: false)
        let engine = try InferenceEngine<Float>(model: model)
        func tensor(_ name: String) -> [Double] { model.tensor(name)!.floats().map(Double.init) }
        for count in [3, 1] {
            var x = referenceInput.prefix(count * 6).map { $0 / 255 }
            var expected: [(Double, Double)] = []
            for (l, (n, k)) in [(5, 6), (4, 5), (3, 4)].enumerated() {
                expected.append((min(x.min()!, 0), max(x.max()!, 0)))
                let w = tensor("layers.\(l).weight"), b = tensor("layers.\(l).bias")
                x = (0..<(count * n)).map { e in
                    let (i, j) = (e / n, e % n)
                    let z = (0..<k).reduce(b[j]) { $0 + x[i * k + $1] * w[$1 * n + j] }
                    return l == 0 ? max(z, 0) : 1 / (1 + exp(-z))
                }
            }
            var ranges = [(low: Float, high: Float)](repeating: (0, 0), count: 3)
            referenceInput.prefix(count * 6).map(Float.init).withUnsafeBufferPointer {
                engine.observeInputs(raw: $0.baseAddress!, count: count) { layer, inputs in
                    #expect(inputs.count == count * [6, 5, 4][layer])
                    ranges[layer] = (min(ranges[layer].low, inputs.min()!), max(ranges[layer].high, inputs.max()!))
                }
            }
            #expect(ranges.count == 3)
            for (r, e) in zip(ranges, expected) {
                #expect(abs(Double(r.low) - e.0) <= 1e-6 && abs(Double(r.high) - e.1) <= 1e-6, "\(ranges) vs \(expected)")
            }
        }
        // The engine predicts as before afterwards.
        #expect(maxRelativeError(engine.predict(raw: referenceInput.map(Float.init), count: 3), expectedScaled) <= 1e-5)
    }

    @Test func oneSampleAtATimeMatchesTheBatch() throws {
        let engine = try InferenceEngine<Double>(model: referenceModel(zscore: true))
        // Twice over: the first call multiplies by the weights as stored, later ones by the
        // transposed copies the engine makes on the second one-sample call.
        for i in [0, 1, 2, 0, 1, 2] {
            let out = engine.predict(raw: Array(referenceInput[(i * 6)..<(i * 6 + 6)]), count: 1)
            #expect(maxRelativeError(out, Array(expectedZscore[(i * 3)..<(i * 3 + 3)])) <= 1e-12)
        }
    }

    @Test func softmaxIsStableForHugeLogits() {
        var row: [Double] = [1000, 1001, 999]
        row.withUnsafeMutableBufferPointer { Activations.apply(.softmax, $0.baseAddress!, count: 3) }
        // exp([-1, 0, -2]) / sum, by hand.
        let e = [0.36787944117144233, 1.0, 0.1353352832366127]
        let s = e.reduce(0, +)
        #expect(maxRelativeError(row, e.map { $0 / s }) <= 1e-15)
    }

    @Test func activationsByHand() {
        var x: [Double] = [-2, 0, 3]
        x.withUnsafeMutableBufferPointer { Activations.apply(.relu, $0.baseAddress!, count: 3) }
        #expect(x == [0, 0, 3])
        var s: [Double] = [0]
        s.withUnsafeMutableBufferPointer { Activations.apply(.sigmoid, $0.baseAddress!, count: 1) }
        #expect(s == [0.5])
        var t: [Double] = [0, 1]
        t.withUnsafeMutableBufferPointer { Activations.apply(.tanh, $0.baseAddress!, count: 2) }
        #expect(t[0] == 0 && abs(t[1] - 0.7615941559557649) < 1e-16)
    }

    @Test func float16WeightsAreWidened() throws {
        var model = referenceModel(zscore: false)
        // The formula weights are multiples of 1/16, exact in f16.
        for i in 0..<3 {
            let name = "layers.\(i).weight"
            let t = model.tensor(name)!
            let halves = t.doubles().map { Float16($0).bitPattern }
            let f16 = halves.withUnsafeBytes { Tensor(dtype: .float16, shape: t.shape, copying: $0) }
            model.setTensor(name, f16)
        }
        let engine = try InferenceEngine<Float>(model: model)
        #expect(maxRelativeError(engine.predict(raw: referenceInput.map(Float.init), count: 3), expectedScaled) <= 1e-5)
    }
}
