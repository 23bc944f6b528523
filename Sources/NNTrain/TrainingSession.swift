import NNCore
import NNEngine
import NNFormat
import NNRandom

/// How raw inputs are transformed before the first layer; stored in the model.
public enum Normalization: String, CaseIterable, Sendable {
    /// Per-feature z-score with the training set's mean and std (the blog's `normalize()`).
    case zscore
    /// Multiply by 1/255 (pixels to 0...1).
    case scale
    /// Raw values.
    case none
}

/// The data of a run: training samples and optional test and validation sets.
public struct TrainingData: Sendable {
    public var train: LabelledImages
    public var test: LabelledImages?
    public var validation: LabelledImages?
    /// Output class names in label order (empty: none).
    public var classNames: [String]
    /// Description stored in the training record: name, paths, counts.
    public var description: JSONObject

    public init(train: LabelledImages, test: LabelledImages?, validation: LabelledImages? = nil,
                classNames: [String] = [], description: JSONObject = JSONObject()) {
        self.train = train
        self.test = test
        self.validation = validation
        self.classNames = classNames
        self.description = description
    }
}

/// What a session reports while it runs.
public struct BatchProgress: Sendable {
    public var epoch: Int
    public var epochs: Int
    public var batch: Int
    public var batches: Int
    public var runningLoss: Double
    public var imagesPerSecond: Double
    public var secondsRemainingInEpoch: Double
}

/// Runs a whole training: epochs of shuffled mini-batches, evaluation, history, checkpoints.
public final class TrainingSession {
    public let recipe: TrainingRecipe
    public let data: TrainingData
    public var precision: Precision = .float32
    public var normalization: Normalization = .zscore
    /// Where the model is written after every epoch (atomically), or nil.
    public var checkpointPath: String?
    /// A checkpoint to continue from: weights, optimizer state, random stream and history.
    public var resumeModel: Model?
    /// Compute the training loss and accuracy over the whole training set at the end of each
    /// epoch, as the blog code does; otherwise the loss is the mean of the epoch's batch losses.
    public var fullTrainingLoss = false
    public var tool = "nn-train \(ProjectVersion.string)"

    /// What runs the products, for reports: "avx512 (ours, 2 threads)" for f32 (the kernel
    /// `NNM_KERNELS` names, else the best), "OpenBLAS (Haswell, 2 threads)" for f64 or
    /// `NNM_KERNELS=openblas`.
    public var productKernels: String {
        let kernel = precision == .float32 ? MatrixKernel.selected.kernel : .openblas
        return kernel.productsDescription(threads: Self.productThreads(convolutional: !recipe.featureStages.isEmpty))
    }

    /// The threads the products may use. A CNN step spends most of its time outside them (im2col,
    /// pooling) on a single thread, while an idle OpenBLAS worker spins in sched_yield for the
    /// core: one thread trains a CNN 2-3x faster on this kind of machine (BENCHMARKS.md). On our
    /// kernels a second thread changed nothing measurable (the cnn preset, 6,000 images:
    /// 0.35-0.41 s against 0.36-0.37 s an epoch).
    private static func productThreads(convolutional: Bool) -> Int { convolutional ? 1 : BLAS.threadCount }
    public var onBatch: ((BatchProgress) -> Void)?
    /// Seconds between `onBatch` calls.
    public var progressInterval = 0.1
    public var onEpoch: ((EpochRecord, Model) throws -> Void)?

    public init(recipe: TrainingRecipe, data: TrainingData) {
        self.recipe = recipe
        self.data = data
    }

    /// Trains and returns the final model.
    public func run() throws -> Model {
        try recipe.validate()
        try checkData()
        switch precision {
        case .float32: return try run(Float.self)
        case .float64: return try run(Double.self)
        }
    }

    private func checkData() throws(TrainingError) {
        let features = data.train.featureCount
        _ = try recipe.modelLayers(imageShape: data.train.imageShape)
        guard data.train.count > 0 else { throw .badData("the training set is empty") }
        let outputs = recipe.layerSizes.last!
        let classes = outputs == 1 ? 2 : outputs
        for (name, set) in [("training", data.train), ("test", data.test), ("validation", data.validation)] {
            guard let set else { continue }
            guard set.featureCount == features else {
                throw .badData("the \(name) images are \(ShapeMath.describe(set.imageShape)), the training images \(ShapeMath.describe(data.train.imageShape))")
            }
            if let bad = set.labels.firstIndex(where: { $0 < 0 || Int($0) >= classes }) {
                throw .badData("\(name) label \(set.labels[bad]) at index \(bad) is outside the network's \(classes) classes (0...\(classes - 1)); use --classes to select labels or change --layers")
            }
        }
    }

    /// The model skeleton: metadata and preprocessing statistics, before weights.
    func baseModel(_ dtype: DType) throws(TrainingError) -> Model {
        var tensors: [NamedTensor] = []
        var steps: [PreprocessingStep] = []
        switch normalization {
        case .zscore:
            let (mean, std) = data.train.featureStatistics()
            let shape = [data.train.featureCount]
            tensors.append(NamedTensor("preprocessing.mean", dtype == .float64 ? Tensor(mean, shape: shape) : Tensor(mean.map(Float.init), shape: shape)))
            tensors.append(NamedTensor("preprocessing.std", dtype == .float64 ? Tensor(std, shape: shape) : Tensor(std.map(Float.init), shape: shape)))
            steps = [.zscore(mean: "preprocessing.mean", std: "preprocessing.std")]
        case .scale:
            steps = [.scale(factor: 1.0 / 255, offset: 0)]
        case .none:
            break
        }
        let layers = try recipe.modelLayers(imageShape: data.train.imageShape)
        var hyper = JSONObject([("lr", .number(recipe.learningRate)), ("batch_size", .integer(Int64(recipe.batchSize)))])
        if recipe.momentum > 0 { hyper["momentum"] = .number(recipe.momentum) }
        if recipe.l2 > 0 { hyper["l2"] = .number(recipe.l2) }
        if recipe.usesDropout {
            hyper["dropout_keep"] = .number(recipe.dropoutKeep!)
            hyper["dropout_mode"] = .string(recipe.dropoutMode.rawValue)
        }
        hyper["init"] = .string(recipe.initialization.rawValue)
        hyper["seed"] = .integer(Int64(recipe.seed))
        hyper["precision"] = .string(precision.rawValue)
        hyper["normalize"] = .string(normalization.rawValue)
        let training = TrainingRecord(loss: recipe.loss.rawValue, optimizer: recipe.momentum > 0 ? "momentum" : "sgd",
                                      hyperparameters: hyper, epochs: 0, dataset: data.description)
        let meta = ModelMetadata(input: InputSpec(shape: data.train.imageShape), layers: layers, preprocessing: steps,
                                 classes: data.classNames, training: training,
                                 provenance: Provenance(tool: tool, created: Clock.nowISO8601()))
        return Model(metadata: meta, tensors: tensors)
    }

    private func prepared<S: BLASScalar>(_ set: LabelledImages, _ preprocessor: Preprocessor<S>) -> [S] {
        var x = set.features.map { S($0) }
        x.withUnsafeMutableBufferPointer { preprocessor.apply($0.baseAddress!, count: set.count) }
        return x
    }

    private func run<S: BLASScalar>(_: S.Type) throws -> Model {
        var model = try baseModel(S.dtype)
        var random = NumPyRandomState(seed: recipe.seed)
        var network = Network<S>(recipe: recipe, layers: model.metadata.layers, random: &random)
        var history: [EpochRecord] = []
        var startEpoch = 0
        var restoredState: (weights: [[S]], biases: [[S]], step: Int)?
        if let resume = resumeModel {
            (network, history, restoredState) = try restore(from: resume, into: &model, random: &random)
            startEpoch = history.last?.epoch ?? 0
        }
        let preprocessor = Preprocessor<S>(model: model)
        let trainX = prepared(data.train, preprocessor)
        let testX = data.test.map { prepared($0, preprocessor) }
        let validationX = data.validation.map { prepared($0, preprocessor) }
        let threads = BLAS.threadCount
        BLAS.setThreadCount(Self.productThreads(convolutional: network.isConvolutional))
        defer { BLAS.setThreadCount(threads) }
        // Evaluation runs in batches of this size; convolution layers keep far more per sample.
        let evaluationBatch = network.isConvolutional ? 256 : 1024
        let trainer = Trainer<S>(network: network, recipe: recipe, maxBatch: max(recipe.batchSize, evaluationBatch))
        if let restoredState { trainer.restore(weightVelocities: restoredState.weights, biasVelocities: restoredState.biases, step: restoredState.step) }

        let n = data.train.count, features = data.train.featureCount, batch = recipe.batchSize
        let batches = (n + batch - 1) / batch
        var batchX = [S](repeating: 0, count: batch * features)
        var batchLabels = [Int32](repeating: 0, count: batch)
        var lastCheckpoint: String? = resumeModel == nil ? nil : checkpointPath

        for epoch in stride(from: startEpoch + 1, through: recipe.epochs, by: 1) {
            let order = random.permutation(n)
            let started = Clock.monotonicSeconds()
            var lastReport = started, lossSum = 0.0
            for b in 0..<batches {
                let lo = b * batch, hi = min(lo + batch, n), count = hi - lo
                trainX.withUnsafeBufferPointer { src in
                    batchX.withUnsafeMutableBufferPointer { dst in
                        for r in 0..<count {
                            (dst.baseAddress! + r * features).update(from: src.baseAddress! + order[lo + r] * features, count: features)
                        }
                    }
                }
                for r in 0..<count { batchLabels[r] = data.train.labels[order[lo + r]] }
                let batchLoss = batchX.withUnsafeBufferPointer { x in
                    batchLabels.withUnsafeBufferPointer { l in
                        trainer.trainStep(x.baseAddress!, labels: UnsafeBufferPointer(rebasing: l[0..<count]), random: &random)
                    }
                }
                guard batchLoss.isFinite else { throw TrainingError.diverged(epoch: epoch, batch: b + 1, lastCheckpoint: lastCheckpoint) }
                lossSum += batchLoss * Double(count)
                if let onBatch {
                    let now = Clock.monotonicSeconds()
                    if now - lastReport >= progressInterval || b == batches - 1 {
                        lastReport = now
                        let rate = Double(hi) / max(now - started, 1e-9)
                        onBatch(BatchProgress(epoch: epoch, epochs: recipe.epochs, batch: b + 1, batches: batches,
                                              runningLoss: lossSum / Double(hi), imagesPerSecond: rate,
                                              secondsRemainingInEpoch: Double(n - hi) / rate))
                    }
                }
            }
            let seconds = Clock.monotonicSeconds() - started
            var record = EpochRecord(epoch: epoch, trainLoss: lossSum / Double(n), seconds: seconds)
            if fullTrainingLoss {
                let (loss, accuracy) = evaluate(trainer, trainX, data.train.labels)
                record.trainLoss = loss
                record.trainAccuracy = accuracy
            }
            if let testX, let test = data.test {
                (record.testLoss, record.testAccuracy) = evaluate(trainer, testX, test.labels)
            }
            if let validationX, let validation = data.validation {
                (record.validationLoss, record.validationAccuracy) = evaluate(trainer, validationX, validation.labels)
            }
            guard record.trainLoss!.isFinite else { throw TrainingError.diverged(epoch: epoch, batch: batches, lastCheckpoint: lastCheckpoint) }
            history.append(record)
            let snapshot = self.snapshot(model, trainer: trainer, history: history, random: random)
            if let checkpointPath {
                try NNMFormat.write(snapshot, to: checkpointPath)
                lastCheckpoint = checkpointPath
            }
            try onEpoch?(record, snapshot)
            model = snapshot
        }
        if startEpoch >= recipe.epochs {
            // No epoch ran (0 epochs, or resuming a finished run): the weights still belong in the model.
            model = snapshot(model, trainer: trainer, history: history, random: random)
        }
        return model
    }

    private func evaluate<S: BLASScalar>(_ trainer: Trainer<S>, _ x: [S], _ labels: [Int32]) -> (Double, Double) {
        x.withUnsafeBufferPointer { xp in
            labels.withUnsafeBufferPointer { trainer.evaluate(xp.baseAddress!, labels: $0) }
        }
    }

    /// The model with the trainer's current weights, optimizer state, random stream and history.
    func snapshot<S: BLASScalar>(_ base: Model, trainer: Trainer<S>, history: [EpochRecord], random: NumPyRandomState) -> Model {
        var model = base
        let (_, tensors) = trainer.network.layersAndTensors()
        for t in tensors { model.setTensor(t.name, t.tensor) }
        var state: [(parameter: String, tensor: String)] = []
        if recipe.momentum > 0 {
            for l in 0..<trainer.network.layerCount {
                guard let (weight, bias) = trainer.network.parameterNames(l) else { continue }
                let w = "optimizer.velocity.\(weight)", b = "optimizer.velocity.\(bias)"
                model.setTensor(w, Network<S>.tensor(trainer.weightVelocities[l], shape: trainer.network.weightShape(l)))
                model.setTensor(b, Network<S>.tensor(trainer.biasVelocities[l], shape: [trainer.biasVelocities[l].count]))
                state += [(weight, w), (bias, b)]
            }
        }
        let rng = random.savedState
        model.setTensor(Self.randomStateTensor, rng.withUnsafeBytes { Tensor(dtype: .int64, shape: [rng.count], copying: $0) })
        model.metadata.training!.history = history
        model.metadata.training!.epochs = history.last?.epoch ?? 0
        model.metadata.training!.optimizerState = state
        model.metadata.training!.step = trainer.step
        model.metadata.training!.unknownFields["random_state"] = .string(Self.randomStateTensor)
        model.metadata.provenance.created = Clock.nowISO8601()
        return model
    }

    /// Tensor holding the NumPy-compatible random stream's state, so a resumed run draws what
    /// the uninterrupted run would have drawn.
    public static let randomStateTensor = "training.random_state"

    private func restore<S: BLASScalar>(from resume: Model, into model: inout Model, random: inout NumPyRandomState)
        throws -> (Network<S>, [EpochRecord], (weights: [[S]], biases: [[S]], step: Int)?)
    {
        let path = checkpointPath ?? "checkpoint"
        func fail(_ reason: String) -> TrainingError { .cannotResume(path: path, reason: reason) }
        let network: Network<S>
        do { network = try Network<S>(model: resume) } catch { throw fail("\(error)") }
        let expected = model.metadata.layers
        func describe(_ layers: [Layer]) -> String {
            layers.map { "\($0.kind == .dense ? "" : $0.kind.rawValue + " ")\($0.outputSize) \($0.activation)" }.joined(separator: ", ")
        }
        let sameArchitecture = network.layers.count == expected.count && zip(network.layers, expected).allSatisfy {
            $0.kind == $1.kind && $0.inputSize == $1.inputSize && $0.outputSize == $1.outputSize && $0.activation == $1.activation
                && $0.spatial?.outputShape == $1.spatial?.outputShape && $0.spatial?.window == $1.spatial?.window
                && $0.spatial?.strides == $1.spatial?.strides && $0.spatial?.padding == $1.spatial?.padding
        }
        guard sameArchitecture else {
            throw fail("the checkpoint's layers are [\(describe(network.layers))], the recipe's [\(describe(expected))]")
        }
        guard let training = resume.metadata.training else { throw fail("the model has no training record") }
        // Keep the checkpoint's preprocessing statistics: the network was trained on them.
        model.metadata.preprocessing = resume.metadata.preprocessing
        model.tensors.removeAll { $0.name.hasPrefix("preprocessing.") }
        for t in resume.tensors where t.name.hasPrefix("preprocessing.") { model.setTensor(t.name, t.tensor) }
        if let stateTensor = resume.tensor(Self.randomStateTensor), stateTensor.dtype == .int64,
           let restored = NumPyRandomState(savedState: stateTensor.bytes.withMemoryRebound(to: Int64.self) { Array($0) }) {
            random = restored
        } else {
            throw fail("the checkpoint has no random stream state (\(Self.randomStateTensor))")
        }
        var velocities: (weights: [[S]], biases: [[S]], step: Int)?
        if recipe.momentum > 0 {
            var w: [[S]] = [], b: [[S]] = []
            for l in network.layers.indices {
                guard let (weight, bias) = network.parameterNames(l) else {
                    w.append([])
                    b.append([])
                    continue
                }
                guard let vw = training.optimizerState.first(where: { $0.parameter == weight }).flatMap({ resume.tensor($0.tensor) }),
                      let vb = training.optimizerState.first(where: { $0.parameter == bias }).flatMap({ resume.tensor($0.tensor) }) else {
                    throw fail("the checkpoint has no momentum velocities for \(weight)")
                }
                w.append(S.values(of: vw))
                b.append(S.values(of: vb))
            }
            velocities = (w, b, training.step)
        } else {
            velocities = (network.weights.map { [S](repeating: 0, count: $0.count) }, network.biases.map { [S](repeating: 0, count: $0.count) }, training.step)
        }
        return (network, training.history, velocities)
    }
}
