import Foundation
import NNCore
import NNEngine
import NNFormat
import NNRandom
import Testing
@testable import NNTrain

/// 300 "images" of 4x4 pixels in 0...255 whose label depends on which quadrant is brightest.
func quadrantData(count: Int, seed: UInt32) -> LabelledImages {
    var random = NumPyRandomState(seed: seed)
    var features: [Float] = [], labels: [Int32] = []
    for _ in 0..<count {
        let label = random.randint(low: 0, high: 4)
        for r in 0..<4 {
            for c in 0..<4 {
                let quadrant = (r / 2) * 2 + c / 2
                features.append(Float(Int(random.uniform() * 100) + (quadrant == label ? 150 : 0)))
            }
        }
        labels.append(Int32(label))
    }
    return LabelledImages(features: features, labels: labels, imageShape: [4, 4])
}

func sessionTemporaryPath(_ name: String) -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("nnm-train-\(UUID().uuidString)")
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir.appendingPathComponent(name).path
}

func capstoneLike(epochs: Int) -> TrainingRecipe {
    TrainingRecipe(layerSizes: [16, 12, 8, 4], activations: [.relu, .relu, .softmax], loss: .crossEntropy, epochs: epochs,
                   batchSize: 16, learningRate: 0.05, momentum: 0.9, l2: 0.001, dropoutKeep: 0.8, initialization: .he, seed: 7)
}

@Suite struct Sessions {
    let data = TrainingData(train: quadrantData(count: 300, seed: 1), test: quadrantData(count: 100, seed: 2))

    @Test func learnsAnEasyProblem() throws {
        let model = try TrainingSession(recipe: capstoneLike(epochs: 8), data: data).run()
        let last = model.metadata.training!.history.last!
        #expect(last.testAccuracy! > 0.9, "test accuracy \(last.testAccuracy!)")
        #expect(model.metadata.training!.history.count == 8)
        #expect(model.metadata.training!.step == 8 * 19)
    }

    @Test func sameSeedGivesBitIdenticalWeights() throws {
        let a = try TrainingSession(recipe: capstoneLike(epochs: 2), data: data).run()
        let b = try TrainingSession(recipe: capstoneLike(epochs: 2), data: data).run()
        for t in a.tensors where t.name.hasPrefix("layers.") {
            #expect(t.tensor.isBitIdentical(to: b.tensor(t.name)!), "\(t.name)")
        }
    }

    @Test(arguments: [Precision.float32, .float64])
    func resumingContinuesExactlyWhereTheRunStopped(precision: Precision) throws {
        let straight = TrainingSession(recipe: capstoneLike(epochs: 3), data: data)
        straight.precision = precision
        let full = try straight.run()

        let path = sessionTemporaryPath("resume.nnm")
        let first = TrainingSession(recipe: capstoneLike(epochs: 2), data: data)
        first.precision = precision
        first.checkpointPath = path
        _ = try first.run()
        let second = TrainingSession(recipe: capstoneLike(epochs: 3), data: data)
        second.precision = precision
        second.checkpointPath = path
        second.resumeModel = try NNMFormat.read(path: path)
        let resumed = try second.run()

        #expect(resumed.metadata.training!.history.map(\.epoch) == [1, 2, 3])
        #expect(resumed.metadata.training!.step == full.metadata.training!.step)
        for t in full.tensors where !t.name.hasPrefix("training.") {
            #expect(t.tensor.isBitIdentical(to: resumed.tensor(t.name)!), "\(t.name)")
        }
    }

    @Test func checkpointFileHoldsVelocitiesAndHistory() throws {
        let path = sessionTemporaryPath("checkpoint.nnm")
        let session = TrainingSession(recipe: capstoneLike(epochs: 2), data: data)
        session.checkpointPath = path
        _ = try session.run()
        let model = try NNMFormat.read(path: path)
        let training = model.metadata.training!
        #expect(training.history.count == 2)
        #expect(training.optimizer == "momentum")
        #expect(training.optimizerState.count == 6)
        #expect(model.tensor("optimizer.velocity.layers.0.weight")?.shape == [16, 12])
        #expect(training.hyperparameters["dropout_keep"] == .number(0.8))
    }

    @Test func layerSizesThatDoNotMatchTheData() {
        var r = capstoneLike(epochs: 1)
        r.layerSizes = [10, 12, 8, 4]
        #expect(throws: TrainingError.badData("--layers starts with 10 inputs, but the training images are 4x4 (16 features)")) {
            try TrainingSession(recipe: r, data: data).run()
        }
    }

    @Test func labelsOutsideTheOutputs() {
        var r = capstoneLike(epochs: 1)
        r.layerSizes = [16, 12, 8, 3]
        #expect(throws: TrainingError.self) { try TrainingSession(recipe: r, data: data).run() }
        do {
            try _ = TrainingSession(recipe: r, data: data).run()
        } catch {
            #expect("\(error)".hasSuffix("is outside the network's 3 classes (0...2); use --classes to select labels or change --layers"))
        }
    }

    @Test func divergenceStopsWithTheLastCheckpointKept() throws {
        let path = sessionTemporaryPath("diverge.nnm")
        var r = capstoneLike(epochs: 30)
        r.learningRate = 1e6
        r.momentum = 0.99
        r.dropoutKeep = nil
        let session = TrainingSession(recipe: r, data: data)
        session.normalization = .none
        session.checkpointPath = path
        do {
            _ = try session.run()
            Issue.record("training with lr 1e6 did not diverge")
        } catch let error as TrainingError {
            guard case let .diverged(epoch, _, checkpoint) = error else { Issue.record("\(error)"); return }
            if epoch > 1 {
                #expect(checkpoint == path)
                let kept = try NNMFormat.read(path: path)
                #expect(kept.metadata.training!.history.count == epoch - 1)
            } else {
                #expect(checkpoint == nil)
            }
        }
    }
}
