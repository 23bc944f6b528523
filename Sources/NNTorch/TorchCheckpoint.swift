import NNCore
import NNPickle

/// What `torch.save` wrote, decoded from its pickle (`data.pkl` in the zip format) and its
/// storages, however those are stored.
///
/// The pickle is read by `PickleMachine` with `TorchAllowList`'s globals only, so nothing in it is
/// run. Storages are checked against the provider's sizes before any is read, and every tensor
/// view against its storage.
public struct TorchCheckpoint: Sendable {
    /// Which globals the pickle may name.
    public enum Mode: Sendable {
        /// `torch.save(model.state_dict())` or any dict of tensors: `TorchAllowList.stateDict`.
        case stateDict
        /// `torch.save(model)` of torch.nn layers: `TorchAllowList.wholeModel`.
        case wholeModel

        public var policy: PickleGlobalPolicy {
            self == .stateDict ? TorchAllowList.stateDict : TorchAllowList.wholeModel
        }
    }

    /// The pickle's value.
    public let root: PickleValue
    /// The storages it refers to, in the order first referred to.
    public let storageRecords: [TorchStorageRecord]
    let storages: [String: TorchStorageBytes]
    /// Whether the storages were read (false for `init(root:declaredStorages:)`).
    public let holdsData: Bool

    /// Reads `pickle` and loads the storages it refers to from `provider`.
    ///
    /// - Parameters:
    ///   - byteOrder: the zip's `byteorder` record ("little" or "big"), nil when there is none
    ///     (torch before 1.10 wrote none and was little-endian). Big-endian data is refused:
    ///     byte-swapping is not implemented, and no common machine writes it.
    ///   - loadingData: false to check the storages' sizes without reading them
    ///     (`init(root:declaredStorages:)`).
    public init(pickle: UnsafeRawBufferPointer, storages provider: some TorchStorageProvider, mode: Mode = .stateDict,
                byteOrder: String? = nil, limits: PickleLimits = .default, loadingData: Bool = true) throws(TorchError) {
        try Self.check(byteOrder: byteOrder)
        let root = try Self.parse(pickle, from: 0, mode: mode, limits: limits).value
        try self.init(root: root, storages: provider, loadingData: loadingData)
    }

    /// Reads `pickle` and loads the storages it refers to from `provider`.
    public init(pickle: [UInt8], storages provider: some TorchStorageProvider, mode: Mode = .stateDict,
                byteOrder: String? = nil, limits: PickleLimits = .default, loadingData: Bool = true) throws(TorchError) {
        let result = pickle.withUnsafeBytes { raw in
            Result { () throws(TorchError) in
                try TorchCheckpoint(pickle: raw, storages: provider, mode: mode, byteOrder: byteOrder, limits: limits, loadingData: loadingData)
            }
        }
        self = try result.get()
    }

    /// A checkpoint from a pickle already read (`parse`): loads the storages it refers to.
    public init(root: PickleValue, storages provider: some TorchStorageProvider) throws(TorchError) {
        try self.init(root: root, storages: provider, loadingData: true)
    }

    /// A checkpoint whose storages are checked against their declared sizes but not read: its
    /// tensors can be declared (`declaration(_:)`, `stateDictDeclarations`), not built. What
    /// `nnconv inspect` lists.
    public init(root: PickleValue, declaredStorages provider: some TorchStorageProvider) throws(TorchError) {
        try self.init(root: root, storages: provider, loadingData: false)
    }

    private init(root: PickleValue, storages provider: some TorchStorageProvider, loadingData: Bool) throws(TorchError) {
        let records = try TorchStorageReference.records(in: root)
        // Every size first, so that a wrong file fails before any storage is read.
        for record in records {
            let count: Int
            do { count = try provider.byteCount(ofStorage: record.key) } catch { throw .storageUnavailable(key: record.key, cause: error) }
            guard count == record.byteCount else {
                throw .storageSizeMismatch(key: record.key, declared: record.declaration, actualBytes: count)
            }
        }
        var storages: [String: TorchStorageBytes] = [:]
        for record in records where loadingData {
            let bytes: TorchStorageBytes
            do { bytes = try provider.bytes(ofStorage: record.key) } catch { throw .storageUnavailable(key: record.key, cause: error) }
            guard bytes.byteCount == record.byteCount else {
                throw .storageSizeMismatch(key: record.key, declared: record.declaration, actualBytes: bytes.byteCount)
            }
            storages[record.key] = bytes
        }
        self.root = root
        self.storageRecords = records
        self.storages = storages
        self.holdsData = loadingData
    }

    /// Reads one pickle of a checkpoint with the mode's globals; refusals of model classes become
    /// the specific errors (`customClass`, `unsupportedModuleClass`, `wholeModelFile`).
    public static func parse(_ bytes: UnsafeRawBufferPointer, from start: Int, mode: Mode,
                             limits: PickleLimits = .default) throws(TorchError) -> (value: PickleValue, end: Int) {
        do {
            return try PickleMachine.load(bytes, from: start, policy: mode.policy, limits: limits)
        } catch {
            throw TorchError.reading(error, mode: mode)
        }
    }

    /// The storages a pickle's value refers to, each key once in the order first referred to:
    /// what a provider must supply (`archive/data/<key>` in the zip format).
    public static func storageRecords(in root: PickleValue) throws(TorchError) -> [TorchStorageRecord] {
        try TorchStorageReference.records(in: root)
    }

    static func check(byteOrder: String?) throws(TorchError) {
        switch byteOrder {
        case nil, "little": return
        case "big": throw .unsupported("the checkpoint was written on a big-endian machine (byteorder 'big'); only little-endian data is read")
        case let other?: throw .malformed("a byteorder record of '\(PickleError.oneLine(String(other.prefix(20))))', neither 'little' nor 'big'")
        }
    }

    /// The tensor a tensor or parameter record describes (`_rebuild_tensor_v2` and the others of
    /// `TorchTensorDecoding`).
    public func tensor(_ value: PickleValue) throws(TorchError) -> Tensor {
        try TorchTensorDecoding.tensor(value, storages: storages)
    }

    /// The element type and shape a tensor record declares, checked against its storage's
    /// declared size; reads no data.
    public func declaration(_ value: PickleValue) throws(TorchError) -> (dtype: DType, shape: [Int]) {
        let view = try TorchTensorDecoding.declaration(value)
        return (view.dtype, view.shape)
    }

    /// The state dict at `path` (string keys from the root, e.g. ["model"] for a checkpoint saved
    /// as `{"model": model.state_dict(), "epoch": 3}`), as named tensors in the pickle's order.
    /// Every entry must be a tensor and every key a distinct string.
    public func stateDict(at path: [String] = []) throws(TorchError) -> [NamedTensor] {
        var tensors: [NamedTensor] = []
        for (key, entry) in try stateDictEntries(at: path) {
            do { tensors.append(NamedTensor(key, try tensor(entry))) } catch { throw .inTensor(key, error) }
        }
        return tensors
    }

    /// What `stateDict(at:)` would return, declared: names, element types and shapes, with the
    /// same checks and no data read.
    public func stateDictDeclarations(at path: [String] = []) throws(TorchError) -> [(name: String, dtype: DType, shape: [Int])] {
        var out: [(name: String, dtype: DType, shape: [Int])] = []
        for (key, entry) in try stateDictEntries(at: path) {
            do {
                let d = try declaration(entry)
                out.append((key, d.dtype, d.shape))
            } catch { throw .inTensor(key, error) }
        }
        return out
    }

    private func stateDictEntries(at path: [String]) throws(TorchError) -> [(key: String, value: PickleValue)] {
        var value = root
        var walked = ""
        for key in path {
            guard let inner = Self.dictionary(value)?[key] else {
                throw .notStateDict("\(walked.isEmpty ? "the pickle" : "'\(walked)'") has no entry '\(PickleError.oneLine(key))'")
            }
            value = inner
            walked += walked.isEmpty ? key : ".\(key)"
        }
        guard let dict = Self.dictionary(value) else {
            if case let .object(.call(callee, _), _) = value, let name = callee.globalName {
                throw .notStateDict("the pickle holds a whole model (\(name)); read it as a whole model")
            }
            throw .notStateDict("the pickle holds \(value.kindDescription), not a dict of tensors")
        }
        let entries: [(key: String, value: PickleValue)]
        do { entries = try dict.uniqueStringKeyedEntries() ?? [] } catch { throw .notStateDict(error.description) }
        for (key, entry) in entries where Self.dictionary(entry) != nil {
            throw .notStateDict("entry '\(PickleError.oneLine(key))' is a dict, not a tensor; pass its key as the path to read the state dict inside it")
        }
        return entries
    }

    /// The whole pickled model (`torch.save(model)` in `.wholeModel` mode) as a module tree.
    public func module() throws(TorchError) -> TorchModule {
        try TorchModule(root, name: "", checkpoint: self)
    }

    /// A dict, or an OrderedDict with attributes (`state_dict()` sets `_metadata`, which BUILD adds).
    static func dictionary(_ value: PickleValue) -> PickleValue? {
        switch value {
        case .dict: return value
        case let .object(base, _):
            if case .dict = base { return base }
            return nil
        default: return nil
        }
    }
}
