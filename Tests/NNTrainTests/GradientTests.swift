import NNCore
import NNEngine
import NNRandom
import Testing
@testable import NNTrain

/// A small random problem: `count` samples of `sizes[0]` features with labels.
func problem(sizes: [Int], count: Int, seed: UInt32) -> (x: [Double], labels: [Int32]) {
    var random = NumPyRandomState(seed: seed)
    let x = random.randn(count: count * sizes[0])
    let classes = sizes.last! == 1 ? 2 : sizes.last!
    let labels = (0..<count).map { _ in Int32(random.randint(low: 0, high: classes)) }
    return (x, labels)
}

func lossAt(_ trainer: Trainer<Double>, _ network: Network<Double>, _ x: [Double], _ labels: [Int32]) -> Double {
    trainer.setNetwork(network)
    var random = NumPyRandomState(seed: 0)
    return x.withUnsafeBufferPointer { xp in
        labels.withUnsafeBufferPointer { lp in
            trainer.forward(xp.baseAddress!, count: lp.count, training: false, random: &random)
            return trainer.loss(labels: lp)
        }
    }
}

/// Compares every analytic gradient with the central difference (f(w+h) - f(w-h)) / 2h.
func checkGradients(_ recipe: TrainingRecipe, count: Int = 7) {
    var random = NumPyRandomState(seed: 3)
    var r = recipe
    r.initialization = .nielsen  // non-zero biases and O(1) weights exercise every path
    let network = Network<Double>(recipe: r, random: &random)
    let (x, labels) = problem(sizes: recipe.layerSizes, count: count, seed: 11)
    let trainer = Trainer<Double>(network: network, recipe: recipe, maxBatch: count)
    var noise = NumPyRandomState(seed: 0)
    x.withUnsafeBufferPointer { xp in
        labels.withUnsafeBufferPointer { lp in
            trainer.forward(xp.baseAddress!, count: count, training: false, random: &noise)
            trainer.backward(xp.baseAddress!, labels: lp)
        }
    }
    let h = 1e-5
    var worst = 0.0
    for l in 0..<network.layerCount {
        let gw = trainer.weightGradient(l), gb = trainer.biasGradient(l)
        for i in stride(from: 0, to: network.weights[l].count, by: 3) {
            var plus = network, minus = network
            plus.weights[l][i] += h
            minus.weights[l][i] -= h
            // The L2 penalty lambda*sum(W^2) belongs to the objective whose gradient this is.
            let penalty = recipe.l2 * ((network.weights[l][i] + h) * (network.weights[l][i] + h) - (network.weights[l][i] - h) * (network.weights[l][i] - h))
            let numeric = (lossAt(trainer, plus, x, labels) - lossAt(trainer, minus, x, labels) + penalty) / (2 * h)
            worst = max(worst, abs(numeric - gw[i]) / max(abs(numeric), abs(gw[i]), 1e-6))
        }
        for i in 0..<network.biases[l].count {
            var plus = network, minus = network
            plus.biases[l][i] += h
            minus.biases[l][i] -= h
            let numeric = (lossAt(trainer, plus, x, labels) - lossAt(trainer, minus, x, labels)) / (2 * h)
            worst = max(worst, abs(numeric - gb[i]) / max(abs(numeric), abs(gb[i]), 1e-6))
        }
    }
    #expect(worst < 1e-6, "worst relative difference \(worst)")
}

@Suite struct Gradients {
    @Test func reluSoftmaxCrossEntropy() {
        checkGradients(TrainingRecipe(layerSizes: [6, 5, 4], activations: [.relu, .softmax], loss: .crossEntropy,
                                      epochs: 1, batchSize: 7, learningRate: 0.1))
    }

    @Test func threeLayersWithL2() {
        checkGradients(TrainingRecipe(layerSizes: [5, 6, 4, 3], activations: [.relu, .relu, .softmax], loss: .crossEntropy,
                                      epochs: 1, batchSize: 7, learningRate: 0.1, l2: 0.01))
    }

    @Test func sigmoidQuadratic() {
        checkGradients(TrainingRecipe(layerSizes: [6, 5, 3], activations: [.sigmoid, .sigmoid], loss: .quadratic,
                                      epochs: 1, batchSize: 7, learningRate: 3))
    }

    @Test func singleSigmoidOutputSquareLoss() {
        checkGradients(TrainingRecipe(layerSizes: [4, 3, 1], activations: [.sigmoid, .sigmoid], loss: .quadratic,
                                      epochs: 1, batchSize: 7, learningRate: 0.5))
    }

    @Test func tanhAndIdentity() {
        checkGradients(TrainingRecipe(layerSizes: [4, 5, 2], activations: [.tanh, .identity], loss: .quadratic,
                                      epochs: 1, batchSize: 7, learningRate: 0.5))
    }
}

@Suite struct RecipeValidation {
    func expectInvalid(_ change: (inout TrainingRecipe) -> Void, _ message: String, sourceLocation: SourceLocation = #_sourceLocation) {
        var r = TrainingRecipe.blog2Layer
        change(&r)
        #expect(throws: TrainingError.invalidOption(message), sourceLocation: sourceLocation) { try r.validate() }
    }

    @Test func badOptionsAreNamed() {
        expectInvalid({ $0.learningRate = 0 }, "--lr must be a positive number, found 0.0")
        expectInvalid({ $0.learningRate = -1 }, "--lr must be a positive number, found -1.0")
        expectInvalid({ $0.batchSize = 0 }, "--batch must be at least 1, found 0")
        expectInvalid({ $0.activations = [.relu, .sigmoid] },
                      "--loss cross-entropy needs a softmax output layer, but the output activation is sigmoid; use --activations ...,softmax or --loss quadratic")
        expectInvalid({ $0.loss = .quadratic },
                      "--loss quadratic does not fit a softmax output (its Jacobian is not element-wise); use --loss cross-entropy or a sigmoid output")
        expectInvalid({ $0.activations = [.relu] }, "--activations needs 2 entries (one per layer after the input), found 1")
        expectInvalid({ $0.activations = [.logSoftmax, .softmax] }, "--activations: log_softmax is only supported on the output layer, not layer 1")
        expectInvalid({ $0.activations = [.relu, .logSoftmax] },
                      "--loss cross-entropy needs a softmax output layer, but the output activation is log_softmax; use --activations ...,softmax or --loss quadratic")
        expectInvalid({ $0.loss = .nll }, "--loss nll needs a log_softmax output layer, but the output activation is softmax; use --activations ...,log_softmax or --loss cross-entropy")
        expectInvalid({ $0.batchNormMomentum = 1 }, "--bn-momentum must be in [0, 1), found 1.0")
        expectInvalid({ $0.featureStages = [.batchNorm(epsilon: nil, activation: .softmax)] }, "--cnn: softmax is only supported on the output layer")
        expectInvalid({ $0.featureStages = [.globalPool(average: true), .batchNorm(epsilon: nil, activation: .relu)] },
                      "--cnn: a global pooling stage (gap, gmp) leaves one value per channel, so it must be the last stage")
        expectInvalid({ $0.denseBatchNorm = true; $0.layerSizes = [784, 10]; $0.activations = [.softmax] },
                      "--dense-bn needs a hidden dense layer (--layers with at least one hidden width)")
        expectInvalid({ $0.dropoutKeep = 0 }, "--dropout-keep must be in (0, 1], found 0.0")
        expectInvalid({ $0.momentum = 1 }, "--momentum must be in [0, 1), found 1.0")
    }

    /// A model the trainer cannot continue: a softmax before the output, or a batch
    /// normalization without gamma (Keras's `scale=False`); `Network(model:)` names the layer.
    @Test func networkRefusesWhatTheTrainerCannotDifferentiate() throws {
        func model(_ layers: [Layer], gamma: Bool = true) -> Model {
            var tensors = [NamedTensor("layers.0.weight", Network<Double>.tensor([Double](repeating: 0.5, count: 12), shape: [4, 3])),
                           NamedTensor("layers.0.bias", Network<Double>.tensor([0, 0, 0], shape: [3]))]
            for name in ["gamma", "beta", "moving_mean", "moving_variance"] where gamma || name != "gamma" {
                tensors.append(NamedTensor("layers.1.\(name)", Network<Double>.tensor([1, 1, 1], shape: [3])))
            }
            return Model(metadata: ModelMetadata(input: InputSpec(shape: [4]), layers: layers,
                                                 provenance: Provenance(tool: "test", created: "2026-01-01T00:00:00Z")),
                         tensors: tensors)
        }
        let withoutGamma = model([.dense(index: 0, inputSize: 4, outputSize: 3, activation: .identity),
                                  try .batchNorm(index: 1, inputShape: [3], epsilon: 0.001, scale: false)], gamma: false)
        #expect(throws: ModelError.invalidField(location: "layers[1]", expected: "a batch_norm with gamma and beta (the trainer trains both)",
                                                found: "no gamma")) { try Network<Double>(model: withoutGamma) }
        let hiddenSoftmax = model([.dense(index: 0, inputSize: 4, outputSize: 3, activation: .softmax),
                                   try .batchNorm(index: 1, inputShape: [3], epsilon: 0.001)])
        #expect(throws: ModelError.invalidField(location: "layers[0].activation",
                                                expected: "softmax or log_softmax only on the output layer (the trainer differentiates them through the loss)",
                                                found: "softmax")) { try Network<Double>(model: hiddenSoftmax) }
        let withNorm = model([.dense(index: 0, inputSize: 4, outputSize: 3, activation: .gelu(.tanh)),
                              try .batchNorm(index: 1, inputShape: [3], epsilon: 0.001)])
        let network = try Network<Double>(model: withNorm)
        #expect(network.weights[1] == [1, 1, 1] && network.movingVariances[1] == [1, 1, 1])
    }
}
