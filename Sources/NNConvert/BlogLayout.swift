import NNCore

extension WeightLayout {
    /// A layer's weight as stored in this layout: dense matrices transposed for columns;
    /// convolution kernels `[height, width, in, out]` (HWIO, as Keras) in both layouts.
    func stored(_ weight: Tensor, for layer: Layer) -> Tensor {
        self == .columns && layer.kind == .dense ? weight.transposed() : weight
    }

    /// The inverse of `stored(_:for:)`.
    func loaded(_ stored: Tensor, for layer: Layer) -> Tensor { self.stored(stored, for: layer) }

    /// The shape `stored(_:for:)` gives a layer's weight.
    func storedWeightShape(_ layer: Layer) -> [Int] {
        let shape = layer.weightShape!
        return self == .columns && layer.kind == .dense ? shape.reversed() : shape
    }

    /// A bias as stored: `(1, out)` for rows, `(out, 1)` for columns.
    func storedBias(_ bias: Tensor) -> Tensor { bias.reshaped(self == .rows ? [1, bias.count] : [bias.count, 1]) }
}

/// The layers that have parameters, with the 1-based number of their `W<n>`/`b<n>` datasets:
/// pooling and flatten layers take no number, so a CNN's dense layer after `W1` is `W2`.
func numberedParameterLayers(_ layers: [Layer]) -> [(number: Int, layer: Layer)] {
    layers.filter { $0.weight != nil }.enumerated().map { ($0.offset + 1, $0.element) }
}

/// The naming schemes blog code uses for its weight lists.
enum BlogNaming: String {
    /// `W1, b1, W2, b2, ...` (1-based).
    case numbered = "W1, b1, W2, b2, ..."
    /// `weights_0, biases_0, ...` (0-based).
    case nielsenFlat = "weights_0, biases_0, ..."
    /// `weights/0, biases/0, ...` groups (0-based).
    case nielsenGroups = "weights/0, biases/0, ..."
}

/// Dense layers recognised in a blog-style set of arrays, from their declared names and
/// shapes alone; `read()` then reads the data in the model's orientation.
struct BlogLayers {
    var naming: BlogNaming
    var layout: WeightLayout
    /// Per layer: the weight and the bias as the file declares them.
    var weightArrays: [SourceArray]
    var biasArrays: [SourceArray]
    /// Whether the orientation was read off the shapes (true) or given (false).
    var inferred: Bool

    /// Source names, for messages.
    var weightNames: [String] { weightArrays.map(\.name) }

    /// Layer widths from the input to the output.
    var sizes: [Int] {
        let pairs = weightArrays.map { layout == .rows ? ($0.shape[0], $0.shape[1]) : ($0.shape[1], $0.shape[0]) }
        return [pairs[0].0] + pairs.map(\.1)
    }

    /// Reads every weight as [in, out] and every bias as [out].
    func read() throws -> (weights: [Tensor], biases: [Tensor]) {
        let weights = try weightArrays.map { layout == .rows ? try $0.tensor() : try $0.tensor().transposed() }
        let biases = try biasArrays.map { a in
            let t = try a.tensor()
            return t.reshaped([t.count])
        }
        return (weights, biases)
    }
}

extension BlogLayers {
    /// Finds the W/b pairs among `arrays` (names relative to where they were found), checks that
    /// every array has a role, and works out the orientation from the shapes unless `layout` is given.
    init(arrays: [SourceArray], layout forced: WeightLayout?, path: String) throws(InteropError) {
        var weightsByIndex: [Int: SourceArray] = [:], biasesByIndex: [Int: SourceArray] = [:]
        var naming: BlogNaming?
        for a in arrays {
            guard let (kind, index, scheme) = BlogLayers.parseName(a.name) else {
                throw .unexpectedTensor(path: path, name: a.name,
                                        detail: "blog files hold only W1, b1, W2, b2, ... (or weights_0, biases_0, ...); remove it or convert the file by hand")
            }
            if let naming, naming != scheme {
                throw .unexpectedTensor(path: path, name: a.name, detail: "mixes the naming schemes \(naming.rawValue) and \(scheme.rawValue)")
            }
            naming = scheme
            if kind == "W" { weightsByIndex[index] = a } else { biasesByIndex[index] = a }
        }
        guard let naming, !weightsByIndex.isEmpty else {
            throw .unknownFormat(path: path, detail: "no weight matrices found (expected W1, b1, W2, b2, ... or weights_0, biases_0, ...)")
        }
        let first = naming == .numbered ? 1 : 0
        let count = weightsByIndex.count
        var ws: [SourceArray] = [], bs: [SourceArray] = []
        for i in first..<(first + count) {
            guard let w = weightsByIndex[i] else {
                throw .missingTensor(path: path, name: BlogLayers.name(naming, "W", i), detail: "the weight matrices must be numbered consecutively from \(first)")
            }
            guard let b = biasesByIndex[i] else {
                throw .missingTensor(path: path, name: BlogLayers.name(naming, "b", i), detail: "\(w.name) has no bias")
            }
            ws.append(w)
            bs.append(b)
        }
        if let extra = biasesByIndex.keys.first(where: { weightsByIndex[$0] == nil }) {
            throw .unexpectedTensor(path: path, name: biasesByIndex[extra]!.name, detail: "a bias without a weight matrix")
        }
        for a in ws + bs {
            guard a.dtype?.isFloatingPoint ?? false else {
                throw .badDType(path: path, name: a.name, found: a.typeName)
            }
        }
        for w in ws where w.shape.count != 2 {
            throw .badShape(path: path, name: w.name, detail: "expected a 2-D weight matrix, found shape \(ShapeMath.describe(w.shape))")
        }
        for b in bs where !(b.shape.count == 1 || (b.shape.count == 2 && b.shape.contains(1))) {
            throw .badShape(path: path, name: b.name, detail: "expected a bias vector (n), (1, n) or (n, 1), found shape \(ShapeMath.describe(b.shape))")
        }
        let fits: [WeightLayout] = WeightLayout.allCases.filter { BlogLayers.fits($0, ws, bs) }
        let layout: WeightLayout
        if let forced {
            guard fits.contains(forced) else {
                throw .badShape(path: path, name: ws.map(\.name).joined(separator: ", "),
                                detail: "the shapes \(BlogLayers.describe(ws, bs)) do not chain as \(forced.rawValue) (\(forced == .rows ? "W (in, out), b (1, out)" : "W (out, in), b (out, 1)"))")
            }
            layout = forced
        } else if fits.count == 1 {
            layout = fits[0]
        } else if fits.isEmpty {
            throw .badShape(path: path, name: ws.map(\.name).joined(separator: ", "),
                            detail: "the shapes \(BlogLayers.describe(ws, bs)) chain neither as rows (W (in, out), b (1, out)) nor as columns (W (out, in), b (out, 1))")
        } else {
            throw .ambiguous(path: path, detail: "the shapes \(BlogLayers.describe(ws, bs)) chain both as rows and as columns", flag: "--layout rows or --layout columns")
        }
        self.naming = naming
        self.layout = layout
        self.inferred = forced == nil
        weightArrays = ws
        biasArrays = bs
    }

    /// ("W", 1, .numbered) for "W1"; ("b", 0, .nielsenGroups) for "biases/0"; nil otherwise.
    static func parseName(_ name: String) -> (String, Int, BlogNaming)? {
        func number(_ s: Substring) -> Int? {
            guard !s.isEmpty, s.count <= 6, s.allSatisfy(\.isASCII), s.allSatisfy(\.isNumber) else { return nil }
            return Int(s)
        }
        if let first = name.first, "WwBb".contains(first), let n = number(name.dropFirst()) {
            return ("Ww".contains(first) ? "W" : "b", n, .numbered)
        }
        for (prefix, kind) in [("weights_", "W"), ("biases_", "b")] where name.hasPrefix(prefix) {
            if let n = number(name.dropFirst(prefix.count)) { return (kind, n, .nielsenFlat) }
        }
        for (prefix, kind) in [("weights/", "W"), ("biases/", "b")] where name.hasPrefix(prefix) {
            if let n = number(name.dropFirst(prefix.count)) { return (kind, n, .nielsenGroups) }
        }
        return nil
    }

    static func name(_ naming: BlogNaming, _ kind: String, _ i: Int) -> String {
        switch naming {
        case .numbered: return "\(kind)\(i)"
        case .nielsenFlat: return kind == "W" ? "weights_\(i)" : "biases_\(i)"
        case .nielsenGroups: return kind == "W" ? "weights/\(i)" : "biases/\(i)"
        }
    }

    /// Whether the matrices chain and the biases fit in `layout`.
    static func fits(_ layout: WeightLayout, _ ws: [SourceArray], _ bs: [SourceArray]) -> Bool {
        var previousOut: Int?
        for (w, b) in zip(ws, bs) {
            let (fanIn, fanOut) = layout == .rows ? (w.shape[0], w.shape[1]) : (w.shape[1], w.shape[0])
            if let previousOut, previousOut != fanIn { return false }
            guard ShapeMath.elementCount(b.shape) == fanOut else { return false }
            if b.shape.count == 2 {
                // (1, out) is the rows convention, (out, 1) the columns one; (1, 1) fits both.
                let expected = layout == .rows ? [1, fanOut] : [fanOut, 1]
                guard b.shape == expected else { return false }
            }
            previousOut = fanOut
        }
        return true
    }

    static func describe(_ ws: [SourceArray], _ bs: [SourceArray]) -> String {
        zip(ws, bs).map { "\($0.name) \(ShapeMath.describe($0.shape)), \($1.name) \(ShapeMath.describe($1.shape))" }
            .joined(separator: "; ")
    }
}

/// Throws unless every layer of `model` is dense: the exports whose layouts (PyTorch `Linear`
/// keys, the ONNX MatMul graph) describe MLPs only.
public func requireDenseLayers(_ model: Model, path: String, format: String) throws {
    if let layer = model.metadata.layers.first(where: { $0.kind != .dense }) {
        throw InteropError.badConfig(path: path, detail: "the model has a \(layer.kind.rawValue) layer; the \(format) export holds dense layers only (export a CNN to .h5 or .npz)")
    }
}
