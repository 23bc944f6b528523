import Foundation
import NNCore
import NNEngine
import NNRandom
import NNTrain
import Testing

/// Seed 000's training loop run by NumPy on the first 1000 Fashion-MNIST training images
/// (`e2e_seed000_numpy_run_f64.h5`), and the same run by Swift's `TrainingSession` from the same
/// seed: the same z-score statistics, initial weights and permutations, then the same weights,
/// per-epoch losses and test predictions at the end.
@Suite struct EndToEndParity {
    @Test func seed000NumPyRunOnFashionMNIST() throws {
        let fx = try Fixture("e2e_seed000_numpy_run_f64")
        let imagePath = try fx.string("images"), labelPath = try fx.string("labels_file")
        let testPath = try fx.string("test_images"), testLabelPath = try fx.string("test_labels_file")
        guard FileManager.default.fileExists(atPath: imagePath) else {
            Issue.record("\(imagePath) is missing: install Debian's dataset-fashion-mnist (make setup)")
            return
        }
        let trainRange = try fx.integers("image_range"), testRange = try fx.integers("test_range")
        let train = try LabelledImages(images: imagePath, labels: labelPath).slice(trainRange[0]..<trainRange[1])
        let test = try LabelledImages(images: testPath, labels: testLabelPath).slice(testRange[0]..<testRange[1])
        expectIdentical(train.labels.map { Int($0) }, try fx.ints("labels"), "e2e training labels")
        expectIdentical(test.labels.map { Int($0) }, try fx.ints("test_labels"), "e2e test labels")

        // normalize() over the 1000 images: Swift's statistics of its training set.
        let (mean, std) = train.featureStatistics()
        expectClose(mean, try fx.doubles("mean"), Tolerance(relative: 1e-15, floorFraction: 0), "e2e mean")
        expectClose(std, try fx.doubles("std"), Tolerance(relative: 1e-15, floorFraction: 0), "e2e std")

        let sizes = try fx.layerSizes
        let recipe = TrainingRecipe(layerSizes: sizes, activations: [.relu, .softmax], loss: .crossEntropy,
                                    epochs: try fx.integer("epochs"), batchSize: try fx.integer("batch"),
                                    learningRate: try fx.double("lr"), initialization: .blog,
                                    seed: UInt32(try fx.integer("seed")))

        // The same stream as np.random.seed(seed): the initial weights, then one permutation per epoch.
        var random = NumPyRandomState(seed: recipe.seed)
        let initial = Network<Double>(recipe: recipe, random: &random)
        for l in 0..<2 {
            expectIdentical(initial.weights[l], try fx.doubles("init/W\(l + 1)"), "e2e init/W\(l + 1)")
            expectIdentical(initial.biases[l], try fx.doubles("init/b\(l + 1)"), "e2e init/b\(l + 1)")
        }
        let permutations = try fx.matrix("permutations")
        for e in 0..<recipe.epochs {
            expectIdentical(random.permutation(train.count).map(Double.init), permutations.rowSlice(e..<(e + 1)),
                            "e2e permutation of epoch \(e + 1)")
        }

        let session = TrainingSession(recipe: recipe, data: TrainingData(train: train, test: test))
        session.precision = .float64
        session.normalization = .zscore
        session.fullTrainingLoss = true  // the blog's loss over the whole training set after each epoch
        let trained = try session.run()

        expectClose(trained.tensor("preprocessing.mean")!.doubles(), try fx.doubles("mean"),
                    Tolerance(relative: 0, floorFraction: 0), "e2e stored mean")
        expectClose(trained.tensor("preprocessing.std")!.doubles(), try fx.doubles("std"),
                    Tolerance(relative: 0, floorFraction: 0), "e2e stored std")
        let network = try Network<Double>(model: trained)
        for l in 0..<2 {
            expectClose(network.weights[l], try fx.doubles("final/W\(l + 1)"), .e2e, "e2e final W\(l + 1)")
            expectClose(network.biases[l], try fx.doubles("final/b\(l + 1)"), .e2e, "e2e final b\(l + 1)")
        }
        let history = trained.metadata.training?.history ?? []
        #expect(history.count == recipe.epochs)
        expectClose(history.compactMap(\.trainLoss), try fx.doubles("epoch_losses"), .e2e, "e2e epoch losses")
        expectIdentical(history.compactMap(\.testAccuracy), try fx.doubles("epoch_test_accuracy"), "e2e per-epoch test accuracy")

        let engine = try InferenceEngine<Double>(model: trained)
        let outputs = engine.predict(raw: test.features.map { Double($0) }, count: test.count)
        expectClose(outputs, try fx.doubles("test_outputs"), .e2e, "e2e test outputs")
        expectIdentical(argmaxRows(outputs, columns: sizes.last!), try fx.ints("test_predictions"), "e2e test predictions")
    }
}
