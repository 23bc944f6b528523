import Foundation
import Logging
import NNCommandLine

/// The models being served, by name. A reload loads and validates each model anew, and only
/// then puts it in place of the old one, which serves until that moment and finishes the
/// requests it has queued; a model that fails to load keeps its old version.
public final class ModelRegistry: @unchecked Sendable {
    // @unchecked Sendable: `models` is guarded by `lock`; the rest is constant.
    public let sources: [ModelSource]
    private let lock = NSLock()
    private var models: [String: ServedModel] = [:]
    private let load: @Sendable (ModelSource) throws -> ServedModel

    /// Loads every model (the first that fails throws) with `load`.
    public init(sources: [ModelSource], load: @escaping @Sendable (ModelSource) throws -> ServedModel) throws {
        var seen = Set<String>()
        for source in sources where !seen.insert(source.name).inserted {
            throw ToolError("two models are named '\(source.name)'; name them apart as NAME=PATH", status: ExitStatus.usage)
        }
        guard !sources.isEmpty else { throw ToolError("no model given", status: ExitStatus.usage) }
        self.sources = sources
        self.load = load
        for source in sources { models[source.name] = try load(source) }
    }

    /// The model named `name`, if there is one.
    public func model(_ name: String) -> ServedModel? {
        lock.withLock { models[name] }
    }

    /// Every model, in the order given.
    public var all: [ServedModel] {
        lock.withLock { sources.compactMap { models[$0.name] } }
    }

    /// Loads the models anew (all of them, or those whose file changed since it was loaded when
    /// `changedOnly`) and swaps in each one that loads. Returns one line per model tried.
    @discardableResult
    public func reload(changedOnly: Bool = false, logger: Logger? = nil) -> [String] {
        var lines: [String] = []
        for source in sources {
            let old = model(source.name)
            let stamp = FileStamp(path: source.path)
            if changedOnly, let old, stamp == old.stamp || lock.withLock({ failedStamps[source.name] }) == stamp { continue }
            do {
                let fresh = try load(source)
                lock.withLock { models[source.name] = fresh }
                lines.append("\(source.name): reloaded from \(source.path)")
                logger?.notice("\(source.name): reloaded from \(source.path)")
            } catch {
                lines.append("\(source.name): kept the model loaded before; the new one failed: \(error)")
                logger?.error("\(source.name): kept the model loaded before; the new one failed: \(error)")
                // A file that failed is not tried again until it changes once more.
                lock.withLock { failedStamps[source.name] = stamp }
            }
        }
        return lines
    }

    /// The file stamps of the last failed loads, by name.
    private var failedStamps: [String: FileStamp?] = [:]

    /// Ends every model's queue once its queued requests are done (at shutdown).
    public func close() {
        let all = lock.withLock { Array(models.values) }
        for model in all { model.queue.close() }
    }
}
