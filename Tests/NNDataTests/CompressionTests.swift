import Foundation
import NNCompression
import Testing

/// Fixtures made by Python (`gzip.compress(data, mtime=0)`, `zlib.compressobj(wbits=-15)`,
/// `zlib.compress`), so decompression is checked against another implementation.
private let helloText = Array("hello, world\nhello, world\nhello, world\n".utf8)
private let helloGzip = hexBytes("1f8b0800000000000203cb48cdc9c9d75128cf2fca49e1cac0c90100f04cf9e627000000")
private let secondGzip = hexBytes("1f8b08000000000002032b4e4dcecf4b51c84dcd4d4a2de2020036184b0e0e000000")
private let helloRaw = hexBytes("cb48cdc9c9d75128cf2fca49e1cac0c90100")
private let helloZlib = hexBytes("789ccb48cdc9c9d75128cf2fca49e1cac0c9010018020db7")

/// 300,000 bytes with a CRC Python computed: `bytes((i*7+i//13)%256 for i in range(300000))`.
private let patterned: [UInt8] = (0..<300_000).map { UInt8(($0 * 7 + $0 / 13) % 256) }
private let patternedCRC: UInt32 = 0x934f_0768

@Suite struct CompressionTests {
    @Test func decompressesPythonGzipZlibAndRawDeflate() throws {
        #expect(try Inflate.decompress(helloGzip, format: .gzip, maxBytes: 1000, name: "g") == helloText)
        #expect(try Inflate.decompress(helloGzip, format: .gzipOrZlib, maxBytes: 1000, name: "g") == helloText)
        #expect(try Inflate.decompress(helloZlib, format: .gzipOrZlib, maxBytes: 1000, name: "z") == helloText)
        #expect(try Inflate.decompress(helloZlib, format: .zlib, maxBytes: 1000, name: "z") == helloText)
        #expect(try Inflate.decompress(helloRaw, format: .rawDeflate, maxBytes: 1000, name: "r") == helloText)
        #expect(CRC32.checksum(helloText) == 0xe6f9_4cf0)
    }

    /// Long buffers take the carry-less-multiplication path (from 128 bytes on); the expected
    /// values are Python's: d = bytes(i*7%251 for i in range(1<<20)); zlib.crc32(d),
    /// zlib.crc32(d[:1000003]), zlib.crc32(d[5:5+777]), zlib.crc32(d[:200], zlib.crc32(b'abc')).
    @Test func longBuffersMatchPythonsCRC() {
        let d = (0..<(1 << 20)).map { UInt8($0 * 7 % 251) }
        #expect(CRC32.checksum(d) == 0xf1ee_d7ff)
        #expect(CRC32.checksum(Array(d[..<1_000_003])) == 0x1399_ed12)
        #expect(CRC32.checksum(Array(d[5..<(5 + 777)])) == 0xc75e_dcb3)
        var running = CRC32()
        Array("abc".utf8).withUnsafeBytes { running.update($0) }
        Array(d[..<200]).withUnsafeBytes { running.update($0) }
        #expect(running.value == 0x641c_92fc)
        // Fed in uneven pieces, the same as whole.
        var pieces = CRC32()
        d.withUnsafeBytes { all in
            var start = 0
            for size in [1, 127, 128, 129, 4096, 63, 100_000] + [Int](repeating: 200_000, count: 5) where start < all.count {
                let end = min(start + size, all.count)
                pieces.update(UnsafeRawBufferPointer(rebasing: all[start..<end]))
                start = end
            }
            if start < all.count { pieces.update(UnsafeRawBufferPointer(rebasing: all[start...])) }
        }
        #expect(pieces.value == 0xf1ee_d7ff)
    }

    @Test func concatenatedGzipMembersReadAsOneStream() throws {
        let joined = helloGzip + secondGzip
        #expect(try Inflate.decompress(joined, format: .gzip, maxBytes: 1000, name: "j")
            == helloText + Array("second member\n".utf8))
        // Zero padding after the last member is what tape-style writers leave; it is not data.
        #expect(try Inflate.decompress(joined + [0, 0, 0, 0], format: .gzip, maxBytes: 1000, name: "j")
            == helloText + Array("second member\n".utf8))
    }

    @Test func gzipRoundTripInSmallPieces() throws {
        var compressed: [UInt8] = []
        let stream = try DeflateStream(format: .gzip, level: 9, name: "mem", outputChunkSize: 100) { chunk in
            #expect(chunk.count <= 100)
            compressed.append(contentsOf: chunk)
        }
        try patterned.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = min(7777, raw.count - offset)
                try stream.write(UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + n)]))
                offset += n
            }
        }
        try stream.finish()
        #expect(stream.totalIn == patterned.count)
        #expect(stream.totalOut == compressed.count)
        #expect(compressed.count < patterned.count / 10)
        #expect(Array(compressed.prefix(3)) == [0x1f, 0x8b, 0x08])
        // The gzip trailer holds CRC-32 and length little-endian; the CRC was computed by Python.
        let n = compressed.count
        let crc = UInt32(compressed[n - 8]) | UInt32(compressed[n - 7]) << 8
            | UInt32(compressed[n - 6]) << 16 | UInt32(compressed[n - 5]) << 24
        #expect(crc == patternedCRC)
        #expect(CRC32.checksum(patterned) == patternedCRC)

        // Read back through deliberately small input chunks and output buffers.
        let inflater = try InflateStream(source: MemoryByteSource(compressed, name: "mem"), format: .gzip,
                                         inputChunkSize: 13)
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1000)
        while true {
            let got = try buffer.withUnsafeMutableBytes { try inflater.read(into: $0) }
            if got == 0 { break }
            out += buffer[..<got]
        }
        #expect(out == patterned)
        #expect(inflater.totalOut == patterned.count)
    }

    @Test func rawDeflateAndZlibRoundTrip() throws {
        for format in [CompressionFormat.rawDeflate, .zlib, .gzip] {
            for level in [0, 1, 6, 9] {
                let packed = try Deflate.compress(patterned, format: format, level: level)
                #expect(try Inflate.decompress(packed, format: format, maxBytes: patterned.count,
                                               name: "x") == patterned)
            }
            let empty = try Deflate.compress([UInt8](), format: format)
            #expect(try Inflate.decompress(empty, format: format, maxBytes: 0, name: "x") == [])
        }
        // Raw deflate has no header, so the same bytes are not valid gzip or zlib.
        let raw = try Deflate.compress(helloText, format: .rawDeflate)
        #expect(raw.first != 0x1f && raw.first != 0x78)
    }

    @Test func truncatedStreams() {
        expectError("data.gz: unexpected end of gzip stream after 30 compressed bytes (the file is truncated)") {
            _ = try Inflate.decompress(Array(helloGzip.prefix(30)), format: .gzip, maxBytes: 1000, name: "data.gz")
        }
        // Only the 8-byte trailer is missing: the data is complete but cannot be verified.
        expectError("data.gz: unexpected end of gzip stream after 28 compressed bytes (the file is truncated)") {
            _ = try Inflate.decompress(Array(helloGzip.prefix(28)), format: .gzipOrZlib, maxBytes: 1000, name: "data.gz")
        }
        expectError("m: unexpected end of deflate stream after 10 compressed bytes (the file is truncated)") {
            _ = try Inflate.decompress(Array(helloRaw.prefix(10)), format: .rawDeflate, maxBytes: 1000, name: "m")
        }
        expectError("z: unexpected end of zlib stream after 20 compressed bytes (the file is truncated)") {
            _ = try Inflate.decompress(Array(helloZlib.prefix(20)), format: .gzipOrZlib, maxBytes: 1000, name: "z")
        }
        expectError("e.gz: unexpected end of gzip stream after 0 compressed bytes (the file is truncated)") {
            _ = try Inflate.decompress([], format: .gzip, maxBytes: 1000, name: "e.gz")
        }
        // A second member cut short is as truncated as a first one.
        expectError("j.gz: unexpected end of gzip stream after 48 compressed bytes (the file is truncated)") {
            _ = try Inflate.decompress(Array((helloGzip + secondGzip).prefix(48)), format: .gzip, maxBytes: 1000, name: "j.gz")
        }
    }

    @Test func corruptStreamsReportZlibsMessage() {
        var badCRC = helloGzip
        badCRC[helloGzip.count - 8] ^= 0xff
        expectError("c.gz: corrupt gzip data: incorrect data check") {
            _ = try Inflate.decompress(badCRC, format: .gzip, maxBytes: 1000, name: "c.gz")
        }
        var badLength = helloGzip
        badLength[helloGzip.count - 4] ^= 0x01
        expectError("c.gz: corrupt gzip data: incorrect length check") {
            _ = try Inflate.decompress(badLength, format: .gzip, maxBytes: 1000, name: "c.gz")
        }
        // Block type 3 is reserved: byte 10 is the first deflate byte after the 10-byte header.
        var badBlock = helloGzip
        badBlock[10] = 0x07
        expectError("c.gz: corrupt gzip data: invalid block type") {
            _ = try Inflate.decompress(badBlock, format: .gzip, maxBytes: 1000, name: "c.gz")
        }
        var badMethod = helloGzip
        badMethod[2] = 0x07
        expectError("c.gz: corrupt gzip data: unknown compression method") {
            _ = try Inflate.decompress(badMethod, format: .gzip, maxBytes: 1000, name: "c.gz")
        }
        // Not starting with 1f 8b, it is taken for zlib.
        expectError("p: corrupt zlib data: incorrect header check") {
            _ = try Inflate.decompress(Array("plain text".utf8), format: .gzipOrZlib, maxBytes: 1000, name: "p")
        }
        expectError("t.gz: unexpected data after the end of the gzip stream at compressed byte 36") {
            _ = try Inflate.decompress(helloGzip + Array("junk".utf8), format: .gzip, maxBytes: 1000, name: "t.gz")
        }
        expectError("r: unexpected data after the end of the deflate stream at compressed byte 18") {
            _ = try Inflate.decompress(helloRaw + [1, 2], format: .rawDeflate, maxBytes: 1000, name: "r")
        }
    }

    @Test func outputLimitIsEnforcedWithoutReadingEverything() {
        expectError("big.gz: the decompressed data is larger than the limit of 1000 bytes") {
            let packed = try Deflate.compress(patterned, format: .gzip)
            _ = try Inflate.decompress(packed, format: .gzip, maxBytes: 1000, name: "big.gz")
        }
        // Exactly at the limit is fine.
        #expect((try? Inflate.decompress(helloGzip, format: .gzip, maxBytes: helloText.count, name: "g")) == helloText)
        expectError("g: the decompressed data is larger than the limit of 38 bytes") {
            _ = try Inflate.decompress(helloGzip, format: .gzip, maxBytes: helloText.count - 1, name: "g")
        }
    }

    @Test func readMaybeGzipDetectsByMagicNotName() throws {
        let dir = TemporaryDirectory()
        let gz = dir.write(helloGzip, to: "hello.bin")
        let plain = dir.write(helloText, to: "hello.gz")
        #expect(try readMaybeGzip(path: gz, maxBytes: 1 << 20) == helloText)
        #expect(try readMaybeGzip(path: plain, maxBytes: 1 << 20) == helloText)
        #expect(try readMaybeGzip(path: dir.write([], to: "empty"), maxBytes: 10) == [])
        #expect(try readMaybeGzip(path: dir.write([0x1f], to: "one"), maxBytes: 10) == [0x1f])
        // A wrong size in the trailer is only a hint; the data still decides.
        let joined = dir.write(helloGzip + secondGzip, to: "joined.gz")
        #expect(try readMaybeGzip(path: joined, maxBytes: 1 << 20) == helloText + Array("second member\n".utf8))

        expectError("\(plain): the file is larger than the limit of 10 bytes") {
            _ = try readMaybeGzip(path: plain, maxBytes: 10)
        }
        expectError("shown-name: the decompressed data is larger than the limit of 10 bytes") {
            _ = try readMaybeGzip(path: gz, maxBytes: 10, displayName: "shown-name")
        }
        expectError("\(dir.path)/missing: cannot open: No such file or directory") {
            _ = try readMaybeGzip(path: dir.path + "/missing", maxBytes: 10)
        }
        expectError("\(dir.path): read failed: Is a directory") {
            _ = try readMaybeGzip(path: dir.path, maxBytes: 10)
        }
    }

    @Test func fileSourceRangeReadsAZipStyleMember() throws {
        let dir = TemporaryDirectory()
        let path = dir.write(Array("HEADER".utf8) + helloRaw + Array("TAIL".utf8), to: "archive")
        let fd = open(path, O_RDONLY)
        #expect(fd >= 0)
        defer { close(fd) }
        let member = FileByteSource(descriptor: fd, name: "archive:member", offset: 6, length: helloRaw.count)
        let stream = try InflateStream(source: member, format: .rawDeflate)
        #expect(try stream.readAll(maxBytes: 1000) == helloText)
    }
}
