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

        var declared: [String: TorchStorageRecord] = [:]
        for record in try TorchStorageReference.records(in: main.value) { declared[record.key] = record }
        var storages: [String: TorchStorageBytes] = [:]
        var position = keysPickle.end
        for keyValue in keyValues {
            guard let key = keyValue.stringValue else { throw .malformed("a storage key that is \(keyValue.kindDescription)") }
            let shown = PickleError.oneLine(key)
            guard let record = declared[key] else { throw .malformed("storage '\(shown)' is stored but no tensor refers to it") }
            guard storages[key] == nil else { throw .malformed("storage '\(shown)' is stored twice") }
            guard raw.count - position >= 8 else {
                throw .malformed("the element count of storage '\(shown)' at byte \(position) needs 8 bytes, \(raw.count - position) remain")
            }
            var count: UInt64 = 0
            for byte in raw[position..<(position + 8)].reversed() { count = count << 8 | UInt64(byte) }
            guard count == UInt64(record.elementCount) else {
                throw .malformed("storage '\(shown)' at byte \(position) holds \(count) elements, but the pickle declares \(record.declaration)")
            }
            position += 8
            guard record.byteCount <= raw.count - position else {
                throw .malformed("the data of storage '\(shown)' at byte \(position) needs \(record.byteCount) bytes, \(raw.count - position) remain")
            }
            storages[key] = TorchStorageBytes(storage: file.storage, byteOffset: file.byteOffset + position, byteCount: record.byteCount)
            position += record.byteCount
        }
        return try TorchCheckpoint(root: main.value, storages: TorchStorageDictionary(storages))
    }
}
