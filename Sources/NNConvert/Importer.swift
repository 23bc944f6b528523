import NNCore

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
    /// The convolution and pooling stages of a file that does not record them (a PyTorch state
    /// dict), in `nn-train --cnn`'s syntax (`--arch conv:32:3x3,conv:64:3x3,pool:2`); the
    /// dense layers follow from the weights.
    public var architecture: [FeatureStage]?
    /// The most bytes of tensor data (decompressed) one import may read; a file that declares
    /// more is refused before its data is read.
    public var maxTensorBytes: Int = defaultMaxTensorBytes

    public init() {}
}

/// A converted, validated model and what the converter decided on the way (printed to the user).
public struct ImportResult: Sendable {
    /// The model, validated once by the importer.
    public var validated: ValidatedModel
    /// The recognised format, e.g. "blog HDF5 (rows)", "Keras 3 .keras".
    public var format: String
    /// Decisions made without the file saying so, one sentence each.
    public var notes: [String]

    /// The model itself.
    public var model: Model { validated.model }
    /// NaN or infinite values the validation found (`nnconv import` prints them as notes).
    public var warnings: [ModelWarning] { validated.warnings }

    /// A result for a model validated already (read from a `.nnm`).
    package init(validated: ValidatedModel, format: String, notes: [String]) {
        self.validated = validated
        self.format = format
        self.notes = notes
    }

    /// A result from an importer in this package; the model is validated here, and a problem
    /// becomes one line naming the file.
    package init(model: Model, path: String, format: String, notes: [String]) throws(InteropError) {
        do {
            validated = try ValidatedModel(model)
        } catch {
            throw InteropError.badConfig(path: path, detail: "\(error)")
        }
        self.format = format
        self.notes = notes
    }
}

/// The model-building rules every importer shares: dense stacks from blog arrays, the input
/// shape, the preprocessing and class names from the options, provenance, validation.
public enum ModelBuilder {
    /// A model from blog-style arrays (h5py or np.savez files): names, shapes and types are
    /// checked from the declarations, then the data is read within the options' budget.
    static func blogModel(_ container: any TensorContainer, options: ImportOptions) throws -> ImportResult {
        let path = container.path
        let arrays = try container.arrays()
        let layers = try BlogLayers(arrays: arrays, layout: options.layout, path: path)
        try (layers.weightArrays + layers.biasArrays).checkBudget(options.maxTensorBytes, path: path)
        let containerName = container.kind
        var notes: [String] = []
        if layers.inferred {
            notes.append("layout \(layers.layout.rawValue) (\(layers.layout == .rows ? "W (in, out)" : "W (out, in)")), inferred from the shapes of \(layers.weightNames.joined(separator: ", ")); --layout overrides")
        }
        let activations: [Activation]
        if let given = options.activations {
            activations = given
        } else {
            let n = layers.weightArrays.count
            let output = layers.sizes.last!
            switch layers.layout {
            case .rows:
                activations = Array(repeating: .relu, count: n - 1) + [output == 1 ? .sigmoid : .softmax]
            case .columns:
                activations = Array(repeating: .sigmoid, count: n)
            }
            notes.append("activations \(activations.map(\.description).joined(separator: ", ")): blog files do not record them; this is the \(layers.layout.rawValue) convention's default (\(layers.layout == .rows ? "ReLU hidden, softmax output" : "sigmoid everywhere")); --activations overrides")
        }
        let format = "blog \(containerName) (\(layers.naming.rawValue), \(layers.layout.rawValue))"
        let (weights, biases) = try layers.read()
        var result = try assemble(weights: weights, biases: biases, activations: activations, path: path,
                                  sourceFormat: "\(containerName.lowercased())-blog-\(layers.layout.rawValue)", inputShape: nil,
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
        return try ImportResult(model: Model(metadata: meta, tensors: tensors), path: path, format: sourceFormat, notes: notes)
    }
}
