import NNCore
import NNPickle

/// torch.save's format before the zip (`_use_new_zipfile_serialization=False`, and every file
/// written by torch before 1.6), read from one buffer:
///
/// 1. a pickle of the magic number 0x1950a86a20f9469cfc6c,
/// 2. a pickle of the format version, 1001,
/// 3. a pickle of the writer's `sys_info` dict (not needed: the data is little-endian whatever
///    machine wrote it, as torch writes and reads it),
/// 4. the main pickle, whose storage persistent ids are
///    `('storage', <type>, key, location, numel, view_metadata)`,
/// 5. a pickle of the list of storage keys,
/// 6. for each key in that order, a little-endian u64 element count and the storage's bytes.
///
/// Every count is checked against the declaration in the main pickle and against the bytes that
/// remain before it is used. The storages are ranges of the buffer, so contiguous tensors use the
/// file's bytes in place.
public enum TorchLegacyFile {
    /// The magic number's pickled form as LONG1 stores it: 10 little-endian bytes.
    public static let magicNumber: [UInt8] = [0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19]
    /// The only version of the format there is.
    public static let formatVersion: Int64 = 1001

    /// Whether `prefix` starts like a legacy file: the magic number pickled with protocol 2 or
    /// higher (`\x80 <proto> \x8a \x0a <10 bytes>`), as torch always wrote it.
    public static func isLegacy(_ prefix: UnsafeRawBufferPointer) -> Bool {
        prefix.count >= 14 && prefix[0] == 0x80 && prefix[1] >= 2 && prefix[2] == 0x8A && prefix[3] == 10
            && prefix[4..<14].elementsEqual(magicNumber)
    }

    /// A checkpoint from the bytes of a legacy file (heap-copied once).
    public static func parse(bytes: [UInt8], mode: TorchCheckpoint.Mode = .stateDict,
                             limits: PickleLimits = .default) throws(TorchError) -> TorchCheckpoint {
        try parse(TorchStorageBytes(copying: bytes), mode: mode, limits: limits)
    }

    /// A checkpoint from a legacy file in memory (e.g. mapped); its tensors point into `file`.
    public static func parse(_ file: TorchStorageBytes, mode: TorchCheckpoint.Mode = .stateDict,
                             limits: PickleLimits = .default) throws(TorchError) -> TorchCheckpoint {
        let raw = file.bytes
        let pickles = try Self.pickles(raw, mode: mode, limits: limits)
        let layout = try storageLayout(pickles, fileSize: raw.count) { position throws(TorchError) in
            raw[position..<(position + 8)].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        }
        var storages: [String: TorchStorageBytes] = [:]
        for (key, place) in layout {
            storages[key] = TorchStorageBytes(storage: file.storage, byteOffset: file.byteOffset + place.offset, byteCount: place.byteCount)
        }
        return try TorchCheckpoint(root: pickles.main, storages: TorchStorageDictionary(storages))
    }

    /// A checkpoint of a legacy file of `fileSize` bytes whose storages are checked where they
    /// lie but not read (`TorchCheckpoint(root:declaredStorages:)`): what `nnconv inspect` lists.
    /// `read(offset, count)` returns bytes of the file: the pickles come from a prefix that
    /// doubles from 64 KiB until they parse, and each storage's 8-byte element count is read at
    /// its place.
    public static func declarations(fileSize: Int, mode: TorchCheckpoint.Mode = .stateDict, limits: PickleLimits = .default,
                                    read: (_ offset: Int, _ count: Int) throws -> [UInt8]) throws -> TorchCheckpoint {
        var prefixLength = min(fileSize, 1 << 16)
        var pickles: Pickles
        while true {
            let prefix = try read(0, prefixLength)
            do {
                pickles = try prefix.withUnsafeBytes { raw throws(TorchError) in try Self.pickles(raw, mode: mode, limits: limits) }
                break
            } catch {
                // A prefix that ends inside a pickle fails like a truncated file: read more.
                guard prefixLength < fileSize else { throw error }
                prefixLength = min(fileSize, prefixLength * 2)
            }
        }
        var readError: (any Error)?
        let layout: [String: (offset: Int, byteCount: Int)]
        do {
            layout = try storageLayout(pickles, fileSize: fileSize) { position throws(TorchError) in
                do {
                    return try read(position, 8).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                } catch {
                    readError = error
                    throw .malformed("the element count at byte \(position) cannot be read")
                }
            }
        } catch {
            throw readError ?? error
        }
        let sizes = layout.mapValues(\.byteCount)
        return try TorchCheckpoint(root: pickles.main, declaredStorages: TorchStorageClosures(
            byteCount: { key in guard let n = sizes[key] else { throw TorchStorageMissing(key: key) }; return n },
            bytes: { key in throw TorchStorageMissing(key: key) }))
    }

    /// The pickles of a legacy file: the main one and the storage keys, and where the storages
    /// begin.
    struct Pickles {
        var main: PickleValue
        var keys: [PickleValue]
        var storagesStart: Int
    }

    static func pickles(_ raw: UnsafeRawBufferPointer, mode: TorchCheckpoint.Mode, limits: PickleLimits) throws(TorchError) -> Pickles {
        if raw.count >= 262 && raw[257..<262].elementsEqual("ustar".utf8) {
            throw .unsupported("the file is torch's oldest format, a tar archive, which is not read; load and save it again with a newer torch")
        }
        func header(_ start: Int, _ what: String) throws(TorchError) -> (value: PickleValue, end: Int) {
            do { return try PickleMachine.load(raw, from: start, policy: .nothing, limits: limits) } catch {
                throw .notLegacyFormat("the \(what) pickle: \(error)")
            }
        }
        let magic = try header(0, "magic number")
        guard magic.value == .bigInt(magicNumber) else {
            throw .notLegacyFormat("it starts with \(magic.value.kindDescription), not torch's magic number")
        }
        let version = try header(magic.end, "format version")
        guard version.value == .int(formatVersion) else {
            if case let .int(other) = version.value { throw .unsupported("legacy torch format version \(other); only \(formatVersion) exists") }
            throw .notLegacyFormat("the format version is \(version.value.kindDescription)")
        }
        let sysInfo = try header(version.end, "sys_info")
        guard case .dict = sysInfo.value else { throw .notLegacyFormat("sys_info is \(sysInfo.value.kindDescription), not a dict") }

        let main = try TorchCheckpoint.parse(raw, from: sysInfo.end, mode: mode, limits: limits)
        let keysPickle = try header(main.end, "storage keys")
        guard let keyValues = keysPickle.value.elements else {
            throw .malformed("the storage key list is \(keysPickle.value.kindDescription)")
        }
        return Pickles(main: main.value, keys: keyValues, storagesStart: keysPickle.end)
    }

    /// Where each storage's bytes lie, walking the storages in the key list's order: each
    /// element count (`countAt(position)`, 8 bytes that lie within the file) checked against the
    /// main pickle's declaration, each storage within the file's `fileSize` bytes.
    static func storageLayout(_ pickles: Pickles, fileSize: Int,
                              countAt: (Int) throws(TorchError) -> UInt64) throws(TorchError) -> [String: (offset: Int, byteCount: Int)] {
        var declared: [String: TorchStorageRecord] = [:]
        for record in try TorchStorageReference.records(in: pickles.main) { declared[record.key] = record }
        var layout: [String: (offset: Int, byteCount: Int)] = [:]
        var position = pickles.storagesStart
        for keyValue in pickles.keys {
            guard let key = keyValue.stringValue else { throw .malformed("a storage key that is \(keyValue.kindDescription)") }
            let shown = PickleError.oneLine(key)
            guard let record = declared[key] else { throw .malformed("storage '\(shown)' is stored but no tensor refers to it") }
            guard layout[key] == nil else { throw .malformed("storage '\(shown)' is stored twice") }
            guard fileSize - position >= 8 else {
                throw .malformed("the element count of storage '\(shown)' at byte \(position) needs 8 bytes, \(fileSize - position) remain")
            }
            let count = try countAt(position)
            guard count == UInt64(record.elementCount) else {
                throw .malformed("storage '\(shown)' at byte \(position) holds \(count) elements, but the pickle declares \(record.declaration)")
            }
            position += 8
            guard record.byteCount <= fileSize - position else {
                throw .malformed("the data of storage '\(shown)' at byte \(position) needs \(record.byteCount) bytes, \(fileSize - position) remain")
            }
            layout[key] = (position, record.byteCount)
            position += record.byteCount
        }
        return layout
    }
}
