import Foundation
import NNCore
import NNData
import NNFormat
import Testing

/// Writes a tiny 4-class problem as IDX files: 4x4 images whose brightest quadrant is the label.
func writeQuadrantIDX(in dir: String, train: Int = 200, test: Int = 50) throws -> [String] {
    var state: UInt64 = 42
    func next() -> Int {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Int(state >> 33)
    }
    func make(_ n: Int) -> ([UInt8], [UInt8]) {
        var images: [UInt8] = [], labels: [UInt8] = []
        for _ in 0..<n {
            let label = next() % 4
            for r in 0..<4 {
                for c in 0..<4 { images.append(UInt8(next() % 100 + ((r / 2) * 2 + c / 2 == label ? 150 : 0))) }
            }
            labels.append(UInt8(label))
        }
        return (images, labels)
    }
    let (trainImages, trainLabels) = make(train), (testImages, testLabels) = make(test)
    let paths = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"].map { "\(dir)/\($0)" }
    try IDXWriter.write(trainImages, dims: [train, 4, 4], to: paths[0])
    try IDXWriter.write(trainLabels, dims: [train], to: paths[1])
    try IDXWriter.write(testImages, dims: [test, 4, 4], to: paths[2])
    try IDXWriter.write(testLabels, dims: [test], to: paths[3])
    return paths
}

@Suite(.serialized) struct TrainCLI {
    let dir = temporaryDirectory()

    func expectFailure(_ arguments: [String], status: Int32, message: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let result = try run("nn-train", arguments)
        #expect(result.status == status, "stderr: \(result.stderr)", sourceLocation: sourceLocation)
        #expect(result.stderr == "nn-train: \(message)\n", sourceLocation: sourceLocation)
    }

    @Test func trainsSavesHistoryAndHDF5() throws {
        _ = try writeQuadrantIDX(in: dir)
        let model = "\(dir)/q.nnm"
        let result = try run("nn-train", ["--data", dir, "--layers", "16,8,4", "--epochs", "3", "--lr", "0.05", "--init", "he",
                                          "--save", model, "--save-h5", "\(dir)/q.h5"])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n")
        #expect(lines.filter { $0.hasPrefix("epoch ") }.count == 3)
        #expect(lines.contains { $0.hasPrefix("saved \(model) (16-8-4 relu/softmax, f32, 172 parameters); 3 epochs") })
        let csv = try String(contentsOfFile: "\(dir)/q.history.csv", encoding: .utf8).split(separator: "\n")
        #expect(csv.first == "epoch,train_loss,train_accuracy,test_loss,test_accuracy,validation_loss,validation_accuracy,seconds")
        #expect(csv.count == 4)
        let svg = try String(contentsOfFile: "\(dir)/q.history.svg", encoding: .utf8)
        #expect(svg.hasPrefix("<svg ") && svg.contains("<polyline"))
        let m = try NNMFormat.read(path: model)
        #expect(m.metadata.training?.history.count == 3)
        #expect(m.metadata.preprocessing == [.zscore(mean: "preprocessing.mean", std: "preprocessing.std")])
        // The HDF5 export converts back to the same model.
        let back = try run("nnconv", ["diff", model, "\(dir)/q.h5"])
        #expect(back.status == 0, "\(back.stdout)")
    }

    @Test func resumeContinuesTheRun() throws {
        _ = try writeQuadrantIDX(in: dir)
        let model = "\(dir)/r.nnm"
        let common = ["--data", dir, "--layers", "16,8,4", "--lr", "0.05", "--momentum", "0.9", "--save", model]
        #expect(try run("nn-train", common + ["--epochs", "2"]).status == 0)
        let resumed = try run("nn-train", common + ["--epochs", "3", "--resume"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stdout.contains("epoch 3/3"))
        #expect(!resumed.stdout.contains("epoch 1/3"))
        #expect(try NNMFormat.read(path: model).metadata.training?.history.map(\.epoch) == [1, 2, 3])
    }

    @Test func divergenceExitsWith1AndKeepsTheCheckpoint() throws {
        _ = try writeQuadrantIDX(in: dir)
        let model = "\(dir)/d.nnm"
        // A linear output under the quadratic loss has no saturation to save it: the loss overflows.
        let result = try run("nn-train", ["--data", dir, "--layers", "16,8,4", "--activations", "relu,identity", "--loss", "quadratic",
                                          "--epochs", "50", "--lr", "10", "--normalize", "none", "--save", model])
        #expect(result.status == 1)
        #expect(result.stderr.hasPrefix("nn-train: training diverged: the loss became NaN or infinite in epoch "))
        if result.stderr.contains("the last good checkpoint is \(model)") {
            #expect(throws: Never.self) { try NNMFormat.read(path: model) }
        }
    }

    @Test func badOptions() throws {
        try expectFailure(["--lr", "0", "--save", "\(dir)/x.nnm"], status: 64, message: "--lr must be a positive number, found 0.0")
        try expectFailure(["--batch", "0", "--save", "\(dir)/x.nnm"], status: 64, message: "--batch must be at least 1, found 0")
        try expectFailure(["--threads", "0", "--save", "\(dir)/x.nnm"], status: 64, message: "--threads must be between 1 and 64, not 0")
        try expectFailure(["--activations", "relu,sigmoid", "--save", "\(dir)/x.nnm"], status: 64,
                          message: "--loss cross-entropy needs a softmax output layer, but the output activation is sigmoid; use --activations ...,softmax or --loss quadratic")
        try expectFailure(["--activations", "swish,softmax", "--save", "\(dir)/x.nnm"], status: 64,
                          message: "--activations: the trainer does not support swish (it supports identity, relu, sigmoid, tanh, softmax); models with it can be converted and run, not trained")
        try expectFailure(["--activations", "leaky_relu,softmax", "--save", "\(dir)/x.nnm"], status: 64,
                          message: "--activations: unknown activation 'leaky_relu' (expected identity, relu, sigmoid, tanh, softmax, elu, selu, gelu, softplus, swish, hard_sigmoid, relu6, log_softmax, or leaky_relu(alpha=A), elu(alpha=A), relu(max_value=M), gelu(approximate=tanh))")
        try expectFailure(["--recipe", "lenet", "--save", "\(dir)/x.nnm"], status: 64,
                          message: "The value 'lenet' is invalid for '--recipe <recipe>'. Please provide one of 'blog', 'nielsen', 'capstone', 'binary' or 'cnn' (see 'nn-train --help')")
        try expectFailure(["--save-h5", "\(dir)/x.hdf", "--save", "\(dir)/x.nnm"], status: 64,
                          message: "--save-h5 \(dir)/x.hdf: the file name must end in .h5")
    }

    @Test func missingData() throws {
        try expectFailure(["--data", "\(dir)/nowhere", "--save", "\(dir)/x.nnm"], status: 66,
                          message: "\(dir)/nowhere/train-images-idx3-ubyte.gz: no such file (install Debian's dataset-fashion-mnist, or give --data DIR or --train-images ...)")
    }

    @Test func layerSizesThatDoNotMatchTheData() throws {
        _ = try writeQuadrantIDX(in: dir)
        try expectFailure(["--data", dir, "--layers", "784,10", "--save", "\(dir)/x.nnm"], status: 65,
                          message: "--layers starts with 784 inputs, but the training images are 4x4 (16 features)")
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/x.nnm"))
    }

    @Test func labelsOutsideTheClassRange() throws {
        _ = try writeQuadrantIDX(in: dir)
        try expectFailure(["--data", dir, "--layers", "16,3", "--save", "\(dir)/x.nnm"], status: 65,
                          message: "training label 3 at index 1 is outside the network's 3 classes (0...2); use --classes to select labels or change --layers")
    }

    @Test func labelCountThatDiffersFromImageCount() throws {
        let paths = try writeQuadrantIDX(in: dir)
        try IDXWriter.write([UInt8](repeating: 1, count: 10), dims: [10], to: paths[1])
        try expectFailure(["--data", dir, "--layers", "16,4", "--save", "\(dir)/x.nnm"], status: 65,
                          message: "\(paths[1]): 10 labels for the 200 images of \(paths[0])")
    }

    @Test func unwritableOutputPath() throws {
        _ = try writeQuadrantIDX(in: dir)
        try expectFailure(["--data", dir, "--layers", "16,4", "--epochs", "1", "--save", "/nonexistent-dir/x.nnm"], status: 73,
                          message: "/nonexistent-dir/x.nnm: cannot write: No such file or directory")
    }
}
