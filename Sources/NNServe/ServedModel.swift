import Foundation
import NNCommandLine
import NNCore
import NNEngine

/// Where a served model comes from: its name in the URLs and its file.
public struct ModelSource: Sendable, Equatable {
    public var name: String
    public var path: String

    public init(name: String, path: String) {
        self.name = name
        self.path = path
    }

    /// `NAME=PATH`, or a path whose file name without its extension is the name
    /// ("models/fashion.nnm" is "fashion").
    public init(argument: String) throws {
        if let equals = argument.firstIndex(of: "="), !argument[..<equals].contains("/") {
            name = String(argument[..<equals])
            path = String(argument[argument.index(after: equals)...])
        } else {
            path = argument
            let file = URL(fileURLWithPath: argument).lastPathComponent
            name = file.firstIndex(of: ".").map { String(file[..<$0]) } ?? file
        }
        guard !name.isEmpty, !path.isEmpty,
              name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }) else {
            throw ToolError("\(argument): a model's name must be letters, digits, '-', '_' or '.' (give it as NAME=PATH)", status: ExitStatus.usage)
        }
    }
}

/// A model loaded, validated and ready: what the routes need of it, and the queue that runs it.
public final class ServedModel: @unchecked Sendable {
    // @unchecked Sendable: every stored property is a constant; the engine lives in `queue`.
    public let name: String
    public let path: String
    public let model: Model
    /// Class names, or the indices as strings when the model has none.
    public let classes: [String]
    /// How outputs become probabilities.
    public let values: ReportedValues
    /// "nnm", or the format nnconv converted from.
    public let format: String
    /// When it was loaded (ISO 8601).
    public let loaded: String
    /// The file's modification time and size when it was loaded, to notice a change.
    let stamp: FileStamp?
    let queue: BatchQueue
    /// Keeps the temporary `.nnm` of a converted model (which may be mapped) alive.
    private let run: InferenceRun

    public var inputShape: [Int] { model.metadata.input.shape }
    public var inputSize: Int { model.metadata.input.features }
    public var outputSize: Int { model.metadata.outputSize }

    /// Opens and validates the model at `source.path` (checksums verified; a model of another
    /// format converted by a child nnconv with `importChoices`) and starts its queue.
    init(source: ModelSource, importChoices: ImportChoices, limits: ServeLimits,
                onBatch: @escaping @Sendable (String, BatchQueue.BatchRecord) -> Void) throws {
        let stamp = FileStamp(path: source.path)
        let run = try InferenceRun(modelPath: source.path, importChoices: importChoices)
        let engine = try InferenceEngine<Float>(model: run.model)
        name = source.name
        path = source.path
        model = run.model
        self.run = run
        classes = InferenceReport(model: run.model, modelPath: source.path).classes
        values = run.values
        format = run.conversion?.format ?? "nnm"
        loaded = Clock.nowISO8601()
        self.stamp = stamp
        let name = source.name
        queue = BatchQueue(engine: engine, maxBatch: limits.maxBatch, maxWait: limits.batchWaitSeconds, name: name) { onBatch(name, $0) }
    }

    /// Notes about the model (a conversion, NaN weights), one line each.
    public var warnings: [String] { run.warnings() }

    /// Probabilities for `count` samples of raw features: one row per sample.
    func probabilities(features: [Float], count: Int) async throws -> [[Double]] {
        let outputs = try await queue.submit(features: features, count: count)
        let n = outputSize
        return (0..<count).map { values.convert(outputs[($0 * n)..<(($0 + 1) * n)]) }
    }

    deinit { queue.close() }
}

/// A file's modification time and size.
struct FileStamp: Equatable {
    var modified: Date
    var size: Int

    init?(path: String) {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
              let modified = attributes[.modificationDate] as? Date, let size = attributes[.size] as? Int else { return nil }
        self.modified = modified
        self.size = size
    }
}
