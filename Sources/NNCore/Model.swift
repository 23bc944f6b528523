/// Element-wise or row-wise functions applied after a layer's affine map.
public enum Activation: String, CaseIterable, Sendable {
    case identity, relu, sigmoid, tanh, softmax
}

/// One layer of a model, in order from input to output.
public struct Layer: Equatable, Sendable {
    public enum Kind: String, Sendable { case dense }

    public var kind: Kind
    /// Number of input features.
    public var inputSize: Int
    /// Number of output features.
    public var outputSize: Int
    public var activation: Activation
    /// Name of the weight tensor, shape [inputSize, outputSize]: `Z = X @ W + b` with samples as rows.
    public var weight: String
    /// Name of the bias tensor, shape [outputSize], or nil for a layer without bias.
    public var bias: String?
    /// Members of the layer's JSON object that this version does not know; kept on rewrite.
    public var unknownFields = JSONObject()

    public init(kind: Kind = .dense, inputSize: Int, outputSize: Int, activation: Activation,
                weight: String, bias: String?) {
        self.kind = kind
        self.inputSize = inputSize
        self.outputSize = outputSize
        self.activation = activation
        self.weight = weight
        self.bias = bias
    }

    /// Standard tensor names for the dense layer at `index`.
    public static func dense(index: Int, inputSize: Int, outputSize: Int, activation: Activation) -> Layer {
        Layer(inputSize: inputSize, outputSize: outputSize, activation: activation,
              weight: "layers.\(index).weight", bias: "layers.\(index).bias")
    }
}

/// What the model takes: the shape of one raw sample and the feature count after flattening.
public struct InputSpec: Equatable, Sendable {
    /// Shape of one sample as stored, e.g. [28, 28].
    public var shape: [Int]
    /// Features after flattening in row-major order: the product of `shape`.
    public var features: Int { shape.reduce(1, *) }
    public init(shape: [Int]) { self.shape = shape }
}

/// One step applied to raw input values before the first layer, in order.
public enum PreprocessingStep: Equatable, Sendable {
    /// `x * factor + offset`, e.g. factor 1/255 for pixels.
    case scale(factor: Double, offset: Double)
    /// Per-feature z-score as the blog's `normalize()`: `(x - mean) / std`, where features
    /// whose stored std is 0 are only centred. `mean` and `std` name tensors of shape [features].
    case zscore(mean: String, std: String)
}

/// One epoch's figures in a training record.
public struct EpochRecord: Equatable, Sendable {
    public var epoch: Int
    public var trainLoss: Double?
    public var testLoss: Double?
    public var trainAccuracy: Double?
    public var testAccuracy: Double?
    public var validationLoss: Double?
    public var validationAccuracy: Double?
    /// Seconds spent in the epoch's optimizer steps (evaluation and saving excluded).
    public var seconds: Double?
    public init(epoch: Int, trainLoss: Double? = nil, testLoss: Double? = nil, trainAccuracy: Double? = nil,
                testAccuracy: Double? = nil, validationLoss: Double? = nil, validationAccuracy: Double? = nil,
                seconds: Double? = nil) {
        self.epoch = epoch
        self.trainLoss = trainLoss
        self.testLoss = testLoss
        self.trainAccuracy = trainAccuracy
        self.testAccuracy = testAccuracy
        self.validationLoss = validationLoss
        self.validationAccuracy = validationAccuracy
        self.seconds = seconds
    }
}

/// How a model was trained. Free-form fields (hyper-parameters of a future optimizer) stay in
/// `unknownFields` and survive a rewrite.
public struct TrainingRecord: Equatable, Sendable {
    /// "cross-entropy", "quadratic", "square-half-mean", ...
    public var loss: String
    /// "sgd" or "momentum".
    public var optimizer: String
    /// Hyper-parameters by name: lr, momentum, l2, dropout_keep, batch_size, ...
    public var hyperparameters: JSONObject
    public var epochs: Int
    /// Dataset description: name, paths, sample counts.
    public var dataset: JSONObject
    public var history: [EpochRecord]
    /// Optimizer state tensors for resuming, by parameter tensor name, e.g.
    /// "layers.0.weight" -> "optimizer.velocity.layers.0.weight".
    public var optimizerState: [(parameter: String, tensor: String)]
    /// Optimizer steps taken so far.
    public var step: Int
    public var unknownFields = JSONObject()

    public init(loss: String, optimizer: String, hyperparameters: JSONObject = JSONObject(), epochs: Int,
                dataset: JSONObject = JSONObject(), history: [EpochRecord] = [],
                optimizerState: [(parameter: String, tensor: String)] = [], step: Int = 0) {
        self.loss = loss
        self.optimizer = optimizer
        self.hyperparameters = hyperparameters
        self.epochs = epochs
        self.dataset = dataset
        self.history = history
        self.optimizerState = optimizerState
        self.step = step
    }

    public static func == (a: TrainingRecord, b: TrainingRecord) -> Bool {
        a.loss == b.loss && a.optimizer == b.optimizer && a.hyperparameters == b.hyperparameters
            && a.epochs == b.epochs && a.dataset == b.dataset && a.history == b.history
            && a.optimizerState.elementsEqual(b.optimizerState, by: { $0 == $1 }) && a.step == b.step
            && a.unknownFields == b.unknownFields
    }
}

/// Where a model came from.
public struct Provenance: Equatable, Sendable {
    /// The tool that wrote the file, e.g. "nn-train 0.1.0".
    public var tool: String
    /// ISO 8601 UTC time the file was written.
    public var created: String
    /// The file this model was converted from, if any, and its format ("h5-rows", "keras-h5", ...).
    public var sourceFile: String?
    public var sourceFormat: String?
    public var unknownFields = JSONObject()

    public init(tool: String, created: String, sourceFile: String? = nil, sourceFormat: String? = nil) {
        self.tool = tool
        self.created = created
        self.sourceFile = sourceFile
        self.sourceFormat = sourceFormat
    }
}

/// Everything about a model except its tensor bytes.
public struct ModelMetadata: Equatable, Sendable {
    public var input: InputSpec
    public var layers: [Layer]
    public var preprocessing: [PreprocessingStep]
    /// Output class names, in output order; empty when the model has none.
    public var classes: [String]
    public var training: TrainingRecord?
    public var provenance: Provenance
    /// Top-level members this version does not know; kept on rewrite.
    public var unknownFields = JSONObject()

    public init(input: InputSpec, layers: [Layer], preprocessing: [PreprocessingStep] = [], classes: [String] = [],
                training: TrainingRecord? = nil, provenance: Provenance) {
        self.input = input
        self.layers = layers
        self.preprocessing = preprocessing
        self.classes = classes
        self.training = training
        self.provenance = provenance
    }

    /// Number of outputs of the last layer.
    public var outputSize: Int { layers.last?.outputSize ?? input.features }
}

/// A model: its description and its named tensors (weights, biases, statistics, optimizer state).
public struct Model: Sendable {
    public var metadata: ModelMetadata
    /// Tensors in file order.
    public var tensors: [NamedTensor]

    public init(metadata: ModelMetadata, tensors: [NamedTensor]) {
        self.metadata = metadata
        self.tensors = tensors
    }

    /// The tensor stored under `name`.
    public func tensor(_ name: String) -> Tensor? {
        tensors.first(where: { $0.name == name })?.tensor
    }

    /// Replaces or appends a tensor.
    public mutating func setTensor(_ name: String, _ tensor: Tensor) {
        if let i = tensors.firstIndex(where: { $0.name == name }) {
            tensors[i].tensor = tensor
        } else {
            tensors.append(NamedTensor(name, tensor))
        }
    }

    /// Number of trainable parameters (weights and biases of all layers).
    public var parameterCount: Int {
        metadata.layers.reduce(0) { total, layer in
            total + (tensor(layer.weight)?.count ?? 0) + (layer.bias.flatMap { tensor($0)?.count } ?? 0)
        }
    }
}
