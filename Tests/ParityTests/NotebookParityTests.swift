import NNCore
import NNEngine
import NNRandom
import NNTrain
import Testing

/// Seed 003's notebook from the top, as stored in `seed_003_check` (the generator asserts every
/// number the notebook printed): `np.random.seed(1)`, `X = randn(2, 3)`, `Y = randn(1, 3)`,
/// `initialize_parameters(2, 10, 1)`, the forward pass, and `train_loop`'s second initialisation
/// from the same stream.
///
/// The notebook's Y is real-valued (randn), and the trainer's `loss(labels:)` and
/// `backward(_:labels:)` take integer labels only, so its cost, gradients and training losses
/// cannot be driven through the trainer; they stay in the fixture for when targets can be given.
@Suite struct NotebookParity {
    @Test func seed003NotebookFromTheTop() throws {
        let fx = try Fixture("columns_binary_square_f64")
        let g = "seed_003_check/"
        var random = NumPyRandomState(seed: 1)
        let x = random.randn(count: 6), y = random.randn(count: 3)
        expectIdentical(x, try fx.doubles("\(g)X"), "seed_003_check X = np.random.randn(2, 3) after np.random.seed(1)")
        expectIdentical(y, try fx.doubles("\(g)Y"), "seed_003_check Y = np.random.randn(1, 3)")

        let recipe = TrainingRecipe(layerSizes: [2, 10, 1], activations: [.sigmoid, .sigmoid], loss: .quadratic,
                                    epochs: 10, batchSize: 3, learningRate: 0.01, initialization: .course)
        let network = Network<Double>(recipe: recipe, random: &random)
        // The group is in the column convention of its file: weight() transposes W (out, in).
        expectIdentical(network.weights[0], try fx.weight("\(g)W1"), "seed_003_check W1 = randn(10, 2) / sqrt(2)")
        expectIdentical(network.weights[1], try fx.weight("\(g)W2"), "seed_003_check W2 = randn(1, 10) / sqrt(10)")
        expectIdentical(network.biases[0] + network.biases[1], try fx.bias("\(g)b1") + fx.bias("\(g)b2"), "seed_003_check zero biases")

        let trainer = Trainer<Double>(network: network, recipe: recipe, maxBatch: 3)
        let rows = Matrix(rows: 2, cols: 3, values: x).transposed
        var unused = NumPyRandomState(seed: 0)
        trainer.forward(rows.values, count: 3, training: false, random: &unused)
        var means: [Double] = []
        for (l, name) in [(0, "1"), (1, "2")] {
            let z = trainer.preActivations(l), a = trainer.activations(l)
            expectClose(z, try fx.sampleRows("\(g)Z\(name)").values, .f64, "seed_003_check Z\(name)")
            expectClose(a, try fx.sampleRows("\(g)A\(name)").values, .f64, "seed_003_check A\(name)")
            means += [z.reduce(0, +) / Double(z.count), a.reduce(0, +) / Double(a.count)]
        }
        // The notebook printed np.mean of Z1, A1, Z2, A2 with all 17 digits.
        expectClose(means, try fx.doubles("\(g)printed_means"), Tolerance(relative: 1e-14, floorFraction: 0),
                    "seed_003_check means vs the notebook's printout")

        // train_loop initialises again, continuing the same stream.
        let second = Network<Double>(recipe: recipe, random: &random)
        expectIdentical(second.weights[0], try fx.weight("\(g)train_loop/start/W1"), "seed_003_check train_loop W1")
        expectIdentical(second.weights[1], try fx.weight("\(g)train_loop/start/W2"), "seed_003_check train_loop W2")
    }
}
