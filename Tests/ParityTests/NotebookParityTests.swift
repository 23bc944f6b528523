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
/// The notebook's Y is real-valued (randn): the trainer is driven with `.values` targets, and its
/// cost, gradients, one update and the ten `train_loop` losses must match the notebook.
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

    @Test func seed003NotebookCostGradientsAndTrainLoop() throws {
        let fx = try Fixture("columns_binary_square_f64")
        let g = "seed_003_check/"
        let x = Matrix(rows: 2, cols: 3, values: try fx.doubles("\(g)X")).transposed.values
        let y = try fx.doubles("\(g)Y")  // (1, 3): one output, so rows and columns coincide
        let recipe = TrainingRecipe(layerSizes: [2, 10, 1], activations: [.sigmoid, .sigmoid], loss: .quadratic,
                                    epochs: 10, batchSize: 3, learningRate: 0.01, initialization: .course)
        let network = Network<Double>(layerSizes: [2, 10, 1], activations: [.sigmoid, .sigmoid],
                                      weights: [try fx.weight("\(g)W1"), try fx.weight("\(g)W2")],
                                      biases: [try fx.bias("\(g)b1"), try fx.bias("\(g)b2")])
        let trainer = Trainer<Double>(network: network, recipe: recipe, maxBatch: 3)
        var unused = NumPyRandomState(seed: 0)
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeBufferPointer { yp in
                trainer.forward(xp.baseAddress!, count: 3, training: false, random: &unused)
                // The notebook printed "cost = 0.5239053069310721".
                expectClose([trainer.loss(.values(yp.baseAddress!))], [try! fx.scalar("\(g)printed_cost")], .f64, "seed 003 cost")
                trainer.backward(xp.baseAddress!, .values(yp.baseAddress!))
            }
        }
        expectClose(trainer.weightGradient(0), try fx.weight("\(g)dW1"), .f64, "seed 003 dW1")
        expectClose(trainer.weightGradient(1), try fx.weight("\(g)dW2"), .f64, "seed 003 dW2")
        expectClose(trainer.biasGradient(0), try fx.bias("\(g)db1"), .f64, "seed 003 db1")
        expectClose(trainer.biasGradient(1), try fx.bias("\(g)db2"), .f64, "seed 003 db2")
        trainer.update()
        expectClose(trainer.network.weights[0], try fx.weight("\(g)after/W1"), .f64, "seed 003 W1 after update_parameters(lr 0.01)")
        expectClose(trainer.network.biases[1], try fx.bias("\(g)after/b2"), .f64, "seed 003 b2 after update_parameters(lr 0.01)")

        // train_loop(X, Y, 10, 0.01, 10): full-batch steps from its own initialisation.
        let start = Network<Double>(layerSizes: [2, 10, 1], activations: [.sigmoid, .sigmoid],
                                    weights: [try fx.weight("\(g)train_loop/start/W1"), try fx.weight("\(g)train_loop/start/W2")],
                                    biases: [try fx.bias("\(g)train_loop/start/b1"), try fx.bias("\(g)train_loop/start/b2")])
        let loop = Trainer<Double>(network: start, recipe: recipe, maxBatch: 3)
        var losses: [Double] = []
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeBufferPointer { yp in
                for _ in 0..<10 { losses.append(loop.trainStep(xp.baseAddress!, .values(yp.baseAddress!), count: 3, random: &unused)) }
            }
        }
        // The notebook printed these ten losses with all their digits.
        expectClose(losses, try fx.doubles("\(g)printed_train_loop_losses"), Tolerance(relative: 1e-12, floorFraction: 0), "seed 003 train_loop losses")
        expectClose(loop.network.weights[0], try fx.weight("\(g)train_loop/final/W1"), .f64Steps, "seed 003 train_loop final W1")
    }
}
