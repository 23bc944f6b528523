/// A value read from a pickle, as data.
///
/// Calls and objects are records of what the pickle asks for; nothing in them has been run.
/// A few calls of plain containers are read as the containers they make (see `PickleMachine`):
/// `collections.OrderedDict()` is a `.dict`, `builtins.set(list)` and `builtins.frozenset(list)`
/// are `.set`, `_codecs.encode(str, "latin1")` and `builtins.bytearray(bytes)` are `.bytes`, but
/// only when the caller's policy allows those globals to appear at all.
///
/// A value that the pickle shares (a memo entry read twice) appears once at each place it is
/// used; the values share storage, so that costs no memory, and `PickleLimits.maxValues` bounds
/// the size of the tree as a walk would see it.
public indirect enum PickleValue: Equatable, Sendable {
    case none
    case bool(Bool)
    case int(Int64)
    /// An integer outside Int64: little-endian two's complement in the fewest bytes (LONG1's
    /// encoding), at most `PickleLimits.maxLongBytes`.
    case bigInt([UInt8])
    case float(Double)
    case string(String)
    /// Bytes; also Python 2 strings (STRING, BINSTRING) that are not UTF-8.
    case bytes([UInt8])
    case tuple([PickleValue])
    case list([PickleValue])
    /// A dict or OrderedDict: its entries in the order the pickle stored them. A key stored twice
    /// appears twice (Python would keep the last value in the first place); callers that need
    /// unique keys say so (`PickleValue.uniqueStringKeyedEntries`).
    case dict([PickleDictEntry])
    /// A set or frozenset, in the pickle's order.
    case set([PickleValue])
    /// A reference to a module-level name that the policy allowed, e.g. `torch._utils`, `_rebuild_tensor_v2`.
    case global(module: String, name: String)
    /// REDUCE, NEWOBJ, NEWOBJ_EX, INST or OBJ: `callee(*args)` as a record.
    case call(PickleValue, args: [PickleValue])
    /// BUILD: `base` given `state` (its `__setstate__` argument or `__dict__`).
    case object(PickleValue, state: PickleValue)
    /// A persistent id (PERSID, BINPERSID): what the pickler's `persistent_id` returned.
    case persistent(PickleValue)

    /// "module.name" of a global.
    public var globalName: String? {
        if case let .global(module, name) = self { return "\(module).\(name)" }
        return nil
    }

    /// The integer, if the value is an int (bool counts, as in Python).
    public var intValue: Int64? {
        switch self {
        case let .int(v): return v
        case let .bool(b): return b ? 1 : 0
        default: return nil
        }
    }

    /// The number, if the value is a float or an int.
    public var doubleValue: Double? {
        switch self {
        case let .float(v): return v
        case let .int(v): return Double(v)
        default: return nil
        }
    }

    /// The text, if the value is a str.
    public var stringValue: String? {
        if case let .string(s) = self { return s }
        return nil
    }

    /// The elements of a tuple or a list.
    public var elements: [PickleValue]? {
        switch self {
        case let .tuple(items), let .list(items): return items
        default: return nil
        }
    }

    /// The value stored under string key `key` in a dict (the last one, as in Python).
    public subscript(key: String) -> PickleValue? {
        guard case let .dict(entries) = self else { return nil }
        return entries.last { $0.key == .string(key) }?.value
    }

    /// A short description of the value's type for error messages: "an int", "a tuple of 3",
    /// "a call of torch._utils._rebuild_tensor_v2".
    public var kindDescription: String {
        switch self {
        case .none: return "None"
        case .bool: return "a bool"
        case .int, .bigInt: return "an int"
        case .float: return "a float"
        case .string: return "a str"
        case .bytes: return "bytes"
        case let .tuple(items): return "a tuple of \(items.count)"
        case let .list(items): return "a list of \(items.count)"
        case let .dict(entries): return "a dict of \(entries.count)"
        case .set: return "a set"
        case let .global(module, name): return "the global \(module).\(name)"
        case let .call(callee, _):
            if let name = callee.globalName { return "a call of \(name)" }
            return "a call"
        case let .object(base, _):
            if case let .call(callee, _) = base, let name = callee.globalName { return "an object of \(name)" }
            if case .call = base { return "an object" }
            return "\(base.kindDescription) with attributes"
        case .persistent: return "a persistent id"
        }
    }

    /// The entries of a dict whose keys are all strings, each key once; nil if the value is not
    /// a dict. Throws `PickleValueError` naming the first key that is not a string or repeats.
    public func uniqueStringKeyedEntries() throws(PickleValueError) -> [(key: String, value: PickleValue)]? {
        guard case let .dict(entries) = self else { return nil }
        var seen = Set<String>()
        var result: [(key: String, value: PickleValue)] = []
        result.reserveCapacity(entries.count)
        for entry in entries {
            guard case let .string(key) = entry.key else { throw PickleValueError.nonStringKey(entry.key.kindDescription) }
            guard seen.insert(key).inserted else { throw PickleValueError.duplicateKey(key) }
            result.append((key, entry.value))
        }
        return result
    }
}

/// One entry of a pickled dict.
public struct PickleDictEntry: Equatable, Sendable {
    public var key: PickleValue
    public var value: PickleValue
    public init(key: PickleValue, value: PickleValue) {
        self.key = key
        self.value = value
    }
}

/// Why a decoded value does not have the shape a caller asked for.
public enum PickleValueError: Error, Equatable, Sendable, CustomStringConvertible {
    case nonStringKey(String)
    case duplicateKey(String)

    public var description: String {
        switch self {
        case let .nonStringKey(kind): return "a dict key is \(kind), not a str"
        case let .duplicateKey(key): return "duplicate key '\(PickleError.oneLine(key))'"
        }
    }
}

extension PickleValue {
    /// The value written as Python would show it, shortened past `limit` characters:
    /// `(3, 3)`, `'zeros'`, `True`, `torch.float32`, `OrderedDict(...)` for a call.
    public func pythonText(limit: Int = 200) -> String {
        var out = ""
        func write(_ v: PickleValue) {
            guard out.count <= limit else { return }
            func items(_ open: String, _ values: [PickleValue], _ close: String) {
                out += open
                for (i, item) in values.enumerated() {
                    if i > 0 { out += ", " }
                    write(item)
                }
                if open == "(" && values.count == 1 { out += "," }
                out += close
            }
            switch v {
            case .none: out += "None"
            case let .bool(b): out += b ? "True" : "False"
            case let .int(n): out += String(n)
            case .bigInt: out += "<int>"
            case let .float(d): out += String(d)
            case let .string(s): out += "'" + PickleError.oneLine(s) + "'"
            case let .bytes(b): out += "<\(b.count) bytes>"
            case let .tuple(values): items("(", values, ")")
            case let .list(values): items("[", values, "]")
            case let .set(values): items("{", values, "}")
            case let .dict(entries): out += "{\(entries.count) entries}"
            case let .global(module, name): out += "\(module).\(name)"
            case let .call(callee, _): out += "\(callee.globalName ?? "call")(...)"
            case let .object(base, _): write(base)
            case .persistent: out += "<persistent id>"
            }
        }
        write(self)
        return out.count > limit ? String(out.prefix(limit)) + "..." : out
    }
}
