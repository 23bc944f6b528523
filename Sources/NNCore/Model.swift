/// Format 1.4: the affine u8 quantization of a layer's inputs, `q = clamp(round(x / scale) +
/// zeroPoint, 0, 255)` (so `x` is about `(q - zeroPoint) * scale`), calibrated on sample data:
/// the range `[min(x, 0), max(x, 0)]` seen there onto 0...255, 0 exactly representable.
public struct InputQuantization: Equatable, Sendable {
    /// Finite and > 0.
    public var scale: Float
    /// In 0...255.
    public var zeroPoint: Int

    public init(scale: Float, zeroPoint: Int) {
        self.scale = scale
        self.zeroPoint = zeroPoint
    }

    /// The quantization that maps `[min(low, 0), max(high, 0)]` onto 0...255 with 0 exactly
    /// representable; scale 1 for an empty or all-zero range (as the kernels' per-row rule).
    public init(range low: Float, _ high: Float) {
        let lo = min(low, 0), hi = max(high, 0)
        var s = (hi - lo) / 255
        if !(s > 0) || !s.isFinite { s = 1 }
        scale = s
        zeroPoint = Int(max(0, min(255, (-lo / s).rounded(.toNearestOrEven))))
    }
}

/// One layer of a model, in order from input to output.
///
/// Every layer maps `inputSize` features to `outputSize` features per sample. Spatial layers
/// (`conv2d`, the poolings, `flatten`, and `batch_norm` after a convolution) also describe the
/// sample's geometry in `spatial`; their activations are laid out height x width x channels,
/// row-major (channels fastest), so a flattened sample is the Keras (HWC) order and `flatten`
/// does not move memory.
public struct Layer: Equatable, Sendable {
    public enum Kind: String, CaseIterable, Sendable {
        case dense
        case conv2d
        case maxPool2d = "max_pool2d"
        case flatten
        /// Format 1.2: inference-time batch normalization over the last axis.
        case batchNorm = "batch_norm"
        /// Format 1.2: the mean of each channel over each window.
        case avgPool2d = "avg_pool2d"
        /// Format 1.2: the mean of each channel over the whole sample, HxWxC -> C.
        case globalAvgPool2d = "global_avg_pool2d"
        /// Format 1.2: the maximum of each channel over the whole sample, HxWxC -> C.
        case globalMaxPool2d = "global_max_pool2d"

        /// The format minor version that introduced the kind (0, 1 or 2).
        public var minorVersion: Int {
            switch self {
            case .dense: return 0
            case .conv2d, .maxPool2d, .flatten: return 1
            case .batchNorm, .avgPool2d, .globalAvgPool2d, .globalMaxPool2d: return 2
            }
        }

        /// Whether the layer has a weight (and optionally a bias): dense and conv2d.
        public var hasWeight: Bool { self == .dense || self == .conv2d }
    }

    public var kind: Kind
    /// Number of input features.
    public var inputSize: Int
    /// Number of output features.
    public var outputSize: Int
    public var activation: Activation
    /// Name of the weight tensor, nil for layers without one (pooling, flatten, batch_norm).
    /// Dense: shape [inputSize, outputSize], `Z = X @ W + b` with samples as rows.
    /// Conv2D: shape [kernelHeight, kernelWidth, inputChannels, filters] (HWIO, as Keras).
    public var weight: String?
    /// Name of the bias tensor (shape [outputSize] for dense, [filters] for conv2d), or nil.
    public var bias: String?
    /// Format 1.3: with an `i8` weight, the name of its f32 scale tensor, one value per output
    /// (the weight's last dimension): the weight's value is `Float(q) * scale[output]`.
    public var weightScale: String?
    /// Format 1.3: `"compute": "bf16"` on a layer whose weight is bf16: readers may round its
    /// inputs to bf16 too and multiply in bf16 with f32 sums (`vdpbf16ps`), as `nnconv quantize
    /// --bf16` asks. Without it a bf16 weight is only a storage type, widened to f32 exactly.
    public var bfloat16Compute = false
    /// Format 1.4: with an `i8` weight, one scale and zero point for every input of the layer,
    /// calibrated on sample data (`nnconv quantize --calibration`): readers that quantize the
    /// inputs may use them instead of measuring each row.
    public var inputQuantization: InputQuantization?
    /// The geometry of a spatial layer, and the sample shape of a batch_norm layer; nil for
    /// dense layers.
    public var spatial: SpatialGeometry?
    /// The statistics and parameters of a batch_norm layer; nil for other kinds.
    public var batchNorm: BatchNormalization?
    /// For avg_pool2d: whether padded cells count in a window's divisor (PyTorch's default,
    /// `count_include_pad=True`) or not (Keras and TensorFlow). False for other kinds.
    public var countIncludePad = false
    /// Members of the layer's JSON object that this version does not know; kept on rewrite.
    public var unknownFields = JSONObject()

    public init(kind: Kind = .dense, inputSize: Int, outputSize: Int, activation: Activation,
                weight: String?, bias: String?, spatial: SpatialGeometry? = nil) {
        self.kind = kind
        self.inputSize = inputSize
        self.outputSize = outputSize
        self.activation = activation
        self.weight = weight
        self.bias = bias
        self.spatial = spatial
    }

    /// The shape the weight tensor must have: `[in, out]` for dense, `[kernel height, kernel
    /// width, in channels, filters]` for conv2d; nil for layers without a weight.
    public var weightShape: [Int]? {
        switch kind {
        case .dense: return [inputSize, outputSize]
        case .conv2d:
            guard let g = spatial else { return nil }
            return [g.window[0], g.window[1], g.inputShape[2], g.outputShape[2]]
        case .maxPool2d, .flatten, .batchNorm, .avgPool2d, .globalAvgPool2d, .globalMaxPool2d: return nil
        }
    }

    /// Values in the bias (outputs for dense, filters for conv2d): the last weight dimension.
    public var biasCount: Int? { weightShape?.last }

    /// Every tensor the layer names: weight and bias, or batch normalization's four.
    public var tensorNames: [String] {
        var names = [weight, weightScale, bias].compactMap { $0 }
        if let bn = batchNorm { names += [bn.gamma, bn.beta, bn.movingMean, bn.movingVariance].compactMap { $0 } }
        return names
    }

    /// The format minor version the layer needs: its kind's, its activation's, 2 with explicit padding.
    public var minorVersion: Int {
        var version = max(kind.minorVersion, activation.minorVersion)
        if case .explicit = spatial?.padding { version = max(version, 2) }
        if weightScale != nil || bfloat16Compute { version = max(version, 3) }
        if inputQuantization != nil { version = max(version, 4) }
        return version
    }

    /// Standard tensor names for the dense layer at `index`.
    public static func dense(index: Int, inputSize: Int, outputSize: Int, activation: Activation) -> Layer {
        Layer(inputSize: inputSize, outputSize: outputSize, activation: activation,
              weight: "layers.\(index).weight", bias: "layers.\(index).bias")
    }

    /// A 2-D convolution at `index` with standard tensor names; the output shape follows from
    /// the geometry. Throws when the window does not fit the input.
    public static func conv2d(index: Int, inputShape: [Int], filters: Int, kernel: [Int], strides: [Int] = [1, 1],
                              padding: Padding = .valid, convention: ConvolutionConvention = .crossCorrelation,
                              activation: Activation, bias: Bool = true) throws(ModelError) -> Layer {
        let geometry = try SpatialGeometry(inputShape: inputShape, window: kernel, strides: strides, padding: padding,
                                           outputChannels: filters, convention: convention, location: "layers[\(index)]", windowKey: "kernel")
        return Layer(kind: .conv2d, inputSize: geometry.inputFeatures, outputSize: geometry.outputFeatures, activation: activation,
                     weight: "layers.\(index).weight", bias: bias ? "layers.\(index).bias" : nil, spatial: geometry)
    }

    /// Max pooling over `pool` windows (strides default to the window, as Keras).
    public static func maxPool2d(index: Int, inputShape: [Int], pool: [Int], strides: [Int]? = nil,
                                 padding: Padding = .valid) throws(ModelError) -> Layer {
        let geometry = try SpatialGeometry(inputShape: inputShape, window: pool, strides: strides ?? pool, padding: padding,
                                           outputChannels: inputShape.count == 3 ? inputShape[2] : 0,
                                           convention: .crossCorrelation, location: "layers[\(index)]", windowKey: "pool")
        return Layer(kind: .maxPool2d, inputSize: geometry.inputFeatures, outputSize: geometry.outputFeatures,
                     activation: .identity, weight: nil, bias: nil, spatial: geometry)
    }

    /// Average pooling over `pool` windows (strides default to the window). `countIncludePad`
    /// says whether padded cells count in the divisor (PyTorch's default) or not (Keras).
    public static func avgPool2d(index: Int, inputShape: [Int], pool: [Int], strides: [Int]? = nil,
                                 padding: Padding = .valid, countIncludePad: Bool) throws(ModelError) -> Layer {
        var layer = try maxPool2d(index: index, inputShape: inputShape, pool: pool, strides: strides, padding: padding)
        layer.kind = .avgPool2d
        layer.countIncludePad = countIncludePad
        return layer
    }

    /// Global average or maximum pooling of a [height, width, channels] sample to [channels].
    public static func globalPool2d(index: Int, inputShape: [Int], average: Bool) throws(ModelError) -> Layer {
        let geometry = try SpatialGeometry(globalPooling: inputShape, location: "layers[\(index)]")
        return Layer(kind: average ? .globalAvgPool2d : .globalMaxPool2d, inputSize: geometry.inputFeatures,
                     outputSize: geometry.outputFeatures, activation: .identity, weight: nil, bias: nil, spatial: geometry)
    }

    /// Batch normalization of samples of `inputShape` ([features], or [height, width, channels]
    /// after a convolution) over the last axis, with standard tensor names
    /// (`layers.<i>.gamma`, `.beta`, `.moving_mean`, `.moving_variance`); without `scale` or
    /// `center` there is no gamma (1) or beta (0), as Keras's `scale=False`, `center=False`.
    public static func batchNorm(index: Int, inputShape: [Int], epsilon: Double, scale: Bool = true, center: Bool = true,
                                 activation: Activation = .identity) throws(ModelError) -> Layer {
        let geometry = try SpatialGeometry(normalizing: inputShape, location: "layers[\(index)]")
        var layer = Layer(kind: .batchNorm, inputSize: geometry.inputFeatures, outputSize: geometry.outputFeatures,
                          activation: activation, weight: nil, bias: nil, spatial: geometry)
        layer.batchNorm = BatchNormalization(gamma: scale ? "layers.\(index).gamma" : nil, beta: center ? "layers.\(index).beta" : nil,
                                             movingMean: "layers.\(index).moving_mean", movingVariance: "layers.\(index).moving_variance",
                                             epsilon: epsilon)
        return layer
    }

    /// Flattens a height x width x channels sample in that (Keras) order.
    public static func flatten(inputShape: [Int]) -> Layer {
        let features = inputShape.reduce(1, *)
        return Layer(kind: .flatten, inputSize: features, outputSize: features, activation: .identity, weight: nil, bias: nil,
                     spatial: SpatialGeometry(flattening: inputShape))
    }
}

/// Inference-time batch normalization (format 1.2): per channel `c` (the last axis),
/// `y = gamma[c] * (x - movingMean[c]) / sqrt(movingVariance[c] + epsilon) + beta[c]`.
public struct BatchNormalization: Equatable, Sendable {
    /// Tensor of shape [channels]; nil means 1 (Keras `scale=False`).
    public var gamma: String?
    /// Tensor of shape [channels]; nil means 0 (Keras `center=False`).
    public var beta: String?
    /// Tensor of shape [channels]: the statistics the model was trained with.
    public var movingMean: String
    /// Tensor of shape [channels]; a negative value is a warning (its outputs may be NaN).
    public var movingVariance: String
    /// Added to the variance before the square root; must be > 0 (Keras 0.001, PyTorch 1e-5).
    public var epsilon: Double

    public init(gamma: String?, beta: String?, movingMean: String, movingVariance: String, epsilon: Double) {
        self.gamma = gamma
        self.beta = beta
        self.movingMean = movingMean
        self.movingVariance = movingVariance
        self.epsilon = epsilon
    }
}

extension Layer {
    /// A full description for listings: "conv2d 28x28x1 -> 26x26x8, kernel 3x3, strides 1x1,
    /// valid, cross-correlation, relu".
    public var summary: String {
        let activationPart = activation == .identity && kind != .dense ? "" : ", \(activation)"
        switch kind {
        case .dense:
            return "dense \(inputSize) -> \(outputSize)\(activationPart)"
        case .conv2d, .maxPool2d, .avgPool2d:
            guard let g = spatial else { return kind.rawValue }
            let window = kind == .conv2d ? "kernel" : "pool"
            var text = "\(kind.rawValue) \(ShapeMath.describe(g.inputShape)) -> \(ShapeMath.describe(g.outputShape)), "
                + "\(window) \(ShapeMath.describe(g.window)), strides \(ShapeMath.describe(g.strides)), \(g.padding)"
            if kind == .conv2d { text += ", \(g.convention.rawValue)" }
            if kind == .avgPool2d, g.padding != .valid { text += countIncludePad ? ", padded cells counted" : ", padded cells not counted" }
            return text + activationPart
        case .flatten:
            return "flatten \(ShapeMath.describe(spatial?.inputShape ?? [inputSize])) -> \(outputSize)\(activationPart)"
        case .globalAvgPool2d, .globalMaxPool2d:
            return "\(kind.rawValue) \(ShapeMath.describe(spatial?.inputShape ?? [inputSize])) -> \(outputSize)\(activationPart)"
        case .batchNorm:
            return "batch_norm \(ShapeMath.describe(spatial?.inputShape ?? [inputSize])), epsilon \(batchNorm?.epsilon ?? 0)\(activationPart)"
        }
    }

    /// A short form for one-line model descriptions: "256 relu", "conv3x3 26x26x8 relu",
    /// "pool2x2 13x13x8", "avgpool2x2 13x13x8", "bn relu", "globalavg 8", "flatten".
    public var shortSummary: String {
        let activationPart = activation == .identity && kind != .dense ? "" : " \(activation)"
        switch kind {
        case .dense: return "\(outputSize)\(activationPart)"
        case .conv2d: return "conv\(ShapeMath.describe(spatial?.window ?? [])) \(ShapeMath.describe(spatial?.outputShape ?? []))\(activationPart)"
        case .maxPool2d: return "pool\(ShapeMath.describe(spatial?.window ?? [])) \(ShapeMath.describe(spatial?.outputShape ?? []))\(activationPart)"
        case .avgPool2d: return "avgpool\(ShapeMath.describe(spatial?.window ?? [])) \(ShapeMath.describe(spatial?.outputShape ?? []))\(activationPart)"
        case .globalAvgPool2d: return "globalavg \(outputSize)\(activationPart)"
        case .globalMaxPool2d: return "globalmax \(outputSize)\(activationPart)"
        case .batchNorm: return "bn\(activationPart)"
        case .flatten: return "flatten\(activationPart)"
        }
    }
}

/// How a window is placed over the input's border.
public enum Padding: Hashable, Sendable, CustomStringConvertible {
    /// Only windows that fit inside the input: `out = (in - window) / stride + 1`.
    case valid
    /// TensorFlow/Keras "same": `out = ceil(in / stride)`, zero padding split with the smaller
    /// half before (for pooling, padded positions are ignored).
    case same
    /// Format 1.2: these many zero rows and columns around the input (PyTorch's and ONNX's
    /// `pads`; TensorFlow's "same" with stride 2 is, for example, 0 before and 1 after):
    /// `out = (in + before + after - window) / stride + 1`. Each pad is less than the window.
    case explicit(top: Int, left: Int, bottom: Int, right: Int)

    /// "valid" or "same"; nil for other names (explicit padding has no name).
    public init?(name: String) {
        switch name {
        case "valid": self = .valid
        case "same": self = .same
        default: return nil
        }
    }

    /// The names of the padding modes that have one.
    public static let names = ["valid", "same"]

    /// [top, left, bottom, right] for explicit padding, nil otherwise.
    public var pads: [Int]? {
        if case let .explicit(top, left, bottom, right) = self { return [top, left, bottom, right] }
        return nil
    }

    /// "valid", "same", or "pads 0,0,1,1" (top, left, bottom, right).
    public var description: String {
        switch self {
        case .valid: return "valid"
        case .same: return "same"
        case let .explicit(top, left, bottom, right): return "pads \(top),\(left),\(bottom),\(right)"
        }
    }
}

/// Whether a convolution kernel is applied as stored (cross-correlation: Keras, PyTorch, ONNX)
/// or flipped on both spatial axes (true convolution: `scipy.signal.convolve2d`, the blog's
/// `conv2d`). Converting between them flips the kernel's first two axes.
public enum ConvolutionConvention: String, CaseIterable, Sendable {
    case crossCorrelation = "cross-correlation"
    case convolution
}

/// The geometry of a spatial layer: sample shapes [height, width, channels] in and out, and the
/// kernel or pooling window with its strides and padding. Flatten, global pooling and batch
/// normalization have shapes only (no window).
public struct SpatialGeometry: Equatable, Sendable {
    /// [height, width, channels] of one input sample ([features] or any shape for flatten and
    /// batch_norm).
    public var inputShape: [Int]
    /// [height, width, channels] of one output sample; [features] after flatten, [channels]
    /// after global pooling, the input shape after batch_norm.
    public var outputShape: [Int]
    /// Kernel (conv2d) or pooling window (max_pool2d, avg_pool2d) as [height, width]; empty
    /// for the layers without a window.
    public var window: [Int]
    /// Steps between windows as [height, width]; empty for the layers without a window.
    public var strides: [Int]
    public var padding: Padding
    /// For conv2d: how the kernel is applied. Cross-correlation for other layers.
    public var convention: ConvolutionConvention

    /// Largest kernel or window side and stride accepted (far beyond any real model; keeps the
    /// arithmetic below far from overflow).
    public static let maximumWindow = 1 << 16

    /// Checks and completes a conv2d (`outputChannels` filters) or pooling geometry.
    public init(inputShape: [Int], window: [Int], strides: [Int], padding: Padding, outputChannels: Int,
                convention: ConvolutionConvention, location: String, windowKey: String = "window") throws(ModelError) {
        try Self.requireSample(inputShape, location: location)
        guard window.count == 2, window.allSatisfy({ (1...Self.maximumWindow).contains($0) }) else {
            throw .invalidField(location: "\(location).\(windowKey)", expected: "[height, width], each 1...\(Self.maximumWindow)",
                                found: ShapeMath.describe(window))
        }
        guard strides.count == 2, strides.allSatisfy({ (1...Self.maximumWindow).contains($0) }) else {
            throw .invalidField(location: "\(location).strides", expected: "[height, width], each 1...\(Self.maximumWindow)",
                                found: ShapeMath.describe(strides))
        }
        guard (1...Int(Int32.max)).contains(outputChannels) else {
            throw .invalidField(location: "\(location)", expected: "at least one output channel", found: String(outputChannels))
        }
        if let pads = padding.pads {
            // A pad as wide as the window would give outputs made of padding alone.
            guard pads[0] >= 0, pads[2] >= 0, pads[0] < window[0], pads[2] < window[0],
                  pads[1] >= 0, pads[3] >= 0, pads[1] < window[1], pads[3] < window[1] else {
                throw .invalidField(location: "\(location).padding",
                                    expected: "[top, left, bottom, right] pads from 0 to less than the \(windowKey) \(ShapeMath.describe(window))",
                                    found: "[\(pads.map(String.init).joined(separator: ", "))]")
            }
        }
        var output: [Int] = []
        for axis in 0..<2 {
            guard let length = Self.outputLength(input: inputShape[axis], window: window[axis], stride: strides[axis], padding: padding, axis: axis) else {
                let fit = padding.pads.map { "padded by [\($0.map(String.init).joined(separator: ", "))]" } ?? "with 'valid' padding"
                throw .invalidField(location: "\(location).\(windowKey)", expected: "a window that fits the input \(ShapeMath.describe(inputShape)) \(fit)",
                                    found: ShapeMath.describe(window))
            }
            output.append(length)
        }
        output.append(outputChannels)
        guard let features = ShapeMath.byteCount(output, elementSize: 1), features <= Int(Int32.max),
              let inFeatures = ShapeMath.byteCount(inputShape, elementSize: 1), inFeatures <= Int(Int32.max) else {
            throw .invalidField(location: location, expected: "at most \(Int32.max) features", found: ShapeMath.describe(output))
        }
        self.inputShape = inputShape
        self.outputShape = output
        self.window = window
        self.strides = strides
        self.padding = padding
        self.convention = convention
    }

    /// The geometry of a flatten layer.
    public init(flattening inputShape: [Int]) {
        self.inputShape = inputShape
        self.outputShape = [inputShape.reduce(1, *)]
        self.window = []
        self.strides = []
        self.padding = .valid
        self.convention = .crossCorrelation
    }

    /// The geometry of a global pooling layer: [height, width, channels] -> [channels].
    public init(globalPooling inputShape: [Int], location: String) throws(ModelError) {
        try Self.requireSample(inputShape, location: location)
        guard let features = ShapeMath.byteCount(inputShape, elementSize: 1), features <= Int(Int32.max) else {
            throw .invalidField(location: location, expected: "at most \(Int32.max) features", found: ShapeMath.describe(inputShape))
        }
        self.inputShape = inputShape
        self.outputShape = [inputShape[2]]
        self.window = []
        self.strides = []
        self.padding = .valid
        self.convention = .crossCorrelation
    }

    /// The geometry of a batch_norm layer: [features] (after dense or flatten) or [height,
    /// width, channels] (after a convolution or pooling), unchanged by the layer.
    public init(normalizing shape: [Int], location: String) throws(ModelError) {
        guard shape.count == 1 || shape.count == 3, shape.allSatisfy({ $0 >= 1 && $0 <= Int(Int32.max) }),
              let features = ShapeMath.byteCount(shape, elementSize: 1), features <= Int(Int32.max) else {
            throw .invalidField(location: "\(location).input_shape", expected: "[features] or [height, width, channels], each >= 1, at most \(Int32.max) features",
                                found: ShapeMath.describe(shape))
        }
        self.inputShape = shape
        self.outputShape = shape
        self.window = []
        self.strides = []
        self.padding = .valid
        self.convention = .crossCorrelation
    }

    private static func requireSample(_ inputShape: [Int], location: String) throws(ModelError) {
        guard inputShape.count == 3, inputShape.allSatisfy({ $0 >= 1 && $0 <= Int(Int32.max) }) else {
            throw .invalidField(location: "\(location).input_shape", expected: "[height, width, channels], each >= 1",
                                found: ShapeMath.describe(inputShape))
        }
    }

    /// Output length along one axis (0: height, 1: width), or nil when a 'valid' or explicitly
    /// padded window does not fit.
    public static func outputLength(input: Int, window: Int, stride: Int, padding: Padding, axis: Int) -> Int? {
        switch padding {
        case .valid: return input >= window ? (input - window) / stride + 1 : nil
        case .same: return (input + stride - 1) / stride
        case let .explicit(top, left, bottom, right):
            let padded = input + (axis == 0 ? top + bottom : left + right)
            return padded >= window ? (padded - window) / stride + 1 : nil
        }
    }

    /// Zero rows and columns added before the input (top, left) under this padding.
    public var paddingBefore: (top: Int, left: Int) {
        guard window.count == 2 else { return (0, 0) }
        switch padding {
        case .valid: return (0, 0)
        case .same:
            func before(_ axis: Int) -> Int {
                max((outputShape[axis] - 1) * strides[axis] + window[axis] - inputShape[axis], 0) / 2
            }
            return (before(0), before(1))
        case let .explicit(top, left, _, _): return (top, left)
        }
    }

    /// A `[height, width, in, out]` kernel turned by 180 degrees on its spatial axes: converts
    /// between true convolution and cross-correlation (its own inverse).
    public static func flippedKernel<T>(_ w: [T], shape: [Int]) -> [T] {
        let kh = shape[0], kw = shape[1], inner = shape[2] * shape[3]
        precondition(w.count == kh * kw * inner, "kernel values do not match the shape")
        var out = w
        for u in 0..<kh {
            for v in 0..<kw {
                let from = (u * kw + v) * inner, to = ((kh - 1 - u) * kw + (kw - 1 - v)) * inner
                for i in 0..<inner { out[to + i] = w[from + i] }
            }
        }
        return out
    }

    public var inputFeatures: Int { inputShape.reduce(1, *) }
    public var outputFeatures: Int { outputShape.reduce(1, *) }
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
    /// What the outputs are, when the file states it (format 1.2); see `outputKind`.
    public var output: OutputSpec?
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

    /// What the outputs are: as stated in the file (`output`), or else derived from the last
    /// layer's activation: softmax and sigmoid give probabilities, log-softmax
    /// log-probabilities, anything else logits.
    public var outputKind: OutputKind {
        if let output { return output.kind }
        switch layers.last?.activation {
        case .softmax?, .sigmoid?: return .probabilities
        case .logSoftmax?: return .logProbabilities
        default: return .logits
        }
    }

    /// The format minor version the description needs: 1 (what writers wrote before 1.2, and
    /// still write for such models, byte for byte), or 2 when a layer, activation, padding or
    /// the `output` member is new in 1.2.
    public var minorVersion: Int {
        max(1, output == nil ? 0 : 2, layers.map(\.minorVersion).max() ?? 0)
    }
}

/// The header's `output` member (format 1.2): `{"kind": "logits"}`.
public struct OutputSpec: Equatable, Sendable {
    /// What the outputs are.
    public var kind: OutputKind
    /// Members of the object that this version does not know; kept on rewrite.
    public var unknownFields = JSONObject()

    public init(kind: OutputKind) { self.kind = kind }
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

    /// The tensor stored under `name`, or nil when there is no name (a layer without weights).
    public func tensor(_ name: String?) -> Tensor? {
        name.flatMap { tensor($0) }
    }

    /// The weight of `layer` as floats: the stored tensor, or for an `i8` weight with a
    /// `weight_scale` its values times their output's scale (f32). What every consumer that
    /// computes with the weight, or writes it to another format, reads.
    public func floatWeight(of layer: Layer) -> Tensor? {
        guard let stored = tensor(layer.weight) else { return nil }
        guard stored.dtype == .int8, let scale = tensor(layer.weightScale), let outputs = stored.shape.last, outputs > 0 else { return stored }
        let scales = scale.floats(), q = stored.floats()
        guard scales.count == outputs else { return stored }
        var values = [Float](repeating: 0, count: q.count)
        for i in 0..<q.count { values[i] = q[i] * scales[i % outputs] }
        return Tensor(values, shape: stored.shape)
    }

    /// The model with every quantized weight replaced by its f32 values (`floatWeight`) and the
    /// scale tensors dropped: what formats without int8 weights are written from.
    public func dequantized() -> Model {
        var result = self
        var dropped = Set<String>()
        for (i, layer) in metadata.layers.enumerated() where layer.weightScale != nil {
            if let name = layer.weight, let w = floatWeight(of: layer) { result.setTensor(name, w) }
            dropped.insert(layer.weightScale!)
            result.metadata.layers[i].weightScale = nil
            result.metadata.layers[i].inputQuantization = nil
        }
        result.tensors.removeAll { dropped.contains($0.name) }
        return result
    }

    /// Replaces or appends a tensor.
    public mutating func setTensor(_ name: String, _ tensor: Tensor) {
        if let i = tensors.firstIndex(where: { $0.name == name }) {
            tensors[i].tensor = tensor
        } else {
            tensors.append(NamedTensor(name, tensor))
        }
    }

    /// Number of trainable parameters: weights and biases of all layers, and batch
    /// normalization's gamma and beta (its moving statistics are not trained).
    public var parameterCount: Int {
        metadata.layers.reduce(0) { total, layer in
            total + (tensor(layer.weight)?.count ?? 0) + (tensor(layer.bias)?.count ?? 0)
                + (tensor(layer.batchNorm?.gamma)?.count ?? 0) + (tensor(layer.batchNorm?.beta)?.count ?? 0)
        }
    }
}

extension [PreprocessingStep] {
    /// The steps for people: "x * 0.00392156862745098", or "zscore: (x - mean) / std where
    /// std != 0" with the statistics' tensor names (after `tensorPrefix`); "none" when empty.
    public func describe(tensorPrefix: String = "") -> String {
        if isEmpty { return "none" }
        return map { step in
            switch step {
            case let .scale(factor, offset): return offset == 0 ? "x * \(factor)" : "x * \(factor) + \(offset)"
            case let .zscore(mean, std): return "zscore: (x - \(tensorPrefix)\(mean)) / \(tensorPrefix)\(std) where std != 0"
            }
        }.joined(separator: "; ")
    }
}
