import Foundation
import NNCommandLine
import NNData

/// A few test pictures the page offers to click, one per class when labels are known: read once
/// at start from an IDX file of 8-bit pictures (and the labels file beside it, if there is one).
public struct ExamplePictures: Sendable {
    public struct Picture: Sendable {
        /// Its index in the file.
        public var index: Int
        /// Its label, when a labels file was found.
        public var label: Int?
        public var pixels: [UInt8]
    }

    public let path: String
    public let width: Int
    public let height: Int
    public let pictures: [Picture]

    /// Most pictures kept.
    public static let maxPictures = 10

    /// Fashion-MNIST's test set from Debian's `dataset-fashion-mnist`: the examples of a model whose
    /// classes are Fashion-MNIST's, when no `--examples` is given.
    public static let defaultFashionPath = "\(DefaultData.directory)/\(DefaultData.testImages)"

    /// Reads `path` (IDX, 8-bit, [N, H, W]); labels from the file named like it with
    /// "labels-idx1" for "images-idx3", when that file exists.
    public init(path: String) throws {
        let images = try IDXFile(path: path)
        guard images.elementType == .u8, images.dims.count == 3, images.dims[0] >= 1 else {
            throw ToolError("\(path): examples must be 8-bit pictures [N, height, width], not \(images.elementType) \(images.dims)", status: ExitStatus.dataError)
        }
        let (n, h, w) = (images.dims[0], images.dims[1], images.dims[2])
        var labels: [Int]?
        let labelsPath = path.replacingOccurrences(of: "images-idx3", with: "labels-idx1")
        if labelsPath != path, FileManager.default.fileExists(atPath: labelsPath) {
            let file = try IDXFile(path: labelsPath)
            guard file.dims == [n] else {
                throw ToolError("\(labelsPath): \(file.dims) labels for \(n) pictures in \(path)", status: ExitStatus.dataError)
            }
            labels = try file.ints()
        }
        // One picture of each label in order (0, 1, ...), or the first ones without labels.
        var chosen: [Int] = []
        if let labels {
            var seen = Set<Int>()
            for (i, label) in labels.enumerated() where chosen.count < Self.maxPictures && seen.insert(label).inserted { chosen.append(i) }
            chosen.sort { labels[$0] < labels[$1] }
        } else {
            chosen = Array(0..<min(n, Self.maxPictures))
        }
        let bytes: [UInt8] = try images.values()
        self.path = path
        width = w
        height = h
        pictures = chosen.map { Picture(index: $0, label: labels?[$0], pixels: Array(bytes[($0 * h * w)..<(($0 + 1) * h * w)])) }
    }
}

extension ExamplePictures {
    /// The examples of each model, by name: those of `path` for every model that takes pictures of
    /// their size ("none": no examples), or without `path`, Fashion-MNIST's test pictures for the
    /// models whose classes are Fashion-MNIST's, when Debian's package is installed.
    public static func forModels(_ models: [ServedModel], path: String?) throws -> [String: ExamplePictures] {
        if path == "none" { return [:] }
        if let path {
            let examples = try ExamplePictures(path: path)
            let fitting = models.filter { $0.inputSize == examples.width * examples.height }
            guard !fitting.isEmpty else {
                throw ToolError("\(path): its \(examples.height)x\(examples.width) pictures fit none of the models", status: ExitStatus.dataError)
            }
            return Dictionary(uniqueKeysWithValues: fitting.map { ($0.name, examples) })
        }
        let fashion = models.filter { $0.classes == DefaultData.fashionClasses && $0.inputSize == 784 }
        guard !fashion.isEmpty, FileManager.default.fileExists(atPath: defaultFashionPath) else { return [:] }
        let examples = try ExamplePictures(path: defaultFashionPath)
        return Dictionary(uniqueKeysWithValues: fashion.map { ($0.name, examples) })
    }
}
