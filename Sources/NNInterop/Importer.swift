import NNCore
import NNFormat
import NNHDF5

#if canImport(Glibc)
import Glibc
#endif

/// Choices the file itself does not record, given on the command line.
public struct ImportOptions: Sendable {
    /// Force the orientation of blog-style matrices instead of inferring it from their shapes.
    public var layout: WeightLayout?
    /// One activation per layer, overriding the file's (or the convention's default).
    public var activations: [Activation]?
    /// Preprocessing to store: `x * factor`, e.g. 1/255.
    public var scale: Double?
    /// Preprocessing to store: the blog's per-feature z-score with these statistics.
    public var zscore: (mean: [Double], std: [Double])?
    /// The shape of one input sample, e.g. [28, 28]; default from the file or the feature count.
    public var inputShape: [Int]?
    /// Output class names.
    public var classNames: [String]?
    /// The order of named layers (PyTorch modules such as fc1, fc2) when the file cannot tell it.
    public var layerOrder: [String]?

    public init() {}
}

/// A converted model and what the converter decided on the way (printed to the user).
public struct ImportResult: Sendable {
    public var model: Model
    /// The recognised format, e.g. "blog HDF5 (rows)", "Keras 3 .keras".
    public var format: String
    /// Decisions made without the file saying so, one sentence each.
    public var notes: [String]

    /// A result from an importer in another module of this package (ONNX).
    package init(model: Model, format: String, notes: [String]) {
        self.model = model
        self.format = format
        self.notes = notes
    }
}

/// The converter's front door: recognises a file by its bytes and turns it into a model.
public enum ModelImporter {
    /// What kind of file `path` is, from its first bytes.
    public enum FileKind: Sendable, Equatable {
        case nnm, hdf5, zip, npy, safetensors, empty, unknown
    }

    /// Reads the magic bytes.
    public static func kind(of path: String) throws -> FileKind {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw NNMError.cannotOpen(path: path, reason: systemErrorMessage()) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            throw NNMError.cannotOpen(path: path, reason: "not a regular file")
        }
        var head = [UInt8](repeating: 0, count: 8)
        let n = head.withUnsafeMutableBytes { pread(fd, $0.baseAddress, 8, 0) }
        if n <= 0 { return .empty }
        if n == 8, head == NNMFormat.magic { return .nnm }
        if n == 8, head == [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A] { return .hdf5 }
        if n >= 4, head[0..<4] == [0x50, 0x4B, 0x03, 0x04] || head[0..<4] == [0x50, 0x4B, 0x05, 0x06] { return .zip }
        if n >= 6, head[0..<6] == [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59] { return .npy }
        // safetensors has no magic: its name says so, or a plausible header does (a length that
        // fits in the file, then JSON that starts with '{'); its own checks then give the details.
        if path.hasSuffix(".safetensors") { return .safetensors }
        if n == 8 {
            let length = head.reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            var brace: UInt8 = 0
            if length >= 2, length <= UInt64(max(0, Int(info.st_size) - 8)), pread(fd, &brace, 1, 8) == 1, brace == UInt8(ascii: "{") {
                return .safetensors
            }
        }
        return .unknown
    }

    /// Converts the file at `path` into a model.
    public static func importModel(path: String, options: ImportOptions = ImportOptions()) throws -> ImportResult {
        switch try kind(of: path) {
        case .nnm:
            let model = try NNMFormat.read(path: path)
            return ImportResult(model: model, format: ".nnm", notes: ["the file is already a .nnm model; it was read and validated"])
        case .hdf5:
            return try importHDF5(path: path, options: options)
        case .zip:
            return try importZip(path: path, options: options)
        case .npy:
            throw InteropError.unknownFormat(path: path, detail: "a .npy file holds a single array, not a model; save the weights together with np.savez (W1, b1, W2, b2, ...)")
        case .safetensors:
            return try importSafetensors(path: path, options: options)
        case .empty:
            throw InteropError.unknownFormat(path: path, detail: "the file is empty")
        case .unknown:
            throw InteropError.unknownFormat(path: path, detail: "not a model file: expected HDF5 (.h5), NumPy (.npz), Keras (.keras, .h5) or .nnm")
        }
    }

    static func importHDF5(path: String, options: ImportOptions) throws -> ImportResult {
        let file = try HDF5File.open(path: path)
        defer { file.close() }
        if try file.hasAttribute(HDF5Export.metadataAttribute) {
            return try HDF5Export.importOwn(file, path: path)
        }
        if try file.hasAttribute("model_config") {
            return try KerasImporter.importLegacy(file, path: path, options: options)
        }
        if try file.hasAttribute("layer_names") {
            return try KerasImporter.importLegacyWeights(file, path: path, options: options)
        }
        if try KerasImporter.looksLikeKeras3Weights(file) {
            return try KerasImporter.importKeras3Weights(file, path: path, config: nil, options: options, format: "Keras 3 .weights.h5")
        }
        let arrays = try file.arrays(sourcePath: path)
        return try blogModel(arrays, path: path, container: "HDF5", options: options)
    }

    /// A model from blog-style arrays (h5py or np.savez files).
    static func blogModel(_ arrays: [SourceArray], path: String, container: String, options: ImportOptions) throws -> ImportResult {
        let layers = try BlogLayers(arrays: arrays, layout: options.layout, path: path)
        var notes: [String] = []
        if layers.inferred {
            notes.append("layout \(layers.layout.rawValue) (\(layers.layout == .rows ? "W (in, out)" : "W (out, in)")), inferred from the shapes of \(layers.weightNames.joined(separator: ", ")); --layout overrides")
        }
        let activations: [Activation]
        if let given = options.activations {
            activations = given
        } else {
            let n = layers.weights.count
            let output = layers.sizes.last!
            switch layers.layout {
            case .rows:
                activations = Array(repeating: .relu, count: n - 1) + [output == 1 ? .sigmoid : .softmax]
            case .columns:
                activations = Array(repeating: .sigmoid, count: n)
            }
            notes.append("activations \(activations.map(\.rawValue).joined(separator: ", ")): blog files do not record them; this is the \(layers.layout.rawValue) convention's default (\(layers.layout == .rows ? "ReLU hidden, softmax output" : "sigmoid everywhere")); --activations overrides")
        }
        let format = "blog \(container) (\(layers.naming.rawValue), \(layers.layout.rawValue))"
        var result = try assemble(weights: layers.weights, biases: layers.biases, activations: activations, path: path,
                                  sourceFormat: "\(container.lowercased())-blog-\(layers.layout.rawValue)", inputShape: nil,
                                  options: options, notes: &notes)
        result.format = format
        return result
    }

    /// Builds and validates the model shared by every importer. `preprocessing` (with its
    /// tensors) and `classes` are what the file itself records (ONNX graphs do); the options'
    /// scale and z-score steps follow the file's, and the options' class names replace its.
    package static func assemble(weights: [Tensor], biases: [Tensor?], activations: [Activation], path: String, sourceFormat: String,
                         inputShape fileShape: [Int]?, options: ImportOptions, notes: inout [String],
                         preprocessing fileSteps: [PreprocessingStep] = [], preprocessingTensors: [NamedTensor] = [],
                         classes fileClasses: [String] = []) throws -> ImportResult {
        guard activations.count == weights.count else {
            throw InteropError.badOption("--activations: \(path) has \(weights.count) layers, but \(activations.count) activations were given")
        }
        let features = weights[0].shape[0]
        var inputShape = options.inputShape ?? fileShape ?? (features == 784 ? [28, 28] : [features])
        if inputShape.reduce(1, *) != features {
            if options.inputShape != nil {
                throw InteropError.badOption("--input-shape \(ShapeMath.describe(inputShape)) has \(inputShape.reduce(1, *)) features, but the first layer of \(path) takes \(features)")
            }
            notes.append("input \(features) features: the stored input shape \(ShapeMath.describe(inputShape)) does not match the first layer")
            inputShape = [features]
        } else if options.inputShape == nil, fileShape == nil, features == 784 {
            notes.append("input 28x28 (784 features, the MNIST image size); --input-shape overrides")
        }
        var layers: [Layer] = []
        var tensors: [NamedTensor] = []
        for (i, w) in weights.enumerated() {
            var layer = Layer.dense(index: i, inputSize: w.shape[0], outputSize: w.shape[1], activation: activations[i])
            tensors.append(NamedTensor(layer.weight!, w))
            if let b = biases[i] { tensors.append(NamedTensor(layer.bias!, b)) } else { layer.bias = nil }
            layers.append(layer)
        }
        return try finish(layers: layers, tensors: tensors, inputShape: inputShape, path: path, sourceFormat: sourceFormat,
                          options: options, notes: &notes, preprocessing: fileSteps, preprocessingTensors: preprocessingTensors,
                          classes: fileClasses)
    }

    /// Adds the preprocessing and class names (the file's, then the options'), provenance, and
    /// validates: the part of `assemble` that does not depend on the kind of layers.
    package static func finish(layers: [Layer], tensors layerTensors: [NamedTensor], inputShape: [Int], path: String, sourceFormat: String,
                               options: ImportOptions, notes: inout [String], preprocessing fileSteps: [PreprocessingStep] = [],
                               preprocessingTensors: [NamedTensor] = [], classes fileClasses: [String] = []) throws -> ImportResult {
        let features = inputShape.reduce(1, *)
        var tensors = layerTensors
        var steps = fileSteps
        tensors += preprocessingTensors
        if let factor = options.scale { steps.append(.scale(factor: factor, offset: 0)) }
        if let (mean, std) = options.zscore {
            guard mean.count == features, std.count == features else {
                throw InteropError.badOption("--stats: the statistics have \(mean.count) features, but \(path) takes \(features)")
            }
            tensors.append(NamedTensor("preprocessing.mean", Tensor(mean, shape: [features])))
            tensors.append(NamedTensor("preprocessing.std", Tensor(std, shape: [features])))
            steps.append(.zscore(mean: "preprocessing.mean", std: "preprocessing.std"))
        }
        if steps.isEmpty {
            notes.append("no preprocessing stored: inputs are used as given; pass --scale 1/255 or --normalize zscore --stats TRAIN-IMAGES if the model was trained on scaled or normalized inputs")
        }
        let classes = options.classNames ?? fileClasses
        let meta = ModelMetadata(input: InputSpec(shape: inputShape), layers: layers, preprocessing: steps, classes: classes,
                                 provenance: Provenance(tool: "nnconv \(ProjectVersion.string)", created: Clock.nowISO8601(),
                                                        sourceFile: path, sourceFormat: sourceFormat))
        let model = Model(metadata: meta, tensors: tensors)
        do {
            try model.validate()
        } catch {
            throw InteropError.badConfig(path: path, detail: "\(error)")
        }
        return ImportResult(model: model, format: sourceFormat, notes: notes)
    }
}
