import ArgumentParser
import NNCommandLine
import NNCore
import NNData
import NNEngine
import NNFormat
import NNImage
import NNConvert
import NNModelFiles
import NNTrain

/// `nn-train --save model.nnm`: train an MLP or a small CNN with the blog recipes.
struct NNTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nn-train",
        abstract: "Train a multilayer perceptron or a small CNN with the NumPy blog recipes on IDX files, folders of pictures, Kaggle CSV or .npy; save .nnm (and HDF5).",
        discussion: """
            Defaults: Fashion-MNIST from /usr/share/datasets/fashion-mnist and the seed 000 recipe \
            (784-256-10, ReLU/softmax, cross-entropy, SGD lr 0.1, batch 64, z-score inputs). \
            --recipe picks another source document's recipe; explicit options override it. \
            The model is checkpointed atomically after every epoch; the history goes to MODEL.history.csv and .svg.
            Exit status: 0 success, 1 training diverged, 64 usage, 65 bad data, 66 missing input, 69 OpenBLAS cannot be loaded, 73/74 cannot write.
            """)

    @Option(help: "Recipe preset: blog (seed 000), nielsen (001), capstone (002), binary (003), cnn (002's simple CNN), lenet5 (LeNet-5, Keras-tutorial form).") var recipe: RecipePreset = .blog
    @Option(help: "Directory with the four standard IDX files.") var data: String?
    @Option(help: "Training samples: IDX images (gzip or not), a folder with one sub-folder of pictures per class (the class names), a Kaggle CSV with a label column, or a .npy of images (N,28,28) or (N,784).") var trainImages: String?
    @Option(help: "Training labels: IDX, or a .npy of integers, for IDX or .npy images.") var trainLabels: String?
    @Option(help: "Test samples, as --train-images (a class folder's sub-folders must be classes of the training folder).") var testImages: String?
    @Option(help: "Test labels, as --train-labels.") var testLabels: String?
    @Option(help: "Test on the last N training samples instead (and train on the others), e.g. 2000 of MNIST's 10,000 test digits.") var testLast: Int?
    @Option(help: "Shape of one sample for pictures, CSV rows and .npy arrays (IDX files carry theirs).") var inputShape: String = "28x28"
    @Option(help: "How pictures become samples: mnist (LeCun's procedure), fit (scale and pad) or none (exact size); default as nn-infer: mnist for 28x28.") var preprocess: PreprocessMode?
    @Option(help: "Layer sizes, input to output, e.g. 784,256,10 (with --cnn: the dense widths after flattening, e.g. 10).") var layers: String?
    @Option(help: "Convolution and pooling stages before the dense layers, e.g. conv:8:3x3:relu,pool:2 (conv:FILTERS:HxW[:s=S][:same|p=P][:ACT], pool:N[:s=S][:same|p=P], avgpool:N[:s=S][:same|p=P][:include-pad|exclude-pad], bn[:eps=E][:ACT], gap, gmp).") var cnn: String?
    @Option(help: "One activation per dense layer: identity, relu, sigmoid, tanh, softmax, leaky_relu(alpha=A), elu, selu, gelu, gelu(approximate=tanh), softplus, swish, hard_sigmoid, relu6, relu(max_value=M), log_softmax (output, with --loss nll).") var activations: String?
    @Option(help: "cross-entropy (softmax output), nll (log_softmax output) or quadratic.") var loss: Loss?
    @Flag(help: "Batch normalization after every hidden dense layer (which then applies its activation).") var denseBn = false
    @Option(help: "Batch normalization's moving-average momentum: moving = m * moving + (1 - m) * batch (Keras's convention; default 0.99).") var bnMomentum: Double?
    @Option(help: "Epochs (total, when resuming).") var epochs: Int?
    @Option(help: "Mini-batch size.") var batch: Int?
    @Option(help: "Learning rate.") var lr: Double?
    @Option(help: "Momentum coefficient mu (0: plain SGD).") var momentum: Double?
    @Option(help: "L2 strength lambda (gradient 2*lambda*W on weights).") var l2: Double?
    @Option(help: "Dropout keep probability for hidden layers (1: off).") var dropoutKeep: Double?
    @Option(help: "inverted (default) or blog (the capstone's unscaled masks, for parity).") var dropoutMode: DropoutMode?
    @Option(help: "Weight initialization: blog, nielsen, course, he, xavier.") var `init`: Initialization?
    @Option(help: "Input preprocessing: zscore, scale (1/255) or none.") var normalize: Normalization?
    @Option(help: "Use only the first N training images.") var limit: Int?
    @Option(help: "Train on these labels only, relabelled 0..k-1, e.g. 0,1.") var classes: String?
    @Option(help: "Hold out this fraction of the training set for validation.") var validation: Double?
    @Option(help: "Seed of the NumPy-compatible random stream (np.random.seed).") var seed: UInt32 = 0
    @Flag(help: "Compute in f64 instead of f32.") var float64 = false
    @OptionGroup var threadOptions: ThreadOptions
    @Flag(help: "Evaluate the loss on the whole training set after each epoch, as the blog does.") var fullTrainLoss = false
    @Option(help: "Comma-separated class names stored in the model.") var classNames: String?
    @Option(help: "Where to write the model (.nnm).") var save: String
    @Option(help: "Also write the model as HDF5 for h5py/NumPy code (W1, b1, ... in rows layout).") var saveH5: String?
    @Flag(help: "Continue from the model at --save: weights, optimizer state, random stream, history.") var resume = false

    func run() throws {
        try reportingErrors(tool: "nn-train") {
            try threadOptions.apply()
            let preset = recipe
            var overrides = RecipeOverrides()
            if let cnn { overrides.featureStages = try FeatureStage.parseList(cnn) }
            if let layers { overrides.denseWidths = try parseIntegerList(layers, option: "--layers") }
            if let activations { overrides.activations = try parseActivations(activations) }
            overrides.loss = loss
            overrides.epochs = epochs
            overrides.batchSize = batch
            overrides.learningRate = lr
            overrides.momentum = momentum
            overrides.l2 = l2
            overrides.dropoutKeep = dropoutKeep
            overrides.dropoutMode = dropoutMode
            overrides.initialization = `init`
            overrides.batchNormMomentum = bnMomentum
            if denseBn { overrides.denseBatchNorm = true }
            overrides.seed = seed
            var r = try overrides.applied(to: preset)
            if let saveH5, !(saveH5.hasSuffix(".h5") || saveH5.hasSuffix(".hdf5")) {
                throw ToolError("--save-h5 \(saveH5): the file name must end in .h5", status: ExitStatus.usage)
            }

            var files: DataFiles
            if let trainImages {
                files = DataFiles(trainImages: trainImages, trainLabels: trainLabels, testImages: testImages, testLabels: testLabels)
            } else {
                files = try DataFiles(directory: data ?? DefaultData.directory)
            }
            files.inputShape = try parseShape(inputShape, option: "--input-shape")
            files.preprocess = preprocess
            if let testLast {
                // The default directory's test files give way to the split.
                if trainImages == nil { files.testImages = nil; files.testLabels = nil }
                files.testLast = testLast
            }
            let selected = try classes.map { try parseIntegerList($0, option: "--classes") } ?? preset.classes
            let names = classNames.map { $0.split(separator: ",").map(String.init) }
            let trainingData = try files.load(classes: selected, limit: limit, validationFraction: validation, classNames: names)
            if !r.featureStages.isEmpty { r.layerSizes[0] = try r.flattenedFeatures(imageShape: trainingData.train.imageShape) }

            let session = TrainingSession(recipe: r, data: trainingData)
            session.precision = float64 ? .float64 : .float32
            session.normalization = normalize ?? preset.normalization
            session.checkpointPath = save
            session.fullTrainingLoss = fullTrainLoss
            if resume { session.resumeModel = try NNMFormat.read(path: save) }
            let progress = TrainingProgressPrinter()
            session.onBatch = progress.batch
            session.onEpoch = { record, model in
                progress.epoch(record, epochs: r.epochs)
                try HistoryFiles.write(model.metadata.training?.history ?? [], besideModel: save,
                                       title: "\(save): \(describe(model))")
            }
            let architecture = r.featureStages.isEmpty
                ? "\(r.layerSizes.map(String.init).joined(separator: "-")) \(r.activations.map(\.description).joined(separator: "/"))"
                : ((try? r.modelLayers(imageShape: trainingData.train.imageShape))?.map(\.shortSummary).joined(separator: ", ") ?? "")
            print("training \(architecture), \(r.loss.rawValue), \(r.momentum > 0 ? "momentum \(r.momentum)" : "SGD"), lr \(r.learningRate), batch \(r.batchSize), \(session.precision.rawValue) on \(session.productKernels), on \(trainingData.train.count) images from \(files.trainImages)")
            let started = Clock.monotonicSeconds()
            let model = try session.run()
            try NNMFormat.write(model, to: save)
            let history = model.metadata.training?.history ?? []
            let trainSeconds = history.compactMap(\.seconds).reduce(0, +)
            print("saved \(save) (\(describe(model))); \(history.count) epochs, \(formatDecimal(trainSeconds, digits: 2)) s training, \(formatDecimal(Clock.monotonicSeconds() - started, digits: 2)) s total")
            if let last = history.last, let accuracy = last.testAccuracy {
                print("final test accuracy \(formatDecimal(accuracy * 100, digits: 2)) %")
            }
            if let saveH5 {
                _ = try ModelFiles.export(try ValidatedModel(model), to: saveH5, options: ExportOptions(layout: .rows))
                print("saved \(saveH5) (HDF5, rows layout: W1, b1, W2, b2, ...)")
            }
        }
    }
}

// The recipes' choices as argument types: ArgumentParser lists them in --help and refuses
// others before anything runs.
extension RecipePreset: ExpressibleByArgument {}
extension Loss: ExpressibleByArgument {}
extension DropoutMode: ExpressibleByArgument {}
extension Initialization: ExpressibleByArgument {}
extension Normalization: ExpressibleByArgument {}

runCommandLine(NNTrain.self, tool: "nn-train")
