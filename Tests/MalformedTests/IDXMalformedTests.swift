import NNCompression
import NNData
import Testing

/// IDX bytes: magic, type code, rank, big-endian dimensions, then `data`.
func idxBytes(type: UInt8 = 0x08, dims: [UInt32], data: [UInt8] = []) -> [UInt8] {
    var out: [UInt8] = [0, 0, type, UInt8(dims.count)]
    for d in dims { out.be(d) }
    return out + data
}

/// Three 2x2 i16 images: a 16-byte header and 24 bytes of data.
let idxImages = idxBytes(type: 0x0B, dims: [3, 2, 2], data: (0..<24).map { UInt8($0 * 7 & 0xff) })

private let known = "(known: 0x08 u8, 0x09 i8, 0x0B i16, 0x0C i32, 0x0D f32, 0x0E f64)"

/// The header: magic, type code, rank, dimensions and their overflow.
let idxHeaderCases: [MalformedCase] = {
    let p = "d.idx: "
    let magic = ", an IDX file starts with 00 00, a type code and a rank"
    return [
        MalformedCase("empty", [], p + "empty file: an IDX file starts with a 4-byte magic number"),
        MalformedCase("one zero byte", [0], p + "truncated header: the header needs 4 bytes, the file has 1"),
        MalformedCase("two zero bytes", [0, 0], p + "truncated header: the header needs 4 bytes, the file has 2"),
        MalformedCase("no rank", [0, 0, 8], p + "truncated header: the header needs 4 bytes, the file has 3"),
        MalformedCase("first byte not zero", [1], p + "not an IDX file: it starts with 01" + magic),
        MalformedCase("second byte not zero", [0, 3, 8, 1], p + "not an IDX file: it starts with 00 03 08 01" + magic),
        MalformedCase("a gzip file read as plain", [0x1f, 0x8b, 0x08, 0x00, 0, 0], p + "not an IDX file: it starts with 1f 8b 08 00" + magic),
        MalformedCase("a PGM image", Array("P5\n28 28\n255\n".utf8), p + "not an IDX file: it starts with 50 35 0a 32" + magic),
        MalformedCase("unknown type code 0x07", [0, 0, 7, 1, 0, 0, 0, 0], p + "unknown IDX type code 0x07 " + known),
        MalformedCase("unknown type code 0xFF", [0, 0, 0xFF, 1], p + "unknown IDX type code 0xFF " + known),
        MalformedCase("rank 0", [0, 0, 8, 0], p + "IDX rank 0: a file needs at least one dimension"),
        MalformedCase("rank 9", idxBytes(dims: [UInt32](repeating: 1, count: 9), data: [1]), p + "IDX rank 9 is larger than the supported maximum of 8"),
        MalformedCase("rank 255", [0, 0, 8, 255] + [UInt8](repeating: 0, count: 16), p + "IDX rank 255 is larger than the supported maximum of 8"),
        MalformedCase("rank 3, no dimensions", [0, 0, 8, 3], p + "truncated header: the header needs 16 bytes, the file has 4"),
        MalformedCase("rank 3, one dimension", idxImages.prefixArray(8), p + "truncated header: the header needs 16 bytes, the file has 8"),
        MalformedCase("rank 3, inside the last dimension", idxImages.prefixArray(15), p + "truncated header: the header needs 16 bytes, the file has 15"),
        MalformedCase("four maximal dimensions", idxBytes(dims: [.max, .max, .max, .max]),
                      p + "the dimensions 4294967295x4294967295x4294967295x4294967295 overflow: their size in bytes does not fit in 64 bits"),
        MalformedCase("element count fits, bytes do not", idxBytes(type: 0x0E, dims: [.max, 0x7FFF_FFFF]),
                      p + "the dimensions 4294967295x2147483647 overflow: their size in bytes does not fit in 64 bits"),
    ]
}()

/// The data after the header: truncation at every element boundary, trailing bytes, huge claims.
let idxDataCases: [MalformedCase] = {
    let p = "d.idx: "
    var cases: [MalformedCase] = []
    for end in [16, 17, 18, 24, 32, 39] {
        cases.append(MalformedCase("images cut at byte \(end)", idxImages.prefixArray(end),
                                   p + "truncated: the header declares 3x2x2 i16 (24 bytes of data), the file has \(end - 16)"))
    }
    cases += [
        MalformedCase("labels with two extra bytes", idxBytes(dims: [3], data: [7, 2, 1, 0, 0]),
                      p + "trailing bytes: the header declares 3 u8 (3 bytes of data), the file has 5 (2 too many)"),
        MalformedCase("a second file appended", idxImages + idxImages,
                      p + "trailing bytes: the header declares 3x2x2 i16 (24 bytes of data), the file has 64 (40 too many)"),
        MalformedCase("MNIST claimed, 10 bytes present", idxBytes(dims: [60000, 28, 28], data: [UInt8](repeating: 0, count: 10)),
                      p + "truncated: the header declares 60000x28x28 u8 (47040000 bytes of data), the file has 10"),
        MalformedCase("32 GiB of f64 claimed", idxBytes(type: 0x0E, dims: [.max], data: [1, 2, 3]),
                      p + "truncated: the header declares 4294967295 f64 (34359738360 bytes of data), the file has 3"),
        MalformedCase("empty array with data", idxBytes(dims: [0, 28, 28], data: [9]),
                      p + "trailing bytes: the header declares 0x28x28 u8 (0 bytes of data), the file has 1 (1 too many)"),
    ]
    return cases
}()

/// gzip damage, read the way the tools read: `IDXFile(path:)`, which gunzips by the magic.
let gzipCases: [MalformedCase] = {
    let p = "d.idx.gz: "
    let good = gzipped(idxImages)
    let n = good.count
    func truncated(_ count: Int) -> String { p + "unexpected end of gzip stream after \(count) compressed bytes (the file is truncated)" }
    var badCRC = good
    badCRC[n - 8] ^= 0x01
    var badLength = good
    badLength[n - 4] ^= 0x01
    var badMethod = good
    badMethod[2] = 7
    var reservedFlags = good
    reservedFlags[3] = 0xE0
    var reservedBlockType = good
    reservedBlockType[10] |= 0b110
    let twoMembers = gzipped(Array(idxImages[0..<20])) + gzipped(Array(idxImages[20...]))
    return [
        MalformedCase("magic only", Array(good[0..<2]), truncated(2)),
        MalformedCase("gzip header only", Array(good[0..<10]), truncated(10)),
        MalformedCase("half the deflate data", Array(good[0..<(10 + (n - 18) / 2)]), truncated(10 + (n - 18) / 2)),
        MalformedCase("no trailer", Array(good[0..<(n - 8)]), truncated(n - 8)),
        MalformedCase("half the trailer", Array(good[0..<(n - 4)]), truncated(n - 4)),
        MalformedCase("one byte short", Array(good[0..<(n - 1)]), truncated(n - 1)),
        MalformedCase("second member cut", Array(twoMembers[0..<(twoMembers.count - 3)]), truncated(twoMembers.count - 3)),
        MalformedCase("CRC-32 in the trailer wrong", badCRC, p + "corrupt gzip data: incorrect data check"),
        MalformedCase("length in the trailer wrong", badLength, p + "corrupt gzip data: incorrect length check"),
        MalformedCase("compression method 7", badMethod, p + "corrupt gzip data: unknown compression method"),
        MalformedCase("reserved header flags", reservedFlags, p + "corrupt gzip data: unknown header flags set"),
        MalformedCase("reserved deflate block type", reservedBlockType, p + "corrupt gzip data: invalid block type"),
        MalformedCase("trailing garbage", good + Array("junk".utf8),
                      p + "unexpected data after the end of the gzip stream at compressed byte \(n)"),
        MalformedCase("valid gzip of a truncated file", gzipped(idxImages.prefixArray(30)),
                      p + "truncated: the header declares 3x2x2 i16 (24 bytes of data), the file has 14"),
        MalformedCase("valid gzip of a file with trailing bytes", gzipped(idxImages + [0]),
                      p + "trailing bytes: the header declares 3x2x2 i16 (24 bytes of data), the file has 25 (1 too many)"),
        MalformedCase("valid gzip of garbage", gzipped(Array("hello".utf8)),
                      p + "not an IDX file: it starts with 68 65 6c 6c, an IDX file starts with 00 00, a type code and a rank"),
    ]
}()

@Suite struct IDXMalformed {
    @Test(arguments: idxHeaderCases + idxDataCases) func inMemory(_ c: MalformedCase) {
        expectMessage(c.message) { _ = try IDXFile(bytes: c.bytes, name: "d.idx") }
    }

    @Test(arguments: gzipCases) func gzip(_ c: MalformedCase) {
        let dir = ScratchDirectory()
        let path = dir.write(c.bytes, to: "d.idx.gz")
        expectMessage(c.message) { _ = try IDXFile(path: path, displayName: "d.idx.gz") }
    }

    @Test func validFilesStillRead() throws {
        let dir = ScratchDirectory()
        #expect(try IDXFile(bytes: idxImages, name: "d.idx").dims == [3, 2, 2])
        let padded = dir.write(gzipped(idxImages) + [0, 0, 0, 0], to: "padded.gz")
        #expect(try IDXFile(path: padded).elementCount == 12)
        let twoMembers = dir.write(gzipped(Array(idxImages[0..<20])) + gzipped(Array(idxImages[20...])), to: "two.gz")
        #expect(try IDXFile(path: twoMembers).elementCount == 12)
    }

    /// A small file that decompresses past the caller's limit stops at the limit.
    @Test func decompressionStopsAtTheLimit() {
        let dir = ScratchDirectory()
        let bomb = dir.write(gzipped(idxBytes(dims: [100_000], data: [UInt8](repeating: 0, count: 100_000))), to: "bomb.gz")
        expectMessage("bomb.gz: the decompressed data is larger than the limit of 1000 bytes") {
            _ = try IDXFile(path: bomb, maxBytes: 1000, displayName: "bomb.gz")
        }
        let plain = dir.write(idxBytes(dims: [2000], data: [UInt8](repeating: 0, count: 2000)), to: "plain.idx")
        expectMessage("plain.idx: the file is larger than the limit of 1000 bytes") {
            _ = try IDXFile(path: plain, maxBytes: 1000, displayName: "plain.idx")
        }
    }

    /// The streaming reader reports the same problems as the whole-file reader.
    @Test func streamingReaderReportsTheSameErrors() {
        let dir = ScratchDirectory()
        let plain = dir.write(idxImages.prefixArray(30), to: "cut.idx")
        expectMessage("cut.idx: truncated: the header declares 3x2x2 i16 (24 bytes of data), the file has 14") {
            _ = try IDXImageStream(path: plain, batchSize: 2, displayName: "cut.idx")
        }
        let gz = dir.write(gzipped(idxImages + [1, 2]), to: "extra.gz")
        expectMessage("extra.gz: trailing bytes: the header declares 3x2x2 i16 (24 bytes of data), the file has 26 (2 too many)") {
            let stream = try IDXImageStream(path: gz, batchSize: 2, displayName: "extra.gz")
            while try stream.nextBatch() != nil {}
        }
        let cutGzip = gzipped(idxImages)
        let cut = dir.write(Array(cutGzip[0..<(cutGzip.count - 8)]), to: "cut.gz")
        expectMessage("cut.gz: unexpected end of gzip stream after \(cutGzip.count - 8) compressed bytes (the file is truncated)") {
            let stream = try IDXImageStream(path: cut, batchSize: 2, displayName: "cut.gz")
            while try stream.nextBatch() != nil {}
        }
    }
}
