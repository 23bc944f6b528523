import NNCore
import NNData
import NNImage

#if canImport(Glibc)
import Glibc
#endif

/// Named starting points: the recipes of the four source documents.
public enum RecipePreset: String, CaseIterable, Sendable {
    /// Seed 000: 784-256-10 ReLU/softmax, cross-entropy, lr 0.1, batch 64, blog init, z-score.
    case blog
    /// Seed 001: Nielsen's 784-30-10 sigmoid network, quadratic cost, lr 3.0, batch 10.
    case nielsen
    /// Seed 002: the 784-256-128-10 capstone with momentum 0.9, L2 and dropout. The blog's own
    /// hyper-parameters (lr 0.1, L2 0.01, keep 0.8 without rescaling) diverge on the full set:
    /// this preset uses lr 0.01, L2 1e-4 and inverted dropout, which converge; `--dropout-mode blog
    /// --lr 0.1 --l2 0.01` reproduces the blog.
    case capstone
    /// Seed 003: 784-10-1 sigmoid/sigmoid, square loss, classes 0 and 1, pixels / 255.
    case binary
    /// Seed 002's "simple CNN": 8 filters 3x3 + ReLU, 2x2 max pooling, dense softmax output;
    /// He initialization, momentum 0.9 with lr 0.01, batch 64, z-score inputs, 10 epochs.
    case cnn
    /// LeNet-5 in the Keras-tutorial form on 28x28 images: conv 6 5x5 'same' + tanh, 2x2
    /// average pooling, conv 16 5x5 valid + tanh, 2x2 average pooling, dense 120 and 84 tanh,
    /// 10 softmax; Glorot (Xavier) normal initialization, momentum 0.9 with lr 0.01, batch 64,
    /// z-score inputs, 10 epochs. No batch normalization (LeNet-5 has none; `--cnn ... ,bn` and
    /// `--dense-bn` add it).
    case lenet5

    public var recipe: TrainingRecipe {
        switch self {
        case .blog:
            return .blog2Layer
        case .nielsen:
            return TrainingRecipe(layerSizes: [784, 30, 10], activations: [.sigmoid, .sigmoid], loss: .quadratic, epochs: 20,
                                  batchSize: 10, learningRate: 3.0, initialization: .nielsen)
        case .capstone:
            return TrainingRecipe(layerSizes: [784, 256, 128, 10], activations: [.relu, .relu, .softmax], loss: .crossEntropy,
                                  epochs: 20, batchSize: 64, learningRate: 0.01, momentum: 0.9, l2: 1e-4, dropoutKeep: 0.8,
                                  dropoutMode: .inverted, initialization: .blog)
        case .binary:
            return TrainingRecipe(layerSizes: [784, 10, 1], activations: [.sigmoid, .sigmoid], loss: .quadratic, epochs: 5,
                                  batchSize: 64, learningRate: 0.5, initialization: .course)
        case .cnn:
            var r = TrainingRecipe(layerSizes: [13 * 13 * 8, 10], activations: [.softmax], loss: .crossEntropy, epochs: 10,
                                   batchSize: 64, learningRate: 0.01, momentum: 0.9, initialization: .he)
            r.featureStages = [.conv(filters: 8, kernel: [3, 3], strides: [1, 1], padding: .valid, activation: .relu),
                               .maxPool(pool: [2, 2], strides: [2, 2], padding: .valid)]
            return r
        case .lenet5:
            var r = TrainingRecipe(layerSizes: [5 * 5 * 16, 120, 84, 10], activations: [.tanh, .tanh, .softmax], loss: .crossEntropy,
                                   epochs: 10, batchSize: 64, learningRate: 0.01, momentum: 0.9, initialization: .xavier)
            r.featureStages = [.conv(filters: 6, kernel: [5, 5], strides: [1, 1], padding: .same, activation: .tanh),
                               .avgPool(pool: [2, 2], strides: [2, 2], padding: .valid, countIncludePad: false),
                               .conv(filters: 16, kernel: [5, 5], strides: [1, 1], padding: .valid, activation: .tanh),
                               .avgPool(pool: [2, 2], strides: [2, 2], padding: .valid, countIncludePad: false)]
            return r
        }
    }

    public var normalization: Normalization {
        switch self {
        case .blog, .capstone, .cnn, .lenet5: return .zscore
        case .nielsen, .binary: return .scale
        }
    }

    public var classes: [Int]? { self == .binary ? [0, 1] : nil }
}

/// Where the training and test files are.
public struct DataFiles: Sendable {
    /// Training samples: IDX images, a folder of class sub-folders, a Kaggle CSV or a `.npy`.
    public var trainImages: String
    /// Their labels, for IDX and `.npy` images.
    public var trainLabels: String?
    public var testImages: String?
    public var testLabels: String?
    /// The shape pictures, CSV rows and `.npy` arrays are made into (IDX files carry their own).
    public var inputShape: [Int] = [28, 28]
    /// How pictures are made into samples (nil: as nn-infer, MNIST's procedure for 28x28).
    public var preprocess: PreprocessMode?
    /// Hold out the last this many training samples as the test set: one labelled file split in
    /// two, as the README's digit model does with MNIST's test set (8,000 + 2,000).
    public var testLast: Int?

    /// The four standard file names in `directory`, gzip or not (whichever exists).
    public init(directory: String) throws {
        func find(_ name: String) throws -> String {
            let gz = "\(directory)/\(name)"
            if access(gz, F_OK) == 0 { return gz }
            let plain = String(gz.dropLast(3))
            if access(plain, F_OK) == 0 { return plain }
            throw TrainingError.missingData("\(gz): no such file (install Debian's dataset-fashion-mnist, or give --data DIR or --train-images ...)")
        }
        trainImages = try find(DefaultData.trainImages)
        trainLabels = try find(DefaultData.trainLabels)
        testImages = try find(DefaultData.testImages)
        testLabels = try find(DefaultData.testLabels)
    }

    public init(trainImages: String, trainLabels: String?, testImages: String?, testLabels: String?) {
        self.trainImages = trainImages
        self.trainLabels = trainLabels
        self.testImages = testImages
        self.testLabels = testLabels
    }

    /// Loads the files, applies the class selection, the limit and the validation split.
    public func load(classes: [Int]?, limit: Int?, validationFraction: Double?, classNames: [String]?) throws -> TrainingData {
        let (trainSet, folderClasses) = try LabelledImages.read(images: trainImages, labels: trainLabels, inputShape: inputShape,
                                                                preprocess: preprocess)
        var train = trainSet
        var test: LabelledImages?
        if let testLast {
            guard testImages == nil else { throw TrainingError.invalidOption("--test-last splits the training data; give it or --test-images, not both") }
            guard testLast > 0, testLast < train.count else {
                throw TrainingError.invalidOption("--test-last \(testLast) must be between 1 and \(train.count - 1), the \(train.count) training samples less one")
            }
            test = train.slice((train.count - testLast)..<train.count)
            train = train.slice(0..<(train.count - testLast))
        } else if let testImages {
            let read = try LabelledImages.read(images: testImages, labels: testLabels, inputShape: inputShape, preprocess: preprocess,
                                               classes: folderClasses)
            guard read.images.featureCount == train.featureCount else {
                throw TrainingError.badData("\(testImages): samples are \(ShapeMath.describe(read.images.imageShape)) but the training samples are \(ShapeMath.describe(train.imageShape))")
            }
            test = read.images
        }
        var names = classNames ?? folderClasses ?? (trainImages.lowercased().contains("fashion") ? DefaultData.fashionClasses : [])
        if let classes {
            guard Set(classes).count == classes.count, classes.allSatisfy({ $0 >= 0 }) else {
                throw TrainingError.invalidOption("--classes must list distinct non-negative labels")
            }
            train = train.selecting(classes: classes)
            test = test?.selecting(classes: classes)
            if !names.isEmpty, classNames == nil { names = classes.map { $0 < names.count ? names[$0] : String($0) } }
            guard train.count > 0 else { throw TrainingError.badData("\(trainLabels ?? trainImages): no training samples have the labels \(classes)") }
        }
        if let limit {
            guard limit > 0 else { throw TrainingError.invalidOption("--limit must be at least 1") }
            train = train.prefix(limit)
        }
        var validation: LabelledImages?
        if let f = validationFraction {
            guard f > 0, f < 1 else { throw TrainingError.invalidOption("--validation must be a fraction between 0 and 1, found \(f)") }
            let held = Int((Double(train.count) * f).rounded())
            guard held > 0, held < train.count else { throw TrainingError.invalidOption("--validation \(f) leaves no training or no validation samples") }
            validation = train.slice((train.count - held)..<train.count)
            train = train.slice(0..<(train.count - held))
        }
        var description = JSONObject([("train_images", .string(trainImages)), ("train_count", .integer(Int64(train.count)))])
        if let test {
            description["test_images"] = .string(testLast.map { "\(trainImages) (the last \($0))" } ?? testImages ?? "")
            description["test_count"] = .integer(Int64(test.count))
        }
        if let validation { description["validation_count"] = .integer(Int64(validation.count)) }
        if let classes { description["classes"] = .array(classes.map { .integer(Int64($0)) }) }
        if let limit { description["limit"] = .integer(Int64(limit)) }
        return TrainingData(train: train, test: test, validation: validation, classNames: names, description: description)
    }
}


/// What a command line changes in a preset; nil keeps the preset's choice.
public struct RecipeOverrides: Sendable {
    /// Convolution and pooling stages (`--cnn`).
    public var featureStages: [FeatureStage]?
    /// Dense widths (`--layers`): input to output for an MLP, after flattening with stages.
    public var denseWidths: [Int]?
    public var activations: [Activation]?
    public var loss: Loss?
    public var epochs: Int?
    public var batchSize: Int?
    public var learningRate: Double?
    public var momentum: Double?
    public var l2: Double?
    public var dropoutKeep: Double?
    public var dropoutMode: DropoutMode?
    public var initialization: Initialization?
    /// Batch normalization's moving-average momentum (`--bn-momentum`).
    public var batchNormMomentum: Double?
    /// Batch normalization after every hidden dense layer (`--dense-bn`).
    public var denseBatchNorm: Bool?
    public var seed: UInt32 = 0

    public init() {}

    /// The preset's recipe with these choices, validated. With stages, the first dense width
    /// (the flattened features) is 0 until the images' shape fills it in
    /// (`TrainingRecipe.flattenedFeatures`); a new depth without activations keeps the preset's
    /// hidden and output activations; stages without `--init` use He initialization (the
    /// blog's `randn * 0.01` starves a convolution's outputs).
    public func applied(to preset: RecipePreset) throws(TrainingError) -> TrainingRecipe {
        var r = preset.recipe
        if let featureStages { r.featureStages = featureStages }
        if let denseWidths {
            r.layerSizes = r.featureStages.isEmpty ? denseWidths : [0] + denseWidths
        } else if featureStages != nil, preset.recipe.featureStages.isEmpty {
            r.layerSizes[0] = 0
        }
        if let activations {
            r.activations = activations
        } else if denseWidths != nil, r.activations.count != r.layerSizes.count - 1 {
            let hidden = r.activations.count > 1 ? r.activations.first! : .relu
            r.activations = Array(repeating: hidden, count: r.layerSizes.count - 2) + [r.activations.last!]
        }
        if let loss { r.loss = loss }
        if let epochs { r.epochs = epochs }
        if let batchSize { r.batchSize = batchSize }
        if let learningRate { r.learningRate = learningRate }
        if let momentum { r.momentum = momentum }
        if let l2 { r.l2 = l2 }
        if let dropoutKeep { r.dropoutKeep = dropoutKeep }
        if let dropoutMode { r.dropoutMode = dropoutMode }
        if let initialization {
            r.initialization = initialization
        } else if featureStages != nil, r.initialization == .blog {
            r.initialization = .he
        }
        if let batchNormMomentum { r.batchNormMomentum = batchNormMomentum }
        if let denseBatchNorm { r.denseBatchNorm = denseBatchNorm }
        r.seed = seed
        try r.validate()
        return r
    }
}
