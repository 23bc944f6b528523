import NNCore
import NNData
import NNEngine

/// How two models' tensors and descriptions differ: what `nnconv diff` reports.
public struct ModelComparison: Sendable {
    public struct TensorDifference: Sendable {
        public var name: String
        public var shapes: ([Int]?, [Int]?)
        public var dtypes: (String?, String?)
        /// Largest |a - b| and largest |a - b| / max(|a|, |b|) over the elements (f64).
        public var maxAbsolute: Double
        public var maxRelative: Double
        public var bitIdentical: Bool

        public var isComparable: Bool { shapes.0 != nil && shapes.0 == shapes.1 }
    }

    /// Prediction agreement on a data set.
    public struct Agreement: Sendable {
        public var images: Int
        public var samePrediction: Int
        public var maxProbabilityDifference: Double
    }

    public var tensors: [TensorDifference]
    /// Differences in architecture, preprocessing, classes and input, one line each.
    public var metadataDifferences: [String]
    public var agreement: Agreement?

    /// Whether every tensor matches within `tolerance` (absolute) and the descriptions agree.
    public func isEquivalent(tolerance: Double) -> Bool {
        metadataDifferences.isEmpty && tensors.allSatisfy { $0.isComparable && $0.maxAbsolute <= tolerance }
    }
}

extension ModelComparison {
    /// Compares two models tensor by tensor (matched by name) and field by field.
    public init(_ a: Model, _ b: Model) {
        var names = a.tensors.map(\.name)
        for t in b.tensors where !names.contains(t.name) { names.append(t.name) }
        tensors = names.map { name in
            let ta = a.tensor(name), tb = b.tensor(name)
            var d = TensorDifference(name: name, shapes: (ta?.shape, tb?.shape), dtypes: (ta?.dtype.rawValue, tb?.dtype.rawValue),
                                     maxAbsolute: .infinity, maxRelative: .infinity, bitIdentical: false)
            guard let ta, let tb, ta.shape == tb.shape else { return d }
            d.bitIdentical = ta.isBitIdentical(to: tb)
            let va = ta.doubles(), vb = tb.doubles()
            var absolute = 0.0, relative = 0.0
            for i in 0..<va.count {
                let diff = abs(va[i] - vb[i])
                if diff.isNaN { absolute = .nan; relative = .nan; break }
                absolute = max(absolute, diff)
                let scale = max(abs(va[i]), abs(vb[i]))
                if scale > 0 { relative = max(relative, diff / scale) }
            }
            d.maxAbsolute = absolute
            d.maxRelative = relative
            return d
        }
        var lines: [String] = []
        let ma = a.metadata, mb = b.metadata
        if ma.input.shape != mb.input.shape {
            lines.append("input: \(ShapeMath.describe(ma.input.shape)) vs \(ShapeMath.describe(mb.input.shape))")
        }
        if ma.layers.count != mb.layers.count {
            lines.append("layers: \(ma.layers.count) vs \(mb.layers.count)")
        }
        for (i, (la, lb)) in zip(ma.layers, mb.layers).enumerated() {
            if la.inputSize != lb.inputSize || la.outputSize != lb.outputSize {
                lines.append("layer \(i): \(la.inputSize) -> \(la.outputSize) vs \(lb.inputSize) -> \(lb.outputSize)")
            }
            if la.activation != lb.activation {
                lines.append("layer \(i): activation \(la.activation) vs \(lb.activation)")
            }
        }
        if ma.preprocessing != mb.preprocessing {
            lines.append("preprocessing: \(ma.preprocessing.describe()) vs \(mb.preprocessing.describe())")
        }
        if ma.classes != mb.classes {
            lines.append("classes: [\(ma.classes.joined(separator: ", "))] vs [\(mb.classes.joined(separator: ", "))]")
        }
        metadataDifferences = lines
        agreement = nil
    }

    /// Runs both models over the images of an IDX file (f64) and counts agreeing predictions.
    public mutating func measureAgreement(_ a: Model, _ b: Model, imagesPath: String, limit: Int?) throws {
        let ea = try InferenceEngine<Double>(model: a), eb = try InferenceEngine<Double>(model: b)
        guard ea.inputSize == eb.inputSize, ea.outputSize == eb.outputSize else {
            throw ToolError("the models take \(ea.inputSize) and \(eb.inputSize) inputs and give \(ea.outputSize) and \(eb.outputSize) outputs: predictions cannot be compared", status: ExitStatus.usage)
        }
        let stream = try IDXImageStream(path: imagesPath, batchSize: 1024)
        guard stream.featureCount == ea.inputSize else {
            throw ToolError("\(imagesPath): images have \(stream.featureCount) features, the models take \(ea.inputSize)", status: ExitStatus.usage)
        }
        var result = Agreement(images: 0, samePrediction: 0, maxProbabilityDifference: 0)
        let classes = ea.outputSize
        while let batch = try stream.nextBatch() {
            var count = batch.count
            if let limit { count = min(count, limit - result.images) }
            guard count > 0 else { break }
            let x = batch.features[0..<(count * batch.featureCount)].map(Double.init)
            let pa = ea.predict(raw: x, count: count), pb = eb.predict(raw: x, count: count)
            for r in 0..<count {
                let rowA = pa[(r * classes)..<((r + 1) * classes)], rowB = pb[(r * classes)..<((r + 1) * classes)]
                if predictedClass(rowA) == predictedClass(rowB) { result.samePrediction += 1 }
                for (u, v) in zip(rowA, rowB) { result.maxProbabilityDifference = max(result.maxProbabilityDifference, abs(u - v)) }
            }
            result.images += count
        }
        agreement = result
    }

    /// The largest output's index; a single output predicts class 1 above 0.5.
    func predictedClass(_ row: ArraySlice<Double>) -> Int {
        if row.count == 1 { return row[row.startIndex] > 0.5 ? 1 : 0 }
        return row.indices.max { row[$0] < row[$1] }! - row.startIndex
    }

    /// The report as text lines.
    public func render(nameA: String, nameB: String, tolerance: Double) -> [String] {
        var lines = ["comparing \(nameA) (a) with \(nameB) (b)"]
        for d in tensors {
            switch (d.shapes.0, d.shapes.1) {
            case (nil, _): lines.append("  \(d.name): only in b")
            case (_, nil): lines.append("  \(d.name): only in a")
            case let (sa?, sb?) where sa != sb:
                lines.append("  \(d.name): shape \(ShapeMath.describe(sa)) vs \(ShapeMath.describe(sb))")
            default:
                let types = d.dtypes.0 == d.dtypes.1 ? d.dtypes.0! : "\(d.dtypes.0!) vs \(d.dtypes.1!)"
                let verdict = d.bitIdentical ? "identical" : d.maxAbsolute <= tolerance ? "equal within \(tolerance)" : "DIFFERS"
                lines.append("  \(d.name) (\(types) \(ShapeMath.describe(d.shapes.0!))): max abs \(d.maxAbsolute), max rel \(d.maxRelative): \(verdict)")
            }
        }
        for m in metadataDifferences { lines.append("  \(m)") }
        if let a = agreement {
            let percent = a.images == 0 ? 0 : Double(a.samePrediction) / Double(a.images) * 100
            lines.append("  predictions: \(a.samePrediction)/\(a.images) agree (\(formatDecimal(percent, digits: 2)) %), max probability difference \(a.maxProbabilityDifference)")
        }
        lines.append(isEquivalent(tolerance: tolerance) ? "equivalent" : "different")
        return lines
    }
}
