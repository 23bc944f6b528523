import NNCore
import NNSystem
import NNCompression

/// Writes a zip archive atomically: members go to a temporary file beside the destination, and
/// `finish()` writes the central directory, fsyncs and renames, so readers only ever see the old
/// file or the complete new one.
///
/// Sizes and CRC-32s are computed before each member is written, so local headers carry the real
/// values (no data descriptors), and Zip64 records are added exactly when a size, an offset or
/// the entry count needs them (or always, with `forceZip64`). Timestamps are fixed at
/// 1980-01-01 00:00, the earliest zip time, so the same input always gives the same bytes.
///
///     let zip = try ZipWriter(path: "model.npz")
///     try zip.addMember(name: "W1.npy", bytes: npyBytes)
///     try zip.finish()
public final class ZipWriter {
    /// The destination.
    public let path: String
    private let file: AtomicFileWriter
    private let forceZip64: Bool
    private var offset = 0
    private var centralDirectory: [UInt8] = []
    private var count = 0
    private var names = Set<String>()
    private var finished = false

    /// Starts a new archive at `path` (nothing appears there until `finish()`).
    ///
    /// - Parameter forceZip64: write Zip64 extra fields and end records even when the archive
    ///   does not need them (as `zipfile`'s `force_zip64` does for local headers).
    public init(path: String, forceZip64: Bool = false) throws {
        self.path = path
        self.file = try AtomicFileWriter(path: path)
        self.forceZip64 = forceZip64
    }

    /// Adds a member whose content is `parts` one after another (an `.npy` header and the tensor
    /// bytes, say), without joining them in memory first.
    ///
    /// With `.deflate`, the compressed data is built in memory before it is written, because the
    /// local header that precedes it must hold its size.
    ///
    /// - Parameters:
    ///   - name: the member's name; not empty, no NUL, no leading "/", no ".." component, at most
    ///     65,535 bytes of UTF-8, and not used before in this archive.
    ///   - method: `.stored` or `.deflate`; other methods throw `ZipError.unsupportedMethod`.
    ///   - level: deflate level 0-9, or -1 for zlib's default.
    public func addMember(name: String, parts: [UnsafeRawBufferPointer], method: ZipMethod = .stored,
                          level: Int = -1) throws {
        precondition(!finished, "addMember after finish")
        guard method == .stored || method == .deflate else {
            throw ZipError.unsupportedMethod(path: path, member: name, method: method.rawValue)
        }
        try validate(name)

        var crc = CRC32()
        var size = 0
        for part in parts {
            crc.update(part)
            size += part.count
        }
        var compressed: [UInt8] = []
        if method == .deflate {
            let stream = try DeflateStream(format: .rawDeflate, level: level, name: "\(path): member '\(name)'") { chunk in
                compressed.append(contentsOf: chunk)
            }
            for part in parts { try stream.write(part) }
            try stream.finish()
        }
        let compressedSize = method == .deflate ? compressed.count : size

        let rawName = Array(name.utf8)
        let flags: UInt16 = rawName.allSatisfy { $0 < 0x80 } ? 0 : 0x0800
        let localZip64 = forceZip64 || size >= 0xFFFF_FFFF || compressedSize >= 0xFFFF_FFFF
        let version: UInt16 = localZip64 || offset >= 0xFFFF_FFFF ? 45 : (method == .deflate ? 20 : 10)

        var local: [UInt8] = []
        local.reserveCapacity(30 + rawName.count + 20)
        local.appendZip32(ZipSignature.localHeader)
        local.appendZip16(version)
        local.appendZip16(flags)
        local.appendZip16(method.rawValue)
        local.appendZip16(0)                 // time 00:00:00
        local.appendZip16(ZipWriter.dosDate1980)
        local.appendZip32(crc.value)
        local.appendZip32(localZip64 ? 0xFFFF_FFFF : UInt32(compressedSize))
        local.appendZip32(localZip64 ? 0xFFFF_FFFF : UInt32(size))
        local.appendZip16(UInt16(rawName.count))
        local.appendZip16(localZip64 ? 20 : 0)
        local += rawName
        if localZip64 {
            // In a local header the Zip64 field must hold both sizes.
            local.appendZip16(0x0001)
            local.appendZip16(16)
            local.appendZip64(UInt64(size))
            local.appendZip64(UInt64(compressedSize))
        }

        // The central record: 64-bit values go in the extra field only for fields that overflow
        // (or all of them when forced), and the fixed fields then hold 0xFFFFFFFF.
        let bigSize = forceZip64 || size >= 0xFFFF_FFFF
        let bigCompressed = forceZip64 || compressedSize >= 0xFFFF_FFFF
        let bigOffset = forceZip64 || offset >= 0xFFFF_FFFF
        var extra: [UInt8] = []
        if bigSize || bigCompressed || bigOffset {
            var values: [UInt8] = []
            if bigSize { values.appendZip64(UInt64(size)) }
            if bigCompressed { values.appendZip64(UInt64(compressedSize)) }
            if bigOffset { values.appendZip64(UInt64(offset)) }
            extra.appendZip16(0x0001)
            extra.appendZip16(UInt16(values.count))
            extra += values
        }
        var central: [UInt8] = []
        central.appendZip32(ZipSignature.centralHeader)
        central.appendZip16(3 << 8 | 45)       // made by Unix, spec 4.5
        central.appendZip16(extra.isEmpty ? version : 45)
        central.appendZip16(flags)
        central.appendZip16(method.rawValue)
        central.appendZip16(0)
        central.appendZip16(ZipWriter.dosDate1980)
        central.appendZip32(crc.value)
        central.appendZip32(bigCompressed ? 0xFFFF_FFFF : UInt32(compressedSize))
        central.appendZip32(bigSize ? 0xFFFF_FFFF : UInt32(size))
        central.appendZip16(UInt16(rawName.count))
        central.appendZip16(UInt16(extra.count))
        central.appendZip16(0)                 // comment length
        central.appendZip16(0)                 // disk number
        central.appendZip16(0)                 // internal attributes
        central.appendZip32(0o100644 << 16)    // a regular file, rw-r--r--, for unzip
        central.appendZip32(bigOffset ? 0xFFFF_FFFF : UInt32(offset))
        central += rawName
        central += extra

        try file.write(local)
        if method == .deflate {
            try file.write(compressed)
        } else {
            for part in parts where part.count > 0 { try file.write(part) }
        }
        offset += local.count + compressedSize
        centralDirectory += central
        count += 1
        names.insert(name)
    }

    /// Adds a member holding `bytes`.
    public func addMember(name: String, bytes: [UInt8], method: ZipMethod = .stored, level: Int = -1) throws {
        try bytes.withUnsafeBytes { try addMember(name: name, parts: [$0], method: method, level: level) }
    }

    /// Writes the central directory and the end records, and puts the file in place.
    public func finish() throws {
        precondition(!finished, "finish called twice")
        let directoryOffset = offset
        let directorySize = centralDirectory.count
        try file.write(centralDirectory)
        offset += directorySize

        let zip64 = forceZip64 || count >= 0xFFFF || directoryOffset >= 0xFFFF_FFFF || directorySize >= 0xFFFF_FFFF
        var end: [UInt8] = []
        if zip64 {
            let recordOffset = offset
            end.appendZip32(ZipSignature.zip64EndOfCentralDirectory)
            end.appendZip64(44)                // size of the rest of the record
            end.appendZip16(3 << 8 | 45)
            end.appendZip16(45)
            end.appendZip32(0)                 // this disk
            end.appendZip32(0)                 // the disk with the central directory
            end.appendZip64(UInt64(count))
            end.appendZip64(UInt64(count))
            end.appendZip64(UInt64(directorySize))
            end.appendZip64(UInt64(directoryOffset))
            end.appendZip32(ZipSignature.zip64Locator)
            end.appendZip32(0)
            end.appendZip64(UInt64(recordOffset))
            end.appendZip32(1)                 // total disks
        }
        end.appendZip32(ZipSignature.endOfCentralDirectory)
        end.appendZip16(0)
        end.appendZip16(0)
        let shortCount: UInt16 = zip64 ? 0xFFFF : UInt16(count)
        end.appendZip16(shortCount)
        end.appendZip16(shortCount)
        end.appendZip32(zip64 ? 0xFFFF_FFFF : UInt32(directorySize))
        end.appendZip32(zip64 ? 0xFFFF_FFFF : UInt32(directoryOffset))
        end.appendZip16(0)                     // comment length
        try file.write(end)
        try file.commit()
        finished = true
    }

    /// 1980-01-01 in MS-DOS date format: (year - 1980) << 9 | month << 5 | day.
    static let dosDate1980: UInt16 = 1 << 5 | 1

    private func validate(_ name: String) throws {
        func invalid(_ reason: String) -> ZipError { .invalidMemberName(path: path, member: name, reason: reason) }
        if name.isEmpty { throw invalid("the name is empty") }
        if name.utf8.count > 0xFFFF { throw invalid("the name is longer than 65,535 bytes") }
        if name.utf8.contains(0) { throw invalid("the name contains a NUL character") }
        // Names that escape the extraction directory would be a trap for whoever unzips the file.
        if name.hasPrefix("/") || name.contains("\\") || name.split(separator: "/").contains("..") {
            throw invalid("the name is an absolute path, contains a backslash or a '..' component")
        }
        if names.contains(name) { throw invalid("a member with this name was already added") }
    }
}

extension [UInt8] {
    package mutating func appendZip16(_ value: UInt16) {
        append(UInt8(truncatingIfNeeded: value))
        append(UInt8(truncatingIfNeeded: value >> 8))
    }

    package mutating func appendZip32(_ value: UInt32) {
        appendZip16(UInt16(truncatingIfNeeded: value))
        appendZip16(UInt16(truncatingIfNeeded: value >> 16))
    }

    package mutating func appendZip64(_ value: UInt64) {
        appendZip32(UInt32(truncatingIfNeeded: value))
        appendZip32(UInt32(truncatingIfNeeded: value >> 32))
    }
}
