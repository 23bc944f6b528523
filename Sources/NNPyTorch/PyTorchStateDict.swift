import NNConvert
import NNCore

/// PyTorch state dicts as models: the architecture is not in the file, so it is inferred from the
/// parameters' names, shapes and order where that is unique, every decision becoming a note, and
/// `ImportOptions.architecture` (`--arch`) states or overrides the convolutional part.
///
/// PyTorch's conventions become ours: images NCHW -> HWC, kernels OIHW -> HWIO, `nn.Linear`
/// weights (out, in) -> [in, out], and the rows of the first Linear after a flatten permuted
/// from PyTorch's channel-first order to our height-width-channel order. Batch normalization
/// (`weight`, `bias`, `running_mean`, `running_var`) keeps its per-channel tensors as they are.
public enum PyTorchStateDict {
    /// PyTorch's `BatchNorm*d` default epsilon, which a state dict does not record.
    public static let defaultEpsilon = 1e-5

    /// One module's tensors.
    struct Module {
        enum Kind { case linear, convolution, batchNorm }
        var name: String
        var kind: Kind
        /// The weight (Linear, Conv2d) or BatchNorm's scale (`weight`, absent when `affine=False`).
        var weight: SourceArray?
        var bias: SourceArray?
        var runningMean: SourceArray?
        var runningVariance: SourceArray?
        var isConvolution: Bool { kind == .convolution }
        var isLinear: Bool { kind == .linear }
        /// Channels or features out (and in, for batch normalization).
        var outputs: Int { kind == .batchNorm ? runningMean!.shape[0] : weight!.shape[0] }
        /// Channels or features in.
        var inputs: Int { kind == .batchNorm ? runningMean!.shape[0] : weight!.shape[1] }
        var arrays: [SourceArray] { [weight, bias, runningMean, runningVariance].compactMap { $0 } }
        var className: String {
            switch kind {
            case .linear: return "Linear"
            case .convolution: return "Conv2d"
            case .batchNorm: return "BatchNorm"
            }
        }
    }

    /// Builds the model from `arrays` (a state dict's tensors, declared). `inModuleOrder` says
    /// whether the file lists them in the modules' registration order (torch.save does;
    /// safetensors sorts its keys).
    public static func model(_ arrays: [SourceArray], path: String, inModuleOrder: Bool, sourceFormat: String,
                      options: ImportOptions) throws -> ImportResult {
        var notes: [String] = []
        let modules = try order(try group(arrays, path: path), path: path, inModuleOrder: inModuleOrder, options: options, notes: &notes)
        // Convolutions (and batch normalizations between them) come first, then the Linear layers
        // (each optionally followed by a BatchNorm1d).
        let featureCount = modules.firstIndex(where: \.isLinear) ?? modules.count
        let features = Array(modules[..<featureCount]), classifier = Array(modules[featureCount...])
        if let late = classifier.first(where: \.isConvolution) {
            throw InteropError.unsupportedModule(path: path, module: late.name, className: "Conv2d", reason: "a convolution after a Linear layer")
        }
        guard !classifier.isEmpty else {
            throw InteropError.badConfig(path: path, detail: "the state dict has convolutions (\(features.map(\.name).joined(separator: ", "))) but no nn.Linear layer to end the model")
        }
        for m in modules {
            for a in m.arrays where a.name.hasSuffix("weight") || m.kind == .batchNorm {
                guard a.dtype?.isFloatingPoint ?? false else { throw InteropError.badDType(path: path, name: a.name, found: a.typeName) }
            }
            if let b = m.bias, b.shape != [m.outputs] {
                throw InteropError.badShape(path: path, name: b.name, detail: "expected \(m.outputs) values for \(m.name) (\(m.outputs) outputs), found \(ShapeMath.describe(b.shape))")
            }
        }
        let activations: [Activation]
        if let given = options.activations, let stated = options.architecture {
            // As with nn-train's --cnn and --activations: the stages carry the convolutional
            // part's activations, --activations those of the layers after the flatten.
            guard given.count == classifier.count else {
                throw InteropError.badOption("--activations: with --arch, one per layer after the convolutions: \(path) has \(classifier.count) (\(classifier.map(\.name).joined(separator: ", "))), but \(given.count) activations were given")
            }
            activations = stated.filter(\.hasParameters).map(\.activation) + given
        } else if let given = options.activations {
            guard given.count == modules.count else {
                throw InteropError.badOption("--activations: \(path) has \(modules.count) layers with weights (\(modules.map(\.name).joined(separator: ", "))), but \(given.count) activations were given")
            }
            activations = given
        } else {
            activations = defaultActivations(modules, stated: options.architecture, notes: &notes)
        }
        if features.isEmpty, options.architecture == nil, !classifier.contains(where: { $0.kind == .batchNorm }) {
            return try dense(classifier, activations: activations, path: path, sourceFormat: sourceFormat, options: options, notes: notes)
        }
        return try convolutional(features, classifier, activations: activations, path: path,
                                 sourceFormat: sourceFormat, options: options, notes: notes)
    }

    /// What a state dict does not record: ReLU after every layer, moved behind a batch
    /// normalization that follows; at the end, the last Linear's logits (a sigmoid for a single
    /// output). With `--arch`, its stages' activations for the convolutional part.
    static func defaultActivations(_ modules: [Module], stated: [FeatureStage]?, notes: inout [String]) -> [Activation] {
        var activations: [Activation] = modules.indices.map { i in
            i + 1 < modules.count && modules[i + 1].kind == .batchNorm ? .identity : .relu
        }
        if let stated {
            let statedActivations = stated.filter(\.hasParameters).map(\.activation)
            for (i, a) in statedActivations.enumerated() where i < modules.count && !modules[i].isLinear { activations[i] = a }
        }
        let single = modules.last!.outputs == 1
        activations[modules.count - 1] = single ? .sigmoid : .identity
        notes.append("activations \(activations.map(\.description).joined(separator: ", ")): a PyTorch state dict does not record them; ReLU between layers (after a batch normalization where one follows), and "
                     + (single ? "sigmoid for the single output" : "the last Linear's outputs as logits (nn-infer shows their softmax; a forward that ends in log_softmax gives the same classes)")
                     + "; --activations overrides")
        return activations
    }

    /// Modules from the tensors' names: `<module>.weight`/`.bias` (Linear, Conv2d) and
    /// `.running_mean`/`.running_var` (BatchNorm), in the order the modules first appear.
    static func group(_ arrays: [SourceArray], path: String) throws -> [Module] {
        guard !arrays.isEmpty else { throw InteropError.badConfig(path: path, detail: "the file holds no tensors") }
        var tensors: [String: [String: SourceArray]] = [:]
        var names: [String] = []
        for a in arrays {
            let dot = a.name.lastIndex(of: ".")
            let module = dot.map { String(a.name[..<$0]) } ?? ""
            let role = dot.map { String(a.name[a.name.index(after: $0)...]) } ?? a.name
            switch role {
            case "weight", "bias", "running_mean", "running_var": tensors[module, default: [:]][role] = a
            case "num_batches_tracked": break  // a counter of training steps, not used in inference
            default:
                throw InteropError.unexpectedTensor(path: path, name: a.name, detail: "expected nn.Linear or nn.Conv2d parameters named <module>.weight and <module>.bias, or nn.BatchNorm's weight, bias, running_mean and running_var")
            }
            if !names.contains(module) { names.append(module) }
        }
        return try names.map { name in
            let t = tensors[name] ?? [:]
            if t["running_mean"] != nil || t["running_var"] != nil {
                guard let mean = t["running_mean"], let variance = t["running_var"] else {
                    throw InteropError.missingTensor(path: path, name: "\(name).\(t["running_mean"] == nil ? "running_mean" : "running_var")", detail: "a batch normalization needs both running statistics")
                }
                let channels = mean.shape.count == 1 ? mean.shape[0] : -1
                for a in [t["weight"], t["bias"], variance].compactMap({ $0 }) where a.shape != [channels] || channels < 0 {
                    throw InteropError.badShape(path: path, name: a.name, detail: "expected \(ShapeMath.describe([max(channels, 0)])) like \(mean.name), found \(ShapeMath.describe(a.shape))")
                }
                return Module(name: name, kind: .batchNorm, weight: t["weight"], bias: t["bias"], runningMean: mean, runningVariance: variance)
            }
            guard let w = t["weight"] else {
                throw InteropError.unexpectedTensor(path: path, name: "\(name).bias", detail: "a bias without \(name).weight")
            }
            guard w.shape.count == 2 || w.shape.count == 4 else {
                if w.shape.count == 1 {
                    throw InteropError.missingTensor(path: path, name: "\(name).running_mean", detail: "\(w.name) is 1-D, as a batch normalization's scale, but the module has no running statistics (track_running_stats=False normalizes with each batch's own statistics, which a converted model cannot)")
                }
                throw InteropError.badShape(path: path, name: w.name, detail: "expected an nn.Linear weight (out, in) or an nn.Conv2d weight (out, in, kh, kw), found \(ShapeMath.describe(w.shape))")
            }
            return Module(name: name, kind: w.shape.count == 4 ? .convolution : .linear, weight: w, bias: t["bias"])
        }
    }

    /// The modules in model order: `--layer-order`; numbered names (`0.weight`, `3.weight`, as
    /// nn.Sequential writes them); the file's order when it is the registration order; else the
    /// only order in which the shapes chain (convolutions first).
    static func order(_ modules: [Module], path: String, inModuleOrder: Bool, options: ImportOptions,
                      notes: inout [String]) throws -> [Module] {
        let names = modules.map(\.name)
        if options.layerOrder != nil || modules.allSatisfy(\.isLinear) && !inModuleOrder {
            if let given = options.layerOrder, modules.contains(where: { !$0.isLinear }) {
                guard given.count == names.count, Set(given) == Set(names) else {
                    throw InteropError.badOption("--layer-order: \(path) has the layers \(names.sorted().joined(separator: ", ")), but \(given.joined(separator: ",")) was given")
                }
                return given.map { modules[names.firstIndex(of: $0)!] }
            }
            let order = try linearOrder(modules.map { ($0.name, $0.inputs, $0.outputs) }, path: path,
                                        given: options.layerOrder, notes: &notes)
            return order.map { modules[$0] }
        }
        if let indices = numericIndices(names) {
            return names.indices.sorted { indices[$0] < indices[$1] }.map { modules[$0] }
        }
        if inModuleOrder { return modules }
        if modules.contains(where: { $0.kind == .batchNorm }) {
            throw InteropError.ambiguous(path: path, detail: "where the batch normalizations \(modules.filter { $0.kind == .batchNorm }.map(\.name).joined(separator: ", ")) go does not follow from the shapes of a file that sorts its names",
                                         flag: "--layer-order \(names.joined(separator: ","))")
        }
        let convolutions = modules.filter(\.isConvolution), linears = modules.filter(\.isLinear)
        var ordered: [Module] = []
        for part in [convolutions, linears] where !part.isEmpty {
            let found = chainOrders(part.map { ($0.inputs, $0.outputs) }, limit: 2)
            guard found.count == 1 else {
                throw InteropError.ambiguous(path: path, detail: "the order of the layers \(part.map(\.name).joined(separator: ", ")) does not follow from their shapes",
                                             flag: "--layer-order \(names.joined(separator: ","))")
            }
            ordered += found[0].map { part[$0] }
        }
        notes.append("layer order \(ordered.map(\.name).joined(separator: ", ")): the only order in which the shapes chain; --layer-order overrides")
        return ordered
    }

    /// An MLP: each weight (out, in) transposed to [in, out].
    static func dense(_ linears: [Module], activations: [Activation], path: String, sourceFormat: String,
                      options: ImportOptions, notes: [String]) throws -> ImportResult {
        var notes = notes
        for (a, b) in zip(linears, linears.dropFirst()) where a.outputs != b.inputs {
            throw InteropError.badShape(path: path, name: "\(a.weight!.name), \(b.weight!.name)",
                                        detail: "\(a.name) has \(a.outputs) outputs but \(b.name) takes \(b.inputs) inputs (weights are (out, in))")
        }
        try linears.flatMap(\.arrays).checkBudget(options.maxTensorBytes, path: path)
        let weights = try linears.map { try $0.weight!.tensor().transposed() }
        let biases = try linears.map { try $0.bias?.tensor() }
        var result = try ModelBuilder.assemble(weights: weights, biases: biases, activations: activations, path: path,
                                               sourceFormat: sourceFormat, inputShape: nil, options: options, notes: &notes)
        result.format = "PyTorch state dict (\(linears.map(\.name).joined(separator: ", ")))"
        return result
    }

    /// A CNN: convolutions (stride 1, no padding unless `--arch` says otherwise) and batch
    /// normalizations, then pooling where the first Linear's input size requires it, a flatten,
    /// and the Linear layers (each optionally followed by a batch normalization).
    static func convolutional(_ features: [Module], _ classifier: [Module], activations: [Activation], path: String,
                              sourceFormat: String, options: ImportOptions, notes: [String]) throws -> ImportResult {
        var notes = notes
        let channels = features.first?.inputs ?? 1
        var shape: [Int]
        if let given = options.inputShape {
            shape = given.count == 2 ? given + [channels] : given
            guard shape.count == 3, shape[2] == channels || features.isEmpty else {
                throw InteropError.badOption("--input-shape \(ShapeMath.describe(given)): \(features[0].name) takes \(channels) channel\(channels == 1 ? "" : "s"); give HxW or HxWx\(channels)")
            }
        } else if features.isEmpty {
            shape = [classifier[0].inputs]
        } else {
            shape = [28, 28, channels]
            notes.append("input 28x28x\(channels) (PyTorch 1x\(channels)x28x28, the MNIST size): a state dict does not record it; --input-shape overrides")
        }
        let inputShape = shape
        // The stages: stated, or one valid stride-1 convolution per Conv2d, pooled as needed.
        let stages: [FeatureStage]
        if let stated = options.architecture {
            stages = stated
            let statedKinds = stated.filter(\.hasParameters).map { stage -> Module.Kind in
                if case .conv = stage { return .convolution } else { return .batchNorm }
            }
            guard statedKinds == features.map(\.kind) else {
                func describe(_ kinds: [Module.Kind]) -> String { kinds.isEmpty ? "no layers with weights" : kinds.map { $0 == .convolution ? "conv" : "bn" }.joined(separator: ", ") }
                throw InteropError.badOption("--arch states \(describe(statedKinds)), but \(path) has \(describe(features.map(\.kind))) (\(features.map(\.name).joined(separator: ", ")))")
            }
        } else {
            stages = features.map { m in
                m.kind == .batchNorm ? .batchNorm(epsilon: nil, activation: .identity)
                    : .conv(filters: m.outputs, kernel: [m.weight!.shape[2], m.weight!.shape[3]], strides: [1, 1], padding: .valid, activation: .identity)
            }
            if features.contains(where: \.isConvolution) {
                notes.append("convolutions with stride 1 and no padding (PyTorch's defaults): a state dict does not record them; --arch overrides")
            }
        }
        if features.contains(where: { $0.kind == .batchNorm }) || classifier.contains(where: { $0.kind == .batchNorm }),
           !stages.contains(where: { if case .batchNorm(.some, _) = $0 { return true } else { return false } }) {
            notes.append("batch normalization epsilon \(defaultEpsilon) (PyTorch's default): a state dict does not record it; --arch bn:eps=E overrides")
        }
        var layers: [Layer] = []
        var declared: [(name: String, array: SourceArray, transform: (Tensor) -> Tensor)] = []
        var mapShape = inputShape
        var activationIndex = 0
        func addBatchNorm(_ m: Module, epsilon: Double?) throws {
            let layer = try Layer.batchNorm(index: layers.count, inputShape: mapShape, epsilon: epsilon ?? defaultEpsilon,
                                            scale: m.weight != nil, center: m.bias != nil, activation: activations[activationIndex])
            guard m.outputs == mapShape.last! else {
                throw InteropError.badShape(path: path, name: m.runningMean!.name, detail: "normalizes \(m.outputs) channels, but its input has \(mapShape.last!) (\(ShapeMath.describe(mapShape)))")
            }
            let bn = layer.batchNorm!
            if let g = bn.gamma { declared.append((g, m.weight!, { $0 })) }
            if let b = bn.beta { declared.append((b, m.bias!, { $0 })) }
            declared.append((bn.movingMean, m.runningMean!, { $0 }))
            declared.append((bn.movingVariance, m.runningVariance!, { $0 }))
            layers.append(layer)
        }
        do {
            var moduleIndex = 0
            for stage in stages {
                switch stage {
                case let .conv(filters, kernel, strides, padding, _):
                    let m = features[moduleIndex]
                    let w = m.weight!
                    guard w.shape == [filters, mapShape[2], kernel[0], kernel[1]] else {
                        throw InteropError.badShape(path: path, name: w.name,
                                                    detail: "expected \(ShapeMath.describe([filters, mapShape[2], kernel[0], kernel[1]])) (out, in, kh, kw) for this stage on a \(ShapeMath.describe(mapShape)) input, found \(ShapeMath.describe(w.shape))")
                    }
                    let layer = try Layer.conv2d(index: layers.count, inputShape: mapShape, filters: filters, kernel: kernel, strides: strides,
                                                 padding: padding, convention: .crossCorrelation, activation: activations[activationIndex], bias: m.bias != nil)
                    let hwio = [kernel[0], kernel[1], mapShape[2], filters]
                    declared.append((layer.weight!, w, { PyTorchLayout.loaded($0, .kernel(flipped: false), shape: hwio) }))
                    if let b = m.bias { declared.append((layer.bias!, b, { $0 })) }
                    layers.append(layer)
                    moduleIndex += 1
                    activationIndex += 1
                case let .batchNorm(epsilon, _):
                    try addBatchNorm(features[moduleIndex], epsilon: epsilon)
                    moduleIndex += 1
                    activationIndex += 1
                case .maxPool, .avgPool, .globalPool:
                    // PyTorch's AvgPool2d counts padded cells unless told otherwise.
                    layers.append(try stage.layer(index: layers.count, inputShape: mapShape, countIncludePad: true, epsilon: defaultEpsilon))
                }
                mapShape = layers.last!.spatial!.outputShape
            }
            let expected = classifier[0].inputs
            if options.architecture == nil, mapShape.count == 3, mapShape.reduce(1, *) != expected {
                // The pooling the forward function applied, read off the first Linear's size.
                let before = mapShape
                guard let p = (2...8).first(where: { before[0] / $0 * (before[1] / $0) * before[2] == expected }) else {
                    throw InteropError.badShape(path: path, name: classifier[0].weight!.name,
                                                detail: "takes \(expected) features, but the convolutions give \(ShapeMath.describe(before)) = \(before.reduce(1, *)) and no pooling window of 2 to 8 gives \(expected); state the architecture with --arch")
                }
                let pool = try Layer.maxPool2d(index: layers.count, inputShape: before, pool: [p, p], strides: [p, p], padding: .valid)
                layers.append(pool)
                mapShape = pool.spatial!.outputShape
                notes.append("max pooling \(p)x\(p) after \(features.last!.name): \(classifier[0].name) takes \(expected) features = \(ShapeMath.describe(mapShape)); a state dict does not record pooling; --arch overrides (avgpool:\(p) for average pooling)")
            }
            let flat = mapShape.reduce(1, *)
            guard expected == flat else {
                throw InteropError.badShape(path: path, name: classifier[0].weight!.name,
                                            detail: "takes \(expected) features, but the stated architecture gives \(ShapeMath.describe(mapShape)) = \(flat)")
            }
            if mapShape.count == 3 { layers.append(Layer.flatten(inputShape: mapShape)) }
            // PyTorch flattens (C, H, W); we flatten (H, W, C): the first Linear's columns are reordered.
            let (h, w, c) = mapShape.count == 3 ? (mapShape[0], mapShape[1], mapShape[2]) : (1, 1, flat)
            var width = flat
            var firstLinear = true
            for m in classifier {
                if m.kind == .batchNorm {
                    mapShape = [width]
                    try addBatchNorm(m, epsilon: nil)
                    activationIndex += 1
                    continue
                }
                let weight = m.weight!
                guard m.inputs == width else {
                    throw InteropError.badShape(path: path, name: weight.name, detail: "takes \(m.inputs) inputs, but the previous layer gives \(width)")
                }
                let outputs = m.outputs
                var layer = Layer.dense(index: layers.count, inputSize: width, outputSize: outputs, activation: activations[activationIndex])
                if m.bias == nil { layer.bias = nil }
                let first = firstLinear
                let inputs = width
                declared.append((layer.weight!, weight, { t in
                    PyTorchLayout.loaded(t, first ? .linearAfterFlatten(height: h, width: w, channels: c) : .linear, shape: [inputs, outputs])
                }))
                if let b = m.bias { declared.append((layer.bias!, b, { $0 })) }
                layers.append(layer)
                width = outputs
                firstLinear = false
                activationIndex += 1
            }
        } catch let error as ModelError {
            throw InteropError.badConfig(path: path, detail: "\(error)")
        }
        try declared.map(\.array).checkBudget(options.maxTensorBytes, path: path)
        let tensors = try declared.map { NamedTensor($0.name, $0.transform(try $0.array.tensor())) }
        var result = try ModelBuilder.finish(layers: layers, tensors: tensors, inputShape: inputShape, path: path, sourceFormat: sourceFormat,
                                             options: options, notes: &notes)
        result.format = "PyTorch state dict (\((features + classifier).map(\.name).joined(separator: ", ")))"
        return result
    }
}

// MARK: - Layer order

extension PyTorchStateDict {
    /// The order of the layers `(name, in, out)`, as indices: given by `--layer-order`; by the
    /// number of `<prefix>.<n>` names (the file sorts keys as text, so `10` comes before `2`);
    /// else the only order in which the shapes chain.
    static func linearOrder(_ layers: [(name: String, inputs: Int, outputs: Int)], path: String, given: [String]?,
                            notes: inout [String]) throws -> [Int] {
        let names = layers.map(\.name)
        if let given {
            guard given.count == names.count, Set(given) == Set(names) else {
                throw InteropError.badOption("--layer-order: \(path) has the layers \(names.sorted().joined(separator: ", ")), but \(given.joined(separator: ",")) was given")
            }
            return given.map { names.firstIndex(of: $0)! }
        }
        if layers.count == 1 { return [0] }
        if let indices = numericIndices(names) {
            let order = names.indices.sorted { indices[$0] < indices[$1] }
            return order
        }
        let found = chainOrders(layers.map { ($0.inputs, $0.outputs) }, limit: 2)
        switch found.count {
        case 1:
            notes.append("layer order \(found[0].map { names[$0] }.joined(separator: ", ")): the only order in which the shapes chain; --layer-order overrides")
            return found[0]
        case 0:
            throw InteropError.badShape(path: path, name: names.joined(separator: ", "),
                                        detail: "the weights \(layers.map { "\($0.name) \($0.outputs)x\($0.inputs)" }.joined(separator: ", ")) (out, in) chain in no order")
        default:
            throw InteropError.ambiguous(path: path, detail: "the layers \(names.joined(separator: ", ")) chain in more than one order (e.g. \(found[0].map { names[$0] }.joined(separator: ", ")) and \(found[1].map { names[$0] }.joined(separator: ", ")))",
                                         flag: "--layer-order \(names.joined(separator: ","))")
        }
    }

    /// The `n` of names `<prefix>.<n>` or `<n>` that share one prefix and have distinct numbers.
    static func numericIndices(_ names: [String]) -> [Int]? {
        var prefix: Substring?
        var numbers: [Int] = []
        for name in names {
            let dot = name.lastIndex(of: ".")
            let last = dot.map { name[name.index(after: $0)...] } ?? name[...]
            let head = dot.map { name[..<$0] } ?? ""
            guard !last.isEmpty, last.count <= 9, last.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int(last) else { return nil }
            if let prefix, prefix != head { return nil }
            prefix = head
            numbers.append(n)
        }
        return Set(numbers).count == numbers.count ? numbers : nil
    }

    /// Up to `limit` orders of the layers `(in, out)` in which each layer's outputs feed the next
    /// one's inputs. The search is bounded: past the budget, what was found is returned with an
    /// extra order marker so that the caller reports ambiguity rather than searching for ever.
    static func chainOrders(_ layers: [(inputs: Int, outputs: Int)], limit: Int) -> [[Int]] {
        var found: [[Int]] = []
        var path: [Int] = []
        var used = [Bool](repeating: false, count: layers.count)
        var budget = 200_000
        func extend() {
            guard found.count < limit, budget > 0 else { return }
            budget -= 1
            if path.count == layers.count { found.append(path); return }
            for i in layers.indices where !used[i] {
                if let last = path.last, layers[last].outputs != layers[i].inputs { continue }
                used[i] = true
                path.append(i)
                extend()
                path.removeLast()
                used[i] = false
            }
        }
        extend()
        if budget <= 0, found.count < limit {
            // Too many partial chains to decide: as good as ambiguous.
            while found.count < limit { found.append(found.first ?? Array(layers.indices)) }
        }
        return found
    }
}
