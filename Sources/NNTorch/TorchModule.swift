import NNCore
import NNPickle

/// A torch.nn module from a whole pickled model, as data: its class, its attributes
/// (`in_features`, `kernel_size`, `eps`, ...), its parameters and buffers as tensors, and its
/// submodules in order. Nothing of the class is run; its code is torch's, not the file's.
public struct TorchModule: Sendable {
    /// The class, e.g. "torch.nn.modules.linear.Linear".
    public var className: String
    /// The module's path from the root, as in state-dict keys ("" for the root, "0", "features.3").
    public var path: String
    /// `training` (true while the model was in train mode).
    public var training: Bool?
    /// The other entries of the module's `__dict__`, in the pickle's order.
    public var attributes: [(name: String, value: PickleValue)]
    /// `_parameters`: nil for a parameter set to None (`bias=False`).
    public var parameters: [(name: String, tensor: Tensor?)]
    /// `_buffers` (running_mean, running_var, num_batches_tracked, ...).
    public var buffers: [(name: String, tensor: Tensor?)]
    /// The parameters and buffers that are tensors, declared (element type and shape): also
    /// when the checkpoint holds no data, where `parameters` and `buffers` hold nil.
    public var declarations: [(name: String, dtype: DType, shape: [Int])] = []
    /// Buffers that `state_dict()` leaves out.
    public var nonPersistentBuffers: Set<String>
    /// `_modules`, in order (None entries are left out, as `state_dict()` does).
    public var children: [(name: String, module: TorchModule)]

    /// "Linear" for "torch.nn.modules.linear.Linear".
    public var typeName: String { String(className.split(separator: ".").last ?? "") }

    /// The `__dict__` entry `name` (not `_parameters`, `_buffers`, `_modules`, `_non_persistent_buffers_set`).
    public func attribute(_ name: String) -> PickleValue? {
        attributes.last { $0.name == name }?.value
    }

    /// An int attribute (`in_features`, `dim`); bools count, as in Python.
    public func int(_ name: String) -> Int? {
        attribute(name)?.intValue.flatMap { Int(exactly: $0) }
    }

    /// A float or int attribute (`eps`, `momentum`, `negative_slope`, `p`).
    public func double(_ name: String) -> Double? { attribute(name)?.doubleValue }

    /// A bool attribute (`inplace`, `affine`, `ceil_mode`).
    public func bool(_ name: String) -> Bool? {
        if case let .bool(b)? = attribute(name) { return b }
        return nil
    }

    /// A str attribute (`approximate`, `padding_mode`, or `padding` when it is "same").
    public func string(_ name: String) -> String? { attribute(name)?.stringValue }

    /// An int or a tuple of ints (`kernel_size` may be either): [3] or [3, 3].
    public func ints(_ name: String) -> [Int]? {
        switch attribute(name) {
        case let .int(n)?: return [Int(n)]
        case let value?:
            guard let items = value.elements else { return nil }
            var result: [Int] = []
            for item in items {
                guard case let .int(n) = item else { return nil }
                result.append(Int(n))
            }
            return result
        case nil: return nil
        }
    }

    /// The tensors `model.state_dict()` would hold, with the same keys and order: parameters, then
    /// persistent buffers, then each child's under "<child>.".
    public func stateDict() -> [NamedTensor] {
        var out: [NamedTensor] = []
        var work: [(prefix: String, module: TorchModule)] = [("", self)]
        while let (prefix, module) = work.popLast() {
            for (name, tensor) in module.parameters { if let tensor { out.append(NamedTensor(prefix + name, tensor)) } }
            for (name, tensor) in module.buffers where !module.nonPersistentBuffers.contains(name) {
                if let tensor { out.append(NamedTensor(prefix + name, tensor)) }
            }
            for (name, child) in module.children.reversed() { work.append((prefix + name + ".", child)) }
        }
        return out
    }

    /// Decodes a pickled module: `object(call(<class>, ()), state: <__dict__>)`. The depth of the
    /// recursion over submodules is bounded by the pickle's nesting limit.
    init(_ value: PickleValue, name: String, checkpoint: TorchCheckpoint) throws(TorchError) {
        let place = name.isEmpty ? "the pickle" : "module '\(PickleError.oneLine(name))'"
        if TorchCheckpoint.dictionary(value) != nil {
            throw .notModule("\(place) holds a dict (a state dict?), not a module object; read it as a state dict")
        }
        guard case let .object(.call(callee, _), state) = value, let cls = Self.className(callee) else {
            throw .notModule("\(place) holds \(value.kindDescription), not a module object")
        }
        guard TorchAllowList.moduleClasses.contains(cls) else {
            throw cls.hasPrefix("torch.nn.modules.") ? .unsupportedModuleClass(cls) : .customClass(cls)
        }
        let entries = try Self.entries(state, "a state", "\(place) (\(cls))")
        className = cls
        path = name
        training = nil
        attributes = []
        parameters = []
        buffers = []
        nonPersistentBuffers = []
        children = []
        let prefix = name.isEmpty ? "" : name + "."
        for (key, entry) in entries {
            switch key {
            case "_parameters": parameters = try Self.tensors(entry, prefix: prefix, what: "_parameters", place: place, checkpoint, &declarations)
            case "_buffers": buffers = try Self.tensors(entry, prefix: prefix, what: "_buffers", place: place, checkpoint, &declarations)
            case "_non_persistent_buffers_set":
                guard case let .set(items) = entry else { throw .notModule("\(place) has a _non_persistent_buffers_set that is \(entry.kindDescription)") }
                nonPersistentBuffers = Set(items.compactMap(\.stringValue))
            case "_modules":
                for (childName, child) in try Self.entries(entry, "_modules", place) where child != .none {
                    children.append((childName, try TorchModule(child, name: prefix + childName, checkpoint: checkpoint)))
                }
            default:
                if key == "training", case let .bool(b) = entry { training = b }
                attributes.append((key, entry))
            }
        }
    }

    /// The class a NEWOBJ names: a global, or in the legacy format the persistent id
    /// `('module', <class>, source_file, source)` that torch wrote in its place.
    private static func className(_ callee: PickleValue) -> String? {
        if let name = callee.globalName { return name }
        if case let .persistent(.tuple(fields)) = callee, fields.count >= 2, fields[0] == .string("module") {
            return fields[1].globalName
        }
        return nil
    }

    private static func entries(_ value: PickleValue, _ what: String, _ place: String) throws(TorchError) -> [(key: String, value: PickleValue)] {
        guard let dict = TorchCheckpoint.dictionary(value) else {
            throw .notModule("\(place) has \(what) that is \(value.kindDescription), not a dict")
        }
        do { return try dict.uniqueStringKeyedEntries() ?? [] } catch { throw .notModule("\(place) \(what): \(error)") }
    }

    private static func tensors(_ value: PickleValue, prefix: String, what: String, place: String,
                                _ checkpoint: TorchCheckpoint,
                                _ declarations: inout [(name: String, dtype: DType, shape: [Int])]) throws(TorchError) -> [(name: String, tensor: Tensor?)] {
        var out: [(name: String, tensor: Tensor?)] = []
        for (key, entry) in try entries(value, what, place) {
            if entry == .none {
                out.append((key, nil))
                continue
            }
            do {
                let declared = try checkpoint.declaration(entry)
                declarations.append((key, declared.dtype, declared.shape))
                out.append((key, checkpoint.holdsData ? try checkpoint.tensor(entry) : nil))
            } catch { throw .inTensor(prefix + key, error) }
        }
        return out
    }
}
