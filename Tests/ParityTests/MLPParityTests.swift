import NNCore
import NNEngine
import NNRandom
import NNTrain
import Testing

/// One forward/backward/update on the fixture's batch: every intermediate the trainer exposes,
/// the loss, every gradient, and the parameters (and momentum velocities) after the update.
func checkSingleStep<S: BLASScalar>(_ name: String, _: S.Type, kernel: MatrixKernel = MatrixKernel.selected.kernel) throws {
    let fx = try Fixture("\(name)_\(suffix(S.self))")
    let tol = Tolerance.forward(S.self)
    let recipe = try fx.recipe()
    let layers = recipe.layerSizes.count - 1
    let x = try fx.sampleRows("X")
    let labels = try fx.labels()
    let trainer = Trainer<S>(network: try fx.network(S.self), recipe: recipe, maxBatch: x.rows, kernel: kernel)
    let xs = x.values.map { S($0) }
    let tag = fx.name

    // The capstone's masks are the first draws after np.random.seed(mask_seed).
    let dropout = recipe.usesDropout
    var random = NumPyRandomState(seed: dropout ? UInt32(try fx.integer("mask_seed")) : 0)
    trainer.forward(xs, count: x.rows, training: dropout, random: &random)
    for l in 1...layers {
        // Z is the forward pass without dropout (the capstone recomputes Z2 only for the backward
        // pass); A of a hidden layer is the masked activation when dropout is on.
        expectClose(trainer.preActivations(l - 1), try fx.sampleRows("Z\(l)").values, tol, "\(tag) Z\(l)")
        let a = dropout && l < layers ? "A\(l)_drop" : "A\(l)"
        expectClose(trainer.activations(l - 1), try fx.sampleRows(a).values, tol, "\(tag) \(a)")
    }
    if dropout {
        for l in 1..<layers {
            // The Swift draw against np.random.binomial(1, keep, size=A.shape).
            expectIdentical(trainer.dropoutMask(l - 1).map { Double($0) }, try fx.doubles("mask\(l)"), "\(tag) mask\(l)")
        }
    }
    let loss = trainer.loss(labels)
    expectClose([loss], [try fx.scalar("loss")], tol, "\(tag) loss")

    trainer.backward(xs, labels)
    for l in 1...layers {
        let (w, b) = fx.gradientNames(l)
        expectClose(trainer.weightGradient(l - 1), try fx.weight(w), tol, "\(tag) \(w)")
        expectClose(trainer.biasGradient(l - 1), try fx.bias(b), tol, "\(tag) \(b)")
    }

    trainer.update()
    for l in 1...layers {
        expectClose(trainer.network.weights[l - 1], try fx.weight("after/W\(l)"), tol, "\(tag) after/W\(l)")
        expectClose(trainer.network.biases[l - 1], try fx.bias("after/b\(l)"), tol, "\(tag) after/b\(l)")
        if recipe.momentum > 0 {
            expectClose(trainer.weightVelocities[l - 1], try fx.weight("after/v_W\(l)"), tol, "\(tag) after/v_W\(l)")
            expectClose(trainer.biasVelocities[l - 1], try fx.bias("after/v_b\(l)"), tol, "\(tag) after/v_b\(l)")
        }
    }

    // Without dropout, a forward pass in evaluation mode gives the same A (the capstone's A1 and
    // A2 before masking are checked this way too).
    let check = Trainer<S>(network: try fx.network(S.self), recipe: recipe, maxBatch: x.rows)
    var unused = NumPyRandomState(seed: 0)
    check.forward(xs, count: x.rows, training: false, random: &unused)
    for l in 1...layers {
        expectClose(check.activations(l - 1), try fx.sampleRows("A\(l)").values, tol, "\(tag) A\(l) (evaluation)")
    }
}

/// K mini-batch steps as the source's loop takes them: Swift's own NumPy-compatible stream draws
/// the permutations (and the capstone's masks) from np.random.seed(train_seed), and they must be
/// the fixture's; then the batch losses, and the parameters and velocities after the K steps.
func checkTrainingSteps<S: BLASScalar>(_ name: String, _: S.Type, kernel: MatrixKernel = MatrixKernel.selected.kernel) throws {
    let fx = try Fixture("\(name)_\(suffix(S.self))")
    let recipe = try fx.recipe()
    let tag = fx.name
    let layers = recipe.layerSizes.count - 1
    let data = try fx.sampleRows("train/X")
    let labels = try fx.labels("train/labels")
    let n = data.rows, batch = recipe.batchSize, k = try fx.integer("K")
    let permutations = try fx.matrix("train/permutations")
    let losses = try fx.doubles("train/losses")
    let stepEpoch = try fx.ints("train/step_epoch"), stepStart = try fx.ints("train/step_start")
    let stepCount = try fx.ints("train/step_count")
    // Seed 001 (Nielsen's fit) keeps the last mini-batch of every epoch for validation.
    let nielsen = try fx.string("train_loop").hasPrefix("nielsen")
    let masks = recipe.usesDropout ? [try fx.matrix("train/mask1"), try fx.matrix("train/mask2")] : []

    let trainer = Trainer<S>(network: try fx.network(S.self), recipe: recipe, maxBatch: batch, kernel: kernel)
    var random = NumPyRandomState(seed: UInt32(try fx.integer("train_seed")))
    var step = 0, epoch = 0, maskRow = 0
    let stepTolerance = Tolerance.forward(S.self)
    while step < k {
        let order = random.permutation(n)
        expectIdentical(order.map(Double.init), permutations.rowSlice(epoch..<(epoch + 1)), "\(tag) permutation \(epoch)")
        var starts = Array(stride(from: 0, to: n, by: batch))
        if nielsen { starts.removeLast() }
        for start in starts where step < k {
            let count = min(batch, n - start)
            #expect([epoch, start, count] == [stepEpoch[step], stepStart[step], stepCount[step]], "\(tag): schedule of step \(step)")
            let indices = Array(order[start..<(start + count)])
            let x = data.gatherRows(indices).map { S($0) }
            let y = indices.map { labels[$0] }
            let loss = trainer.trainStep(x, y, random: &random)
            expectClose([loss], [losses[step]], stepTolerance, "\(tag) train/losses[\(step)]")
            for (l, m) in masks.enumerated() {
                expectIdentical(trainer.dropoutMask(l).map { Double($0) }, m.rowSlice(maskRow..<(maskRow + count)),
                                "\(tag) train/mask\(l + 1) step \(step)")
            }
            maskRow += count
            step += 1
        }
        epoch += 1
    }
    #expect(epoch == permutations.rows, "\(tag): \(epoch) epochs started, the fixture recorded \(permutations.rows)")
    let tol = Tolerance.steps(S.self)
    for l in 1...layers {
        expectClose(trainer.network.weights[l - 1], try fx.weight("train/final/W\(l)"), tol, "\(tag) train/final/W\(l)")
        expectClose(trainer.network.biases[l - 1], try fx.bias("train/final/b\(l)"), tol, "\(tag) train/final/b\(l)")
        if recipe.momentum > 0 {
            expectClose(trainer.weightVelocities[l - 1], try fx.weight("train/final/v_W\(l)"), tol, "\(tag) train/final/v_W\(l)")
            expectClose(trainer.biasVelocities[l - 1], try fx.bias("train/final/v_b\(l)"), tol, "\(tag) train/final/v_b\(l)")
        }
    }
}

/// The convention's initialisation after np.random.seed(init_seed), drawn by Swift's
/// `Network(recipe:random:)`: the same numbers to the bit.
func checkInitialization<S: BLASScalar>(_ name: String, _: S.Type) throws {
    let fx = try Fixture("\(name)_\(suffix(S.self))")
    var random = NumPyRandomState(seed: UInt32(try fx.integer("init_seed")))
    let network = Network<S>(recipe: try fx.recipe(), random: &random)
    let expected: Network<S> = try fx.network(S.self, prefix: "init/")
    for l in 0..<network.layerCount {
        expectIdentical(network.weights[l], expected.weights[l], "\(fx.name) init/W\(l + 1)")
        expectIdentical(network.biases[l], expected.biases[l], "\(fx.name) init/b\(l + 1)")
    }
}

/// The inference engine on the fixture's parameters reproduces the last layer's output (and the
/// predicted classes).
func checkEngine<S: BLASScalar>(_ name: String, _: S.Type) throws {
    let fx = try Fixture("\(name)_\(suffix(S.self))")
    let network: Network<S> = try fx.network(S.self)
    let engine = try InferenceEngine<S>(model: model(of: network))
    let x = try fx.sampleRows("X")
    let output = engine.predict(raw: x.values.map { S($0) }, count: x.rows)
    let last = network.layerCount
    let expected = try fx.sampleRows("A\(last)")
    expectClose(output, expected.values, Tolerance.forward(S.self), "\(fx.name) engine A\(last)")
    let outputs = output.map { Double($0) }
    let predicted = expected.cols == 1 ? outputs.map { $0 > 0.5 ? 1 : 0 } : argmaxRows(outputs, columns: expected.cols)
    expectIdentical(predicted, try fx.ints("predictions"), "\(fx.name) engine predictions")
}

@Suite struct MLPParity {
    @Test(arguments: mlpFixtures) func singleStepF64(_ name: String) throws { try checkSingleStep(name, Double.self) }
    @Test(arguments: mlpFixtures) func singleStepF32(_ name: String) throws { try checkSingleStep(name, Float.self) }
    @Test(arguments: mlpFixtures) func trainingStepsF64(_ name: String) throws { try checkTrainingSteps(name, Double.self) }
    @Test(arguments: mlpFixtures) func trainingStepsF32(_ name: String) throws { try checkTrainingSteps(name, Float.self) }
    @Test(arguments: mlpFixtures) func initializationF64(_ name: String) throws { try checkInitialization(name, Double.self) }
    @Test(arguments: mlpFixtures) func initializationF32(_ name: String) throws { try checkInitialization(name, Float.self) }
    @Test(arguments: mlpFixtures) func engineF64(_ name: String) throws { try checkEngine(name, Double.self) }
    @Test(arguments: mlpFixtures) func engineF32(_ name: String) throws { try checkEngine(name, Float.self) }

    /// The trainer's f32 products on every matrix kernel this CPU runs (AVX2 on AVX-512 machines
    /// too) and on OpenBLAS, against NumPy's steps.
    @Test(arguments: mlpFixtures, MatrixKernel.allCases.filter(\.isSupported))
    func singleStepF32OnEachKernel(_ name: String, _ kernel: MatrixKernel) throws { try checkSingleStep(name, Float.self, kernel: kernel) }
    @Test(arguments: mlpFixtures, MatrixKernel.allCases.filter(\.isSupported))
    func trainingStepsF32OnEachKernel(_ name: String, _ kernel: MatrixKernel) throws {
        try checkTrainingSteps(name, Float.self, kernel: kernel)
    }
}
