import NNCore
@testable import NNEngine
import NNTestSupport
import Testing

// The engine on what format 1.2 added, against outputs NumPy computed from the spec's
// definitions (Fixtures/generate_layers.py -> Fixtures/layers/expected.json): every new
// activation, batch normalization (folded and not), average and global pooling, explicit
// padding, dense and conv2d without bias; in f64 and f32, in batches and one sample at a time.

/// max |got - want| / (1 + |want|) over all values (infinity when the shapes differ).
func worstError(_ got: [Double], _ want: [[Double]]) -> Double {
    let flat = want.flatMap { $0 }
    guard got.count == flat.count else { return .infinity }
    return zip(got, flat).map { abs($0 - $1) / (1 + abs($1)) }.max() ?? 0
}

@Suite struct Format12Engine {
    @Test func theFixtureFileHoldsEveryCase() {
        #expect(LayerFixture.all.count == 32)
    }

    /// f64, batched, folded and not: the definitions to within rounding.
    @Test(arguments: LayerFixture.all)
    func float64MatchesNumPy(fixture: LayerFixture) throws {
        let model = try fixture.model(.float64)
        for folding in [true, false] {
            let engine = try InferenceEngine<Double>(model: model, foldingBatchNorm: folding)
            let got = engine.predict(raw: fixture.input.flatMap { $0 }, count: fixture.input.count)
            #expect(worstError(got, fixture.expected) < 1e-13, "\(fixture.name), folding \(folding): \(worstError(got, fixture.expected))")
        }
    }

    /// f32, batched and one sample at a time (the second one-sample call builds the packed plan).
    @Test(arguments: LayerFixture.all)
    func float32MatchesNumPy(fixture: LayerFixture) throws {
        let model = try fixture.model(.float32)
        for folding in [true, false] {
            let engine = try InferenceEngine<Float>(model: model, foldingBatchNorm: folding)
            let x = fixture.input.flatMap { $0 }.map(Float.init)
            let batch = engine.predict(raw: x, count: fixture.input.count).map(Double.init)
            #expect(worstError(batch, fixture.expected) < 2e-6, "\(fixture.name), folding \(folding): \(worstError(batch, fixture.expected))")
            var single: [Double] = []
            for r in fixture.input.indices {
                single += engine.predict(raw: Array(x[(r * engine.inputSize)..<((r + 1) * engine.inputSize)]), count: 1).map(Double.init)
            }
            #expect(worstError(single, fixture.expected) < 2e-6, "\(fixture.name), one sample, folding \(folding): \(worstError(single, fixture.expected))")
        }
    }

    /// Hand-computed: a 3x3 average over a 2x2 input padded by 1 all round. With padded cells
    /// counted every window divides by 9; without, by the 4 cells it covers.
    @Test func averagePoolingDivisorsByHand() throws {
        for (include, want) in [(true, 10.0 / 9), (false, 10.0 / 4)] {
            let layer = try Layer.avgPool2d(index: 0, inputShape: [2, 2, 1], pool: [3, 3], strides: [1, 1],
                                            padding: .explicit(top: 1, left: 1, bottom: 1, right: 1), countIncludePad: include)
            let model = Model(metadata: ModelMetadata(input: InputSpec(shape: [4]), layers: [layer], provenance: provenance), tensors: [])
            let out = try InferenceEngine<Double>(model: model).predict(raw: [1, 2, 3, 4], count: 1)
            // Output 2x2; each window covers all four inputs (sum 10).
            #expect(out == [Double](repeating: want, count: 4), "count_include_pad \(include)")
        }
    }

    /// Folding is exercised: the batch_norm layers that follow an identity dense or conv2d
    /// disappear from the prepared network, the others stay.
    @Test func foldingRemovesOnlyFoldableLayers() throws {
        let model = foldingModel()
        #expect(try InferenceEngine<Float>(model: model).layers.map(\.kind) == [.conv2d, .maxPool2d, .flatten, .dense, .dense, .batchNorm])
        #expect(try InferenceEngine<Float>(model: model, foldingBatchNorm: false).layers.count == model.metadata.layers.count)
    }

    /// Folded and unfolded agree to rounding; the bounds are the figures stated on
    /// `BatchNormParameters.folded` (measured here: see the printed line).
    @Test func foldedAgreesWithUnfolded() throws {
        let model = foldingModel()
        let samples = 32
        var state: UInt64 = 7
        let x = (0..<(samples * model.metadata.input.features)).map { _ in lcg(&state) }
        func difference<S: BLASScalar>(_: S.Type) throws -> Double {
            let folded = try InferenceEngine<S>(model: model).predict(raw: x.map { S($0) }, count: samples)
            let unfolded = try InferenceEngine<S>(model: model, foldingBatchNorm: false).predict(raw: x.map { S($0) }, count: samples)
            return zip(folded, unfolded).map { Double(abs($0 - $1)) }.max() ?? .infinity
        }
        let f32 = try difference(Float.self), f64 = try difference(Double.self)
        let largest = try InferenceEngine<Double>(model: model, foldingBatchNorm: false).predict(raw: x, count: samples).map(abs).max() ?? 0
        print("batch_norm folding: max abs difference f32 \(f32), f64 \(f64); outputs up to \(largest)")
        #expect(f32 < 1e-5 && f32 > 0)
        #expect(f64 < 1e-13)
    }

    /// conv2d 8x8x2, 16 3x3 filters without bias, same -> batch_norm relu (folds) -> max_pool 2
    /// -> flatten -> dense 32 -> batch_norm relu (folds) -> dense 10 tanh -> batch_norm (after
    /// tanh: stays a layer). Values from a fixed LCG, of a trained network's magnitude.
    func foldingModel() -> Model {
        var state: UInt64 = 42
        func random(_ n: Int, _ low: Double, _ high: Double) -> [Float] { (0..<n).map { _ in Float(low + (high - low) * lcg(&state)) } }
        let layers = [try! Layer.conv2d(index: 0, inputShape: [8, 8, 2], filters: 16, kernel: [3, 3], padding: .same, activation: .identity, bias: false),
                      try! .batchNorm(index: 1, inputShape: [8, 8, 16], epsilon: 0.001, activation: .relu),
                      try! .maxPool2d(index: 2, inputShape: [8, 8, 16], pool: [2, 2]),
                      .flatten(inputShape: [4, 4, 16]),
                      .dense(index: 4, inputSize: 256, outputSize: 32, activation: .identity),
                      try! .batchNorm(index: 5, inputShape: [32], epsilon: 1e-5, activation: .relu),
                      .dense(index: 6, inputSize: 32, outputSize: 10, activation: .tanh),
                      try! .batchNorm(index: 7, inputShape: [10], epsilon: 0.01)]
        var tensors = [NamedTensor("layers.0.weight", Tensor(random(3 * 3 * 2 * 16, -0.5, 0.5), shape: [3, 3, 2, 16])),
                       NamedTensor("layers.4.weight", Tensor(random(256 * 32, -0.15, 0.15), shape: [256, 32])),
                       NamedTensor("layers.4.bias", Tensor(random(32, -0.2, 0.2), shape: [32])),
                       NamedTensor("layers.6.weight", Tensor(random(320, -0.4, 0.4), shape: [32, 10])),
                       NamedTensor("layers.6.bias", Tensor(random(10, -0.2, 0.2), shape: [10]))]
        for (i, channels) in [(1, 16), (5, 32), (7, 10)] {
            tensors.append(NamedTensor("layers.\(i).gamma", Tensor(random(channels, 0.5, 2), shape: [channels])))
            tensors.append(NamedTensor("layers.\(i).beta", Tensor(random(channels, -0.5, 0.5), shape: [channels])))
            tensors.append(NamedTensor("layers.\(i).moving_mean", Tensor(random(channels, -0.5, 0.5), shape: [channels])))
            tensors.append(NamedTensor("layers.\(i).moving_variance", Tensor(random(channels, 0.01, 2), shape: [channels])))
        }
        return Model(metadata: ModelMetadata(input: InputSpec(shape: [8, 8, 2]), layers: layers, provenance: provenance), tensors: tensors)
    }
}

/// Uniform numbers in [0, 1) from a 64-bit LCG (Knuth's MMIX constants): reproducible anywhere.
func lcg(_ state: inout UInt64) -> Double {
    state = state &* 6364136223846793005 &+ 1442695040888963407
    return Double(state >> 11) / Double(1 << 53)
}

let provenance = Provenance(tool: "tests", created: "2026-01-01T00:00:00Z")

/// How close the f32 activations are to the f64 ones, over [-20, 20] in steps of 1/64: the
/// figures stated in `Activations`' documentation.
@Suite struct ActivationAccuracy {
    @Test(arguments: [Activation.leakyRelu(alpha: 0.2), .elu(alpha: 1), .selu, .gelu(.exact), .gelu(.tanh), .softplus, .swish,
                      .hardSigmoid, .relu6, .clippedRelu(maxValue: 2.5), .logSoftmax])
    func float32IsCloseToFloat64(activation: Activation) {
        let z = (-1280...1280).map { Double($0) / 64 }
        var exact = z, single = z.map(Float.init)
        // log_softmax over rows of 41 values; the others element by element.
        let row = activation == .logSoftmax ? 41 : z.count
        for start in stride(from: 0, to: z.count - row + 1, by: row) {
            exact.withUnsafeMutableBufferPointer { Activations.apply(activation, $0.baseAddress! + start, count: row) }
            single.withUnsafeMutableBufferPointer { Activations.apply(activation, $0.baseAddress! + start, count: row) }
        }
        // Relative to the value, with an absolute floor of one f32 ulp at 1.
        let worst = zip(single, exact).map { abs(Double($0) - $1) / max(abs($1), 1) }.max() ?? .infinity
        print("\(activation): f32 vs f64 worst relative error \(worst)")
        #expect(worst < 2e-7, "\(activation): \(worst)")
    }
}
