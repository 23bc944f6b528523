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

    func expectFailure(_ arguments: [String], status: Int32, message: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let result = try await run("nn-train", arguments)
        #expect(result.status == status, "stderr: \(result.stderr)", sourceLocation: sourceLocation)
        #expect(result.stderr == "nn-train: \(message)\n", sourceLocation: sourceLocation)
    }

    @Test func trainsSavesHistoryAndHDF5() async throws {
        _ = try writeQuadrantIDX(in: dir)
        let model = "\(dir)/q.nnm"
        let result = try await run("nn-train", ["--data", dir, "--layers", "16,8,4", "--epochs", "3", "--lr", "0.05", "--init", "he",
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
        let back = try await run("nnconv", ["diff", model, "\(dir)/q.h5"])
        #expect(back.status == 0, "\(back.stdout)")
    }

    @Test func resumeContinuesTheRun() async throws {
        _ = try writeQuadrantIDX(in: dir)
        let model = "\(dir)/r.nnm"
        let common = ["--data", dir, "--layers", "16,8,4", "--lr", "0.05", "--momentum", "0.9", "--save", model]
        #expect(try await run("nn-train", common + ["--epochs", "2"]).status == 0)
        let resumed = try await run("nn-train", common + ["--epochs", "3", "--resume"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stdout.contains("epoch 3/3"))
        #expect(!resumed.stdout.contains("epoch 1/3"))
        #expect(try NNMFormat.read(path: model).metadata.training?.history.map(\.epoch) == [1, 2, 3])
    }

    @Test func divergenceExitsWith1AndKeepsTheCheckpoint() async throws {
        _ = try writeQuadrantIDX(in: dir)
        let model = "\(dir)/d.nnm"
        // A linear output under the quadratic loss has no saturation to save it: the loss overflows.
        let result = try await run("nn-train", ["--data", dir, "--layers", "16,8,4", "--activations", "relu,identity", "--loss", "quadratic",
                                          "--epochs", "50", "--lr", "10", "--normalize", "none", "--save", model])
        #expect(result.status == 1)
        #expect(result.stderr.hasPrefix("nn-train: training diverged: the loss became NaN or infinite in epoch "))
        if result.stderr.contains("the last good checkpoint is \(model)") {
            #expect(throws: Never.self) { try NNMFormat.read(path: model) }
        }
    }

    @Test func badOptions() async throws {
        try await expectFailure(["--lr", "0", "--save", "\(dir)/x.nnm"], status: 64, message: "--lr must be a positive number, found 0.0")
        try await expectFailure(["--batch", "0", "--save", "\(dir)/x.nnm"], status: 64, message: "--batch must be at least 1, found 0")
        try await expectFailure(["--threads", "0", "--save", "\(dir)/x.nnm"], status: 64, message: "--threads must be between 1 and 64, not 0")
        try await expectFailure(["--activations", "relu,sigmoid", "--save", "\(dir)/x.nnm"], status: 64,
                          message: "--loss cross-entropy needs a softmax output layer, but the output activation is sigmoid; use --activations ...,softmax or --loss quadratic")
        try await expectFailure(["--activations", "log_softmax,softmax", "--save", "\(dir)/x.nnm"], status: 64,
                          message: "--activations: log_softmax is only supported on the output layer, not layer 1")
        try await expectFailure(["--loss", "nll", "--save", "\(dir)/x.nnm"], status: 64,
                          message: "--loss nll needs a log_softmax output layer, but the output activation is softmax; use --activations ...,log_softmax or --loss cross-entropy")
        try await expectFailure(["--activations", "relu,log_softmax", "--loss", "quadratic", "--save", "\(dir)/x.nnm"], status: 64,
                          message: "--loss quadratic does not fit a log_softmax output (its Jacobian is not element-wise); use --loss nll or a sigmoid output")
        try await expectFailure(["--bn-momentum", "1.5", "--save", "\(dir)/x.nnm"], status: 64, message: "--bn-momentum must be in [0, 1), found 1.5")
        try await expectFailure(["--dense-bn", "--layers", "784,10", "--save", "\(dir)/x.nnm"], status: 64,
                          message: "--dense-bn needs a hidden dense layer (--layers with at least one hidden width)")
        try await expectFailure(["--activations", "leaky_relu,softmax", "--save", "\(dir)/x.nnm"], status: 64,
                          message: "--activations: unknown activation 'leaky_relu' (expected identity, relu, sigmoid, tanh, softmax, elu, selu, gelu, softplus, swish, hard_sigmoid, relu6, log_softmax, or leaky_relu(alpha=A), elu(alpha=A), relu(max_value=M), gelu(approximate=tanh))")
        try await expectFailure(["--recipe", "lenet", "--save", "\(dir)/x.nnm"], status: 64,
                          message: "The value 'lenet' is invalid for '--recipe <recipe>'. Please provide one of the following: blog, nielsen, capstone, binary, cnn, lenet5 (see 'nn-train --help')")
        try await expectFailure(["--save-h5", "\(dir)/x.hdf", "--save", "\(dir)/x.nnm"], status: 64,
                          message: "--save-h5 \(dir)/x.hdf: the file name must end in .h5")
    }

    /// Format 1.2's stages and activations train: batch normalization after a convolution and
    /// after the hidden dense layer, average pooling with padding, ELU, GELU, global max pooling.
    /// The saved model holds the moving averages, and nn-infer (which folds batch normalization)
    /// scores the test set exactly as the trainer's last evaluation did. A resumed run restores
    /// the momentum of gamma and beta.
    @Test func trainsBatchNormalizationPoolingAndNewActivations() async throws {
        let paths = try writeQuadrantIDX(in: dir)
        let model = "\(dir)/bn.nnm"
        let common = ["--data", dir, "--cnn", "conv:4:2x2:p=1:identity,bn:relu,avgpool:2:same,conv:4:2x2:elu,gmp", "--layers", "8,4",
                      "--dense-bn", "--activations", "gelu,softmax", "--momentum", "0.9", "--lr", "0.05", "--bn-momentum", "0.9",
                      "--save", model]
        let result = try await run("nn-train", common + ["--epochs", "2"])
        #expect(result.status == 0, "\(result.stderr)")
        let m = try NNMFormat.read(path: model)
        #expect(m.metadata.layers.map(\.kind) == [.conv2d, .batchNorm, .avgPool2d, .conv2d, .globalMaxPool2d, .flatten, .dense, .batchNorm, .dense])
        #expect(m.metadata.layers.map(\.activation) == [.identity, .relu, .identity, .elu(alpha: 1), .identity, .identity, .identity, .gelu(.exact), .softmax])
        #expect(m.metadata.layers[2].countIncludePad == false)
        let variance = try #require(m.tensor("layers.1.moving_variance")).floats()
        #expect(variance.count == 4 && variance != [1, 1, 1, 1], "the moving variance did not move: \(variance)")
        let accuracy = try #require(result.stdout.split(separator: "\n").last { $0.hasPrefix("final test accuracy ") })
        let infer = try await run("nn-infer", [model, paths[2], "--labels", paths[3], "--show", "0"])
        #expect(infer.status == 0, "\(infer.stderr)")
        let percent = accuracy.dropFirst("final test accuracy ".count).dropLast(2)
        #expect(infer.stdout.contains("/50 = \(percent)"), "trainer: \(accuracy); nn-infer: \(infer.stdout)")
        let resumed = try await run("nn-train", common + ["--epochs", "3", "--resume"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stdout.contains("epoch 3/3") && !resumed.stdout.contains("epoch 2/3"))
    }

    @Test func logSoftmaxWithNLLAndLeakyReLU() async throws {
        _ = try writeQuadrantIDX(in: dir)
        let model = "\(dir)/nll.nnm"
        let result = try await run("nn-train", ["--data", dir, "--layers", "16,8,4", "--activations", "leaky_relu(alpha=0.1),log_softmax",
                                          "--loss", "nll", "--epochs", "3", "--lr", "0.1", "--init", "he", "--save", model])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("16-8-4 leaky_relu(alpha=0.1)/log_softmax, nll"))
        let m = try NNMFormat.read(path: model)
        #expect(m.metadata.layers.map(\.activation) == [.leakyRelu(alpha: 0.1), .logSoftmax])
        #expect(m.metadata.training?.loss == "nll")
        let losses = (m.metadata.training?.history ?? []).compactMap { $0.trainLoss }
        #expect(losses.count == 3 && losses[2] < losses[0], "\(losses)")
    }

    /// The opening line names what runs the products: our kernels for f32 (the one NNM_KERNELS
    /// names), OpenBLAS for f64.
    @Test func namesWhatRunsTheProducts() async throws {
        _ = try writeQuadrantIDX(in: dir)
        let arguments = ["--data", dir, "--layers", "16,8,4", "--epochs", "1"]
        let f32 = try await run("nn-train", arguments + ["--save", "\(dir)/kernels32.nnm"], environment: ["NNM_KERNELS": "scalar"])
        #expect(f32.status == 0, "\(f32.stderr)")
        #expect(f32.stdout.contains(", f32 on scalar (ours, "), "\(f32.stdout)")
        let f64 = try await run("nn-train", arguments + ["--float64", "--save", "\(dir)/kernels64.nnm"])
        #expect(f64.status == 0, "\(f64.stderr)")
        #expect(f64.stdout.contains(", f64 on OpenBLAS ("), "\(f64.stdout)")
    }

    /// The lenet5 preset on (tiny, random) 28x28 images: LeNet-5's layers and 61,706 parameters.
    @Test func lenet5Preset() async throws {
        var state: UInt64 = 7
        func bytes(_ n: Int, below: Int) -> [UInt8] {
            (0..<n).map { _ in
                state = state &* 6364136223846793005 &+ 1442695040888963407
                return UInt8(Int(state >> 33) % below)
            }
        }
        let images = "\(dir)/l5-images", labels = "\(dir)/l5-labels"
        try IDXWriter.write(bytes(40 * 784, below: 256), dims: [40, 28, 28], to: images)
        try IDXWriter.write(bytes(40, below: 10), dims: [40], to: labels)
        let model = "\(dir)/lenet5.nnm"
        let result = try await run("nn-train", ["--recipe", "lenet5", "--train-images", images, "--train-labels", labels, "--epochs", "1",
                                          "--save", model])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("training conv5x5 28x28x6 tanh, avgpool2x2 14x14x6, conv5x5 10x10x16 tanh, avgpool2x2 5x5x16, flatten, 120 tanh, 84 tanh, 10 softmax, cross-entropy, momentum 0.9, lr 0.01, batch 64"), "\(result.stdout)")
        #expect(result.stdout.contains("61706 parameters"), "\(result.stdout)")
        let m = try NNMFormat.read(path: model)
        #expect(m.metadata.layers.map(\.kind) == [.conv2d, .avgPool2d, .conv2d, .avgPool2d, .flatten, .dense, .dense, .dense])
        #expect(m.metadata.training?.hyperparameters["init"] == .string("xavier"))
    }

    @Test func missingData() async throws {
        try await expectFailure(["--data", "\(dir)/nowhere", "--save", "\(dir)/x.nnm"], status: 66,
                          message: "\(dir)/nowhere/train-images-idx3-ubyte.gz: no such file (install Debian's dataset-fashion-mnist, or give --data DIR or --train-images ...)")
    }

    @Test func layerSizesThatDoNotMatchTheData() async throws {
        _ = try writeQuadrantIDX(in: dir)
        try await expectFailure(["--data", dir, "--layers", "784,10", "--save", "\(dir)/x.nnm"], status: 65,
                          message: "--layers starts with 784 inputs, but the training images are 4x4 (16 features)")
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/x.nnm"))
    }

    @Test func labelsOutsideTheClassRange() async throws {
        _ = try writeQuadrantIDX(in: dir)
        try await expectFailure(["--data", dir, "--layers", "16,3", "--save", "\(dir)/x.nnm"], status: 65,
                          message: "training label 3 at index 1 is outside the network's 3 classes (0...2); use --classes to select labels or change --layers")
    }

    @Test func labelCountThatDiffersFromImageCount() async throws {
        let paths = try writeQuadrantIDX(in: dir)
        try IDXWriter.write([UInt8](repeating: 1, count: 10), dims: [10], to: paths[1])
        try await expectFailure(["--data", dir, "--layers", "16,4", "--save", "\(dir)/x.nnm"], status: 65,
                          message: "\(paths[1]): 10 labels for the 200 images of \(paths[0])")
    }

    @Test func unwritableOutputPath() async throws {
        _ = try writeQuadrantIDX(in: dir)
        try await expectFailure(["--data", dir, "--layers", "16,4", "--epochs", "1", "--save", "/nonexistent-dir/x.nnm"], status: 73,
                          message: "/nonexistent-dir/x.nnm: cannot write: No such file or directory")
    }
}
