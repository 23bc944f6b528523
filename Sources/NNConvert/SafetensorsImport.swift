import NNCore
import NNSafetensors
import NNSystem

// MARK: - Import

/// PyTorch state dicts in safetensors files.
enum SafetensorsImport {
    /// PyTorch `nn.Linear` parameters: `<module>.weight` (out, in) and an optional `<module>.bias`.
    static func importPyTorchLinear(_ container: SafetensorsContainer, options: ImportOptions) throws -> ImportResult {
        let header = container.header, file = container.file, path = container.path
        guard !header.entries.isEmpty else {
            throw InteropError.badConfig(path: path, detail: "the file holds no tensors")
        }
        var modules: [String: (weight: Safetensors.Entry?, bias: Safetensors.Entry?)] = [:]
        var moduleNames: [String] = []
        for e in header.entries {
            let (module, role): (String, String)
            if e.name.hasSuffix(".weight") {
                (module, role) = (String(e.name.dropLast(".weight".count)), "weight")
            } else if e.name.hasSuffix(".bias") {
                (module, role) = (String(e.name.dropLast(".bias".count)), "bias")
            } else {
                throw InteropError.unexpectedTensor(path: path, name: e.name, detail: "expected PyTorch nn.Linear parameters named <module>.weight and <module>.bias")
            }
            if modules[module] == nil { moduleNames.append(module) }
            if role == "weight" { modules[module, default: (nil, nil)].weight = e } else { modules[module, default: (nil, nil)].bias = e }
        }
        var layers: [(name: String, weight: Safetensors.Entry, bias: Safetensors.Entry?)] = []
        for name in moduleNames {
            let m = modules[name]!
            guard let w = m.weight else {
                throw InteropError.unexpectedTensor(path: path, name: "\(name).bias", detail: "a bias without \(name).weight")
            }
            guard w.shape.count == 2 else {
                throw InteropError.badShape(path: path, name: w.name, detail: "expected a 2-D nn.Linear weight (out, in), found \(ShapeMath.describe(w.shape))")
            }
            if let b = m.bias, b.shape != [w.shape[0]] {
                throw InteropError.badShape(path: path, name: b.name, detail: "expected \(w.shape[0]) values for \(w.name) \(ShapeMath.describe(w.shape)) (out, in), found \(ShapeMath.describe(b.shape))")
            }
            for e in [w] + (m.bias.map { [$0] } ?? []) where !(e.type.dtype?.isFloatingPoint ?? false) {
                throw InteropError.badDType(path: path, name: e.name, found: e.type.rawValue)
            }
            layers.append((name, w, m.bias))
        }
        var notes: [String] = []
        let order = try linearOrder(layers.map { ($0.name, $0.weight.shape[1], $0.weight.shape[0]) }, path: path,
                                    given: options.layerOrder, notes: &notes)
        layers = order.map { i in layers[i] }
        for (a, b) in zip(layers, layers.dropFirst()) where a.weight.shape[0] != b.weight.shape[1] {
            throw InteropError.badShape(path: path, name: "\(a.weight.name), \(b.weight.name)",
                                        detail: "\(a.name) has \(a.weight.shape[0]) outputs but \(b.name) takes \(b.weight.shape[1]) inputs (weights are (out, in))")
        }
        let activations: [Activation]
        if let given = options.activations {
            activations = given
        } else {
            let output = layers.last!.weight.shape[0]
            activations = Array(repeating: .relu, count: layers.count - 1) + [output == 1 ? .sigmoid : .softmax]
            notes.append("activations \(activations.map(\.rawValue).joined(separator: ", ")): a PyTorch state dict does not record them; this is the default (ReLU hidden, \(output == 1 ? "sigmoid for the single output" : "softmax output")); --activations overrides")
        }
        // nn.Linear keeps W (out, in) and computes x @ W.T + b: transposed, it is our [in, out].
        let declared = layers.flatMap { [$0.weight] + ($0.bias.map { [$0] } ?? []) }
        try checkTensorBudget(declared.map(\.byteCount), options.maxTensorBytes, path: path)
        let weights = try layers.map { try Safetensors.tensor($0.weight, header: header, file: file).transposed() }
        let biases = try layers.map { l in try l.bias.map { try Safetensors.tensor($0, header: header, file: file) } }
        var result = try ModelBuilder.assemble(weights: weights, biases: biases, activations: activations, path: path,
                                  sourceFormat: "safetensors-pytorch", inputShape: nil, options: options, notes: &notes)
        result.format = "safetensors (PyTorch nn.Linear: \(layers.map(\.name).joined(separator: ", ")))"
        return result
    }

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

// MARK: - Inspection

extension Inspection {
    /// The tensors and metadata of a safetensors file, from its header alone.
    static func inspectSafetensors(_ path: String) throws -> Inspection {
        let header = try Safetensors.readHeader(path: path)
        var tree = InspectionNode(name: "tensors", kind: "group")
        tree.attributes = header.metadata.map { ($0.key, abbreviate($0.value)) }
        for e in header.entries.sorted(by: { $0.begin < $1.begin }) {
            var node = InspectionNode(name: e.name, kind: "tensor", dtype: e.type.rawValue, shape: e.shape)
            node.attributes = [("data_offsets", "[\(e.begin), \(e.end)]")]
            tree.children.append(node)
        }
        var summary = ["\(header.fileSize) bytes: header \(header.headerLength) bytes, \(header.entries.count) tensors, data \(header.fileSize - header.dataOffset) bytes"]
        if let json = header.metadata(SafetensorsExport.metadataKey),
           let meta = try? ModelMetadata(json: try JSONValue.parse(json)) {
            summary += describe(meta)
        }
        return Inspection(path: path, format: "safetensors", tree: tree, summary: summary)
    }
}
