import Foundation
import NNCompression
import NNData
import Testing

/// Every bad input, read whole and streamed, with its exact message.
@Suite struct IDXErrorTests {
    /// Checks the message from `IDXFile`, `IDXImages`, and `IDXImageStream` (opening plus reading
    /// every batch), each of which must report the same first problem.
    private func expectAllReaders(_ path: String, _ message: String,
                                  sourceLocation: SourceLocation = #_sourceLocation) {
        expectError(message, sourceLocation: sourceLocation) { _ = try IDXFile(path: path) }
        expectError(message, sourceLocation: sourceLocation) { _ = try IDXImages(path: path) }
        expectError(message, sourceLocation: sourceLocation) {
            let stream = try IDXImageStream(path: path, batchSize: 4)
            while try stream.nextBatch() != nil {}
        }
    }

    /// The same bytes as a plain file and gzip-compressed must give the same IDX error.
    private func expectPlainAndGzip(_ dir: TemporaryDirectory, _ name: String, _ bytes: [UInt8],
                                    _ message: (String) -> String,
                                    sourceLocation: SourceLocation = #_sourceLocation) throws {
        let plain = dir.write(bytes, to: name)
        expectAllReaders(plain, message(plain), sourceLocation: sourceLocation)
        let gz = dir.write(try Deflate.compress(bytes, format: .gzip), to: name + ".gz")
        expectAllReaders(gz, message(gz), sourceLocation: sourceLocation)
    }

    @Test func emptyFile() throws {
        let dir = TemporaryDirectory()
        try expectPlainAndGzip(dir, "empty", []) { "\($0): empty file: an IDX file starts with a 4-byte magic number" }
    }

    @Test func wrongMagic() throws {
        let dir = TemporaryDirectory()
        try expectPlainAndGzip(dir, "magic", [1, 2, 8, 1, 0, 0, 0, 1, 5]) {
            "\($0): not an IDX file: it starts with 01 02 08 01, an IDX file starts with 00 00, a type code and a rank"
        }
        try expectPlainAndGzip(dir, "zip", Array("PK\u{3}\u{4}rest".utf8)) {
            "\($0): not an IDX file: it starts with 50 4b 03 04, an IDX file starts with 00 00, a type code and a rank"
        }
        try expectPlainAndGzip(dir, "one-byte", [0x41]) {
            "\($0): not an IDX file: it starts with 41, an IDX file starts with 00 00, a type code and a rank"
        }
        try expectPlainAndGzip(dir, "second-byte", [0, 7, 8, 1]) {
            "\($0): not an IDX file: it starts with 00 07 08 01, an IDX file starts with 00 00, a type code and a rank"
        }
    }

    @Test func unknownTypeCode() throws {
        let dir = TemporaryDirectory()
        try expectPlainAndGzip(dir, "type", rawHeader(type: 0x07, dims: [1]) + [0]) {
            "\($0): unknown IDX type code 0x07 (known: 0x08 u8, 0x09 i8, 0x0B i16, 0x0C i32, 0x0D f32, 0x0E f64)"
        }
        try expectPlainAndGzip(dir, "typeA", [0, 0, 0x0A, 1, 0, 0, 0, 0]) {
            "\($0): unknown IDX type code 0x0A (known: 0x08 u8, 0x09 i8, 0x0B i16, 0x0C i32, 0x0D f32, 0x0E f64)"
        }
    }

    @Test func badRanks() throws {
        let dir = TemporaryDirectory()
        try expectPlainAndGzip(dir, "rank0", [0, 0, 8, 0]) { "\($0): IDX rank 0: a file needs at least one dimension" }
        try expectPlainAndGzip(dir, "rank9", [0, 0, 8, 9] + [UInt8](repeating: 0, count: 36)) {
            "\($0): IDX rank 9 is larger than the supported maximum of 8"
        }
        try expectPlainAndGzip(dir, "rank255", [0, 0, 8, 255]) {
            "\($0): IDX rank 255 is larger than the supported maximum of 8"
        }
    }

    @Test func truncatedHeader() throws {
        let dir = TemporaryDirectory()
        try expectPlainAndGzip(dir, "short3", [0, 0, 8]) {
            "\($0): truncated header: the header needs 4 bytes, the file has 3"
        }
        try expectPlainAndGzip(dir, "shortdims", [0, 0, 8, 3, 0, 0, 0, 10, 0, 0]) {
            "\($0): truncated header: the header needs 16 bytes, the file has 10"
        }
    }

    @Test func dimensionOverflow() throws {
        let dir = TemporaryDirectory()
        try expectPlainAndGzip(dir, "overflow", rawHeader(type: 0x08, dims: [UInt32.max, UInt32.max, UInt32.max]) + [1, 2, 3]) {
            "\($0): the dimensions 4294967295x4294967295x4294967295 overflow: their size in bytes does not fit in 64 bits"
        }
        // The element count fits in 64 bits, the byte count (8 per f64) does not.
        try expectPlainAndGzip(dir, "overflow-bytes", rawHeader(type: 0x0E, dims: [UInt32.max, 0x7FFF_FFFF])) {
            "\($0): the dimensions 4294967295x2147483647 overflow: their size in bytes does not fit in 64 bits"
        }
        try expectPlainAndGzip(dir, "overflow-rank8", rawHeader(type: 0x08, dims: [UInt32](repeating: 256, count: 8))) {
            "\($0): the dimensions 256x256x256x256x256x256x256x256 overflow: their size in bytes does not fit in 64 bits"
        }
    }

    /// Exabyte-sized claims over a few bytes of data: every reader must report truncation
    /// without trying to allocate what the header claims (that would crash the test process).
    @Test func hugeDimensionsOverTinyData() throws {
        let dir = TemporaryDirectory()
        try expectPlainAndGzip(dir, "huge2", rawHeader(type: 0x08, dims: [0x7FFF_FFFF, 0x7FFF_FFFF]) + [UInt8](repeating: 9, count: 10)) {
            "\($0): truncated: the header declares 2147483647x2147483647 u8 (4611686014132420609 bytes of data), the file has 10"
        }
        try expectPlainAndGzip(dir, "huge3", rawHeader(type: 0x08, dims: [2, 0x7FFF_FFFF, 0x7FFF_FFFF]) + [1]) {
            "\($0): truncated: the header declares 2x2147483647x2147483647 u8 (9223372028264841218 bytes of data), the file has 1"
        }
        try expectPlainAndGzip(dir, "many", rawHeader(type: 0x0D, dims: [4_000_000_000, 1]) + [0, 0, 0]) {
            "\($0): truncated: the header declares 4000000000x1 f32 (16000000000 bytes of data), the file has 3"
        }
    }

    @Test func truncatedData() throws {
        let dir = TemporaryDirectory()
        let header = rawHeader(type: 0x08, dims: [3, 4, 5])
        try expectPlainAndGzip(dir, "trunc", header + [UInt8](repeating: 7, count: 59)) {
            "\($0): truncated: the header declares 3x4x5 u8 (60 bytes of data), the file has 59"
        }
        try expectPlainAndGzip(dir, "nodata", header) {
            "\($0): truncated: the header declares 3x4x5 u8 (60 bytes of data), the file has 0"
        }
        // A cut in the middle of an element.
        try expectPlainAndGzip(dir, "half-i16", rawHeader(type: 0x0B, dims: [3]) + [0, 1, 0, 2, 0]) {
            "\($0): truncated: the header declares 3 i16 (6 bytes of data), the file has 5"
        }
    }

    @Test func trailingBytes() throws {
        let dir = TemporaryDirectory()
        let header = rawHeader(type: 0x08, dims: [3, 4, 5])
        try expectPlainAndGzip(dir, "trail", header + [UInt8](repeating: 7, count: 61)) {
            "\($0): trailing bytes: the header declares 3x4x5 u8 (60 bytes of data), the file has 61 (1 too many)"
        }
        try expectPlainAndGzip(dir, "trail-big", rawHeader(type: 0x0D, dims: [2]) + [UInt8](repeating: 0, count: 200_008)) {
            "\($0): trailing bytes: the header declares 2 f32 (8 bytes of data), the file has 200008 (200000 too many)"
        }
    }

    /// The example from the design: a copy of the MNIST test images that lost its last 1000 bytes.
    @Test(.enabled(if: fileExists(mnistDirectory + "/t10k-images-idx3-ubyte.gz")))
    func realFileMissingItsEnd() throws {
        let dir = TemporaryDirectory()
        let raw = try readMaybeGzip(path: mnistDirectory + "/t10k-images-idx3-ubyte.gz", maxBytes: 1 << 24)
        let path = dir.write(Array(raw.dropLast(1000)), to: "t10k.idx")
        expectError("t10k.idx: truncated: the header declares 10000x28x28 u8 (7840000 bytes of data), the file has 7839000") {
            _ = try IDXFile(path: path, displayName: "t10k.idx")
        }
        expectError("t10k.idx: truncated: the header declares 10000x28x28 u8 (7840000 bytes of data), the file has 7839000") {
            _ = try IDXImageStream(path: path, batchSize: 100, displayName: "t10k.idx")
        }
        // Compressed, the stream only finds out at the end, after handing out the complete batches.
        let gz = dir.write(try Deflate.compress(Array(raw.dropLast(1000)), format: .gzip, level: 1), to: "t10k.idx.gz")
        let stream = try IDXImageStream(path: gz, batchSize: 1000, displayName: "t10k.idx.gz")
        var batches = 0
        expectError("t10k.idx.gz: truncated: the header declares 10000x28x28 u8 (7840000 bytes of data), the file has 7839000") {
            while try stream.nextBatch() != nil { batches += 1 }
        }
        #expect(batches == 9)
    }

    @Test func truncatedGzipStream() throws {
        let dir = TemporaryDirectory()
        let idx = rawHeader(type: 0x08, dims: [100, 10]) + (0..<1000).map { UInt8($0 % 251) }
        let gz = try Deflate.compress(idx, format: .gzip, level: 0)
        for keep in [5, 40, gz.count / 2, gz.count - 8, gz.count - 1] {
            let path = dir.write(Array(gz.prefix(keep)), to: "cut\(keep).gz")
            expectAllReaders(path, "\(path): unexpected end of gzip stream after \(keep) compressed bytes (the file is truncated)")
        }
    }

    @Test func corruptGzip() throws {
        let dir = TemporaryDirectory()
        let idx = rawHeader(type: 0x08, dims: [100, 10]) + (0..<1000).map { UInt8($0 % 251) }
        let gz = try Deflate.compress(idx, format: .gzip)
        var badBlock = gz
        badBlock[10] = 0x07
        let blockPath = dir.write(badBlock, to: "block.gz")
        expectAllReaders(blockPath, "\(blockPath): corrupt gzip data: invalid block type")
        var badCRC = gz
        badCRC[gz.count - 6] ^= 0x10
        let crcPath = dir.write(badCRC, to: "crc.gz")
        expectAllReaders(crcPath, "\(crcPath): corrupt gzip data: incorrect data check")
        let garbagePath = dir.write(gz + Array("garbage".utf8), to: "garbage.gz")
        expectAllReaders(garbagePath, "\(garbagePath): unexpected data after the end of the gzip stream at compressed byte \(gz.count)")
    }

    @Test func unreadableFiles() throws {
        let dir = TemporaryDirectory()
        let missing = dir.file("missing.idx")
        expectAllReaders(missing, "\(missing): cannot open: No such file or directory")
        expectAllReaders(dir.path, "\(dir.path): read failed: Is a directory")
        let big = dir.write(rawHeader(type: 0x08, dims: [100]) + [UInt8](repeating: 0, count: 100), to: "big.idx")
        expectError("\(big): the file is larger than the limit of 50 bytes") { _ = try IDXFile(path: big, maxBytes: 50) }
        let bigGz = dir.write(try Deflate.compress(dir.read("big.idx"), format: .gzip), to: "big.idx.gz")
        expectError("\(bigGz): the decompressed data is larger than the limit of 50 bytes") { _ = try IDXFile(path: bigGz, maxBytes: 50) }
    }

    @Test func errorsAreTyped() throws {
        let dir = TemporaryDirectory()
        let path = dir.write(rawHeader(type: 0x08, dims: [3]) + [1, 2], to: "typed")
        #expect(throws: IDXError.truncated(path: path, dims: [3], type: .u8, expectedBytes: 3, foundBytes: 2)) {
            _ = try IDXFile(path: path)
        }
        let cut = dir.write([0x1f, 0x8b, 8, 0], to: "cut.gz")
        #expect(throws: IDXError.compression(.truncated(name: cut, format: .gzip, compressedBytes: 4))) {
            _ = try IDXFile(path: cut)
        }
    }
}
