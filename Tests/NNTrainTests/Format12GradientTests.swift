import NNCore
import NNEngine
import NNRandom
import Testing
@testable import NNTrain

/// Gradients of format 1.2's layers and activations against central differences in f64.
///
/// The loss is evaluated with training-mode forward passes: batch normalization then normalizes
/// with the batch's statistics, which depend on every sample and every parameter below it, so the
/// finite differences see exactly the function the backward pass differentiates.
func checkLayeredGradients(_ recipe: TrainingRecipe, imageShape: [Int], count: Int = 6,
                           sourceLocation: SourceLocation = #_sourceLocation) throws {
    var r = recipe
    if !r.featureStages.isEmpty { r.layerSizes[0] = try r.flattenedFeatures(imageShape: imageShape) }
    try r.validate()
    let layers = try r.modelLayers(imageShape: imageShape)
    var random = NumPyRandomState(seed: 5)
    var network = Network<Double>(recipe: r, layers: layers, random: &random)
    // Non-trivial biases, gammas and betas, so that every term of every gradient matters.
    for l in 0..<network.layerCount where network.hasParameters(l) {
        network.biases[l] = random.randn(count: network.biases[l].count).map { $0 * 0.3 }
        if layers[l].kind == .batchNorm { network.weights[l] = random.randn(count: network.weights[l].count).map { 1 + 0.3 * $0 } }
    }
    let features = imageShape.reduce(1, *), classes = r.layerSizes.last!
    let x = random.randn(count: count * features)
    let labels = (0..<count).map { _ in Int32(random.randint(low: 0, high: classes == 1 ? 2 : classes)) }
    let trainer = Trainer<Double>(network: network, recipe: r, maxBatch: count)
    func loss(_ n: Network<Double>) -> Double {
        trainer.setNetwork(n)
        var unused = NumPyRandomState(seed: 0)
        return x.withUnsafeBufferPointer { xp in
            labels.withUnsafeBufferPointer { lp in
                trainer.forward(xp.baseAddress!, count: count, training: true, random: &unused)
                return trainer.loss(labels: lp)
            }
        }
    }
    _ = loss(network)
    labels.withUnsafeBufferPointer { trainer.backward(x, labels: $0) }
    let gradients = (0..<network.layerCount).map { (trainer.weightGradient($0), trainer.biasGradient($0)) }
    let h = 1e-5
    var worst = 0.0, checked = 0
    for l in 0..<network.layerCount where network.hasParameters(l) {
        for (isWeight, values) in [(true, network.weights[l]), (false, network.biases[l])] {
            for i in values.indices {
                var plus = network, minus = network
                if isWeight { plus.weights[l][i] += h; minus.weights[l][i] -= h } else { plus.biases[l][i] += h; minus.biases[l][i] -= h }
                var numeric = (loss(plus) - loss(minus)) / (2 * h)
                if isWeight, r.l2 > 0, layers[l].weight != nil { numeric += 2 * r.l2 * values[i] }
                let analytic = isWeight ? gradients[l].0[i] : gradients[l].1[i]
                // Relative, with a floor of 1e-4: the differences' rounding noise is about
                // 1e-16 / h = 1e-11, and some gradients are exactly 0 (the bias of a dense
                // layer before batch normalization, which subtracts it again).
                worst = max(worst, abs(numeric - analytic) / max(abs(numeric), abs(analytic), 1e-4))
                checked += 1
            }
        }
    }
    #expect(checked > 0, sourceLocation: sourceLocation)
    #expect(worst < 1e-6, "worst relative difference \(worst) over \(checked) parameters", sourceLocation: sourceLocation)
}

extension Trainer {
    func backward(_ x: [Scalar], labels: UnsafeBufferPointer<Int32>) {
        x.withUnsafeBufferPointer { backward($0.baseAddress!, labels: labels) }
    }
}

func mlp(_ sizes: [Int], _ activations: [Activation], _ loss: Loss, denseBatchNorm: Bool = false, l2: Double = 0) -> TrainingRecipe {
    var r = TrainingRecipe(layerSizes: sizes, activations: activations, loss: loss, epochs: 1, batchSize: 6, learningRate: 0.1,
                           l2: l2, initialization: .he)
    r.denseBatchNorm = denseBatchNorm
    return r
}

func cnn(_ stages: String, dense: [Int], _ activations: [Activation], loss: Loss = .crossEntropy) throws -> TrainingRecipe {
    var r = mlp([0] + dense, activations, loss)
    r.featureStages = try FeatureStage.parseList(stages)
    return r
}

@Suite struct Format12Gradients {
    @Test func leakyReluEluSoftmax() throws {
        try checkLayeredGradients(mlp([6, 5, 4, 3], [.leakyRelu(alpha: 0.1), .elu(alpha: 0.7), .softmax], .crossEntropy), imageShape: [6])
    }

    @Test func seluGeluLogSoftmaxNLL() throws {
        try checkLayeredGradients(mlp([5, 6, 5, 4], [.selu, .gelu(.exact), .logSoftmax], .nll), imageShape: [5])
    }

    @Test func geluTanhSoftplusSwishQuadratic() throws {
        try checkLayeredGradients(mlp([4, 6, 5, 3], [.gelu(.tanh), .softplus, .swish], .quadratic), imageShape: [4])
    }

    @Test func hardSigmoidRelu6ClippedQuadratic() throws {
        try checkLayeredGradients(mlp([4, 7, 6, 5, 2], [.hardSigmoid, .relu6, .clippedRelu(maxValue: 0.8), .hardSigmoid], .quadratic), imageShape: [4])
    }

    @Test func denseBatchNormWithL2() throws {
        try checkLayeredGradients(mlp([5, 6, 4, 3], [.tanh, .relu, .softmax], .crossEntropy, denseBatchNorm: true, l2: 0.01), imageShape: [5], count: 7)
    }

    @Test func convBatchNormAveragePoolSamePadding() throws {
        try checkLayeredGradients(try cnn("conv:3:3x3:p=1:identity,bn:relu,avgpool:3:s=2:same:exclude-pad", dense: [4, 3], [.elu(alpha: 1), .softmax]),
                                  imageShape: [6, 6, 2])
    }

    @Test func averagePoolCountingPaddingAndGlobalAverage() throws {
        try checkLayeredGradients(try cnn("conv:3:3x3:same:swish,avgpool:2:s=1:p=1:include-pad,bn:eps=0.01:gelu,gap", dense: [3], [.softmax]),
                                  imageShape: [5, 5, 1])
    }

    @Test func globalMaxPoolAndExplicitPadding() throws {
        try checkLayeredGradients(try cnn("conv:4:2x2:s=2:p=1:tanh,pool:2:p=1,conv:3:2x2:leaky_relu(alpha=0.2),gmp", dense: [3], [.softmax]),
                                  imageShape: [7, 7, 2])
    }
}

@Suite struct BatchNormalizationStatistics {
    /// One training step with momentum m moves each moving statistic to `m * old + (1 - m) *
    /// batch` (biased variance), computed here by hand; an evaluation pass then normalizes
    /// with them, as the inference engine does on the saved model.
    @Test func movingAveragesAndInference() throws {
        var r = mlp([3, 4, 2], [.relu, .softmax], .crossEntropy, denseBatchNorm: true)
        r.batchNormMomentum = 0.9
        let layers = r.denseLayers(firstIndex: 0)
        #expect(layers.map(\.kind) == [.dense, .batchNorm, .dense])
        #expect(layers.map(\.activation) == [.identity, .relu, .softmax])
        var random = NumPyRandomState(seed: 1)
        let network = Network<Double>(recipe: r, layers: layers, random: &random)
        let count = 5, x = random.randn(count: count * 3)
        let labels: [Int32] = [0, 1, 1, 0, 1]
        let trainer = Trainer<Double>(network: network, recipe: r, maxBatch: count)
        // The batch statistics of the first layer's outputs, by hand.
        var z = [Double](repeating: 0, count: count * 4)
        for s in 0..<count {
            for j in 0..<4 {
                var sum: Double = network.biases[0][j]
                for i in 0..<3 { sum += x[s * 3 + i] * network.weights[0][i * 4 + j] }
                z[s * 4 + j] = sum
            }
        }
        var mean = [Double](repeating: 0, count: 4), variance = [Double](repeating: 0, count: 4)
        for j in 0..<4 {
            for s in 0..<count { mean[j] += z[s * 4 + j] / Double(count) }
            for s in 0..<count { variance[j] += (z[s * 4 + j] - mean[j]) * (z[s * 4 + j] - mean[j]) / Double(count) }
        }
        var unused = NumPyRandomState(seed: 0)
        _ = x.withUnsafeBufferPointer { xp in labels.withUnsafeBufferPointer { trainer.trainStep(xp.baseAddress!, labels: $0, random: &unused) } }
        for j in 0..<4 {
            #expect(abs(trainer.network.movingMeans[1][j] - 0.1 * mean[j]) < 1e-14)
            #expect(abs(trainer.network.movingVariances[1][j] - (0.9 + 0.1 * variance[j])) < 1e-14)
        }
        // Evaluation uses the moving statistics: the same outputs as the engine on the saved model.
        let (modelLayers, tensors) = trainer.network.layersAndTensors()
        let model = Model(metadata: ModelMetadata(input: InputSpec(shape: [3]), layers: modelLayers,
                                                  provenance: Provenance(tool: "test", created: "2026-01-01T00:00:00Z")), tensors: tensors)
        let engine = try InferenceEngine<Double>(model: model)
        let expected = engine.predict(raw: x, count: count)
        x.withUnsafeBufferPointer { trainer.forward($0.baseAddress!, count: count, training: false, random: &unused) }
        let actual = trainer.activations(2)
        #expect(zip(actual, expected).allSatisfy { abs($0 - $1) < 1e-12 }, "\(actual) vs \(expected)")
        // And the model reads back into the same network, moving statistics included.
        let back = try Network<Double>(model: model)
        #expect(back.movingMeans == trainer.network.movingMeans && back.movingVariances == trainer.network.movingVariances)
        #expect(back.weights == trainer.network.weights && back.biases == trainer.network.biases)
    }
}
