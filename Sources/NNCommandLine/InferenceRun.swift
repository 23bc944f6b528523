import NNCore
import NNData
import NNEngine
import NNFormat

/// One image's result.
public struct ImagePrediction: Sendable {
    public var index: Int
    /// The predicted class (the index of the largest output).
    public var predicted: Int
    /// The K largest outputs, largest first: class index and value.
    public var top: [(classIndex: Int, probability: Double)]
    /// The true label, when labels were given.
    public var label: Int?
}

/// Totals of an inference run.
public struct InferenceSummary: Sendable {
    public var imageCount = 0
    public var correct = 0
    /// confusion[true][predicted], when labels were given.
    public var confusion: [[Int]]?
    /// Wall-clock seconds spent in preprocessing and the forward pass (excluding reading).
    public var computeSeconds = 0.0
    /// Wall-clock seconds for the whole run, reading included.
    public var totalSeconds = 0.0

    public var accuracy: Double? {
        confusion == nil || imageCount == 0 ? nil : Double(correct) / Double(imageCount)
    }
}

/// Runs a model over an IDX image file in batches with bounded memory.
public struct InferenceRun {
    public var model: Model
    public var modelPath: String
    public var precision: Precision
    public var batchSize: Int
    public var topK: Int
    /// Whether the model's bytes were read in full (checksums); only then are its values also
    /// scanned for NaN, so that `--no-verify` never touches every page of a large model.
    public var verified: Bool
    /// What the reader's scan of the values found (empty without verification).
    private let modelWarnings: [ModelWarning]

    /// Opens and validates a model (checksums verified unless `verify` is false).
    public init(modelPath: String, precision: Precision = .float32, batchSize: Int = 1024, topK: Int = 3, verify: Bool = true) throws {
        guard batchSize > 0 else { throw ToolError("--batch must be at least 1", status: ExitStatus.usage) }
        guard topK > 0 else { throw ToolError("--top must be at least 1", status: ExitStatus.usage) }
        self.modelPath = modelPath
        // One pass: the reader verifies the checksums and scans the values in the same open.
        let file = try NNMFormat.open(path: modelPath, verifyChecksums: verify)
        model = file.model
        modelWarnings = file.validated.warnings
        self.precision = precision
        self.batchSize = batchSize
        self.topK = min(topK, model.metadata.outputSize)
        verified = verify
    }

    /// Problems that do not stop inference (NaN weights), one line each.
    public func warnings() -> [String] {
        modelWarnings.map { "\(modelPath): warning: \($0)" }
    }

    /// Reads labels and checks them against the image count and the model's outputs.
    public func readLabels(path: String, imageCount: Int) throws -> [Int] {
        let file = try IDXFile(path: path)
        let labels = try file.ints()
        guard file.dims.count == 1 else {
            throw ToolError("\(path): expected a rank-1 label file, found dimensions \(ShapeMath.describe(file.dims))", status: ExitStatus.dataError)
        }
        guard labels.count == imageCount else {
            throw ToolError("\(path): \(labels.count) labels for \(imageCount) images", status: ExitStatus.dataError)
        }
        let classes = model.metadata.outputSize
        if let bad = labels.firstIndex(where: { $0 < 0 || $0 >= classes }) {
            throw ToolError("\(path): label \(labels[bad]) at index \(bad) is outside the model's \(classes) classes (0...\(classes - 1))",
                            status: ExitStatus.dataError)
        }
        return labels
    }

    /// Streams `imagesPath` through the model, calling `onPrediction` for each image in order.
    public func run(imagesPath: String, labelsPath: String?,
                    onStart: (IDXImageStream) -> Void = { _ in },
                    onPrediction: (ImagePrediction) throws -> Void) throws -> InferenceSummary {
        let started = Clock.monotonicSeconds()
        let stream = try IDXImageStream(path: imagesPath, batchSize: batchSize)
        let expected = model.metadata.input
        guard stream.featureCount == expected.features else {
            throw ToolError("\(imagesPath): images are \(ShapeMath.describe(stream.imageShape)) (\(stream.featureCount) features) but \(modelPath) expects \(ShapeMath.describe(expected.shape)) (\(expected.features) features)",
                            status: ExitStatus.dataError)
        }
        let labels = try labelsPath.map { try readLabels(path: $0, imageCount: stream.imageCount) }
        onStart(stream)
        var summary = InferenceSummary()
        let classes = model.metadata.outputSize
        if labels != nil { summary.confusion = Array(repeating: Array(repeating: 0, count: classes), count: classes) }

        switch precision {
        case .float32:
            let engine = try InferenceEngine<Float>(model: model)
            try stream.forEachBatch { batch in
                let t0 = Clock.monotonicSeconds()
                let out = engine.predict(raw: batch.features, count: batch.count)
                summary.computeSeconds += Clock.monotonicSeconds() - t0
                try report(out, batch: batch, labels: labels, summary: &summary, onPrediction: onPrediction)
            }
        case .float64:
            let engine = try InferenceEngine<Double>(model: model)
            try stream.forEachBatch { batch in
                let input = batch.features.map(Double.init)
                let t0 = Clock.monotonicSeconds()
                let out = engine.predict(raw: input, count: batch.count)
                summary.computeSeconds += Clock.monotonicSeconds() - t0
                try report(out, batch: batch, labels: labels, summary: &summary, onPrediction: onPrediction)
            }
        }
        summary.totalSeconds = Clock.monotonicSeconds() - started
        return summary
    }

    private func report<S: BLASScalar>(_ out: [S], batch: IDXImageBatch, labels: [Int]?, summary: inout InferenceSummary,
                                       onPrediction: (ImagePrediction) throws -> Void) throws {
        let classes = model.metadata.outputSize
        for i in 0..<batch.count {
            let row = out[(i * classes)..<((i + 1) * classes)]
            let top = topIndices(row, k: topK)
            let index = batch.startIndex + i
            let label = labels?[index]
            summary.imageCount += 1
            if let label {
                summary.confusion![label][top[0]] += 1
                if label == top[0] { summary.correct += 1 }
            }
            try onPrediction(ImagePrediction(index: index, predicted: top[0],
                                             top: top.map { ($0, Double(row[row.startIndex + $0])) }, label: label))
        }
    }
}

/// Indices of the `k` largest values, largest first; ties keep the lower index first (as
/// NumPy's argmax does for the first).
func topIndices<S: BLASScalar>(_ row: ArraySlice<S>, k: Int) -> [Int] {
    var best: [Int] = []
    for j in 0..<row.count {
        let v = row[row.startIndex + j]
        var position = best.count
        while position > 0, v > row[row.startIndex + best[position - 1]] { position -= 1 }
        if position < k {
            best.insert(j, at: position)
            if best.count > k { best.removeLast() }
        }
    }
    return best
}

extension IDXImageStream {
    /// Calls `body` with each batch until the file is exhausted.
    func forEachBatch(_ body: (IDXImageBatch) throws -> Void) throws {
        while let batch = try nextBatch() { try body(batch) }
    }
}
