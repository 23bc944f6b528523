import NNCore
import NNData

/// Text and JSON renderings of inference results.
public struct InferenceReport {
    public let classes: [String]
    public let modelPath: String
    /// How the values shown were made from the model's outputs.
    public let values: ReportedValues

    public init(model: Model, modelPath: String, values: ReportedValues = .probabilities) {
        self.modelPath = modelPath
        self.values = values
        let n = model.metadata.outputSize
        classes = model.metadata.classes.count == n ? model.metadata.classes : (0..<n).map(String.init)
    }

    /// "7 Sneaker", or just "7" when the model has no class names.
    public func className(_ index: Int) -> String {
        classes[index] == String(index) ? classes[index] : "\(index) \(classes[index])"
    }

    /// One line per image: index, predicted class, the top-K with probabilities, the label.
    public func line(_ p: ImagePrediction) -> String {
        let top = p.top.map { "\(className($0.classIndex)) \(formatDecimal($0.probability, digits: 4))" }.joined(separator: " | ")
        var s = "\(pad(String(p.index), 6))  " + (p.source.map { "\($0)  " } ?? "") + top
        if let label = p.label {
            s += label == p.predicted ? "  (label \(label): correct)" : "  (label \(className(label)): WRONG)"
        }
        return s
    }

    /// The summary: counts, accuracy, the confusion matrix and timing.
    public func summary(_ s: InferenceSummary) -> [String] {
        var lines: [String] = []
        let rate = s.computeSeconds > 0 ? Double(s.imageCount) / s.computeSeconds : 0
        lines.append("images: \(s.imageCount); forward pass \(formatDecimal(s.computeSeconds * 1000, digits: 2)) ms (\(Int(rate)) images/s), total \(formatDecimal(s.totalSeconds * 1000, digits: 1)) ms")
        if !s.kernels.isEmpty { lines.append("kernels: \(s.kernels)") }
        guard let confusion = s.confusion, let accuracy = s.accuracy else { return lines }
        lines.append("accuracy: \(s.correct)/\(s.imageCount) = \(formatDecimal(accuracy * 100, digits: 2)) %")
        lines.append("confusion matrix (rows: true class, columns: predicted class):")
        let width = max(5, String(confusion.flatMap { $0 }.max() ?? 0).count + 1)
        lines.append(pad("", 6) + confusion.indices.map { pad(String($0), width) }.joined())
        for (i, row) in confusion.enumerated() {
            let recall = row.reduce(0, +) > 0 ? Double(row[i]) / Double(row.reduce(0, +)) * 100 : 0
            lines.append(pad(String(i), 6) + row.map { pad(String($0), width) }.joined()
                         + "   \(formatDecimal(recall, digits: 1)) %  \(classes[i] == String(i) ? "" : classes[i])")
        }
        return lines
    }

    /// One prediction as a JSON object.
    public func json(_ p: ImagePrediction) -> JSONValue {
        var o = JSONObject([("index", .integer(Int64(p.index)))])
        if let source = p.source { o["source"] = .string(source) }
        o["class"] = .integer(Int64(p.predicted))
        if classes[p.predicted] != String(p.predicted) { o["name"] = .string(classes[p.predicted]) }
        o["top"] = .array(p.top.map { t in
            .object(JSONObject([("class", .integer(Int64(t.classIndex))), (values.areProbabilities ? "probability" : "value", .number(t.probability))]))
        })
        if let label = p.label { o["label"] = .integer(Int64(label)) }
        return .object(o)
    }

    /// The summary as JSON members.
    public func json(_ s: InferenceSummary) -> JSONObject {
        var o = JSONObject([("images", .integer(Int64(s.imageCount))),
                            ("forward_seconds", .number(s.computeSeconds)), ("total_seconds", .number(s.totalSeconds))])
        if !s.kernels.isEmpty { o["kernels"] = .string(s.kernels) }
        if let accuracy = s.accuracy, let confusion = s.confusion {
            o["correct"] = .integer(Int64(s.correct))
            o["accuracy"] = .number(accuracy)
            o["confusion_matrix"] = .array(confusion.map { .array($0.map { .integer(Int64($0)) }) })
        }
        return o
    }
}

/// Right-aligns `text` in `width` columns.
public func pad(_ text: String, _ width: Int) -> String {
    text.count >= width ? text : String(repeating: " ", count: width - text.count) + text
}
