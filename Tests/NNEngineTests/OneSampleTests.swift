import NNCore
import NNEngine
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// One-sample calls take their own path (first the stored weights, from the second call packed
/// copies, the preprocessing folded into the first layer, a helper thread for large layers).
/// These tests check it against a plain Double forward pass written out below, on shapes that
/// reach every part of it: an odd number of inputs, outputs that are not a multiple of 8 or 32,
/// a first layer large enough (39,130 weights) to be split between two threads.
@Suite struct OneSampleTests {
    /// Deterministic weights in about [-0.5, 0.5].
    static func values(_ count: Int, seed: Int) -> [Double] {
        (0..<count).map { i in
            let phase = Double(i * 7919 + seed * 104_729) * 0.001
            return sin(phase) * 0.5
        }
    }

    /// 301 inputs -> `width` (130) ReLU -> 37 `hidden` -> 10 `output`, with z-score preprocessing
    /// (the mean and std of a made-up data set, three stds zero) after a 1/255 scale, or the scale
    /// alone.
    static func model(zscore: Bool, hidden: Activation = .sigmoid, output: Activation = .softmax, width: Int = 130) -> Model {
        let sizes = [301, width, 37, 10], activations: [Activation] = [.relu, hidden, output]
        var tensors: [NamedTensor] = [], layers: [Layer] = []
        for l in 0..<3 {
            tensors.append(NamedTensor("layers.\(l).weight", Tensor(values(sizes[l] * sizes[l + 1], seed: l), shape: [sizes[l], sizes[l + 1]])))
            tensors.append(NamedTensor("layers.\(l).bias", Tensor(values(sizes[l + 1], seed: 10 + l), shape: [sizes[l + 1]])))
            layers.append(Layer.dense(index: l, inputSize: sizes[l], outputSize: sizes[l + 1], activation: activations[l]))
        }
        var steps: [PreprocessingStep] = [.scale(factor: 1.0 / 255, offset: 0)]
        if zscore {
            let mean: [Double] = (0..<301).map { i in Double(i % 17) / 40 }
            let std: [Double] = (0..<301).map { (i: Int) -> Double in
                if i % 100 == 3 { return 0 }
                return 0.2 + Double(i % 13) / 30
            }
            tensors.append(NamedTensor("preprocessing.mean", Tensor(mean, shape: [301])))
            tensors.append(NamedTensor("preprocessing.std", Tensor(std, shape: [301])))
            steps.append(.zscore(mean: "preprocessing.mean", std: "preprocessing.std"))
        }
        let meta = ModelMetadata(input: InputSpec(shape: [301]), layers: layers, preprocessing: steps,
                                 provenance: Provenance(tool: "tests", created: "2026-11-24T00:00:00Z"))
        return Model(metadata: meta, tensors: tensors)
    }

    /// The forward pass as the blog writes it, in Double, straight from the model's tensors.
    static func reference(_ model: Model, _ raw: [Double]) -> [Double] {
        var x = raw
        for step in model.metadata.preprocessing {
            switch step {
            case let .scale(factor, offset): x = x.map { $0 * factor + offset }
            case let .zscore(mean, std):
                let m = model.tensor(mean)!.doubles(), s = model.tensor(std)!.doubles()
                x = x.indices.map { (x[$0] - m[$0]) / (s[$0] == 0 ? 1 : s[$0]) }
            }
        }
        return forward(model, x, fromLayer: 0)
    }

    /// Layers `fromLayer`... of the reference forward pass.
    static func forward(_ model: Model, _ input: [Double], fromLayer first: Int) -> [Double] {
        var x = input
        for layer in model.metadata.layers[first...] {
            let w = model.tensor(layer.weight)!.doubles(), b = model.tensor(layer.bias)!.doubles()
            var z = b
            for i in 0..<layer.inputSize {
                for j in 0..<layer.outputSize { z[j] += x[i] * w[i * layer.outputSize + j] }
            }
            switch layer.activation {
            case .relu: x = z.map { max($0, 0) }
            case .sigmoid: x = z.map { 1 / (1 + exp(-$0)) }
            case .tanh: x = z.map { tanh($0) }
            case .identity: x = z
            case .softmax:
                let top = z.max()!, e = z.map { exp($0 - top) }, sum = e.reduce(0, +)
                x = e.map { $0 / sum }
            default:
                preconditionFailure("this reference computes the five activations these tests use, not \(layer.activation)")
            }
        }
        return x
    }

    /// Raw pixel-like inputs in 0...255.
    static func sample(_ s: Int) -> [Double] { (0..<301).map { Double(($0 * 37 + s * 101) % 256) } }

    static func expectClose(_ got: [Float], _ want: [Double], _ tolerance: Double, _ note: String) {
        let worst = zip(got, want).map { abs(Double($0) - $1) / (1 + abs($1)) }.max() ?? .infinity
        #expect(got.count == want.count && worst <= tolerance, "\(note): worst error \(worst)")
    }

    @Test(arguments: [(true, Activation.sigmoid, Activation.softmax), (false, .tanh, .identity), (true, .identity, .identity)])
    func float32CallsMatchTheReference(zscore: Bool, hidden: Activation, output: Activation) throws {
        let model = Self.model(zscore: zscore, hidden: hidden, output: output)
        let engine = try InferenceEngine<Float>(model: model)
        // Calls 1 (stored weights) and 2... (packed copies), twice over the same samples.
        for round in 0..<2 {
            for s in 0..<4 {
                let got = engine.predict(raw: Self.sample(s).map(Float.init), count: 1)
                Self.expectClose(got, Self.reference(model, Self.sample(s)), 2e-5, "round \(round), sample \(s)")
            }
        }
        // And the batch path, on the same engine, agrees.
        let batch = engine.predict(raw: (0..<4).flatMap { Self.sample($0).map(Float.init) }, count: 4)
        Self.expectClose(batch, (0..<4).flatMap { Self.reference(model, Self.sample($0)) }, 2e-5, "batch")
    }

    /// One output (the binary recipe's sigmoid unit): a single panel, 8 wide, 7 columns padding.
    @Test func oneOutputMatchesTheReference() throws {
        let w = Self.values(301, seed: 3), b = [0.25]
        let meta = ModelMetadata(input: InputSpec(shape: [301]),
                                 layers: [Layer.dense(index: 0, inputSize: 301, outputSize: 1, activation: .sigmoid)],
                                 preprocessing: [.scale(factor: 1.0 / 255, offset: 0)],
                                 provenance: Provenance(tool: "tests", created: "2026-11-24T00:00:00Z"))
        let model = Model(metadata: meta, tensors: [NamedTensor("layers.0.weight", Tensor(w, shape: [301, 1])),
                                                    NamedTensor("layers.0.bias", Tensor(b, shape: [1]))])
        let engine = try InferenceEngine<Float>(model: model)
        for call in 0..<3 {
            for s in 0..<3 {
                let got = engine.predict(raw: Self.sample(s).map(Float.init), count: 1)
                Self.expectClose(got, Self.reference(model, Self.sample(s)), 2e-5, "call \(call), sample \(s)")
            }
        }
    }

    @Test func doubleCallsMatchTheReference() throws {
        let model = Self.model(zscore: true, hidden: .tanh, output: .identity)
        let engine = try InferenceEngine<Double>(model: model)
        for _ in 0..<2 {
            for s in 0..<3 {
                let got = engine.predict(raw: Self.sample(s), count: 1), want = Self.reference(model, Self.sample(s))
                #expect(zip(got, want).allSatisfy { abs($0 - $1) <= 1e-12 * (1 + abs($1)) })
            }
        }
    }

    /// The helper thread computes a fixed set of output columns in the same order as the caller
    /// would: one or two threads give the same bits.
    @Test func oneAndTwoThreadsGiveTheSameBits() throws {
        let model = Self.model(zscore: true, hidden: .identity, output: .identity)
        let engine = try InferenceEngine<Float>(model: model)
        let x = Self.sample(5).map(Float.init)
        _ = engine.predict(raw: x, count: 1)
        let saved = BLAS.threadCount
        defer { BLAS.setThreadCount(saved) }
        BLAS.setThreadCount(2)
        let two = (0..<50).map { _ in engine.predict(raw: x, count: 1) }
        BLAS.setThreadCount(1)
        let one = engine.predict(raw: x, count: 1)
        #expect(two.allSatisfy { $0 == one })
    }

    /// ReLU in the product kernels maps NaN to +0, as the batch path does.
    @Test func reluOfNaNIsZeroOnEveryPath() throws {
        let model = Self.model(zscore: false, hidden: .identity, output: .identity)
        let engine = try InferenceEngine<Float>(model: model)
        var x = Self.sample(0).map(Float.init)
        x[7] = .nan  // every first-layer sum is NaN, so every ReLU output is 0
        let want = Self.forward(model, [Double](repeating: 0, count: 130), fromLayer: 1)
        Self.expectClose(engine.predict(raw: x + x, count: 2), want + want, 2e-5, "batch")
        for call in 0..<3 {
            Self.expectClose(engine.predict(raw: x, count: 1), want, 2e-5, "call \(call)")
        }
    }
}
