import NNCore
import NNPickle

/// The bytes of one storage: a range of a `TensorStorage` (a mapped file, a zip member, a heap
/// copy). Tensors that are contiguous views of it point into it without a copy.
public struct TorchStorageBytes: Sendable {
    public let storage: TensorStorage
    public let byteOffset: Int
    public let byteCount: Int

    /// `byteOffset..<byteOffset + byteCount` must lie within `storage` (the provider's own
    /// arithmetic, not the file's, decides this).
    public init(storage: TensorStorage, byteOffset: Int = 0, byteCount: Int) {
        precondition(byteOffset >= 0 && byteCount >= 0 && byteCount <= storage.bytes.count - byteOffset,
                     "storage range outside its memory")
        self.storage = storage
        self.byteOffset = byteOffset
        self.byteCount = byteCount
    }

    /// A heap copy of `bytes`.
    public init(copying bytes: [UInt8]) {
        let storage = bytes.withUnsafeBytes { TensorStorage(copying: $0) }
        self.init(storage: storage, byteCount: bytes.count)
    }

    var bytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: storage.bytes[byteOffset..<(byteOffset + byteCount)])
    }
}

/// Where a checkpoint's storages come from. In torch's zip format storage `key` is the member
/// `<archive>/data/<key>`; in the legacy format it follows the pickles (`TorchLegacyFile`).
public protocol TorchStorageProvider {
    /// The size of storage `key` in bytes, without reading it; checked against the pickle first.
    func byteCount(ofStorage key: String) throws -> Int
    /// The bytes of storage `key`.
    func bytes(ofStorage key: String) throws -> TorchStorageBytes
}

/// Storages held in memory by key.
public struct TorchStorageDictionary: TorchStorageProvider, Sendable {
    public var storages: [String: TorchStorageBytes]

    public init(_ storages: [String: TorchStorageBytes]) {
        self.storages = storages
    }

    public func byteCount(ofStorage key: String) throws -> Int {
        try bytes(ofStorage: key).byteCount
    }

    public func bytes(ofStorage key: String) throws -> TorchStorageBytes {
        guard let bytes = storages[key] else { throw TorchStorageMissing(key: key) }
        return bytes
    }
}

/// A provider made of two closures, e.g. over a zip archive's directory and members.
public struct TorchStorageClosures: TorchStorageProvider {
    let count: (String) throws -> Int
    let read: (String) throws -> TorchStorageBytes

    public init(byteCount: @escaping (String) throws -> Int, bytes: @escaping (String) throws -> TorchStorageBytes) {
        self.count = byteCount
        self.read = bytes
    }

    public func byteCount(ofStorage key: String) throws -> Int { try count(key) }
    public func bytes(ofStorage key: String) throws -> TorchStorageBytes { try read(key) }
}

/// A `TorchStorageDictionary` has no storage of this key.
public struct TorchStorageMissing: Error, CustomStringConvertible, Sendable {
    public let key: String
    public init(key: String) { self.key = key }
    public var description: String { "the file has no storage '\(PickleError.oneLine(key))'" }
}

/// A storage as the pickle declares it: torch's persistent id
/// `('storage', <type>, key, location, numel[, view_metadata])`.
public struct TorchStorageRecord: Equatable, Sendable {
    public let key: String
    /// The storage class's name, e.g. "FloatStorage", "UntypedStorage".
    public let typeName: String
    /// The element type; nil for `UntypedStorage`, whose elements are bytes.
    public let dtype: DType?
    /// Elements of the storage (bytes for `UntypedStorage`).
    public let elementCount: Int
    /// `elementCount` times the element size, checked when the record was read.
    public let byteCount: Int

    public init(key: String, typeName: String, dtype: DType?, elementCount: Int, byteCount: Int) {
        self.key = key
        self.typeName = typeName
        self.dtype = dtype
        self.elementCount = elementCount
        self.byteCount = byteCount
    }

    /// Describes the declaration for size errors: "6 elements of FloatStorage (24 bytes)".
    var declaration: String { "\(elementCount) elements of \(typeName) (\(byteCount) bytes)" }
}

/// A persistent id that refers to a storage, and the part of it a tensor sees: legacy files could
/// name a view (`view_metadata = (view_key, offset, size)`, in elements); otherwise the whole.
struct TorchStorageReference {
    let record: TorchStorageRecord
    let viewOffset: Int
    let viewCount: Int

    /// Reads the persistent id's tuple; nil when it is another kind of persistent id ('module').
    init?(persistentID id: PickleValue) throws(TorchError) {
        guard case let .tuple(fields) = id, let kind = fields.first?.stringValue else {
            throw .malformed("a persistent id is \(id.kindDescription), not a ('storage', ...) tuple")
        }
        if kind == "module" { return nil }  // the legacy format's class references (whole models)
        guard kind == "storage" else { throw .malformed("a persistent id of kind '\(PickleError.oneLine(kind))'") }
        guard fields.count == 5 || fields.count == 6 else {
            throw .malformed("a storage persistent id of \(fields.count) fields (torch writes 5, or 6 in the legacy format)")
        }
        guard case let .global("torch", typeName) = fields[1], let entry = TorchAllowList.storageTypes[typeName] else {
            throw .malformed("a storage type that is \(fields[1].kindDescription), not a torch storage class")
        }
        let key: String
        switch fields[2] {
        case let .string(text): key = text
        case let .int(number): key = String(number)
        default: throw .malformed("a storage key that is \(fields[2].kindDescription)")
        }
        // Torch writes decimal numbers; a provider may turn keys into member or file names, so
        // nothing that could be a path gets through.
        guard !key.isEmpty, key.utf8.count <= 128,
              key.utf8.allSatisfy({ $0.isASCIIAlphanumeric || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") }) else {
            throw .malformed("storage key '\(PickleError.oneLine(String(key.prefix(128))))' is not a plain name (torch writes decimal numbers)")
        }
        guard case .string = fields[3] else { throw .malformed("storage '\(PickleError.oneLine(key))' has a location that is \(fields[3].kindDescription)") }
        guard case let .int(numel) = fields[4], numel >= 0, let count = Int(exactly: numel) else {
            throw .malformed("storage '\(PickleError.oneLine(key))' has an element count that is \(fields[4].kindDescription) or negative")
        }
        let size = entry?.size ?? 1
        guard case (let bytes, false) = count.multipliedReportingOverflow(by: size) else {
            throw .malformed("storage '\(PickleError.oneLine(key))' declares \(count) elements, too many to address")
        }
        record = TorchStorageRecord(key: key, typeName: typeName, dtype: entry, elementCount: count, byteCount: bytes)
        guard fields.count == 6, fields[5] != .none else {
            viewOffset = 0
            viewCount = count
            return
        }
        guard case let .tuple(view) = fields[5], view.count == 3,
              case let .int(offset) = view[1], case let .int(length) = view[2],
              offset >= 0, length >= 0, offset <= Int64(count), length <= Int64(count) - offset else {
            throw .malformed("storage '\(PickleError.oneLine(key))' has a view outside its \(count) elements")
        }
        viewOffset = Int(offset)
        viewCount = Int(length)
    }

    /// Every storage the value refers to, each key once in the order first met, without recursion.
    /// A key declared twice must be declared the same way.
    static func records(in root: PickleValue) throws(TorchError) -> [TorchStorageRecord] {
        var records: [TorchStorageRecord] = []
        var byKey: [String: TorchStorageRecord] = [:]
        var work = [root]
        while let value = work.popLast() {
            switch value {
            case let .persistent(id):
                guard let reference = try TorchStorageReference(persistentID: id) else { continue }
                let record = reference.record
                if let earlier = byKey[record.key] {
                    guard earlier == record else {
                        throw .malformed("storage '\(PickleError.oneLine(record.key))' is declared as \(earlier.declaration) and as \(record.declaration)")
                    }
                } else {
                    byKey[record.key] = record
                    records.append(record)
                }
            case let .tuple(items), let .list(items), let .set(items):
                work.append(contentsOf: items.reversed())
            case let .dict(entries):
                for entry in entries.reversed() { work.append(entry.value); work.append(entry.key) }
            case let .call(callee, args):
                work.append(contentsOf: args.reversed())
                work.append(callee)
            case let .object(base, state):
                work.append(state)
                work.append(base)
            case .none, .bool, .int, .bigInt, .float, .string, .bytes, .global:
                break
            }
        }
        return records
    }
}

private extension UInt8 {
    var isASCIIAlphanumeric: Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self) || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(self)
            || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(self)
    }
}
