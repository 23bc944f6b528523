import Foundation
import NNCore
import NNNumPy
import NNSystem

/// Samples held in memory, each with the name of where it came from: the pictures of one file
/// or folder, the rows of a CSV file, the arrays of a `.npy`.
public struct SampleSet: Sendable {
    /// For each sample, where it came from: "img_007.png", "train.csv:2" (a line), "x.npy[3]".
    public var sources: [String]
    /// The shape of one sample, the model's input shape.
    public var shape: [Int]
    /// `count * featureCount` values, row-major; raw pixel values 0...255 for pictures, CSV
    /// and u8 arrays (the model's own preprocessing, e.g. its 1/255 scale, follows).
    public var features: [Float]
    /// The true classes, when the input has them (a CSV `label` column, class sub-folders,
    /// a `.npy` of labels).
    public var labels: [Int]?
    /// The names of the classes `labels` count, when the input names them (class sub-folders).
    public var classNames: [String]?
    /// What the reader did that a user should know (files skipped, the preprocessing applied).
    public var notes: [String]
    /// The preprocessing applied to pictures, nil for other inputs.
    public var preprocess: PreprocessMode?

    public var count: Int { sources.count }
    public var featureCount: Int { shape.reduce(1, *) }

    public init(sources: [String], shape: [Int], features: [Float], labels: [Int]? = nil, notes: [String] = [],
                preprocess: PreprocessMode? = nil) {
        precondition(features.count == sources.count * shape.reduce(1, *), "feature count does not match")
        self.sources = sources
        self.shape = shape
        self.features = features
        self.labels = labels
        self.notes = notes
        self.preprocess = preprocess
    }

    /// Sample `index` as a picture, when the input shape is one (see `Preprocess.pictureSize`).
    public func picture(_ index: Int) -> GrayImage? {
        guard let size = Preprocess.pictureSize(ofInput: shape) else { return nil }
        let n = featureCount
        return GrayImage(width: size.width, height: size.height, pixels: Array(features[(index * n)..<((index + 1) * n)]))
    }

    /// Writes every sample as an 8-bit PNG into `directory` (created if missing), named after
    /// its source ("img_007.png", "train.csv-2.png"), so a user sees what the model saw.
    /// Returns the number written.
    @discardableResult
    public func savePictures(to directory: String) throws -> Int {
        guard Preprocess.pictureSize(ofInput: shape) != nil else {
            throw ImageError.cannotWrite(path: directory, reason: "the model's input \(ShapeMath.describe(shape)) is not a one-channel picture")
        }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw ImageError.cannotWrite(path: directory, reason: "cannot create the folder")
        }
        for i in 0..<count {
            try PNGWriter.write(picture(i)!, to: directory + "/" + SampleSet.pictureName(sources[i]))
        }
        return count
    }

    /// "img_007.jpg" -> "img_007.png"; "train.csv:2" -> "train.csv-2.png"; "x.npy[3]" -> "x.npy-3.png".
    static func pictureName(_ source: String) -> String {
        var name = String(source.split(separator: "/").last ?? Substring(source))
        if ImageReader.isPictureName(name), let dot = name.lastIndex(of: ".") { name = String(name[..<dot]) }
        name = String(name.map { $0 == ":" || $0 == "[" ? "-" : $0 }.filter { $0 != "]" })
        return name + ".png"
    }
}

/// What `nn-infer` can be given as input, told apart by the path.
public enum InputKind: String, Sendable {
    case idx, picture, folder, csv, npy

    /// A folder, a `.csv`, a `.npy`, a picture (by suffix), else IDX (plain or gzip).
    public init(path: String) {
        var isDirectory: ObjCBool = false
        let lower = path.lowercased()
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue { self = .folder }
        else if lower.hasSuffix(".csv") { self = .csv }
        else if lower.hasSuffix(".npy") { self = .npy }
        else if ImageReader.isPictureName(lower) { self = .picture }
        else { self = .idx }
    }
}

extension SampleSet {
    /// Reads pictures and makes them `inputShape` samples with `mode` (nil: `mnist` for a
    /// 28x28 one-channel input, `fit` for other one-channel inputs).
    ///
    /// - Parameter files: each picture's path and the name it is reported under.
    public static func pictures(_ files: [(path: String, name: String)], inputShape: [Int], mode: PreprocessMode?,
                                reader: ImageReader = ImageReader(), notes: [String] = []) throws -> SampleSet {
        guard let size = Preprocess.pictureSize(ofInput: inputShape) else {
            throw ImageError.unsupported(path: files.first?.name ?? "input",
                                         reason: "the model takes \(ShapeMath.describe(inputShape)), not a one-channel picture")
        }
        let mode = mode ?? Preprocess.defaultMode(width: size.width, height: size.height)
        var features: [Float] = []
        features.reserveCapacity(files.count * size.width * size.height)
        for file in files {
            let image = try reader.read(path: file.path, displayName: file.name)
            features += try Preprocess.modelInput(image, inputShape: inputShape, mode: mode, name: file.name).picture.pixels
        }
        return SampleSet(sources: files.map(\.name), shape: inputShape, features: features, notes: notes, preprocess: mode)
    }

    /// Every picture in `folder` (by suffix, sorted by name); other files and sub-folders are
    /// skipped with a note. An empty folder is an error.
    public static func folder(_ folder: String, inputShape: [Int], mode: PreprocessMode?,
                              reader: ImageReader = ImageReader()) throws -> SampleSet {
        let members = try pictureFiles(in: folder)
        guard !members.files.isEmpty else { throw ImageError.noImages(path: folder, skipped: members.skipped.count) }
        return try pictures(members.files, inputShape: inputShape, mode: mode, reader: reader, notes: members.notes)
    }

    /// A folder with one sub-folder of pictures per class (torchvision's `ImageFolder` and Keras'
    /// `image_dataset_from_directory` convention): the classes are the sub-folder names, sorted,
    /// or `classes`, when given (the model's or the training set's names), which every sub-folder
    /// must be one of (a name "3" also matches class index 3 of unnamed classes). Pictures
    /// directly in `root` and files that are not pictures are skipped with a note; a class
    /// folder without pictures is an error.
    public static func classFolders(_ root: String, inputShape: [Int], mode: PreprocessMode?, classes: [String]? = nil,
                                    reader: ImageReader = ImageReader()) throws -> SampleSet {
        let folders = try classFolderNames(root)
        guard !folders.isEmpty else {
            throw ImageError.classFolders(path: root, reason: "no class sub-folders (DIR/<class>/*.png)")
        }
        let names = classes ?? folders
        var files: [(path: String, name: String)] = []
        var labels: [Int] = []
        var notes: [String] = []
        for folder in folders {
            guard let label = names.firstIndex(of: folder) ?? Int(folder).flatMap({ classes != nil && $0 >= 0 && $0 < names.count ? $0 : nil }) else {
                throw ImageError.classFolders(path: "\(root)/\(folder)",
                                              reason: "'\(folder)' is not one of the \(names.count) classes (\(names.prefix(12).joined(separator: ", "))\(names.count > 12 ? ", ..." : ""))")
            }
            let members = try pictureFiles(in: "\(root)/\(folder)", prefix: "\(folder)/")
            guard !members.files.isEmpty else { throw ImageError.noImages(path: "\(root)/\(folder)", skipped: members.skipped.count) }
            notes += members.notes
            files += members.files
            labels += Array(repeating: label, count: members.files.count)
        }
        var set = try pictures(files, inputShape: inputShape, mode: mode, reader: reader, notes: notes)
        set.labels = labels
        set.classNames = names
        return set
    }

    /// The sub-folders of `root` (sorted; hidden ones skipped); nil-safe for a folder of pictures.
    public static func classFolderNames(_ root: String) throws -> [String] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: root).sorted()
        } catch {
            throw ImageError.cannotRead(path: root, reason: "cannot list the folder")
        }
        return names.filter { name in
            var isDirectory: ObjCBool = false
            return !name.hasPrefix(".") && FileManager.default.fileExists(atPath: "\(root)/\(name)", isDirectory: &isDirectory) && isDirectory.boolValue
        }
    }

    /// The pictures of one folder, sorted by name, reported as `prefix + name`, and a note
    /// naming what was skipped.
    public static func pictureFiles(in folder: String, prefix: String = "") throws -> (files: [(path: String, name: String)], skipped: [String], notes: [String]) {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
        } catch {
            throw ImageError.cannotRead(path: folder, reason: "cannot list the folder")
        }
        var files: [(path: String, name: String)] = []
        var skipped: [String] = []
        for name in names where !name.hasPrefix(".") {
            let path = folder.hasSuffix("/") ? folder + name : folder + "/" + name
            var isDirectory: ObjCBool = false
            if ImageReader.isPictureName(name), FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue {
                files.append((path, prefix + name))
            } else {
                skipped.append(name)
            }
        }
        var notes: [String] = []
        if !skipped.isEmpty, !files.isEmpty {
            let shown = skipped.prefix(5).joined(separator: ", ") + (skipped.count > 5 ? ", ..." : "")
            notes.append("\(folder): skipped \(skipped.count) entr\(skipped.count == 1 ? "y" : "ies") that are not pictures (\(shown))")
        }
        return (files, skipped, notes)
    }

    /// Attaches the labels of a `.npy` (shape (N,), integers of 0 or more, N the sample count).
    public func withLabels(npy path: String) throws -> SampleSet {
        let array = try NumPyFile.read(path: path)
        guard case let .tensor(tensor) = array.value, let values = tensor.integers() else {
            throw ImageError.npy(path: path, reason: "dtype '\(array.descr)': expected integer labels ('<i8', '<i4', '|u1', ...)")
        }
        guard array.shape == [count] else {
            throw ImageError.npy(path: path, reason: "shape \(numpyShapeText(array.shape)): expected (\(count),), one label per sample")
        }
        if let bad = values.firstIndex(where: { $0 < 0 || $0 > Int64(Int32.max) }) {
            throw ImageError.npy(path: path, reason: "label \(values[bad]) at index \(bad) is negative or too large")
        }
        var set = self
        set.labels = values.map { Int($0) }
        return set
    }

    /// A `.npy` of images: shape (N, h, w) with h*w the input's features, or (N, features);
    /// dtype uint8 (raw pixels) or float (values taken as they are, as IDX float files are).
    public static func npy(_ path: String, inputShape: [Int]) throws -> SampleSet {
        let array = try NumPyFile.read(path: path)
        guard case let .tensor(tensor) = array.value else {
            throw ImageError.npy(path: path, reason: "holds a string, not images")
        }
        try checkNPYImages(path: path, descr: array.descr, shape: array.shape, inputShape: inputShape)
        let shape = array.shape
        let name = path.split(separator: "/").last.map(String.init) ?? path
        return SampleSet(sources: (0..<shape[0]).map { "\(name)[\($0)]" }, shape: inputShape, features: tensor.floats())
    }

    /// Checks that a `.npy` of `descr` and `shape` holds images for a model whose input is
    /// `inputShape`: uint8 pixels or floats, shape (N, features), (N, height, width) or (N,
    /// inputShape...). Shared by the whole-file reader and `nn-infer`'s stream reader.
    public static func checkNPYImages(path: String, descr: String, shape: [Int], inputShape: [Int]) throws {
        let features = inputShape.reduce(1, *)
        let allowed: Set<String> = ["|u1", "<f2", "<f4", "<f8", ">f4", ">f8", ">f2"]
        guard allowed.contains(descr) || descr == "u1" else {
            throw ImageError.npy(path: path, reason: "dtype '\(descr)': expected uint8 pixels ('|u1') or floats ('<f4', '<f8')")
        }
        let rowOK = (shape.count == 2 && shape[1] == features)
            || (shape.count == 3 && shape[1] * shape[2] == features)
            || (shape.count == inputShape.count + 1 && Array(shape.dropFirst()) == inputShape)
        guard rowOK else {
            let pictureShape = Preprocess.pictureSize(ofInput: inputShape).map { "(N, \($0.height), \($0.width)) or " } ?? ""
            throw ImageError.npy(path: path, reason: "shape \(ShapeMath.describe(shape)): expected \(pictureShape)(N, \(features)) for the model's input \(ShapeMath.describe(inputShape))")
        }
    }
}
