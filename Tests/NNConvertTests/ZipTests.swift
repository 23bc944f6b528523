import Foundation
import NNCompression
import NNCore
import Testing
@testable import NNConvert
import NNModelFiles
@testable import NNZip
@testable import NNNumPy
@testable import NNSafetensors

/// Helpers for the zip and NumPy tests (in a namespace: other test files in this target define
/// their own globals).
enum ZipTestKit {
    /// Fixtures/interop, found from this file's location.
    static let fixtures: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.appendingPathComponent("Fixtures/interop").path
    }()

    static func fixture(_ name: String) -> String { fixtures + "/" + name }

    /// A fresh directory per test (tests run in parallel), removed afterwards.
    final class TemporaryDirectory {
        let path: String
        init() {
            path = NSTemporaryDirectory() + "nninterop-zip-" + UUID().uuidString
            try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        }
        deinit { try? FileManager.default.removeItem(atPath: path) }
        func file(_ name: String) -> String { path + "/" + name }
        @discardableResult
        func write(_ bytes: [UInt8], to name: String) -> String {
            let p = file(name)
            try! Data(bytes).write(to: URL(fileURLWithPath: p))
            return p
        }
        func contents() -> [String] { (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [] }
    }

    static func readBytes(_ path: String) -> [UInt8] {
        [UInt8](FileManager.default.contents(atPath: path) ?? Data())
    }

    /// Runs `python3 -c script args...` and returns its standard output; fails the test on a
    /// non-zero exit.
    static func python(_ script: String, _ args: [String] = [],
                       sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script] + args
        let out = Pipe()
        // stderr goes to a file so that a chatty script cannot block on a full pipe.
        let errFile = NSTemporaryDirectory() + "nninterop-py-" + UUID().uuidString
        _ = FileManager.default.createFile(atPath: errFile, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: errFile) }
        process.standardOutput = out
        process.standardError = FileHandle(forWritingAtPath: errFile)
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let stdout = String(decoding: data, as: UTF8.self)
        if process.terminationStatus != 0 {
            let stderr = (try? String(contentsOfFile: errFile, encoding: .utf8)) ?? ""
            Issue.record("python3 failed (\(process.terminationStatus)): \(stderr)", sourceLocation: sourceLocation)
            throw CancellationError()
        }
        return stdout
    }

    /// Parses the JSON a Python script printed.
    static func json(_ text: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
    }

    static func hex(_ bytes: UnsafeRawBufferPointer) -> String {
        bytes.map { String(format: "%02x", $0) }.joined()
    }

    static func hex(_ bytes: [UInt8]) -> String { bytes.withUnsafeBytes { hex($0) } }

    /// Asserts that `body` throws an error whose description is exactly `message`.
    static func expectError(_ message: String, sourceLocation: SourceLocation = #_sourceLocation,
                            _ body: () throws -> Void) {
        do {
            try body()
            Issue.record("expected the error \"\(message)\", got none", sourceLocation: sourceLocation)
        } catch {
            #expect("\(error)" == message, sourceLocation: sourceLocation)
        }
    }

    static func put16(_ bytes: inout [UInt8], _ offset: Int, _ value: UInt16) {
        bytes[offset] = UInt8(value & 0xFF)
        bytes[offset + 1] = UInt8(value >> 8)
    }

    static func put32(_ bytes: inout [UInt8], _ offset: Int, _ value: UInt32) {
        for i in 0..<4 { bytes[offset + i] = UInt8((value >> (8 * UInt32(i))) & 0xFF) }
    }

    static func put64(_ bytes: inout [UInt8], _ offset: Int, _ value: UInt64) {
        for i in 0..<8 { bytes[offset + i] = UInt8((value >> (8 * UInt64(i))) & 0xFF) }
    }

    static func get32(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
        (0..<4).reduce(0) { $0 | UInt32(bytes[offset + $1]) << (8 * UInt32($1)) }
    }

    /// Offsets of every occurrence of a 4-byte little-endian signature.
    static func offsets(of signature: UInt32, in bytes: [UInt8]) -> [Int] {
        guard bytes.count >= 4 else { return [] }
        return (0...(bytes.count - 4)).filter { get32(bytes, $0) == signature }
    }

    /// Writes a small archive with our writer and returns its bytes.
    static func makeZip(in dir: TemporaryDirectory, _ members: [(String, [UInt8], ZipMethod)],
                        forceZip64: Bool = false, name: String = "made.zip") throws -> [UInt8] {
        let path = dir.file(name)
        let writer = try ZipWriter(path: path, forceZip64: forceZip64)
        for (n, b, m) in members { try writer.addMember(name: n, bytes: b, method: m) }
        try writer.finish()
        return readBytes(path)
    }

    static let centralSignature: UInt32 = 0x0201_4b50
    static let localSignature: UInt32 = 0x0403_4b50
    static let endSignature: UInt32 = 0x0605_4b50
}

@Suite struct ZipReadingTests {
    typealias Kit = ZipTestKit

    @Test func listsTheEntriesOfAnNpzFromTheCentralDirectory() throws {
        let zip = try ZipArchive(path: Kit.fixture("npz_blog_rows_2layer_f64.npz"))
        #expect(zip.entries.map(\.name) == ["W1.npy", "b1.npy", "W2.npy", "b2.npy"])
        #expect(zip.entries.map(\.method) == [.stored, .stored, .stored, .stored])
        // np.savez writes 0xFFFFFFFF sizes in the local headers; the central directory's real
        // sizes must win.
        #expect(zip.entries.map(\.uncompressedSize) == [704, 176, 272, 152])
        #expect(zip.entries.map(\.compressedSize) == [704, 176, 272, 152])
        #expect(zip.entries.map(\.crc32) == [0x8df8ee08, 0x9c0ab8da, 0x0d1fc21a, 0x38dff2eb])
        #expect(zip.entries.map(\.localHeaderOffset) == [0, 760, 992, 1320])
        #expect(zip.entries.allSatisfy { !$0.isEncrypted && !$0.isDirectory })
    }

    @Test func readsDeflatedMembersLikePythonsZipfile() throws {
        let path = Kit.fixture("npz_blog_rows_3layer_f32_compressed.npz")
        let zip = try ZipArchive(path: path)
        #expect(zip.entries.map(\.method) == Array(repeating: .deflate, count: 6))
        let reference = Kit.json(try Kit.python("""
            import zipfile, sys, json
            z = zipfile.ZipFile(sys.argv[1])
            print(json.dumps({i.filename: z.read(i).hex() for i in z.infolist()}))
            """, [path]))
        #expect(reference.count == 6)
        for entry in zip.entries {
            let bytes = try zip.read(entry, maxBytes: 1 << 20)
            #expect(bytes.count == entry.uncompressedSize)
            #expect(Kit.hex(bytes) == reference[entry.name] as? String, "\(entry.name)")
        }
        #expect(try zip.read(named: "W1.npy").count == 416)
        Kit.expectError("\(path): no member named 'W9.npy'") { _ = try zip.read(named: "W9.npy") }
    }

    @Test func readsZipsWithDataDescriptorsCommentsAndCP437Names() throws {
        let dir = Kit.TemporaryDirectory()
        // Writing to a pipe makes zipfile use data descriptors (flag bit 3) and leave zeros in
        // the local headers' sizes.
        let path = dir.file("streamed.zip")
        _ = try Kit.python("""
            import zipfile, sys, subprocess
            out = open(sys.argv[1], 'wb')
            class Unseekable:
                def write(self, b): return out.write(b)
                def flush(self): out.flush()
                def tell(self): raise OSError('unseekable')
            with zipfile.ZipFile(Unseekable(), 'w') as z:
                z.comment = b'PK\\x05\\x06 a comment that looks like an end record'
                with z.open('a.txt', 'w') as f: f.write(b'hello ' * 1000)
                zi = zipfile.ZipInfo('b.bin'); zi.compress_type = zipfile.ZIP_DEFLATED
                with z.open(zi, 'w') as f: f.write(bytes(range(256)) * 64)
            out.close()
            """, [path])
        let zip = try ZipArchive(path: path)
        #expect(zip.entries.map(\.name) == ["a.txt", "b.bin"])
        #expect(zip.entries.allSatisfy { $0.flags & 0x8 != 0 })
        #expect(try zip.read(named: "a.txt") == Array(String(repeating: "hello ", count: 1000).utf8))
        #expect(try zip.read(named: "b.bin") == Array((0..<64).flatMap { _ in (0..<256).map { UInt8($0) } }))

        // A non-ASCII name without the UTF-8 flag is code page 437, as zipfile decodes it.
        var bytes = try Kit.makeZip(in: dir, [("x\u{e9}.bin", [1, 2, 3], .stored)])
        for offset in Kit.offsets(of: Kit.localSignature, in: bytes) + Kit.offsets(of: Kit.centralSignature, in: bytes) {
            let flagOffset = offset + (Kit.get32(bytes, offset) == Kit.localSignature ? 6 : 8)
            bytes[flagOffset + 1] &= ~0x08
        }
        let cp437 = dir.write(bytes, to: "cp437.zip")
        let pythonName = try Kit.python("import zipfile, sys; print(zipfile.ZipFile(sys.argv[1]).namelist()[0])", [cp437])
        let entry = try #require(try ZipArchive(path: cp437).entries.first)
        #expect(entry.name == "x├⌐.bin")
        #expect(entry.name + "\n" == pythonName)
    }

    @Test func rejectsATruncatedArchive() {
        let path = Kit.fixture("bad_truncated.npz")
        Kit.expectError("\(path): corrupt zip: no end-of-central-directory record (the file is truncated or is not a zip archive)") {
            _ = try ZipArchive(path: path)
        }
        Kit.expectError("model.npz: corrupt zip: no end-of-central-directory record (the file is truncated or is not a zip archive)") {
            _ = try ZipArchive(path: path, displayName: "model.npz")
        }
    }

    @Test func rejectsADamagedCentralDirectory() {
        let path = Kit.fixture("bad_corrupt_central_dir.npz")
        Kit.expectError("\(path): corrupt zip: central directory entry 1 has a bad signature") {
            _ = try ZipArchive(path: path)
        }
    }

    @Test func rejectsFilesThatAreNotZipsOrCannotBeOpened() {
        let dir = Kit.TemporaryDirectory()
        let empty = dir.write([], to: "empty.zip")
        Kit.expectError("\(empty): corrupt zip: no end-of-central-directory record (the file is truncated or is not a zip archive)") {
            _ = try ZipArchive(path: empty)
        }
        let missing = dir.file("missing.zip")
        Kit.expectError("\(missing): cannot open: No such file or directory") { _ = try ZipArchive(path: missing) }
        Kit.expectError("\(dir.path): cannot open: not a regular file") { _ = try ZipArchive(path: dir.path) }
    }

    @Test func rejectsAbsurdEndRecords() throws {
        let dir = Kit.TemporaryDirectory()
        let good = try Kit.makeZip(in: dir, [("a.bin", [1, 2, 3, 4], .stored)])
        let end = try #require(Kit.offsets(of: Kit.endSignature, in: good).last)

        var many = good
        Kit.put16(&many, end + 8, 0xFFFF)
        Kit.put16(&many, end + 10, 0xFFFF)
        let manyPath = dir.write(many, to: "many.zip")
        let cdSize = Int(Kit.get32(good, end + 12))
        Kit.expectError("\(manyPath): corrupt zip: the central directory (\(cdSize) bytes) is too small for 65535 entries") {
            _ = try ZipArchive(path: manyPath)
        }
        Kit.expectError("\(manyPath): corrupt zip: the archive claims 65535 entries, more than the limit of 1000") {
            _ = try ZipArchive(path: manyPath, limits: ZipLimits(maxEntries: 1000))
        }

        var mismatch = good
        Kit.put16(&mismatch, end + 8, 2)
        let mismatchPath = dir.write(mismatch, to: "mismatch.zip")
        Kit.expectError("\(mismatchPath): corrupt zip: the end-of-central-directory record counts 2 entries on this disk but 1 in all") {
            _ = try ZipArchive(path: mismatchPath)
        }

        var farOffset = good
        Kit.put32(&farOffset, end + 16, 0xFFFF_FFF0)
        let farPath = dir.write(farOffset, to: "far.zip")
        Kit.expectError("\(farPath): corrupt zip: the central directory lies outside the file") {
            _ = try ZipArchive(path: farPath)
        }

        var bigSize = good
        Kit.put32(&bigSize, end + 12, 0x7FFF_FFFF)
        let bigPath = dir.write(bigSize, to: "big.zip")
        Kit.expectError("\(bigPath): corrupt zip: the central directory lies outside the file") {
            _ = try ZipArchive(path: bigPath)
        }

        var multiDisk = good
        Kit.put16(&multiDisk, end + 4, 1)
        let diskPath = dir.write(multiDisk, to: "disk.zip")
        Kit.expectError("\(diskPath): corrupt zip: the archive spans several disks, which is not supported") {
            _ = try ZipArchive(path: diskPath)
        }

        var extraEntryBytes = good
        Kit.put32(&extraEntryBytes, end + 16, Kit.get32(good, end + 16) - 4)
        Kit.put32(&extraEntryBytes, end + 12, Kit.get32(good, end + 12) + 4)
        let shiftedPath = dir.write(extraEntryBytes, to: "shifted.zip")
        Kit.expectError("\(shiftedPath): corrupt zip: central directory entry 1 has a bad signature") {
            _ = try ZipArchive(path: shiftedPath)
        }
    }

    @Test func rejectsAbsurdZip64Records() throws {
        let dir = Kit.TemporaryDirectory()
        let good = try Kit.makeZip(in: dir, [("a.bin", [1, 2, 3, 4], .stored)], forceZip64: true)
        let record = try #require(Kit.offsets(of: 0x0606_4b50, in: good).last)
        let locator = try #require(Kit.offsets(of: 0x0706_4b50, in: good).last)
        #expect(try ZipArchive(path: dir.write(good, to: "good.zip")).entries.count == 1)

        var hugeCount = good
        Kit.put64(&hugeCount, record + 24, 1 << 60)
        Kit.put64(&hugeCount, record + 32, 1 << 60)
        let hugePath = dir.write(hugeCount, to: "huge.zip")
        Kit.expectError("\(hugePath): corrupt zip: the archive claims \(1 << 60) entries, more than the limit of 100000") {
            _ = try ZipArchive(path: hugePath)
        }

        var farOffset = good
        Kit.put64(&farOffset, record + 48, UInt64.max - 10)
        let farPath = dir.write(farOffset, to: "far.zip")
        Kit.expectError("\(farPath): corrupt zip: the central directory lies outside the file") {
            _ = try ZipArchive(path: farPath)
        }

        var badLocator = good
        Kit.put64(&badLocator, locator + 8, 1 << 40)
        let locatorPath = dir.write(badLocator, to: "locator.zip")
        Kit.expectError("\(locatorPath): corrupt zip: the Zip64 end-of-central-directory record lies outside the file") {
            _ = try ZipArchive(path: locatorPath)
        }

        var badRecord = good
        badRecord[record] = 0
        let recordPath = dir.write(badRecord, to: "record.zip")
        Kit.expectError("\(recordPath): corrupt zip: the Zip64 end-of-central-directory record has a bad signature") {
            _ = try ZipArchive(path: recordPath)
        }

        // A central entry that says "see the Zip64 field" but has none.
        var noExtra = try Kit.makeZip(in: dir, [("a.bin", [1, 2, 3, 4], .stored)], name: "plain.zip")
        let central = try #require(Kit.offsets(of: Kit.centralSignature, in: noExtra).first)
        Kit.put32(&noExtra, central + 42, 0xFFFF_FFFF)
        let noExtraPath = dir.write(noExtra, to: "noextra.zip")
        Kit.expectError("\(noExtraPath): corrupt zip: member 'a.bin' lacks the Zip64 extra field its sizes require") {
            _ = try ZipArchive(path: noExtraPath)
        }
    }

    @Test func rejectsBadEntries() throws {
        let dir = Kit.TemporaryDirectory()
        let good = try Kit.makeZip(in: dir, [("a.bin", Array(repeating: 7, count: 100), .stored),
                                             ("b.bin", Array(repeating: 9, count: 100), .deflate)])
        let centrals = Kit.offsets(of: Kit.centralSignature, in: good)
        let locals = Kit.offsets(of: Kit.localSignature, in: good)
        #expect(centrals.count == 2 && locals.count == 2)

        // Names are bounded.
        let goodPath = dir.write(good, to: "good.zip")
        Kit.expectError("\(goodPath): corrupt zip: the name of central directory entry 1 is 5 bytes long, more than the limit of 4") {
            _ = try ZipArchive(path: goodPath, limits: ZipLimits(maxNameBytes: 4))
        }

        // Duplicate names would make lookups ambiguous.
        var duplicate = good
        duplicate[centrals[1] + 46] = UInt8(ascii: "a")
        duplicate[locals[1] + 30] = UInt8(ascii: "a")
        let duplicatePath = dir.write(duplicate, to: "dup.zip")
        Kit.expectError("\(duplicatePath): corrupt zip: the member name 'a.bin' appears more than once") {
            _ = try ZipArchive(path: duplicatePath)
        }

        // The local header must be where the central directory says and name the same member.
        var moved = good
        moved[locals[1]] = 0
        let movedPath = dir.write(moved, to: "moved.zip")
        let movedZip = try ZipArchive(path: movedPath)
        Kit.expectError("\(movedPath): corrupt zip: member 'b.bin' has no valid local header at offset \(locals[1])") {
            _ = try movedZip.read(named: "b.bin")
        }
        var renamed = good
        renamed[locals[0] + 30] = UInt8(ascii: "z")
        let renamedPath = dir.write(renamed, to: "renamed.zip")
        Kit.expectError("\(renamedPath): corrupt zip: the local header of member 'a.bin' names a different member") {
            _ = try ZipArchive(path: renamedPath).read(named: "a.bin")
        }

        // Overlapping members (the trick of "overlapping file" zip bombs).
        var overlapping = good
        Kit.put32(&overlapping, centrals[1] + 42, UInt32(locals[0]))
        let overlappingPath = dir.write(overlapping, to: "overlap.zip")
        Kit.expectError("\(overlappingPath): corrupt zip: members 'a.bin' and 'b.bin' overlap") {
            _ = try ZipArchive(path: overlappingPath)
        }

        // A local header offset beyond the central directory.
        var outside = good
        Kit.put32(&outside, centrals[0] + 42, 0x7000_0000)
        let outsidePath = dir.write(outside, to: "outside.zip")
        Kit.expectError("\(outsidePath): corrupt zip: member 'a.bin' lies outside the file") {
            _ = try ZipArchive(path: outsidePath)
        }

        // A stored member whose two sizes disagree.
        var sizes = good
        Kit.put32(&sizes, centrals[0] + 24, 99)
        let sizesPath = dir.write(sizes, to: "sizes.zip")
        Kit.expectError("\(sizesPath): corrupt zip: member 'a.bin' is stored, but its compressed size 100 differs from its size 99") {
            _ = try ZipArchive(path: sizesPath)
        }
    }

    @Test func rejectsEncryptedAndUnsupportedMembersWhenRead() throws {
        let dir = Kit.TemporaryDirectory()
        let good = try Kit.makeZip(in: dir, [("W1.npy", Array(repeating: 1, count: 64), .stored)])
        let central = try #require(Kit.offsets(of: Kit.centralSignature, in: good).first)

        var encrypted = good
        encrypted[central + 8] |= 1
        let encryptedPath = dir.write(encrypted, to: "enc.npz")
        let encryptedZip = try ZipArchive(path: encryptedPath, displayName: "model.npz")
        #expect(encryptedZip.entries[0].isEncrypted)
        Kit.expectError("model.npz: member 'W1.npy' is encrypted, which is not supported") {
            _ = try encryptedZip.read(named: "W1.npy")
        }

        for (method, text) in [(12, "12 (bzip2)"), (14, "14 (lzma)"), (93, "93 (zstandard)"), (200, "200")] {
            var bytes = good
            Kit.put16(&bytes, central + 10, UInt16(method))
            let path = dir.write(bytes, to: "m\(method).npz")
            let zip = try ZipArchive(path: path, displayName: "model.npz")
            Kit.expectError("model.npz: member 'W1.npy' uses compression method \(text), which is not supported") {
                _ = try zip.read(named: "W1.npy")
            }
        }
    }

    @Test func checksCRC32s() throws {
        let dir = Kit.TemporaryDirectory()
        let payload = (0..<5000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        let good = try Kit.makeZip(in: dir, [("s.bin", payload, .stored), ("d.bin", payload, .deflate)])
        #expect(try ZipArchive(path: dir.write(good, to: "good.zip")).read(named: "d.bin") == payload)

        // Damaged stored data.
        var flipped = good
        let local = try #require(Kit.offsets(of: Kit.localSignature, in: good).first)
        flipped[local + 30 + 5 + 100] ^= 0x40
        let flippedPath = dir.write(flipped, to: "flipped.zip")
        let zip = try ZipArchive(path: flippedPath, displayName: "model.npz")
        Kit.expectError("model.npz: member 's.bin' fails its CRC-32 check") { _ = try zip.read(named: "s.bin") }
        #expect(try zip.read(named: "d.bin") == payload)

        // Deflated data that inflates fine but to other bytes than the CRC promises.
        var wrongCRC = good
        let centrals = Kit.offsets(of: Kit.centralSignature, in: good)
        Kit.put32(&wrongCRC, centrals[1] + 16, Kit.get32(good, centrals[1] + 16) ^ 1)
        let wrongPath = dir.write(wrongCRC, to: "wrong.zip")
        Kit.expectError("\(wrongPath): member 'd.bin' fails its CRC-32 check") {
            _ = try ZipArchive(path: wrongPath).read(named: "d.bin")
        }

        // Streaming reads check it too, when the last byte is delivered.
        let reader = try ZipArchive(path: wrongPath).openMember(try #require(ZipArchive(path: wrongPath).entry(named: "d.bin")))
        var buffer = [UInt8](repeating: 0, count: 4096)
        #expect(try buffer.withUnsafeMutableBytes { try reader.read(into: $0) } == 4096)
        Kit.expectError("\(wrongPath): member 'd.bin' fails its CRC-32 check") {
            _ = try buffer.withUnsafeMutableBytes { try reader.read(into: $0) }
        }
    }

    @Test func stopsInflatingAtTheDeclaredSize() throws {
        let dir = Kit.TemporaryDirectory()
        // 64 MiB of zeros deflate to about 64 KiB; the directory then claims 1000 bytes.
        let zeros = [UInt8](repeating: 0, count: 64 << 20)
        let good = try Kit.makeZip(in: dir, [("bomb.bin", zeros, .deflate)])
        let central = try #require(Kit.offsets(of: Kit.centralSignature, in: good).first)
        var bomb = good
        Kit.put32(&bomb, central + 24, 1000)
        Kit.put32(&bomb, central + 16, CRC32.checksum([UInt8](repeating: 0, count: 1000)))
        let path = dir.write(bomb, to: "bomb.zip")
        let zip = try ZipArchive(path: path)
        Kit.expectError("\(path): member 'bomb.bin' decompresses to more than its declared 1000 bytes") {
            _ = try zip.read(named: "bomb.bin")
        }
        // The caller's limit applies to the declared size before anything is inflated.
        let honest = dir.write(good, to: "honest.zip")
        Kit.expectError("\(honest): member 'bomb.bin' is \(64 << 20) bytes uncompressed, more than the limit of 1048576 bytes") {
            _ = try ZipArchive(path: honest).read(named: "bomb.bin", maxBytes: 1 << 20)
        }
        // A claim beyond deflate's 1032:1 limit is refused before anything is allocated.
        var impossible = good
        let compressedSize = Int(Kit.get32(good, central + 20))
        Kit.put32(&impossible, central + 24, UInt32(compressedSize * 1032 + 1025))
        let impossiblePath = dir.write(impossible, to: "impossible.zip")
        Kit.expectError("\(impossiblePath): corrupt zip: member 'bomb.bin' claims \(compressedSize * 1032 + 1025) bytes from \(compressedSize) compressed bytes, more than deflate can produce") {
            _ = try ZipArchive(path: impossiblePath).read(named: "bomb.bin")
        }
        // And a member that inflates to less than it claims.
        var short = good
        Kit.put32(&short, central + 24, (64 << 20) + 10)
        let shortPath = dir.write(short, to: "short.zip")
        Kit.expectError("\(shortPath): member 'bomb.bin' decompresses to \(64 << 20) bytes, not its declared \((64 << 20) + 10)") {
            _ = try ZipArchive(path: shortPath).read(named: "bomb.bin")
        }
    }

    @Test func reportsDamagedDeflateData() throws {
        let dir = Kit.TemporaryDirectory()
        let payload = Array("a line of text that compresses\n".utf8)
        let good = try Kit.makeZip(in: dir, [("t.txt", Array(repeating: payload, count: 200).flatMap { $0 }, .deflate)])
        let central = try #require(Kit.offsets(of: Kit.centralSignature, in: good).first)
        let local = try #require(Kit.offsets(of: Kit.localSignature, in: good).first)

        var garbage = good
        garbage[local + 30 + 5] = 0xFF                      // an invalid block type
        let garbagePath = dir.write(garbage, to: "garbage.zip")
        Kit.expectError("\(garbagePath): member 't.txt': corrupt deflate data: invalid block type") {
            _ = try ZipArchive(path: garbagePath).read(named: "t.txt")
        }

        // Claiming fewer compressed bytes cuts the stream short.
        var cut = good
        Kit.put32(&cut, central + 20, 10)
        let cutPath = dir.write(cut, to: "cut.zip")
        Kit.expectError("\(cutPath): member 't.txt': its deflate data ends after 10 compressed bytes, before the end of the stream") {
            _ = try ZipArchive(path: cutPath).read(named: "t.txt")
        }
    }

    @Test func extractsAMemberToAFile() throws {
        let dir = Kit.TemporaryDirectory()
        let payload = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 / 3) }
        _ = try Kit.makeZip(in: dir, [("model.weights.h5", payload, .deflate)])
        let zip = try ZipArchive(path: dir.file("made.zip"))
        try zip.extract(try #require(zip.entry(named: "model.weights.h5")), to: dir.file("out.h5"))
        #expect(Kit.readBytes(dir.file("out.h5")) == payload)
    }
}

@Suite struct ZipWritingTests {
    typealias Kit = ZipTestKit

    @Test(arguments: [false, true])
    func pythonReadsWhatWeWrite(forceZip64: Bool) throws {
        let dir = Kit.TemporaryDirectory()
        let text = Array("naïve text ✓\n".utf8)
        let binary = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 7) }
        _ = try Kit.makeZip(in: dir, [("dir/naïve.txt", text, .deflate), ("bin.dat", binary, .stored),
                                      ("empty", [], .stored), ("empty.z", [], .deflate)],
                            forceZip64: forceZip64)
        let path = dir.file("made.zip")
        let report = Kit.json(try Kit.python("""
            import zipfile, sys, json
            z = zipfile.ZipFile(sys.argv[1])
            assert z.testzip() is None
            print(json.dumps({'names': z.namelist(),
                              'methods': [i.compress_type for i in z.infolist()],
                              'data': [z.read(n).hex() for n in z.namelist()]}))
            """, [path]))
        #expect(report["names"] as? [String] == ["dir/naïve.txt", "bin.dat", "empty", "empty.z"])
        #expect(report["methods"] as? [Int] == [8, 0, 0, 8])
        #expect(report["data"] as? [String] == [Kit.hex(text), Kit.hex(binary), "", ""])

        // And we read it back, Zip64 records or not.
        let zip = try ZipArchive(path: path)
        #expect(zip.entries.map(\.name) == ["dir/naïve.txt", "bin.dat", "empty", "empty.z"])
        #expect(try zip.read(named: "dir/naïve.txt") == text)
        #expect(try zip.read(named: "bin.dat") == binary)
        #expect(try zip.read(named: "empty") == [])
        #expect(try zip.read(named: "empty.z") == [])
        let bytes = Kit.readBytes(path)
        #expect(Kit.offsets(of: 0x0606_4b50, in: bytes).isEmpty == !forceZip64)
    }

    @Test func writesTheSameBytesEveryTime() throws {
        let dir = Kit.TemporaryDirectory()
        let a = try Kit.makeZip(in: dir, [("a", [1, 2, 3], .deflate)], name: "1.zip")
        let b = try Kit.makeZip(in: dir, [("a", [1, 2, 3], .deflate)], name: "2.zip")
        #expect(a == b)
    }

    @Test func rejectsBadNames() throws {
        let dir = Kit.TemporaryDirectory()
        let path = dir.file("names.zip")
        let writer = try ZipWriter(path: path)
        try writer.addMember(name: "ok/name.npy", bytes: [1])
        let reasons: [(String, String)] = [
            ("", "the name is empty"),
            ("a\u{0}b", "the name contains a NUL character"),
            ("/etc/passwd", "the name is an absolute path, contains a backslash or a '..' component"),
            ("../up", "the name is an absolute path, contains a backslash or a '..' component"),
            ("ok/name.npy", "a member with this name was already added"),
        ]
        for (name, reason) in reasons {
            Kit.expectError("\(path): cannot store member '\(name)': \(reason)") {
                try writer.addMember(name: name, bytes: [])
            }
        }
        Kit.expectError("\(path): member 'x.bz2' uses compression method 12 (bzip2), which is not supported") {
            try writer.addMember(name: "x.bz2", bytes: [1], method: ZipMethod(rawValue: 12))
        }
        try writer.finish()
        #expect(try ZipArchive(path: path).entries.map(\.name) == ["ok/name.npy"])
    }

    @Test func leavesNothingBehindWhenNotFinished() throws {
        let dir = Kit.TemporaryDirectory()
        do {
            let writer = try ZipWriter(path: dir.file("never.zip"))
            try writer.addMember(name: "a", bytes: [1, 2, 3])
        }
        #expect(dir.contents().isEmpty)

        // An existing file stays as it was until the new one is complete.
        let old = dir.write([9, 9, 9], to: "kept.zip")
        do {
            let writer = try ZipWriter(path: old)
            try writer.addMember(name: "a", bytes: [1, 2, 3])
            #expect(Kit.readBytes(old) == [9, 9, 9])
        }
        #expect(Kit.readBytes(old) == [9, 9, 9])
        #expect(dir.contents() == ["kept.zip"])
    }
}
