import Foundation
import NNCore
import NNData
import NNEngine
import NNFormat
import NNImage

/// One image's result.
public struct ImagePrediction: Sendable {
    public var index: Int
    /// The predicted class (the index of the largest output).
    public var predicted: Int
    /// The K largest outputs, largest first: class index and value.
    public var top: [(classIndex: Int, probability: Double)]
    /// The true label, when labels were given.
    public var label: Int?
    /// Where the sample came from ("img_007.png", "train.csv:2"); nil for IDX images.
    public var source: String?
}

/// What a run reads: an IDX file streamed in batches, or samples already in memory (pictures,
/// CSV rows, `.npy` arrays).
public enum InferenceInput {
    case idx(path: String)
    case samples(SampleSet, path: String)

    /// Opens `path` by its kind (`InputKind`): IDX files stay streamed, the rest are read
    /// for a model whose input has `inputShape`; pictures get `preprocess`. A folder of class
    /// sub-folders (no pictures of its own) is labelled by matching the sub-folder names to
    /// `classes`, the model's class names.
    public static func open(path: String, inputShape: [Int], preprocess: PreprocessMode?, classes: [String] = [],
                            reader: ImageReader = ImageReader()) throws -> InferenceInput {
        switch InputKind(path: path) {
        case .idx: return .idx(path: path)
        case .folder:
            if try SampleSet.pictureFiles(in: path).files.isEmpty, !(try SampleSet.classFolderNames(path)).isEmpty {
                return .samples(try SampleSet.classFolders(path, inputShape: inputShape, mode: preprocess, classes: classes, reader: reader), path: path)
            }
            return .samples(try SampleSet.folder(path, inputShape: inputShape, mode: preprocess, reader: reader), path: path)
        case .picture:
            return .samples(try SampleSet.pictures([(path, path)], inputShape: inputShape, mode: preprocess, reader: reader), path: path)
        case .csv: return .samples(try KaggleCSV.read(path: path, inputShape: inputShape), path: path)
        case .npy: return .samples(try SampleSet.npy(path, inputShape: inputShape), path: path)
        }
    }

    /// The path given.
    public var path: String {
        switch self {
        case let .idx(path), let .samples(_, path): return path
        }
    }

    /// The samples, when they are in memory.
    public var samples: SampleSet? {
        if case let .samples(set, _) = self { return set }
        return nil
    }
}

/// What a run tells before its first prediction.
public struct InputDescription: Sendable {
    public var count: Int
    public var shape: [Int]
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
    /// Which kernels ran the products (`InferenceEngine.kernelDescription`).
    public var kernels = ""

    public var accuracy: Double? {
        confusion == nil || imageCount == 0 ? nil : Double(correct) / Double(imageCount)
    }
}

/// How the values a run reports are made from the model's outputs.
public enum ReportedValues: Equatable, Sendable {
    /// The outputs are probabilities and are shown as they are.
    case probabilities
    /// The outputs are logits: shown as their softmax (a sigmoid for a single output).
    case softmaxOfLogits
    /// The outputs are log-probabilities: shown as their exponentials.
    case expOfLogProbabilities
    /// The outputs as the model gives them, whatever they are (`--raw`).
    case raw(OutputKind)

    /// What a run shows for a model whose outputs are `kind`.
    public init(for kind: OutputKind, raw: Bool) {
        if raw { self = .raw(kind); return }
        switch kind {
        case .probabilities: self = .probabilities
        case .logits: self = .softmaxOfLogits
        case .logProbabilities: self = .expOfLogProbabilities
        }
    }

    /// Whether the shown values are probabilities.
    public var areProbabilities: Bool { if case .raw(let kind) = self { return kind == .probabilities } else { return true } }

    /// A sentence for the text report, nil when the outputs are shown as the model gives them and
    /// are probabilities.
    public var explanation: String? {
        switch self {
        case .probabilities: return nil
        case .softmaxOfLogits: return "the model outputs logits; the probabilities shown are their softmax (--raw shows the logits)"
        case .expOfLogProbabilities: return "the model outputs log-probabilities; the probabilities shown are their exponentials (--raw shows the log-probabilities)"
        case .raw(let kind): return kind == .probabilities ? nil : "the values shown are the model's raw outputs (\(kind.rawValue.replacingUnderscores)), not probabilities"
        }
    }

    /// The JSON name of the conversion applied: "none", "softmax", "sigmoid" or "exp".
    func conversionName(outputs: Int) -> String {
        switch self {
        case .probabilities, .raw: return "none"
        case .softmaxOfLogits: return outputs == 1 ? "sigmoid" : "softmax"
        case .expOfLogProbabilities: return "exp"
        }
    }

    /// The values to show for one sample's outputs, computed in f64.
    public func convert<S: BLASScalar>(_ row: some Collection<S>) -> [Double] {
        let values = Array(row)
        return [Double](unsafeUninitializedCapacity: values.count) { buffer, initialized in
            values.withUnsafeBufferPointer { convert($0, into: buffer) }
            initialized = values.count
        }
    }

    /// `convert(_:)` into `values` (at least as many as `row`), allocating nothing: a run calls it
    /// once per sample.
    public func convert<S: BLASScalar>(_ row: UnsafeBufferPointer<S>, into values: UnsafeMutableBufferPointer<Double>) {
        let n = row.count
        for i in 0..<n { values[i] = Double(row[i]) }
        switch self {
        case .probabilities, .raw: return
        case .expOfLogProbabilities:
            for i in 0..<n { values[i] = values[i].isNaN ? .nan : Foundation.exp(values[i]) }
        case .softmaxOfLogits:
            guard n > 1 else {
                if n == 1 { values[0] = 1 / (1 + Foundation.exp(-values[0])) }
                return
            }
            // Shifted by the largest value so that no exponential overflows (the first of equal
            // values, a NaN first kept, as Sequence.max()).
            var peak = values[0]
            for i in 1..<n where peak < values[i] { peak = values[i] }
            guard peak.isFinite else {
                for i in 0..<n { values[i] = .nan }
                return
            }
            var total = 0.0
            for i in 0..<n {
                values[i] = Foundation.exp(values[i] - peak)
                total += values[i]
            }
            for i in 0..<n { values[i] /= total }
        }
    }
}

extension String {
    fileprivate var replacingUnderscores: String { String(map { $0 == "_" ? " " : $0 }) }
}

/// Runs a model over an IDX image file in batches with bounded memory.
public struct InferenceRun {
    public var model: Model
    public var modelPath: String
    public var precision: Precision
    public var batchSize: Int
    public var topK: Int
    /// How the reported values are made from the outputs (probabilities by default).
    public var values: ReportedValues
    /// Whether the model's bytes were read in full (checksums); only then are its values also
    /// scanned for NaN, so that `--no-verify` never touches every page of a large model.
    public var verified: Bool
    /// What the reader's scan of the values found (empty without verification).
    private let modelWarnings: [ModelWarning]
    /// How a model that is not `.nnm` was converted for this run; nil for a `.nnm`.
    public let conversion: ModelConversion?

    /// Opens and validates a model (checksums verified unless `verify` is false). A model in
    /// any other format `nnconv import` reads is converted first, with `importChoices`.
    /// - Parameters:
    ///   - raw: report the model's outputs as they are, instead of probabilities.
    ///   - requireNNM: refuse a model that is not `.nnm` instead of converting it.
    public init(modelPath: String, precision: Precision = .float32, batchSize: Int = 1024, topK: Int = 3, verify: Bool = true,
                raw: Bool = false, importChoices: ImportChoices = ImportChoices(), requireNNM: Bool = false) throws {
        guard batchSize > 0 else { throw ToolError("--batch must be at least 1", status: ExitStatus.usage) }
        guard topK > 0 else { throw ToolError("--top must be at least 1", status: ExitStatus.usage) }
        self.modelPath = modelPath
        if ModelConversion.isForeign(path: modelPath) {
            if requireNNM {
                throw ToolError("\(modelPath): is not a .nnm model (--require-nnm); convert it with: nnconv import \(modelPath)", status: ExitStatus.dataError)
            }
            conversion = try ModelConversion(path: modelPath, choices: importChoices, tool: "nn-infer")
        } else {
            if let option = importChoices.arguments.first {
                throw ToolError("\(option) applies to models that nn-infer converts; \(modelPath) is already .nnm", status: ExitStatus.usage)
            }
            conversion = nil
        }
        // One pass: the reader verifies the checksums and scans the values in the same open.
        let file = try NNMFormat.open(path: conversion?.file.path ?? modelPath, verifyChecksums: verify)
        model = file.model
        // The converter has reported what its validation found, among its notes.
        modelWarnings = conversion == nil ? file.validated.warnings : []
        self.precision = precision
        self.batchSize = batchSize
        self.topK = min(topK, model.metadata.outputSize)
        verified = verify
        values = ReportedValues(for: model.metadata.outputKind, raw: raw)
    }

    /// Problems that do not stop inference (NaN weights), and what the converter of a model that
    /// is not `.nnm` decided, one line each.
    public func warnings() -> [String] {
        warnings(includingNotes: true)
    }

    /// `warnings()`, without the converter's notes when `includingNotes` is false (a stream's
    /// standard error stays quiet unless something is wrong).
    public func warnings(includingNotes: Bool) -> [String] {
        let kernelNote = MatrixKernel.selected.note.map { ["warning: \($0)"] } ?? []
        if let conversion {
            if !includingNotes {
                return conversion.notes.filter { $0.hasPrefix("warning: ") }.map { "\(modelPath): \($0)" } + kernelNote
            }
            return ["\(modelPath): note: \(conversion.format), converted by nnconv for this run"]
                + conversion.notes.map { "\(modelPath): \($0.hasPrefix("warning: ") ? "" : "note: ")\($0)" } + kernelNote
        }
        return modelWarnings.map { "\(modelPath): warning: \($0)" } + kernelNote
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

    /// Streams `imagesPath` (an IDX file) through the model, calling `onPrediction` for each
    /// image in order.
    public func run(imagesPath: String, labelsPath: String?,
                    onStart: (InputDescription) -> Void = { _ in },
                    onPrediction: (ImagePrediction) throws -> Void) throws -> InferenceSummary {
        try run(input: .idx(path: imagesPath), labelsPath: labelsPath, onStart: onStart, onPrediction: onPrediction)
    }

    /// Runs `input` through the model, calling `onPrediction` for each sample in order. Labels
    /// come from `labelsPath` (an IDX file) or else from the input itself (a CSV `label` column).
    public func run(input: InferenceInput, labelsPath: String?,
                    onStart: (InputDescription) -> Void = { _ in },
                    onPrediction: (ImagePrediction) throws -> Void) throws -> InferenceSummary {
        let started = Clock.monotonicSeconds()
        let expected = model.metadata.input
        let batches: SampleBatches
        switch input {
        case let .idx(imagesPath):
            batches = .stream(try IDXImageStream.opening(imagesPath, batchSize: batchSize, for: expected, model: modelPath), size: batchSize)
        case let .samples(set, path):
            guard set.featureCount == expected.features else {
                throw ToolError("\(path): samples are \(ShapeMath.describe(set.shape)) but \(modelPath) expects \(ShapeMath.describe(expected.shape))",
                                status: ExitStatus.dataError)
            }
            batches = .memory(set, next: 0, size: batchSize)
        }
        let labels: [Int]?
        if let labelsPath {
            labels = try readLabels(path: labelsPath, imageCount: batches.count)
        } else if let inline = input.samples?.labels {
            labels = inline
            let classes = model.metadata.outputSize
            if let bad = inline.firstIndex(where: { $0 >= classes }) {
                throw ToolError("\(input.samples!.sources[bad]): label \(inline[bad]) is outside the model's \(classes) classes (0...\(classes - 1))",
                                status: ExitStatus.dataError)
            }
        } else {
            labels = nil
        }
        onStart(InputDescription(count: batches.count, shape: batches.shape))
        let sources = input.samples?.sources
        var summary = InferenceSummary()
        let classes = model.metadata.outputSize
        if labels != nil { summary.confusion = Array(repeating: Array(repeating: 0, count: classes), count: classes) }

        // One buffer of outputs (and of f64 inputs) for every batch: a fresh array per batch was
        // page faults and a copy for each.
        let outputs = UnsafeMutableBufferPointer<Double>.allocate(capacity: max(batches.batchSize * classes, 1))
        defer { outputs.deallocate() }
        /// One batch: its forward pass (timed), which fills `out`, then its report.
        func batch<S: BLASScalar>(_ start: Int, _ count: Int, into out: UnsafeMutablePointer<S>, _ forward: () -> Void) throws {
            let t0 = Clock.monotonicSeconds()
            forward()
            summary.computeSeconds += Clock.monotonicSeconds() - t0
            try report(UnsafeBufferPointer(start: out, count: count * classes), startIndex: start, labels: labels, sources: sources,
                       summary: &summary, onPrediction: onPrediction)
        }
        switch precision {
        case .float32:
            let engine = try InferenceEngine<Float>(model: model)
            summary.kernels = engine.kernelDescription
            let out = UnsafeMutableRawPointer(outputs.baseAddress!).bindMemory(to: Float.self, capacity: outputs.count)
            if case let .stream(stream, _) = batches, stream.holdsBytes {
                // Image bytes go into the engine as they are: the first layer widens and
                // preprocesses them as it packs its rows (the same values as decoding first).
                var start = 0
                while case let count = try stream.nextBytes({ bytes, count in
                    try batch(start, count, into: out) { engine.predict(bytes: bytes, scale: stream.scale, count: count, into: out) }
                }), count > 0 {
                    start += count
                }
                break
            }
            try batches.forEach { start, count, features in
                try batch(start, count, into: out) { engine.predict(raw: features.baseAddress!, count: count, into: out) }
            }
        case .float64:
            let engine = try InferenceEngine<Double>(model: model)
            summary.kernels = engine.kernelDescription
            let input = UnsafeMutableBufferPointer<Double>.allocate(capacity: max(batches.batchSize * expected.features, 1))
            defer { input.deallocate() }
            try batches.forEach { start, count, features in
                for i in features.indices { input[i] = Double(features[i]) }
                try batch(start, count, into: outputs.baseAddress!) { engine.predict(raw: input.baseAddress!, count: count, into: outputs.baseAddress!) }
            }
        }
        summary.totalSeconds = Clock.monotonicSeconds() - started
        return summary
    }

    /// Reports the outputs of the samples from `startIndex` on (`outputSize` values each).
    func report<S: BLASScalar>(_ out: UnsafeBufferPointer<S>, startIndex: Int, labels: [Int]?, sources: [String]?, summary: inout InferenceSummary,
                               onPrediction: (ImagePrediction) throws -> Void) throws {
        let classes = model.metadata.outputSize
        guard classes > 0 else { return }
        // One row of shown values and one list of indices for every sample: what the prediction
        // keeps is its own array of the top K.
        let row = UnsafeMutableBufferPointer<Double>.allocate(capacity: classes)
        defer { row.deallocate() }
        let best = UnsafeMutableBufferPointer<Int>.allocate(capacity: topK)
        defer { best.deallocate() }
        for i in 0..<(out.count / classes) {
            values.convert(UnsafeBufferPointer(rebasing: out[(i * classes)..<((i + 1) * classes)]), into: row)
            let kept = topIndices(UnsafeBufferPointer(row), k: topK, into: best)
            let index = startIndex + i
            let label = labels?[index]
            summary.imageCount += 1
            if let label {
                summary.confusion![label][best[0]] += 1
                if label == best[0] { summary.correct += 1 }
            }
            try onPrediction(ImagePrediction(index: index, predicted: best[0],
                                             top: best[..<kept].map { ($0, row[$0]) }, label: label, source: sources?[index]))
        }
    }
}

/// Indices of the `k` largest values, largest first; ties keep the lower index first (as
/// NumPy's argmax does for the first).
public func topIndices<S: Comparable>(_ row: ArraySlice<S>, k: Int) -> [Int] {
    guard k > 0 else { return [] }
    return [Int](unsafeUninitializedCapacity: k) { best, kept in
        kept = row.withUnsafeBufferPointer { topIndices($0, k: k, into: best) }
    }
}

/// `topIndices(_:k:)` into `best` (room for `k` indices, `k` > 0), allocating nothing: a run calls
/// it once per sample. Returns how many it wrote, `min(k, row.count)`.
public func topIndices<S: Comparable>(_ row: UnsafeBufferPointer<S>, k: Int, into best: UnsafeMutableBufferPointer<Int>) -> Int {
    precondition(k > 0 && best.count >= k)
    var kept = 0
    for j in 0..<row.count {
        let v = row[j]
        var position = kept
        while position > 0, v > row[best[position - 1]] { position -= 1 }
        guard position < k else { continue }
        // Insert j at `position`; the last index falls off when k are kept already.
        if kept < k { kept += 1 }
        var q = kept - 1
        while q > position {
            best[q] = best[q - 1]
            q -= 1
        }
        best[position] = j
    }
    return kept
}

/// The batches of a run: from an IDX stream, or cut from samples in memory.
private enum SampleBatches {
    case stream(IDXImageStream, size: Int)
    case memory(SampleSet, next: Int, size: Int)

    /// The most samples in one batch.
    var batchSize: Int {
        switch self {
        case let .stream(_, size), let .memory(_, _, size): return size
        }
    }

    var count: Int {
        switch self {
        case let .stream(stream, _): return stream.imageCount
        case let .memory(set, _, _): return set.count
        }
    }

    var shape: [Int] {
        switch self {
        case let .stream(stream, _): return stream.imageShape
        case let .memory(set, _, _): return set.shape
        }
    }

    /// Calls `body` with each batch (its first sample's index, its sample count and its
    /// features, valid during the call) until the input is exhausted. A stream is decoded into
    /// one buffer for every batch; samples in memory are passed where they are.
    func forEach(_ body: (_ startIndex: Int, _ count: Int, _ features: UnsafeBufferPointer<Float>) throws -> Void) throws {
        switch self {
        case let .stream(stream, size):
            let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(size * stream.featureCount, 1))
            defer { buffer.deallocate() }
            var start = 0
            while case let count = try stream.nextBatch(into: buffer), count > 0 {
                try body(start, count, UnsafeBufferPointer(rebasing: buffer[..<(count * stream.featureCount)]))
                start += count
            }
        case let .memory(set, _, size):
            let n = set.featureCount
            try set.features.withUnsafeBufferPointer { features in
                var start = 0
                while start < set.count {
                    let count = min(size, set.count - start)
                    try body(start, count, UnsafeBufferPointer(rebasing: features[(start * n)..<((start + count) * n)]))
                    start += count
                }
            }
        }
    }
}

extension InferenceRun {
    /// The fraction of the IDX images at `imagesPath` that the model at `modelPath` classifies as
    /// the IDX labels at `labelsPath` say (`nnconv quantize` compares a model with its quantized
    /// copy this way), with the same reading and checks as `nn-infer --labels`.
    public static func accuracy(modelPath: String, imagesPath: String, labelsPath: String) throws -> Double {
        let run = try InferenceRun(modelPath: modelPath, importChoices: try ImportChoices.parse([]))
        let summary = try run.run(imagesPath: imagesPath, labelsPath: labelsPath) { _ in }
        return summary.accuracy ?? 0
    }
}

extension IDXImageStream {
    /// Opens the IDX images at `path` for the model at `model`, whose inputs are `expected`:
    /// images of another size are refused (status 65) with a line naming both files and shapes.
    static func opening(_ path: String, batchSize: Int, for expected: InputSpec, model: String) throws -> IDXImageStream {
        let stream = try IDXImageStream(path: path, batchSize: batchSize)
        guard stream.featureCount == expected.features else {
            throw ToolError("\(path): images are \(ShapeMath.describe(stream.imageShape)) (\(stream.featureCount) features) but \(model) expects \(ShapeMath.describe(expected.shape)) (\(expected.features) features)",
                            status: ExitStatus.dataError)
        }
        return stream
    }
}
