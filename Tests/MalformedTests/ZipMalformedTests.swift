import NNCompression
import NNCore
import NNConvert
import NNModelFiles
import NNZip
import NNNumPy
import Testing

/// One member of a hand-built zip; every field the reader checks can be overridden.
struct ZipPart {
    var name: [UInt8]
    /// The uncompressed content.
    var content: [UInt8]
    /// The bytes stored in the file (content, or its raw deflate).
    var stored: [UInt8]
    var method: UInt16
    var flags: UInt16 = 0
    var crc: UInt32?
    var compressedSize: UInt32?
    var uncompressedSize: UInt32?
    var localName: [UInt8]?
    var localSignature: UInt32 = 0x0403_4b50
    var centralSignature: UInt32 = 0x0201_4b50
    var localOffset: UInt32?
    var centralExtra: [UInt8] = []
    var startDisk: UInt16 = 0

    static func stored(_ name: String, _ content: [UInt8]) -> ZipPart {
        ZipPart(name: Array(name.utf8), content: content, stored: content, method: 0)
    }

    static func deflated(_ name: String, _ content: [UInt8]) -> ZipPart {
        ZipPart(name: Array(name.utf8), content: content, stored: try! Deflate.compress(content, format: .rawDeflate), method: 8)
    }
}

/// A zip archive (APPNOTE 4.3) from parts, with the end record's fields open to damage.
struct ZipImage {
    var parts: [ZipPart]
    var diskNumber: UInt16 = 0
    var entriesOnDisk: UInt16?
    var entriesTotal: UInt16?
    var directorySize: UInt32?
    var directoryOffset: UInt32?
    var comment: [UInt8] = []
    var commentLength: UInt16?
    /// Bytes between the last entry and the end record, counted in the directory's size.
    var directoryPadding: [UInt8] = []

    /// The archive and where its central directory starts.
    func build() -> (bytes: [UInt8], directoryOffset: Int, localOffsets: [Int]) {
        var out: [UInt8] = []
        var offsets: [Int] = []
        for part in parts {
            offsets.append(out.count)
            out.le(part.localSignature)
            fixedFields(part, into: &out)
            out += part.localName ?? part.name
            out += part.stored
        }
        let cdOffset = out.count
        for (part, offset) in zip(parts, offsets) {
            out.le(part.centralSignature)
            out.le(UInt16(20))
            fixedFields(part, into: &out, centralExtra: part.centralExtra.count)
            out.le(UInt16(0))                       // comment length
            out.le(part.startDisk)
            out.le(UInt16(0))
            out.le(UInt32(0))
            out.le(part.localOffset ?? UInt32(offset))
            out += part.name
            out += part.centralExtra
        }
        out += directoryPadding
        let cdSize = out.count - cdOffset
        out.le(UInt32(0x0605_4b50))
        out.le(diskNumber)
        out.le(diskNumber)
        out.le(entriesOnDisk ?? UInt16(parts.count))
        out.le(entriesTotal ?? UInt16(parts.count))
        out.le(directorySize ?? UInt32(cdSize))
        out.le(directoryOffset ?? UInt32(cdOffset))
        out.le(commentLength ?? UInt16(comment.count))
        out += comment
        return (out, cdOffset, offsets)
    }

    var bytes: [UInt8] { build().bytes }

    private func fixedFields(_ part: ZipPart, into out: inout [UInt8], centralExtra: Int = 0) {
        out.le(UInt16(20))
        out.le(part.flags)
        out.le(part.method)
        out.le(UInt32(0))
        out.le(part.crc ?? CRC32.checksum(part.content))
        out.le(part.compressedSize ?? UInt32(part.stored.count))
        out.le(part.uncompressedSize ?? UInt32(part.content.count))
        out.le(UInt16(part.name.count))
        out.le(UInt16(centralExtra))
    }
}

/// A 2x2 f4 `.npy`, the content of the members below.
let smallNPY = npyBytes(header: npyHeader(shape: "(2, 2)"), data: (0..<16).map { UInt8($0) })

let zipCases: [MalformedCase] = {
    let z = "z.npz: corrupt zip: "
    let one = ZipImage(parts: [.stored("a.npy", smallNPY)])
    let (valid, cdOffset, _) = one.build()
    let cdSize = 46 + 5
    let noEnd = z + "no end-of-central-directory record (the file is truncated or is not a zip archive)"
    var cases: [MalformedCase] = [
        MalformedCase("empty", [], noEnd),
        MalformedCase("21 bytes of end record", Array(valid.suffix(21)), noEnd),
        MalformedCase("cut after the local header", valid.prefixArray(30 + 5), noEnd),
        MalformedCase("cut after the member data", valid.prefixArray(cdOffset), noEnd),
        MalformedCase("cut inside the central directory", valid.prefixArray(cdOffset + 20), noEnd),
        MalformedCase("cut inside the end record", valid.prefixArray(valid.count - 1), noEnd),
        MalformedCase("a comment longer than the file", ZipImage(parts: one.parts, commentLength: 100).bytes, noEnd),
        MalformedCase("not a zip at all", Array("hello, world, this is not a zip archive".utf8), noEnd),
    ]
    var lyingComment = one
    lyingComment.comment = Array("PK\u{5}\u{6}".utf8) + [UInt8](repeating: 0, count: 18)
    cases += [
        MalformedCase("directory offset past the end", ZipImage(parts: one.parts, directoryOffset: 1_000_000).bytes,
                      z + "the central directory lies outside the file"),
        MalformedCase("directory size past the end", ZipImage(parts: one.parts, directorySize: 0xFFFF_FFF0).bytes,
                      z + "the central directory lies outside the file"),
        MalformedCase("directory runs into the end record", ZipImage(parts: one.parts, directorySize: UInt32(cdSize + 4)).bytes,
                      z + "the central directory overlaps the end-of-central-directory record"),
        MalformedCase("entry counts disagree", ZipImage(parts: one.parts, entriesOnDisk: 2).bytes,
                      z + "the end-of-central-directory record counts 2 entries on this disk but 1 in all"),
        MalformedCase("disk 1 of several", ZipImage(parts: one.parts, diskNumber: 1).bytes,
                      z + "the archive spans several disks, which is not supported"),
        MalformedCase("member on another disk", ZipImage(parts: [{ var m = ZipPart.stored("a.npy", smallNPY); m.startDisk = 2; return m }()]).bytes,
                      z + "the archive spans several disks, which is not supported"),
        MalformedCase("more entries than the directory holds", ZipImage(parts: one.parts, entriesOnDisk: 3, entriesTotal: 3).bytes,
                      z + "the central directory (\(cdSize) bytes) is too small for 3 entries"),
        MalformedCase("directory entry with a bad signature",
                      ZipImage(parts: [{ var m = ZipPart.stored("a.npy", smallNPY); m.centralSignature = 0x0201_4b51; return m }()]).bytes,
                      z + "central directory entry 1 has a bad signature"),
        MalformedCase("name runs past the directory", ZipImage(parts: one.parts, directorySize: UInt32(cdSize - 2)).bytes,
                      z + "central directory entry 1 runs past the end of the central directory"),
        MalformedCase("bytes after the last entry", ZipImage(parts: one.parts, directoryPadding: [0, 0, 0, 0]).bytes,
                      z + "the central directory holds 4 bytes beyond its 1 entries"),
        MalformedCase("empty member name", ZipImage(parts: [.stored("", smallNPY)]).bytes,
                      z + "central directory entry 1 has an empty name or one containing NUL"),
        MalformedCase("NUL in a member name", ZipImage(parts: [.stored("a\0.npy", smallNPY)]).bytes,
                      z + "central directory entry 1 has an empty name or one containing NUL"),
        MalformedCase("flagged UTF-8 name that is not", ZipImage(parts: [{
            var m = ZipPart.stored("a.npy", smallNPY)
            m.name = [0x61, 0xFF, 0x2E]
            m.flags = 0x0800
            return m
        }()]).bytes, z + "the name of central directory entry 1 is not valid UTF-8"),
        MalformedCase("the same name twice", ZipImage(parts: [.stored("a.npy", smallNPY), .stored("a.npy", smallNPY)]).bytes,
                      "z.npz: corrupt zip: the member name 'a.npy' appears more than once"),
        MalformedCase("local header offset past the directory",
                      ZipImage(parts: [{ var m = ZipPart.stored("a.npy", smallNPY); m.localOffset = UInt32(cdOffset); return m }()]).bytes,
                      z + "member 'a.npy' lies outside the file"),
        MalformedCase("stored sizes that differ",
                      ZipImage(parts: [{ var m = ZipPart.stored("a.npy", smallNPY); m.uncompressedSize = 10; return m }()]).bytes,
                      z + "member 'a.npy' is stored, but its compressed size \(smallNPY.count) differs from its size 10"),
        MalformedCase("Zip64 sizes without the extra field",
                      ZipImage(parts: [{ var m = ZipPart.stored("a.npy", smallNPY); m.compressedSize = .max; m.uncompressedSize = .max; return m }()]).bytes,
                      z + "member 'a.npy' lacks the Zip64 extra field its sizes require"),
        MalformedCase("Zip64 extra field too short",
                      ZipImage(parts: [{
                          var m = ZipPart.stored("a.npy", smallNPY)
                          m.compressedSize = .max
                          m.uncompressedSize = .max
                          m.centralExtra = [0x01, 0x00, 0x08, 0x00] + [UInt8](repeating: 0, count: 8)
                          return m
                      }()]).bytes,
                      z + "the Zip64 extra field of member 'a.npy' is too short"),
        MalformedCase("two entries share one member's bytes",
                      ZipImage(parts: [.stored("a.npy", smallNPY), { var m = ZipPart.stored("b.npy", smallNPY); m.localOffset = 0; return m }()]).bytes,
                      z + "members 'a.npy' and 'b.npy' overlap"),
        MalformedCase("member data runs into the directory",
                      ZipImage(parts: [{ var m = ZipPart.stored("a.npy", smallNPY); m.localOffset = 10; return m }()]).bytes,
                      z + "the data of member 'a.npy' runs into the central directory"),
        MalformedCase("local header with a bad signature",
                      ZipImage(parts: [{ var m = ZipPart.stored("a.npy", smallNPY); m.localSignature = 0; return m }()]).bytes,
                      z + "member 'a.npy' has no valid local header at offset 0"),
        MalformedCase("local header names another member",
                      ZipImage(parts: [{ var m = ZipPart.stored("a.npy", smallNPY); m.localName = Array("b.npy".utf8); return m }()]).bytes,
                      z + "the local header of member 'a.npy' names a different member"),
        MalformedCase("encrypted member",
                      ZipImage(parts: [{ var m = ZipPart.stored("a.npy", smallNPY); m.flags = 1; return m }()]).bytes,
                      "z.npz: member 'a.npy' is encrypted, which is not supported"),
        MalformedCase("bzip2 member",
                      ZipImage(parts: [{ var m = ZipPart.stored("a.npy", smallNPY); m.method = 12; return m }()]).bytes,
                      "z.npz: member 'a.npy' uses compression method 12 (bzip2), which is not supported"),
        MalformedCase("unknown method 77",
                      ZipImage(parts: [{ var m = ZipPart.stored("a.npy", smallNPY); m.method = 77; return m }()]).bytes,
                      "z.npz: member 'a.npy' uses compression method 77, which is not supported"),
        MalformedCase("CRC-32 wrong",
                      ZipImage(parts: [{ var m = ZipPart.stored("a.npy", smallNPY); m.crc = CRC32.checksum(smallNPY) ^ 4; return m }()]).bytes,
                      "z.npz: member 'a.npy' fails its CRC-32 check"),
        MalformedCase("a flipped data bit",
                      { var b = valid; b[30 + 5 + smallNPY.count - 1] ^= 0x10; return b }(),
                      "z.npz: member 'a.npy' fails its CRC-32 check"),
    ]
    // Deflate members.
    let deflated = ZipPart.deflated("a.npy", smallNPY)
    var badBlock = deflated
    badBlock.stored[0] |= 0b110
    var cut = deflated
    cut.stored = Array(cut.stored.dropLast(4))
    var more = ZipPart.deflated("a.npy", smallNPY + [1, 2, 3, 4])
    more.uncompressedSize = UInt32(smallNPY.count)
    more.crc = CRC32.checksum(smallNPY)
    let bigger = npyBytes(header: npyHeader(shape: "(3, 2)"), data: [UInt8](repeating: 7, count: 24))
    var short = ZipPart.deflated("a.npy", Array(bigger.dropLast(8)))
    short.uncompressedSize = UInt32(bigger.count)
    var claims = deflated
    claims.uncompressedSize = UInt32(deflated.stored.count * 1032 + 1025)
    cases += [
        MalformedCase("reserved deflate block type", ZipImage(parts: [badBlock]).bytes, "z.npz: member 'a.npy': corrupt deflate data: invalid block type"),
        MalformedCase("deflate data cut short", ZipImage(parts: [cut]).bytes,
                      "z.npz: member 'a.npy': its deflate data ends after \(cut.stored.count) compressed bytes, before the end of the stream"),
        MalformedCase("deflate data that goes on", ZipImage(parts: [more]).bytes,
                      "z.npz: member 'a.npy' decompresses to more than its declared \(smallNPY.count) bytes"),
        MalformedCase("deflate data that stops early", ZipImage(parts: [short]).bytes,
                      "z.npz: member 'a.npy' decompresses to \(bigger.count - 8) bytes, not its declared \(bigger.count)"),
        MalformedCase("a size deflate cannot reach", ZipImage(parts: [claims]).bytes,
                      z + "member 'a.npy' claims \(deflated.stored.count * 1032 + 1025) bytes from \(deflated.stored.count) compressed bytes, more than deflate can produce"),
    ]
    // Array-level problems inside a valid archive.
    cases += [
        MalformedCase("a member that is not .npy", ZipImage(parts: [.stored("a.npy", Array("not numpy".utf8))]).bytes,
                      "z.npz: member 'a.npy': not a NumPy .npy array (it does not start with the magic string \\x93NUMPY)"),
        MalformedCase("a truncated .npy member", ZipImage(parts: [.stored("a.npy", Array(smallNPY.dropLast(4)))]).bytes,
                      "z.npz: member 'a.npy': truncated array data: shape (2, 2) of '<f4' needs 16 bytes but only 12 follow the header"),
        MalformedCase("W1 and W1.npy", ZipImage(parts: [.stored("W1.npy", smallNPY), .stored("W1", smallNPY)]).bytes,
                      "z.npz: two members hold the array 'W1' ('W1.npy' and 'W1')"),
        MalformedCase("a pickled member", ZipImage(parts: [.stored("a.npy", npyBytes(header: npyHeader("|O", shape: "(1,)"), data: [UInt8](repeating: 0, count: 8)))]).bytes,
                      "z.npz: member 'a.npy': refusing to read pickled object arrays (dtype '|O'): they can run code"),
        MalformedCase("a signature inside the comment does not fool the search", lyingComment.bytes, ""),
    ]
    return cases
}()

@Suite struct ZipMalformed {
    @Test(arguments: zipCases) func npz(_ c: MalformedCase) {
        let dir = ScratchDirectory()
        let path = dir.write(c.bytes, to: "z.npz")
        if c.message.isEmpty {
            #expect(throws: Never.self) { _ = try NumPyArchive.read(path: path, displayName: "z.npz") }
        } else {
            expectMessage(c.message) { _ = try NumPyArchive.read(path: path, displayName: "z.npz") }
        }
    }

    @Test func theHandBuiltArchivesAreValid() throws {
        let dir = ScratchDirectory()
        for part in [ZipPart.stored("a.npy", smallNPY), ZipPart.deflated("a.npy", smallNPY)] {
            let path = dir.write(ZipImage(parts: [part]).bytes, to: "ok.npz")
            #expect(try NumPyArchive.read(path: path).names == ["a"])
        }
    }

    @Test func limitsOnEntriesAndNames() {
        let dir = ScratchDirectory()
        let path = dir.write(ZipImage(parts: [.stored("a.npy", smallNPY), .stored("b.npy", smallNPY)]).bytes, to: "z.npz")
        expectMessage("z.npz: corrupt zip: the archive claims 2 entries, more than the limit of 1") {
            _ = try ZipArchive(path: path, displayName: "z.npz", limits: ZipLimits(maxEntries: 1))
        }
        expectMessage("z.npz: corrupt zip: the name of central directory entry 1 is 5 bytes long, more than the limit of 4") {
            _ = try ZipArchive(path: path, displayName: "z.npz", limits: ZipLimits(maxNameBytes: 4))
        }
        expectMessage("z.npz: corrupt zip: the central directory is 102 bytes, more than the limit of 100") {
            _ = try ZipArchive(path: path, displayName: "z.npz", limits: ZipLimits(maxCentralDirectoryBytes: 100))
        }
        expectMessage("z.npz: the arrays total \(2 * smallNPY.count) bytes, more than the limit of 100 bytes") {
            _ = try NumPyArchive.read(path: path, displayName: "z.npz", limits: NumPyLimits(maxTotalBytes: 100))
        }
    }
}
