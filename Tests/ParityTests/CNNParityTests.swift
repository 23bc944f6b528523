import NNCore
import NNEngine
import NNRandom
import NNTrain
import Testing

/// One case of `cnn_small_*.h5` (Fixtures/generate_parity.py, `build_cnn_small`): a small CNN's
/// forward pass, loss, deltas, gradients and K SGD steps from the NumPy/SciPy reference.
/// `blog` is seed 002's convolution (scipy `convolve2d`, a true convolution), `xcorr` a Keras-style
/// cross-correlation with strides 2 and 'same' padding, pooling with 'same' padding, two convolutions.
struct CNNCase {
    let fx: Fixture
    let group: String
    let model: Model
    let x: [Double]
    let n: Int
    let labels: [Int32]

    init<S: BLASScalar>(_ group: String, _: S.Type) throws {
        fx = try Fixture("cnn_small_\(suffix(S.self))")
        self.group = group
        let attributes = try fx.file.group(group)
        let architecture = try JSONValue.parse(try attributes.stringAttribute("architecture"))
        let inputShape = try attributes.integerArrayAttribute("input_shape").map { Int($0) }
        let header = JSONValue.object(JSONObject([
            ("input", .object(JSONObject([("shape", .array(inputShape.map { .integer(Int64($0)) }))]))),
            ("layers", architecture),
            ("provenance", .object(JSONObject([("tool", "parity test"), ("created", "2026-11-24T00:00:00Z")]))),
        ]))
        let metadata = try ModelMetadata(json: header)
        var tensors: [NamedTensor] = []
        for (i, layer) in metadata.layers.enumerated() where layer.weight != nil {
            let w = try fx.doubles("\(group)/layers/\(i)/weight"), b = try fx.doubles("\(group)/layers/\(i)/bias")
            tensors.append(NamedTensor(layer.weight!, Network<S>.tensor(w.map { S($0) }, shape: try fx.shape("\(group)/layers/\(i)/weight"))))
            tensors.append(NamedTensor(layer.bias!, Network<S>.tensor(b.map { S($0) }, shape: [b.count])))
        }
        model = Model(metadata: metadata, tensors: tensors)
        x = try fx.doubles("\(group)/x")
        n = try fx.shape("\(group)/x")[0]
        labels = try fx.labels("\(group)/labels")
    }

    var recipe: TrainingRecipe {
        let dense = model.metadata.layers.filter { $0.kind == .dense }
        return TrainingRecipe(layerSizes: [dense[0].inputSize] + dense.map(\.outputSize), activations: dense.map(\.activation),
                              loss: .crossEntropy, epochs: 1, batchSize: n, learningRate: 0.1)
    }

    /// A parameter from the reference in the trainer's form: true-convolution kernels flipped
    /// into the cross-correlation the trainer computes.
    func parameter(_ path: String, layer: Int) throws -> [Double] {
        let values = try fx.doubles(path)
        let l = model.metadata.layers[layer]
        guard l.kind == .conv2d, l.spatial!.convention == .convolution, path.hasSuffix("weight") else { return values }
        return SpatialGeometry.flippedKernel(values, shape: try fx.shape(path))
    }
}

func checkCNNStep<S: BLASScalar>(_ group: String, _: S.Type, kernel: MatrixKernel = MatrixKernel.selected.kernel) throws {
    let c = try CNNCase(group, S.self)
    let tag = "\(c.fx.name) \(group)"
    let tol = Tolerance.forward(S.self)
    let trainer = Trainer<S>(network: try Network<S>(model: c.model), recipe: c.recipe, maxBatch: c.n, kernel: kernel)
    let xs = c.x.map { S($0) }
    var unused = NumPyRandomState(seed: 0)
    trainer.forward(xs, count: c.n, training: false, random: &unused)
    let layers = c.model.metadata.layers
    for l in layers.indices {
        expectClose(trainer.preActivations(l), try c.fx.doubles("\(group)/layers/\(l)/z"), tol, "\(tag) layers/\(l)/z")
        expectClose(trainer.activations(l), try c.fx.doubles("\(group)/layers/\(l)/a"), tol, "\(tag) layers/\(l)/a")
    }
    expectClose([trainer.loss(c.labels)], [try c.fx.scalar("\(group)/loss")], tol, "\(tag) loss")
    trainer.backward(xs, c.labels)
    for l in layers.indices {
        expectClose(trainer.deltas(l), try c.fx.doubles("\(group)/layers/\(l)/delta"), tol, "\(tag) layers/\(l)/delta")
    }
    for l in layers.indices where layers[l].weight != nil {
        expectClose(trainer.weightGradient(l), try c.parameter("\(group)/grads/\(l)/weight", layer: l), tol, "\(tag) grads/\(l)/weight")
        expectClose(trainer.biasGradient(l), try c.parameter("\(group)/grads/\(l)/bias", layer: l), tol, "\(tag) grads/\(l)/bias")
    }

    // K steps of SGD on the same batch from the initial parameters: the losses before each step
    // and the parameters after the last.
    let steps = Trainer<S>(network: try Network<S>(model: c.model), recipe: c.recipe, maxBatch: c.n, kernel: kernel)
    let k = try c.fx.integer("K")
    var losses: [Double] = []
    for _ in 0..<k { losses.append(steps.trainStep(xs, c.labels, random: &unused)) }
    let stepTol = Tolerance.steps(S.self)
    expectClose(losses, try c.fx.doubles("\(group)/losses"), stepTol, "\(tag) losses")
    for l in layers.indices where layers[l].weight != nil {
        expectClose(steps.network.weights[l], try c.parameter("\(group)/after/\(l)/weight", layer: l), stepTol, "\(tag) after/\(l)/weight")
        expectClose(steps.network.biases[l], try c.parameter("\(group)/after/\(l)/bias", layer: l), stepTol, "\(tag) after/\(l)/bias")
    }

    // The inference engine on the model as stored (it flips true-convolution kernels itself).
    let engine = try InferenceEngine<S>(model: c.model)
    expectClose(engine.predict(raw: xs, count: c.n), try c.fx.doubles("\(group)/output"), tol, "\(tag) engine output")
    // One sample at a time takes the engine's batch-1 paths.
    let first = engine.predict(raw: Array(xs[0..<(xs.count / c.n)]), count: 1)
    expectClose(first, Array(try c.fx.doubles("\(group)/output")[0..<first.count]), tol, "\(tag) engine output, one sample")
}

/// The reference's gradients (f64) against central differences of the loss computed by the
/// Swift trainer's forward pass, for every kernel, weight and bias value.
func checkCNNFiniteDifferences(_ group: String) throws {
    let c = try CNNCase(group, Double.self)
    let base = try Network<Double>(model: c.model)
    let trainer = Trainer<Double>(network: base, recipe: c.recipe, maxBatch: c.n)
    var unused = NumPyRandomState(seed: 0)
    func objective(_ network: Network<Double>) -> Double {
        trainer.setNetwork(network)
        trainer.forward(c.x, count: c.n, training: false, random: &unused)
        return trainer.loss(c.labels)
    }
    let numeric = centralDifferences(base, objective)
    let tol = Tolerance(relative: 1e-6, floorFraction: 1e-3)
    for l in 0..<base.layerCount where !base.weights[l].isEmpty {
        expectClose(numeric[l].weights, try c.parameter("\(group)/grads/\(l)/weight", layer: l), tol, "\(c.fx.name) \(group) grads/\(l)/weight vs central differences")
        expectClose(numeric[l].biases, try c.parameter("\(group)/grads/\(l)/bias", layer: l), tol, "\(c.fx.name) \(group) grads/\(l)/bias vs central differences")
    }
}

@Suite struct CNNParity {
    @Test(arguments: ["blog", "xcorr"]) func stepF64(_ group: String) throws { try checkCNNStep(group, Double.self) }
    @Test(arguments: ["blog", "xcorr"]) func stepF32(_ group: String) throws { try checkCNNStep(group, Float.self) }
    /// The trainer's f32 products (narrow: a few filters) on every kernel this CPU runs and on OpenBLAS.
    @Test(arguments: ["blog"], MatrixKernel.allCases.filter(\.isSupported))
    func stepF32OnEachKernel(_ group: String, _ kernel: MatrixKernel) throws { try checkCNNStep(group, Float.self, kernel: kernel) }
    @Test(arguments: ["blog", "xcorr"]) func centralDifferences(_ group: String) throws { try checkCNNFiniteDifferences(group) }
}
