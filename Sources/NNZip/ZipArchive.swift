import Glibc
import NNCore
import NNSystem
import NNCompression

// MARK: - Errors

/// Why a zip archive (an `.npz`, a `.keras`) could not be read or written.
///
/// Every message is one line that starts with the archive's path, so a command-line tool can
/// print it as it is.
public enum ZipError: Error, Equatable, CustomStringConvertible, Sendable {
    /// Opening or reading the file failed (missing, unreadable, not a regular file, an I/O
    /// error): the system's error, with its errno.
    case system(SystemError)
    /// Reading stopped part way for a reason that is not the system's (the file changed while
    /// it was read, or a limit).
    case readFailed(path: String, reason: String)
    /// The archive's structure is damaged or inconsistent; `reason` says where.
    case corrupt(path: String, reason: String)
    /// Two central-directory entries carry the same name, so a lookup by name would be ambiguous.
    case duplicateMember(path: String, member: String)
    /// No member has this name.
    case memberNotFound(path: String, member: String)
    /// The member is encrypted (general-purpose flag bit 0).
    case encrypted(path: String, member: String)
    /// The member uses a compression method other than stored (0) or deflate (8).
    case unsupportedMethod(path: String, member: String, method: UInt16)
    /// The member's declared uncompressed size is larger than the caller allows.
    case memberTooLarge(path: String, member: String, size: Int, limit: Int)
    /// The member's data does not decompress to its declared size; `actual` is nil when it
    /// produced more (reading stopped at the declared size).
    case sizeMismatch(path: String, member: String, declared: Int, actual: Int?)
    /// The member's bytes do not match the CRC-32 in the central directory.
    case crcMismatch(path: String, member: String)
    /// The member's compressed data is damaged; `reason` says how.
    case corruptMemberData(path: String, member: String, reason: String)
    /// A name given to `ZipWriter` cannot be stored.
    case invalidMemberName(path: String, member: String, reason: String)

    /// The one-line message, starting with the archive's path.
    public var description: String {
        switch self {
        case let .system(error):
            return error.description
        case let .readFailed(path, reason):
            return "\(path): read failed: \(reason)"
        case let .corrupt(path, reason):
            return "\(path): corrupt zip: \(reason)"
        case let .duplicateMember(path, member):
            return "\(path): corrupt zip: the member name '\(member)' appears more than once"
        case let .memberNotFound(path, member):
            return "\(path): no member named '\(member)'"
        case let .encrypted(path, member):
            return "\(path): member '\(member)' is encrypted, which is not supported"
        case let .unsupportedMethod(path, member, method):
            return "\(path): member '\(member)' uses compression method \(ZipMethod(rawValue: method)), which is not supported"
        case let .memberTooLarge(path, member, size, limit):
            return "\(path): member '\(member)' is \(size) bytes uncompressed, more than the limit of \(limit) bytes"
        case let .sizeMismatch(path, member, declared, actual):
            if let actual {
                return "\(path): member '\(member)' decompresses to \(actual) bytes, not its declared \(declared)"
            }
            return "\(path): member '\(member)' decompresses to more than its declared \(declared) bytes"
        case let .crcMismatch(path, member):
            return "\(path): member '\(member)' fails its CRC-32 check"
        case let .corruptMemberData(path, member, reason):
            return "\(path): member '\(member)': \(reason)"
        case let .invalidMemberName(path, member, reason):
            return "\(path): cannot store member '\(member)': \(reason)"
        }
    }
}

// MARK: - Entries

/// A zip compression method, by its number in the zip specification (APPNOTE 4.4.5).
public struct ZipMethod: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The method number as stored in zip headers.
    public let rawValue: UInt16

    /// The method with this number (any value; `isSupported` tells whether it can be read).
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// No compression.
    public static let stored = ZipMethod(rawValue: 0)
    /// Raw deflate (RFC 1951), what `np.savez_compressed` and most zip tools write.
    public static let deflate = ZipMethod(rawValue: 8)

    /// Whether this reader can decode the method.
    public var isSupported: Bool { self == .stored || self == .deflate }

    /// The method's common name, if it has one.
    public var name: String? {
        switch rawValue {
        case 0: return "stored"
        case 1: return "shrink"
        case 2, 3, 4, 5: return "reduce"
        case 6: return "implode"
        case 8: return "deflate"
        case 9: return "deflate64"
        case 10: return "PKWARE DCL implode"
        case 12: return "bzip2"
        case 14: return "lzma"
        case 18: return "IBM TERSE"
        case 19: return "IBM LZ77"
        case 93: return "zstandard"
        case 95: return "xz"
        case 96: return "jpeg"
        case 97: return "wavpack"
        case 98: return "ppmd"
        case 99: return "AES encryption"
        default: return nil
        }
    }

    /// "12 (bzip2)", or just the number for methods without a name.
    public var description: String {
        name.map { "\(rawValue) (\($0))" } ?? "\(rawValue)"
    }
}

/// One member as the central directory describes it.
///
/// Sizes and the CRC always come from the central directory (with its Zip64 extra field), never
/// from the local header: `np.savez` writes local headers with 0xFFFFFFFF sizes and Zip64 extras,
/// and writers that stream use data descriptors, so only the central directory is reliable.
public struct ZipEntry: Sendable, Equatable {
    /// The member's name, decoded as UTF-8 (flag bit 11 or plain ASCII) or code page 437.
    public let name: String
    /// How the data is compressed.
    public let method: ZipMethod
    /// The general-purpose bit flags.
    public let flags: UInt16
    /// The CRC-32 of the uncompressed data, checked whenever the member is read.
    public let crc32: UInt32
    /// The size of the data as stored in the file.
    public let compressedSize: Int
    /// The size of the data once decompressed; reading never produces more.
    public let uncompressedSize: Int
    /// Where the member's local header starts in the file.
    public let localHeaderOffset: Int
    /// The name exactly as stored, to compare with the local header's copy.
    let rawName: [UInt8]

    /// Whether the entry names a directory rather than a file.
    public var isDirectory: Bool { name.hasSuffix("/") }
    /// Whether the member is encrypted (flag bit 0); such members are never read.
    public var isEncrypted: Bool { flags & 1 != 0 }
}

/// Bounds on what an archive may make the reader allocate, checked before allocating.
public struct ZipLimits: Sendable {
    /// The most central-directory entries accepted.
    public var maxEntries: Int
    /// The longest member name accepted, in bytes.
    public var maxNameBytes: Int
    /// The largest central directory read into memory.
    public var maxCentralDirectoryBytes: Int

    /// Limits with defaults far above any real weight archive.
    public init(maxEntries: Int = 100_000, maxNameBytes: Int = 4096,
                maxCentralDirectoryBytes: Int = 64 << 20) {
        self.maxEntries = maxEntries
        self.maxNameBytes = maxNameBytes
        self.maxCentralDirectoryBytes = maxCentralDirectoryBytes
    }

    /// The default limits.
    public static let `default` = ZipLimits()
}

// MARK: - Archive

/// A zip archive opened for reading: its central directory is parsed and validated when it is
/// opened, and members are read on demand with `pread`, so nothing but the directory is held in
/// memory.
///
/// Safe to share between threads: the descriptor is only used with `pread`, which has no shared
/// file position, and everything else is immutable.
public final class ZipArchive: @unchecked Sendable {
    /// The name messages start with (the path unless a display name was given).
    public let path: String
    /// The members in central-directory order.
    public let entries: [ZipEntry]
    /// The archive's size in bytes.
    public let fileSize: Int
    /// Where the central directory starts; member data must lie before it.
    let centralDirectoryOffset: Int
    private let file: FileByteSource
    private let index: [String: Int]

    /// Opens `path` and reads its central directory.
    ///
    /// - Parameter displayName: the name errors start with; `path` when nil.
    public init(path: String, displayName: String? = nil, limits: ZipLimits = .default) throws {
        let name = displayName ?? path
        do {
            file = try FileByteSource(path: path, displayName: name)
        } catch let error as CompressionError {
            throw ZipArchive.translate(error, path: name, member: nil)
        }
        guard let size = file.fileSize else {
            throw ZipError.system(SystemError(path: name, operation: .open, errno: .isDirectory, detail: "not a regular file"))
        }
        self.path = name
        self.fileSize = size
        let directory = try ZipArchive.readCentralDirectory(file: file, path: name, size: size, limits: limits)
        entries = directory.entries
        centralDirectoryOffset = directory.offset
        var index: [String: Int] = [:]
        for (i, entry) in entries.enumerated() { index[entry.name] = i }
        self.index = index
    }

    /// Whether `head`, a file's first bytes, starts like a zip archive (a local file header, or
    /// the end record of an empty archive).
    public static func hasMagic(_ head: [UInt8]) -> Bool {
        head.count >= 4 && (head[0..<4] == [0x50, 0x4B, 0x03, 0x04] || head[0..<4] == [0x50, 0x4B, 0x05, 0x06])
    }

    /// The member called `name`, if there is one.
    public func entry(named name: String) -> ZipEntry? {
        index[name].map { entries[$0] }
    }

    /// Opens a member for streaming; the reader verifies the size and CRC-32 as the last byte
    /// is delivered.
    ///
    /// - Parameter maxBytes: the largest declared uncompressed size accepted.
    public func openMember(_ entry: ZipEntry, maxBytes: Int = Int.max) throws -> ZipMemberReader {
        if entry.isEncrypted { throw ZipError.encrypted(path: path, member: entry.name) }
        guard entry.method.isSupported else {
            throw ZipError.unsupportedMethod(path: path, member: entry.name, method: entry.method.rawValue)
        }
        if entry.uncompressedSize > maxBytes {
            throw ZipError.memberTooLarge(path: path, member: entry.name, size: entry.uncompressedSize, limit: maxBytes)
        }
        // Deflate cannot expand data more than 1032:1 (a 258-byte match in two bits), so a
        // larger claim is a lie that must not size an allocation.
        if entry.method == .deflate {
            let (most, overflow) = entry.compressedSize.multipliedReportingOverflow(by: 1032)
            if !overflow && entry.uncompressedSize > most + 1024 {
                throw ZipError.corrupt(path: path, reason: "member '\(entry.name)' claims \(entry.uncompressedSize) bytes from \(entry.compressedSize) compressed bytes, more than deflate can produce")
            }
        }
        let start = try dataOffset(of: entry)
        let range = FileByteSource(descriptor: file.descriptor, name: path, offset: start, length: entry.compressedSize)
        return try ZipMemberReader(archive: self, owner: file, entry: entry, range: range)
    }

    /// The member's bytes, CRC-checked.
    ///
    /// One allocation of exactly the declared size; the data is read (or inflated) straight into
    /// it, and inflation stops at the declared size, so a member that claims to be small but
    /// inflates to gigabytes costs no more than its claim.
    public func read(_ entry: ZipEntry, maxBytes: Int = Int.max) throws -> [UInt8] {
        let reader = try openMember(entry, maxBytes: maxBytes)
        return try [UInt8](unsafeUninitializedCapacity: entry.uncompressedSize) { buffer, count in
            count = 0
            count = try reader.read(into: UnsafeMutableRawBufferPointer(buffer))
            try reader.finish()
        }
    }

    /// The bytes of the member called `name`, CRC-checked.
    public func read(named name: String, maxBytes: Int = Int.max) throws -> [UInt8] {
        guard let entry = entry(named: name) else { throw ZipError.memberNotFound(path: path, member: name) }
        return try read(entry, maxBytes: maxBytes)
    }

    /// Copies a member into a file (for libraries that need a path, such as HDF5 for the
    /// `model.weights.h5` inside a `.keras` archive), atomically and in bounded memory.
    public func extract(_ entry: ZipEntry, to destination: String, maxBytes: Int = Int.max) throws {
        let reader = try openMember(entry, maxBytes: maxBytes)
        let writer = try AtomicFileWriter(path: destination)
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 64)
        defer { chunk.deallocate() }
        while true {
            let n = try reader.read(into: chunk)
            if n == 0 { break }
            try writer.write(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(chunk)[0..<n]))
        }
        try reader.finish()
        try writer.commit()
    }

    /// Where the member's data starts, after checking its local header against the central
    /// directory.
    private func dataOffset(of entry: ZipEntry) throws -> Int {
        let header = try readBytes(at: entry.localHeaderOffset, count: 30)
        guard header.count == 30, zipLoad32(header, 0) == ZipSignature.localHeader else {
            throw ZipError.corrupt(path: path, reason: "member '\(entry.name)' has no valid local header at offset \(entry.localHeaderOffset)")
        }
        let nameLength = Int(zipLoad16(header, 26))
        let extraLength = Int(zipLoad16(header, 28))
        let nameOffset = entry.localHeaderOffset + 30
        let storedName = try readBytes(at: nameOffset, count: nameLength)
        guard storedName == entry.rawName else {
            throw ZipError.corrupt(path: path, reason: "the local header of member '\(entry.name)' names a different member")
        }
        let start = nameOffset + nameLength + extraLength
        let (end, overflow) = start.addingReportingOverflow(entry.compressedSize)
        if overflow || end > fileSize {
            throw ZipError.corrupt(path: path, reason: "the data of member '\(entry.name)' lies outside the file")
        }
        if end > centralDirectoryOffset {
            throw ZipError.corrupt(path: path, reason: "the data of member '\(entry.name)' runs into the central directory")
        }
        return start
    }

    private func readBytes(at offset: Int, count: Int) throws -> [UInt8] {
        do {
            return try file.readBytes(atOffset: offset, count: count)
        } catch let error as CompressionError {
            throw ZipArchive.translate(error, path: path, member: nil)
        }
    }

    /// Turns NNCompression's errors into zip errors that name the member.
    static func translate(_ error: CompressionError, path: String, member: String?) -> ZipError {
        switch error {
        case var .system(error):
            error.path = path
            return .system(error)
        case let .truncated(_, _, compressedBytes):
            return .corruptMemberData(path: path, member: member ?? "?",
                                      reason: "its deflate data ends after \(compressedBytes) compressed bytes, before the end of the stream")
        case let .corrupt(_, _, message):
            return .corruptMemberData(path: path, member: member ?? "?", reason: "corrupt deflate data: \(message)")
        case .trailingGarbage:
            return .corruptMemberData(path: path, member: member ?? "?", reason: "unexpected bytes follow the end of its deflate data")
        case .tooLarge, .outOfMemory, .zlibFailure:
            let text = error.description
            let detail = text.hasPrefix(path + ": ") ? String(text.dropFirst(path.count + 2)) : text
            if let member { return .corruptMemberData(path: path, member: member, reason: detail) }
            return .readFailed(path: path, reason: detail)
        }
    }
}

// MARK: - Reading the central directory

/// Record signatures (APPNOTE 4.3).
enum ZipSignature {
    static let localHeader: UInt32 = 0x0403_4b50
    static let centralHeader: UInt32 = 0x0201_4b50
    static let endOfCentralDirectory: UInt32 = 0x0605_4b50
    static let zip64EndOfCentralDirectory: UInt32 = 0x0606_4b50
    static let zip64Locator: UInt32 = 0x0706_4b50
}

@inline(__always)
package func zipLoad16(_ bytes: [UInt8], _ offset: Int) -> UInt16 {
    UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8
}

@inline(__always)
package func zipLoad32(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
    UInt32(zipLoad16(bytes, offset)) | UInt32(zipLoad16(bytes, offset + 2)) << 16
}

@inline(__always)
package func zipLoad64(_ bytes: [UInt8], _ offset: Int) -> UInt64 {
    UInt64(zipLoad32(bytes, offset)) | UInt64(zipLoad32(bytes, offset + 4)) << 32
}

/// A 64-bit size or offset from the file as an Int, or nil if it cannot be one.
@inline(__always)
private func zipInt(_ value: UInt64) -> Int? {
    value <= UInt64(Int.max) ? Int(value) : nil
}

extension ZipArchive {
    /// The end-of-central-directory record is 22 bytes plus a comment of up to 65,535 bytes.
    static let maximumEndRecordSearch = 22 + 65_535

    private static func readCentralDirectory(file: FileByteSource, path: String, size: Int,
                                             limits: ZipLimits) throws -> (entries: [ZipEntry], offset: Int) {
        func read(_ offset: Int, _ count: Int) throws -> [UInt8] {
            do {
                let bytes = try file.readBytes(atOffset: offset, count: count)
                if bytes.count < count {
                    throw ZipError.readFailed(path: path, reason: "the file ended early (was it changed while being read?)")
                }
                return bytes
            } catch let error as CompressionError {
                throw translate(error, path: path, member: nil)
            }
        }
        func corrupt(_ reason: String) -> ZipError { .corrupt(path: path, reason: reason) }

        // The record is found by scanning back from the end, as its start is not recorded
        // anywhere; the last signature whose comment fits in the file wins, so a signature
        // that happens to occur inside a comment does not.
        let tailLength = min(size, maximumEndRecordSearch)
        let tailStart = size - tailLength
        let tail = try read(tailStart, tailLength)
        var found: Int? = nil
        if tailLength >= 22 {
            var i = tailLength - 22
            while i >= 0 {
                if tail[i] == 0x50 && tail[i + 1] == 0x4b && tail[i + 2] == 0x05 && tail[i + 3] == 0x06
                    && i + 22 + Int(zipLoad16(tail, i + 20)) <= tailLength {
                    found = i
                    break
                }
                i -= 1
            }
        }
        guard let eocdInTail = found else {
            throw corrupt("no end-of-central-directory record (the file is truncated or is not a zip archive)")
        }
        let eocdOffset = tailStart + eocdInTail
        let eocd = Array(tail[eocdInTail..<(eocdInTail + 22)])
        let diskNumber = zipLoad16(eocd, 4)
        let directoryDisk = zipLoad16(eocd, 6)
        var entriesOnDisk = UInt64(zipLoad16(eocd, 8))
        var entryCount = UInt64(zipLoad16(eocd, 10))
        var directorySize = UInt64(zipLoad32(eocd, 12))
        var directoryOffset = UInt64(zipLoad32(eocd, 16))
        // The central directory must end before this: the EOCD, or the Zip64 record before it.
        var directoryLimit = eocdOffset

        // A Zip64 locator sits immediately before the EOCD when the archive has one.
        if eocdOffset >= 20 {
            let locator = try read(eocdOffset - 20, 20)
            if zipLoad32(locator, 0) == ZipSignature.zip64Locator {
                guard zipLoad32(locator, 4) == 0, zipLoad32(locator, 16) <= 1 else {
                    throw corrupt("the archive spans several disks, which is not supported")
                }
                guard let recordOffset = zipInt(zipLoad64(locator, 8)),
                      recordOffset <= eocdOffset - 20 - 56 else {
                    throw corrupt("the Zip64 end-of-central-directory record lies outside the file")
                }
                let record = try read(recordOffset, 56)
                guard zipLoad32(record, 0) == ZipSignature.zip64EndOfCentralDirectory else {
                    throw corrupt("the Zip64 end-of-central-directory record has a bad signature")
                }
                guard zipLoad64(record, 4) >= 44 else {
                    throw corrupt("the Zip64 end-of-central-directory record is too short")
                }
                guard zipLoad32(record, 16) == 0, zipLoad32(record, 20) == 0 else {
                    throw corrupt("the archive spans several disks, which is not supported")
                }
                entriesOnDisk = zipLoad64(record, 24)
                entryCount = zipLoad64(record, 32)
                directorySize = zipLoad64(record, 40)
                directoryOffset = zipLoad64(record, 48)
                directoryLimit = recordOffset
            } else if diskNumber != 0 || directoryDisk != 0 {
                throw corrupt("the archive spans several disks, which is not supported")
            }
        } else if diskNumber != 0 || directoryDisk != 0 {
            throw corrupt("the archive spans several disks, which is not supported")
        }

        guard entriesOnDisk == entryCount else {
            throw corrupt("the end-of-central-directory record counts \(entriesOnDisk) entries on this disk but \(entryCount) in all")
        }
        guard let cdOffset = zipInt(directoryOffset), let cdSize = zipInt(directorySize),
              case let (cdEnd, overflow) = cdOffset.addingReportingOverflow(cdSize), !overflow, cdEnd <= size else {
            throw corrupt("the central directory lies outside the file")
        }
        guard cdEnd <= directoryLimit else {
            throw corrupt("the central directory overlaps the end-of-central-directory record")
        }
        guard entryCount <= UInt64(limits.maxEntries) else {
            throw corrupt("the archive claims \(entryCount) entries, more than the limit of \(limits.maxEntries)")
        }
        let count = Int(entryCount)
        // Every entry takes at least 46 bytes, so a count the directory cannot hold is a lie
        // that must not size any allocation.
        guard count <= cdSize / 46 else {
            throw corrupt("the central directory (\(cdSize) bytes) is too small for \(count) entries")
        }
        guard cdSize <= limits.maxCentralDirectoryBytes else {
            throw corrupt("the central directory is \(cdSize) bytes, more than the limit of \(limits.maxCentralDirectoryBytes)")
        }

        let directory = try read(cdOffset, cdSize)
        var entries: [ZipEntry] = []
        entries.reserveCapacity(count)
        var seen = Set<String>()
        var position = 0
        for number in stride(from: 1, through: count, by: 1) {
            guard position + 46 <= cdSize else {
                throw corrupt("central directory entry \(number) runs past the end of the central directory")
            }
            guard zipLoad32(directory, position) == ZipSignature.centralHeader else {
                throw corrupt("central directory entry \(number) has a bad signature")
            }
            let flags = zipLoad16(directory, position + 8)
            let method = zipLoad16(directory, position + 10)
            let crc = zipLoad32(directory, position + 16)
            var compressed = UInt64(zipLoad32(directory, position + 20))
            var uncompressed = UInt64(zipLoad32(directory, position + 24))
            let nameLength = Int(zipLoad16(directory, position + 28))
            let extraLength = Int(zipLoad16(directory, position + 30))
            let commentLength = Int(zipLoad16(directory, position + 32))
            let startDisk = zipLoad16(directory, position + 34)
            var localOffset = UInt64(zipLoad32(directory, position + 42))
            let recordEnd = position + 46 + nameLength + extraLength + commentLength
            guard recordEnd <= cdSize else {
                throw corrupt("central directory entry \(number) runs past the end of the central directory")
            }
            guard nameLength <= limits.maxNameBytes else {
                throw corrupt("the name of central directory entry \(number) is \(nameLength) bytes long, more than the limit of \(limits.maxNameBytes)")
            }
            let rawName = Array(directory[(position + 46)..<(position + 46 + nameLength)])
            guard let name = decodeZipName(rawName, utf8Flag: flags & 0x0800 != 0) else {
                throw corrupt("the name of central directory entry \(number) is not valid UTF-8")
            }
            guard !name.isEmpty, !rawName.contains(0) else {
                throw corrupt("central directory entry \(number) has an empty name or one containing NUL")
            }

            // Zip64 extra field: 64-bit values for exactly the fields that hold 0xFFFFFFFF, in
            // this order.
            let needUncompressed = uncompressed == 0xFFFF_FFFF
            let needCompressed = compressed == 0xFFFF_FFFF
            let needOffset = localOffset == 0xFFFF_FFFF
            if needUncompressed || needCompressed || needOffset {
                let extra = Array(directory[(position + 46 + nameLength)..<(position + 46 + nameLength + extraLength)])
                guard let zip64 = findZip64Extra(extra) else {
                    throw corrupt("member '\(name)' lacks the Zip64 extra field its sizes require")
                }
                var cursor = 0
                func next() throws -> UInt64 {
                    guard cursor + 8 <= zip64.count else {
                        throw corrupt("the Zip64 extra field of member '\(name)' is too short")
                    }
                    defer { cursor += 8 }
                    return zipLoad64(zip64, cursor)
                }
                if needUncompressed { uncompressed = try next() }
                if needCompressed { compressed = try next() }
                if needOffset { localOffset = try next() }
            }
            guard startDisk == 0 || startDisk == 0xFFFF else {
                throw corrupt("the archive spans several disks, which is not supported")
            }
            guard let compressedSize = zipInt(compressed), let uncompressedSize = zipInt(uncompressed),
                  let offset = zipInt(localOffset), cdOffset >= 30, offset <= cdOffset - 30 else {
                throw corrupt("member '\(name)' lies outside the file")
            }
            if method == ZipMethod.stored.rawValue && compressedSize != uncompressedSize {
                throw corrupt("member '\(name)' is stored, but its compressed size \(compressedSize) differs from its size \(uncompressedSize)")
            }
            guard seen.insert(name).inserted else {
                throw ZipError.duplicateMember(path: path, member: name)
            }
            entries.append(ZipEntry(name: name, method: ZipMethod(rawValue: method), flags: flags, crc32: crc,
                                    compressedSize: compressedSize, uncompressedSize: uncompressedSize,
                                    localHeaderOffset: offset, rawName: rawName))
            position = recordEnd
        }
        guard position == cdSize else {
            throw corrupt("the central directory holds \(cdSize - position) bytes beyond its \(count) entries")
        }
        try checkNoOverlap(entries, directoryOffset: cdOffset, corrupt: corrupt)
        return (entries, cdOffset)
    }

    /// Rejects members whose byte ranges overlap: legitimate writers never share data, while
    /// "overlapping file" zip bombs reuse one compressed block for many members.
    private static func checkNoOverlap(_ entries: [ZipEntry], directoryOffset: Int,
                                       corrupt: (String) -> ZipError) throws {
        // Ties keep directory order, so the message names the same pair every time.
        let ordered = entries.enumerated().sorted {
            ($0.element.localHeaderOffset, $0.offset) < ($1.element.localHeaderOffset, $1.offset)
        }.map(\.element)
        for (i, entry) in ordered.enumerated() {
            // The local extra field may differ from the central one, so only the header, the
            // name and the data are certain to be there.
            let (end, overflow) = (entry.localHeaderOffset + 30 + entry.rawName.count)
                .addingReportingOverflow(entry.compressedSize)
            let limit = i + 1 < ordered.count ? ordered[i + 1].localHeaderOffset : directoryOffset
            if overflow || end > limit {
                if i + 1 < ordered.count {
                    throw corrupt("members '\(entry.name)' and '\(ordered[i + 1].name)' overlap")
                }
                throw corrupt("the data of member '\(entry.name)' runs into the central directory")
            }
        }
    }

    /// The data of the Zip64 extended-information extra field (header ID 0x0001), if present.
    private static func findZip64Extra(_ extra: [UInt8]) -> [UInt8]? {
        var i = 0
        while i + 4 <= extra.count {
            let id = zipLoad16(extra, i)
            let length = Int(zipLoad16(extra, i + 2))
            let end = min(extra.count, i + 4 + length)
            if id == 0x0001 { return Array(extra[(i + 4)..<end]) }
            i += 4 + length
        }
        return nil
    }
}

/// A member name as text: UTF-8 when flag bit 11 says so or the name is plain ASCII (nil if the
/// flagged bytes are not UTF-8), else code page 437, the zip specification's default.
func decodeZipName(_ bytes: [UInt8], utf8Flag: Bool) -> String? {
    if utf8Flag || bytes.allSatisfy({ $0 < 0x80 }) {
        return String(validating: bytes, as: UTF8.self)
    }
    var scalars = String.UnicodeScalarView()
    for byte in bytes {
        if byte < 0x80 {
            scalars.append(Unicode.Scalar(byte))
        } else {
            scalars.append(codePage437High[Int(byte) - 0x80])
        }
    }
    return String(scalars)
}

/// Bytes 0x80-0xFF of code page 437.
private let codePage437High: [Unicode.Scalar] = Array(
    "ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐└┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\u{A0}"
        .unicodeScalars)

// MARK: - Reading a member

/// Streams one member's uncompressed bytes, never more than its declared size.
///
/// The CRC-32 is computed as the bytes pass and checked when the last declared byte has been
/// delivered; for deflate, the stream must also end exactly there. Stored data is read with
/// `pread` straight into the caller's buffer (in 1 MiB steps, so each step is checksummed while
/// still in cache).
public final class ZipMemberReader: ByteSource {
    /// "archive.npz: member 'W1.npy'", the name `ByteSource` errors use.
    public let name: String
    /// The member being read.
    public let entry: ZipEntry
    private let archivePath: String
    /// Keeps the archive's descriptor open while the member is read.
    private let owner: AnyObject
    private let source: any ByteSource
    private let inflater: InflateStream?
    private var checksum = CRC32()
    private var remaining: Int
    private var verified = false

    init(archive: ZipArchive, owner: AnyObject, entry: ZipEntry, range: FileByteSource) throws {
        self.archivePath = archive.path
        self.owner = owner
        self.entry = entry
        self.name = "\(archive.path): member '\(entry.name)'"
        self.remaining = entry.uncompressedSize
        if entry.method == .deflate {
            do {
                let stream = try InflateStream(source: range, format: .rawDeflate, name: name,
                                               inputChunkSize: max(1, min(entry.compressedSize, 1 << 16)))
                inflater = stream
                source = stream
            } catch let error as CompressionError {
                throw ZipArchive.translate(error, path: archive.path, member: entry.name)
            }
        } else {
            inflater = nil
            source = range
        }
    }

    /// Uncompressed bytes not yet delivered.
    public var bytesRemaining: Int { remaining }

    /// Fills `buffer` with the next bytes (short only at the member's end; 0 once it is over).
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        if remaining == 0 {
            try verify()
            return 0
        }
        let want = min(buffer.count, remaining)
        var got = 0
        while got < want {
            let step = min(want - got, 1 << 20)
            let piece = UnsafeMutableRawBufferPointer(rebasing: buffer[got..<(got + step)])
            let n: Int
            do {
                n = try source.read(into: piece)
            } catch let error as CompressionError {
                throw ZipArchive.translate(error, path: archivePath, member: entry.name)
            }
            checksum.update(UnsafeRawBufferPointer(rebasing: piece[0..<n]))
            got += n
            if n < step {
                let produced = entry.uncompressedSize - remaining + got
                if inflater != nil {
                    throw ZipError.sizeMismatch(path: archivePath, member: entry.name,
                                                declared: entry.uncompressedSize, actual: produced)
                }
                throw ZipError.readFailed(path: archivePath,
                                          reason: "the file ended inside member '\(entry.name)' (was it changed while being read?)")
            }
        }
        remaining -= got
        if remaining == 0 { try verify() }
        return got
    }

    /// Reads (and discards) whatever the caller has not, then checks the size and CRC-32.
    public func finish() throws {
        if remaining > 0 {
            let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: min(remaining, 1 << 16), alignment: 16)
            defer { scratch.deallocate() }
            while remaining > 0 {
                if try read(into: scratch) == 0 { break }
            }
        }
        try verify()
    }

    private func verify() throws {
        guard !verified else { return }
        if let inflater {
            // One byte past the declared size tells an honest stream from one that would keep
            // going (a bomb, or a lying header); no more than that is ever inflated.
            var probe: UInt8 = 0
            let extra: Int
            do {
                extra = try withUnsafeMutableBytes(of: &probe) { try inflater.read(into: $0) }
            } catch let error as CompressionError {
                throw ZipArchive.translate(error, path: archivePath, member: entry.name)
            }
            if extra > 0 {
                throw ZipError.sizeMismatch(path: archivePath, member: entry.name,
                                            declared: entry.uncompressedSize, actual: nil)
            }
        }
        guard checksum.value == entry.crc32 else {
            throw ZipError.crcMismatch(path: archivePath, member: entry.name)
        }
        verified = true
    }
}
