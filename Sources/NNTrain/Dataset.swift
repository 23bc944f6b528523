import NNCore
import NNImage
import NNData

/// Labelled images for training or testing: raw feature values (e.g. pixels 0...255) as rows.
public struct LabelledImages: Sendable {
    public var features: [Float]
    public var labels: [Int32]
    public var imageShape: [Int]
    public var featureCount: Int { imageShape.reduce(1, *) }
    public var count: Int { labels.count }

    public init(features: [Float], labels: [Int32], imageShape: [Int]) {
        precondition(features.count == labels.count * imageShape.reduce(1, *), "feature count does not match")
        self.features = features
        self.labels = labels
        self.imageShape = imageShape
    }

    /// Reads an IDX image file and its IDX label file, checking that they agree.
    public init(images: String, labels labelPath: String) throws {
        let imageFile = try IDXImages(path: images)
        let labelFile = try IDXFile(path: labelPath)
        guard labelFile.dims.count == 1, labelFile.elementType.isInteger else {
            throw TrainingError.badData("\(labelPath): expected a rank-1 integer label file, found \(ShapeMath.describe(labelFile.dims)) \(labelFile.elementType)")
        }
        let values = try labelFile.ints()
        guard values.count == imageFile.count else {
            throw TrainingError.badData("\(labelPath): \(values.count) labels for the \(imageFile.count) images of \(images)")
        }
        if let bad = values.firstIndex(where: { $0 < 0 || $0 > Int(Int32.max) }) {
            throw TrainingError.badData("\(labelPath): label \(values[bad]) at index \(bad) is negative or too large")
        }
        self.init(features: imageFile.features, labels: values.map { Int32($0) }, imageShape: imageFile.imageShape)
    }

    /// Labelled samples from any input a user has, told apart by the path (`InputKind`): IDX
    /// images with IDX `labels`, a folder with one sub-folder per class, a Kaggle CSV with a
    /// `label` column, or a `.npy` of images with a `.npy` of `labels`. Pictures become
    /// `inputShape` samples with `preprocess` (as nn-infer makes them).
    /// - Parameter classes: the class names the samples must use (a test folder's sub-folders
    ///   are matched to the training folder's classes).
    /// - Returns: the samples and, for class folders, the class names.
    public static func read(images: String, labels: String?, inputShape: [Int], preprocess: PreprocessMode?,
                            classes: [String]? = nil) throws -> (images: LabelledImages, classNames: [String]?) {
        let kind = InputKind(path: images)
        if kind == .idx {
            guard let labels else { throw TrainingError.invalidOption("\(images): IDX images need their IDX labels (--train-labels, --test-labels)") }
            return (try LabelledImages(images: images, labels: labels), nil)
        }
        if preprocess != nil, kind != .folder {
            throw TrainingError.invalidOption("--preprocess applies to folders of pictures; \(images) is not one")
        }
        let set: SampleSet
        switch kind {
        case .idx: fatalError("handled above")
        case .picture:
            throw TrainingError.invalidOption("\(images): one picture is not a training set; give a folder with one sub-folder per class")
        case .folder:
            if labels != nil { throw TrainingError.invalidOption("\(images): a folder of class sub-folders is labelled by them; drop its labels option") }
            set = try SampleSet.classFolders(images, inputShape: inputShape, mode: preprocess, classes: classes)
        case .csv:
            if labels != nil { throw TrainingError.invalidOption("\(images): a CSV is labelled by its 'label' column; drop its labels option") }
            set = try KaggleCSV.read(path: images, inputShape: inputShape)
            guard set.labels != nil else {
                throw TrainingError.badData("\(images): no 'label' column (Kaggle's test.csv has none): training and test data need labels")
            }
        case .npy:
            guard let labels else { throw TrainingError.invalidOption("\(images): .npy images need a .npy of labels (--train-labels, --test-labels)") }
            set = try SampleSet.npy(images, inputShape: inputShape).withLabels(npy: labels)
        }
        let values = set.labels!
        if let bad = values.firstIndex(where: { $0 > Int(Int32.max) }) {
            throw TrainingError.badData("\(set.sources[bad]): label \(values[bad]) is too large")
        }
        return (LabelledImages(features: set.features, labels: values.map { Int32($0) }, imageShape: set.shape), set.classNames)
    }

    /// The first `n` samples.
    public func prefix(_ n: Int) -> LabelledImages {
        let k = min(n, count)
        return LabelledImages(features: Array(features[0..<(k * featureCount)]), labels: Array(labels[0..<k]), imageShape: imageShape)
    }

    /// Samples `range`.
    public func slice(_ range: Range<Int>) -> LabelledImages {
        LabelledImages(features: Array(features[(range.lowerBound * featureCount)..<(range.upperBound * featureCount)]),
                       labels: Array(labels[range]), imageShape: imageShape)
    }

    /// Only the samples whose label is in `classes`, relabelled 0, 1, ... in the order given.
    public func selecting(classes: [Int]) -> LabelledImages {
        var map: [Int32: Int32] = [:]
        for (i, c) in classes.enumerated() { map[Int32(c)] = Int32(i) }
        var f: [Float] = [], l: [Int32] = []
        for i in 0..<count {
            guard let mapped = map[labels[i]] else { continue }
            l.append(mapped)
            f.append(contentsOf: features[(i * featureCount)..<((i + 1) * featureCount)])
        }
        return LabelledImages(features: f, labels: l, imageShape: imageShape)
    }

    /// Per-feature mean and population standard deviation (NumPy's `mean(axis=0)`, `std(axis=0)`).
    public func featureStatistics() -> (mean: [Double], std: [Double]) {
        features.withUnsafeBufferPointer { NNData.featureStatistics($0, count: count, featureCount: featureCount) }
    }
}
