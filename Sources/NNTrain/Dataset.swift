import NNCore
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

/// Where the default data lives: Debian's `dataset-fashion-mnist` package.
public enum DefaultData {
    public static let directory = "/usr/share/datasets/fashion-mnist"
    public static let trainImages = "train-images-idx3-ubyte.gz"
    public static let trainLabels = "train-labels-idx1-ubyte.gz"
    public static let testImages = "t10k-images-idx3-ubyte.gz"
    public static let testLabels = "t10k-labels-idx1-ubyte.gz"
    /// Fashion-MNIST's class names, in label order.
    public static let fashionClasses = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
}
