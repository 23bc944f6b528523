import NNCore

/// PyTorch state dicts as models: the architecture is not in the file, so it is inferred from the
/// parameters' names, shapes and order where that is unique, every decision becoming a note, and
/// `ImportOptions.architecture` (`--arch`) states or overrides the convolutional part.
///
/// PyTorch's conventions become ours: images NCHW -> HWC, kernels OIHW -> HWIO, `nn.Linear`
/// weights (out, in) -> [in, out], and the rows of the first Linear after a flatten permuted
/// from PyTorch's channel-first order to our height-width-channel order.
public enum PyTorchStateDict {
    /// One module's parameters: `<name>.weight` and an optional `<name>.bias`.
    struct Module {
        var name: String
        var weight: SourceArray
        var bias: SourceArray?
        var isConvolution: Bool { weight.shape.count == 4 }
    }

    /// Builds the model from `arrays` (a state dict's tensors, declared). `inModuleOrder` says
    /// whether the file lists them in the modules' registration order (torch.save does;
    /// safetensors sorts its keys).
    public static func model(_ arrays: [SourceArray], path: String, inModuleOrder: Bool, sourceFormat: String,
                      options: ImportOptions) throws -> ImportResult {
        var notes: [String] = []
        let modules = try order(try group(arrays, path: path), path: path, inModuleOrder: inModuleOrder, options: options, notes: &notes)
        let convolutions = modules.prefix { $0.isConvolution }
        let linears = modules.dropFirst(convolutions.count)
        if let late = linears.first(where: \.isConvolution) {
            throw InteropError.unsupportedModule(path: path, module: late.name, className: "Conv2d", reason: "a convolution after a Linear layer")
        }
        guard !linears.isEmpty else {
            throw InteropError.badConfig(path: path, detail: "the state dict has convolutions (\(convolutions.map(\.name).joined(separator: ", "))) but no nn.Linear layer to end the model")
        }
        for m in modules {
            guard m.weight.dtype?.isFloatingPoint ?? false else { throw InteropError.badDType(path: path, name: m.weight.name, found: m.weight.typeName) }
            let outputs = m.weight.shape[0]
            if let b = m.bias, b.shape != [outputs] {
                throw InteropError.badShape(path: path, name: b.name, detail: "expected \(outputs) values for \(m.weight.name) \(ShapeMath.describe(m.weight.shape)), found \(ShapeMath.describe(b.shape))")
            }
        }
        let parameterized = modules.count
        let activations: [Activation]
        if let given = options.activations {
            guard given.count == parameterized else {
                throw InteropError.badOption("--activations: \(path) has \(parameterized) layers with weights (\(modules.map(\.name).joined(separator: ", "))), but \(given.count) activations were given")
            }
            activations = given
        } else {
            let single = linears.last!.weight.shape[0] == 1
            activations = Array(repeating: .relu, count: parameterized - 1) + [single ? .sigmoid : .softmax]
            notes.append("activations \(activations.map(\.description).joined(separator: ", ")): a PyTorch state dict does not record them; ReLU between layers, and "
                         + (single ? "sigmoid for the single output" : "softmax at the output (a model that ends in logits or log_softmax gives the same classes, and softmax turns either into probabilities)")
                         + "; --activations overrides")
        }
        if convolutions.isEmpty {
            return try dense(Array(linears), activations: activations, path: path, sourceFormat: sourceFormat, options: options, notes: notes)
        }
        return try convolutional(Array(convolutions), Array(linears), activations: activations, path: path,
                                 sourceFormat: sourceFormat, options: options, notes: notes)
    }

    /// `<module>.weight` / `<module>.bias` pairs, in the order their modules first appear.
    static func group(_ arrays: [SourceArray], path: String) throws -> [Module] {
        guard !arrays.isEmpty else { throw InteropError.badConfig(path: path, detail: "the file holds no tensors") }
        var weights: [String: SourceArray] = [:], biases: [String: SourceArray] = [:]
        var names: [String] = []
        for a in arrays {
            let dot = a.name.lastIndex(of: ".")
            let module = dot.map { String(a.name[..<$0]) } ?? ""
            let role = dot.map { String(a.name[a.name.index(after: $0)...]) } ?? a.name
            switch role {
            case "weight": weights[module] = a
            case "bias": biases[module] = a
            case "running_mean", "running_var", "num_batches_tracked":
                throw InteropError.unsupportedModule(path: path, module: module, className: "BatchNorm", reason: "the .nnm format has no batch normalization layer yet")
            default:
                throw InteropError.unexpectedTensor(path: path, name: a.name, detail: "expected PyTorch nn.Linear parameters named <module>.weight and <module>.bias, or nn.Conv2d's")
            }
            if !names.contains(module) { names.append(module) }
        }
        return try names.map { name in
            guard let w = weights[name] else {
                throw InteropError.unexpectedTensor(path: path, name: "\(name).bias", detail: "a bias without \(name).weight")
            }
            guard w.shape.count == 2 || w.shape.count == 4 else {
                throw InteropError.badShape(path: path, name: w.name, detail: "expected an nn.Linear weight (out, in) or an nn.Conv2d weight (out, in, kh, kw), found \(ShapeMath.describe(w.shape))")
            }
            return Module(name: name, weight: w, bias: biases[name])
        }
    }

    /// The modules in model order: `--layer-order`; numbered names (`0.weight`, `3.weight`, as
    /// nn.Sequential writes them); the file's order when it is the registration order; else the
    /// only order in which the shapes chain (convolutions first).
    static func order(_ modules: [Module], path: String, inModuleOrder: Bool, options: ImportOptions,
                      notes: inout [String]) throws -> [Module] {
        let names = modules.map(\.name)
        if options.layerOrder != nil || modules.allSatisfy({ !$0.isConvolution }) && !inModuleOrder {
            let order = try linearOrder(modules.map { ($0.name, $0.weight.shape[1], $0.weight.shape[0]) }, path: path,
                                                         given: options.layerOrder, notes: &notes)
            return order.map { modules[$0] }
        }
        if let indices = numericIndices(names) {
            return names.indices.sorted { indices[$0] < indices[$1] }.map { modules[$0] }
        }
        if inModuleOrder { return modules }
        let convolutions = modules.filter(\.isConvolution), linears = modules.filter { !$0.isConvolution }
        var ordered: [Module] = []
        for part in [convolutions, linears] where !part.isEmpty {
            let found = chainOrders(part.map { ($0.weight.shape[1], $0.weight.shape[0]) }, limit: 2)
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
        for (a, b) in zip(linears, linears.dropFirst()) where a.weight.shape[0] != b.weight.shape[1] {
            throw InteropError.badShape(path: path, name: "\(a.weight.name), \(b.weight.name)",
                                        detail: "\(a.name) has \(a.weight.shape[0]) outputs but \(b.name) takes \(b.weight.shape[1]) inputs (weights are (out, in))")
        }
        try (linears.map(\.weight) + linears.compactMap(\.bias)).checkBudget(options.maxTensorBytes, path: path)
        let weights = try linears.map { try $0.weight.tensor().transposed() }
        let biases = try linears.map { try $0.bias?.tensor() }
        var result = try ModelBuilder.assemble(weights: weights, biases: biases, activations: activations, path: path,
                                               sourceFormat: sourceFormat, inputShape: nil, options: options, notes: &notes)
        result.format = "PyTorch state dict (\(linears.map(\.name).joined(separator: ", ")))"
        return result
    }

    /// A CNN: convolutions (stride 1, no padding unless `--arch` says otherwise), then pooling
    /// where the first Linear's input size requires it, a flatten and the Linear layers.
    static func convolutional(_ convolutions: [Module], _ linears: [Module], activations: [Activation], path: String,
                              sourceFormat: String, options: ImportOptions, notes: [String]) throws -> ImportResult {
        var notes = notes
        let channels = convolutions[0].weight.shape[1]
        var shape: [Int]
        if let given = options.inputShape {
            shape = given.count == 2 ? given + [channels] : given
            guard shape.count == 3, shape[2] == channels else {
                throw InteropError.badOption("--input-shape \(ShapeMath.describe(given)): \(convolutions[0].name) takes \(channels) channel\(channels == 1 ? "" : "s"); give HxW or HxWx\(channels)")
            }
        } else {
            shape = [28, 28, channels]
            notes.append("input 28x28x\(channels) (PyTorch 1x\(channels)x28x28, the MNIST size): a state dict does not record it; --input-shape overrides")
        }
        let inputShape = shape
        // The stages: stated, or one valid stride-1 convolution per Conv2d, pooled as needed.
        let stages: [FeatureStage]
        if let stated = options.architecture {
            stages = stated
            let statedConvolutions = stated.filter { if case .conv = $0 { return true } else { return false } }.count
            guard statedConvolutions == convolutions.count else {
                throw InteropError.badOption("--arch states \(statedConvolutions) convolutions, but \(path) has \(convolutions.count) (\(convolutions.map(\.name).joined(separator: ", ")))")
            }
        } else {
            stages = convolutions.map { m in .conv(filters: m.weight.shape[0], kernel: [m.weight.shape[2], m.weight.shape[3]], strides: [1, 1], padding: .valid, activation: .relu) }
            notes.append("convolutions with stride 1 and no padding (PyTorch's defaults): a state dict does not record them; --arch overrides")
        }
        var layers: [Layer] = []
        var declared: [(name: String, array: SourceArray, transform: (Tensor) -> Tensor)] = []
        var mapShape = inputShape
        do {
            var convolutionIndex = 0
            for stage in stages {
                switch stage {
                case let .conv(filters, kernel, strides, padding, _):
                    let m = convolutions[convolutionIndex]
                    guard m.weight.shape == [filters, mapShape[2], kernel[0], kernel[1]] else {
                        throw InteropError.badShape(path: path, name: m.weight.name,
                                                    detail: "expected \(ShapeMath.describe([filters, mapShape[2], kernel[0], kernel[1]])) (out, in, kh, kw) for this stage on a \(ShapeMath.describe(mapShape)) input, found \(ShapeMath.describe(m.weight.shape))")
                    }
                    let layer = try Layer.conv2d(index: layers.count, inputShape: mapShape, filters: filters, kernel: kernel, strides: strides,
                                                 padding: padding, convention: .crossCorrelation, activation: activations[convolutionIndex], bias: m.bias != nil)
                    declared.append((layer.weight!, m.weight, { $0.permuted([2, 3, 1, 0]) }))
                    if let b = m.bias { declared.append((layer.bias!, b, { $0 })) }
                    layers.append(layer)
                    mapShape = layer.spatial!.outputShape
                    convolutionIndex += 1
                case let .maxPool(pool, strides, padding):
                    let layer = try Layer.maxPool2d(index: layers.count, inputShape: mapShape, pool: pool, strides: strides, padding: padding)
                    layers.append(layer)
                    mapShape = layer.spatial!.outputShape
                }
            }
            let features = linears[0].weight.shape[1]
            if options.architecture == nil, mapShape.reduce(1, *) != features {
                // The pooling the forward function applied, read off the first Linear's size.
                let before = mapShape
                guard let p = (2...8).first(where: { before[0] / $0 * (before[1] / $0) * before[2] == features }) else {
                    throw InteropError.badShape(path: path, name: linears[0].weight.name,
                                                detail: "takes \(features) features, but the convolutions give \(ShapeMath.describe(before)) = \(before.reduce(1, *)) and no pooling window of 2 to 8 gives \(features); state the architecture with --arch")
                }
                let pool = try Layer.maxPool2d(index: layers.count, inputShape: before, pool: [p, p], strides: [p, p], padding: .valid)
                layers.append(pool)
                mapShape = pool.spatial!.outputShape
                notes.append("max pooling \(p)x\(p) after \(convolutions.last!.name): \(linears[0].name) takes \(features) features = \(ShapeMath.describe(mapShape)); a state dict does not record pooling; --arch overrides")
            }
        } catch let error as ModelError {
            throw InteropError.badConfig(path: path, detail: "\(error)")
        }
        let features = mapShape.reduce(1, *)
        guard linears[0].weight.shape[1] == features else {
            throw InteropError.badShape(path: path, name: linears[0].weight.name,
                                        detail: "takes \(linears[0].weight.shape[1]) features, but the stated architecture gives \(ShapeMath.describe(mapShape)) = \(features)")
        }
        layers.append(Layer.flatten(inputShape: mapShape))
        // PyTorch flattens (C, H, W); we flatten (H, W, C): the first Linear's columns are reordered.
        let (h, w, c) = (mapShape[0], mapShape[1], mapShape[2])
        var width = features
        for (i, m) in linears.enumerated() {
            guard m.weight.shape[1] == width else {
                throw InteropError.badShape(path: path, name: m.weight.name, detail: "takes \(m.weight.shape[1]) inputs, but the previous layer gives \(width)")
            }
            let outputs = m.weight.shape[0]
            var layer = Layer.dense(index: layers.count, inputSize: width, outputSize: outputs, activation: activations[convolutions.count + i])
            if m.bias == nil { layer.bias = nil }
            let first = i == 0
            declared.append((layer.weight!, m.weight, { t in
                first ? t.reshaped([outputs, c, h, w]).permuted([2, 3, 1, 0]).reshaped([h * w * c, outputs]) : t.transposed()
            }))
            if let b = m.bias { declared.append((layer.bias!, b, { $0 })) }
            layers.append(layer)
            width = outputs
        }
        try declared.map(\.array).checkBudget(options.maxTensorBytes, path: path)
        let tensors = try declared.map { NamedTensor($0.name, $0.transform(try $0.array.tensor())) }
        var result = try ModelBuilder.finish(layers: layers, tensors: tensors, inputShape: inputShape, path: path, sourceFormat: sourceFormat,
                                             options: options, notes: &notes)
        result.format = "PyTorch state dict (\((convolutions + linears).map(\.name).joined(separator: ", ")))"
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
