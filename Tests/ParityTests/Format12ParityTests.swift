import NNCore
import NNEngine
import NNRandom
import NNTrain
import Testing

/// `cnn_format12_f64.h5` (Fixtures/generate_parity.py, `build_cnn_format12`): format 1.2's
/// trainable layers in one network (batch normalization after a convolution and after dense
/// layers, average pooling with 'same' and explicit padding, ELU, GELU in its tanh form, leaky
/// ReLU), computed by hand in NumPy: one training-mode batch's values, deltas and gradients, K
/// momentum steps with the moving averages, the inference-mode output after them. The Swift
/// network is the one `nn-train --cnn ... --layers ... --activations ... --dense-bn` builds.
struct Format12Case {
    let fx: Fixture
    let recipe: TrainingRecipe
    let network: Network<Double>
    let x: [Double]
    let n: Int
    let labels: [Int32]
    static let group = "format12"

    init() throws {
        fx = try Fixture("cnn_format12_f64")
        let inputShape = try fx.integers("input_shape")
        let activations = try fx.string("activations").split(separator: ",").map { Activation(argument: String($0))! }
        var r = TrainingRecipe(layerSizes: [0] + (try fx.integers("dense")), activations: activations, loss: .crossEntropy,
                               epochs: 1, batchSize: try fx.integer("n"), learningRate: try fx.double("lr"),
                               momentum: try fx.double("momentum"), initialization: .he)
        r.featureStages = try FeatureStage.parseList(try fx.string("cnn"))
        r.denseBatchNorm = try fx.integer("dense_bn") == 1
        r.batchNormMomentum = try fx.double("bn_momentum")
        r.layerSizes[0] = try r.flattenedFeatures(imageShape: inputShape)
        try r.validate()
        recipe = r
        let layers = try r.modelLayers(imageShape: inputShape)
        #expect(layers.map(\.kind.rawValue).joined(separator: ",") == (try fx.string("layer_kinds")))
        var random = NumPyRandomState(seed: 0)
        var network = Network<Double>(recipe: r, layers: layers, random: &random)
        for l in layers.indices where network.hasParameters(l) {
            network.weights[l] = try fx.doubles("\(Self.group)/layers/\(l)/weight")
            network.biases[l] = try fx.doubles("\(Self.group)/layers/\(l)/bias")
        }
        self.network = network
        x = try fx.doubles("\(Self.group)/x")
        n = try fx.integer("n")
        labels = try fx.labels("\(Self.group)/labels")
    }

    /// Like `expectClose`, except where NumPy's value is rounding noise around an exact 0 (the
    /// gradient of a bias that batch normalization subtracts again): there Swift's must be as small.
    func expectMatch(_ actual: [Double], _ path: String, _ tolerance: Tolerance) throws {
        let expected = try fx.doubles("\(Self.group)/\(path)")
        if expected.allSatisfy({ abs($0) < 1e-14 }) {
            #expect(actual.count == expected.count && actual.allSatisfy { abs($0) < 1e-14 }, "\(fx.name) \(path): \(actual) is not 0")
        } else {
            expectClose(actual, expected, tolerance, "\(fx.name) \(path)")
        }
    }
}

@Suite struct Format12Parity {
    /// One training-mode batch: every layer's z, a and delta, the loss and every gradient.
    @Test func forwardAndBackward() throws {
        let c = try Format12Case()
        let trainer = Trainer<Double>(network: c.network, recipe: c.recipe, maxBatch: c.n)
        var unused = NumPyRandomState(seed: 0)
        trainer.forward(c.x, count: c.n, training: true, random: &unused)
        for l in 0..<c.network.layerCount {
            try c.expectMatch(trainer.preActivations(l), "layers/\(l)/z", .f64)
            try c.expectMatch(trainer.activations(l), "layers/\(l)/a", .f64)
        }
        expectClose([trainer.loss(c.labels)], [try c.fx.scalar("\(Format12Case.group)/loss")], .f64, "cnn_format12 loss")
        trainer.backward(c.x, c.labels)
        for l in 0..<c.network.layerCount {
            try c.expectMatch(trainer.deltas(l), "layers/\(l)/delta", .f64)
            guard c.network.hasParameters(l) else { continue }
            try c.expectMatch(trainer.weightGradient(l), "grads/\(l)/weight", .f64)
            try c.expectMatch(trainer.biasGradient(l), "grads/\(l)/bias", .f64)
        }
    }

    /// K momentum steps: the losses, the parameters and moving averages after them, and the
    /// inference-mode output (moving averages) of the trainer and of the engine on the saved model.
    @Test func momentumStepsAndMovingAverages() throws {
        let c = try Format12Case()
        let trainer = Trainer<Double>(network: c.network, recipe: c.recipe, maxBatch: c.n)
        var unused = NumPyRandomState(seed: 0)
        let losses = (0..<(try c.fx.integer("K"))).map { _ in trainer.trainStep(c.x, c.labels, random: &unused) }
        expectClose(losses, try c.fx.doubles("\(Format12Case.group)/losses"), .f64, "cnn_format12 losses")
        for l in 0..<c.network.layerCount where c.network.hasParameters(l) {
            try c.expectMatch(trainer.network.weights[l], "after/\(l)/weight", .f64)
            try c.expectMatch(trainer.network.biases[l], "after/\(l)/bias", .f64)
            if c.network.layers[l].kind == .batchNorm {
                try c.expectMatch(trainer.network.movingMeans[l], "after/\(l)/moving_mean", .f64)
                try c.expectMatch(trainer.network.movingVariances[l], "after/\(l)/moving_variance", .f64)
            }
        }
        trainer.forward(c.x, count: c.n, training: false, random: &unused)
        let expected = try c.fx.doubles("\(Format12Case.group)/eval_output")
        expectClose(trainer.activations(c.network.layerCount - 1), expected, .f64, "cnn_format12 eval_output (trainer)")
        expectClose([trainer.loss(c.labels)], [try c.fx.scalar("\(Format12Case.group)/eval_loss")], .f64, "cnn_format12 eval_loss")
        // The inference engine folds batch normalization into the layer before it: still f64-close.
        let (layers, tensors) = trainer.network.layersAndTensors()
        let model = Model(metadata: ModelMetadata(input: InputSpec(shape: try c.fx.integers("input_shape")), layers: layers,
                                                  provenance: Provenance(tool: "ParityTests", created: "1970-01-01T00:00:00Z")),
                          tensors: tensors)
        let engine = try InferenceEngine<Double>(model: model)
        expectClose(engine.predict(raw: c.x, count: c.n), expected, .f64, "cnn_format12 eval_output (engine)")
    }
}
