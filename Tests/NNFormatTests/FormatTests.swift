import Foundation
import NNCompression
import NNCore
import Testing
@testable import NNFormat
import NNSystem

func temporaryPath(_ name: String) -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("nnm-tests-\(UUID().uuidString)")
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir.appendingPathComponent(name).path
}

func fileBytes(_ path: String) -> [UInt8] { [UInt8](FileManager.default.contents(atPath: path) ?? Data()) }

/// Asserts that decoding `bytes` fails with exactly `expected`.
func expectFailure(_ bytes: [UInt8], _ expected: NNMError, sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        _ = try NNMFormat.decode(bytes: bytes, path: "m.nnm")
        Issue.record("decoding succeeded; expected \(expected)", sourceLocation: sourceLocation)
    } catch {
        #expect(error == expected, sourceLocation: sourceLocation)
    }
}

/// Asserts that decoding `bytes` fails with exactly the message `message`.
func expectFailure(_ bytes: [UInt8], message: String, sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        _ = try NNMFormat.decode(bytes: bytes, path: "m.nnm")
        Issue.record("decoding succeeded; expected '\(message)'", sourceLocation: sourceLocation)
    } catch {
        #expect(error.description == message, sourceLocation: sourceLocation)
    }
}

/// Asserts that decoding `bytes` fails with a message containing `fragment`.
func expectFailure(_ bytes: [UInt8], containing fragment: String, sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        _ = try NNMFormat.decode(bytes: bytes, path: "m.nnm")
        Issue.record("decoding succeeded; expected an error containing '\(fragment)'", sourceLocation: sourceLocation)
    } catch {
        #expect(error.description.contains(fragment), "\(error.description)", sourceLocation: sourceLocation)
        #expect(error.description.hasPrefix("m.nnm: "), sourceLocation: sourceLocation)
    }
}

@Suite struct RoundTrip {
    @Test(arguments: [DType.float32, .float64])
    func writeThenReadIsBitIdentical(dtype: DType) throws {
        let model = tinyModel(dtype: dtype)
        let path = temporaryPath("tiny.nnm")
        try NNMFormat.write(model, to: path)
        let back = try NNMFormat.read(path: path)
        #expect(back.metadata == model.metadata)
        #expect(back.tensors.map(\.name) == model.tensors.map(\.name))
        for (a, b) in zip(model.tensors, back.tensors) {
            #expect(a.tensor.isBitIdentical(to: b.tensor), "tensor \(a.name)")
        }
        // Rewriting what was read reproduces the file byte for byte.
        let again = temporaryPath("again.nnm")
        try NNMFormat.write(back, to: again)
        #expect(fileBytes(path) == fileBytes(again))
    }

    @Test func layoutFollowsTheSpec() throws {
        let path = temporaryPath("tiny.nnm")
        try NNMFormat.write(tinyModel(), to: path)
        let bytes = fileBytes(path)
        #expect(Array(bytes[0..<8]) == [0x89, 0x4E, 0x4E, 0x4D, 0x0D, 0x0A, 0x1A, 0x0A])
        func u64(_ at: Int) -> Int { (0..<8).reduce(0) { $0 | Int(bytes[at + $1]) << (8 * $1) } }
        let headerLength = u64(16), dataOffset = u64(24), dataLength = u64(32)
        #expect(dataOffset % 64 == 0)
        #expect(dataOffset == (48 + headerLength + 63) / 64 * 64)
        #expect(dataOffset + dataLength == bytes.count)
        // The first tensor (4x3 f32) starts the data section: its first value is 0.5f.
        let first = bytes[dataOffset..<(dataOffset + 4)]
        #expect(Array(first) == [0x00, 0x00, 0x00, 0x3F])
        let header = try JSONValue.parse(Array(bytes[48..<(48 + headerLength)]))
        let entries = header["tensors"]!.arrayValue!
        #expect(entries.count == 5)
        #expect(entries.allSatisfy { ($0["offset"]!.intValue! % 64) == 0 })
        #expect(entries[0]["crc32"]!.intValue! == Int(CRC32.checksum(Array(bytes[dataOffset..<(dataOffset + 48)]))))
    }

    @Test func unknownFieldsSurviveARewriteAndNewerMinorVersionsAreRead() throws {
        let model = tinyModel()
        var meta = model.metadata.json
        meta["future_member"] = .object(JSONObject([("answer", 42)]))
        var layers = meta["layers"]!.arrayValue!
        if case var .object(l0) = layers[0] { l0["dilation"] = 2; layers[0] = .object(l0) }
        meta["layers"] = .array(layers)
        let (_, entries) = NNMFormat.layout(model)
        var data: [UInt8] = []
        var table: [JSONValue] = []
        for (t, e) in zip(model.tensors, entries) {
            data += [UInt8](repeating: 0, count: e.offset - data.count)
            data += Array(t.tensor.bytes)
            table.append(.object(JSONObject([("name", .string(e.name)), ("dtype", .string(e.dtype.rawValue)),
                                             ("shape", .array(e.shape.map { .integer(Int64($0)) })),
                                             ("offset", .integer(Int64(e.offset))), ("length", .integer(Int64(e.length))),
                                             ("crc32", .integer(Int64(e.crc32)))])))
        }
        data += [UInt8](repeating: 0, count: (data.count + 63) / 64 * 64 - data.count)
        meta["tensors"] = .array(table)
        var builder = FileBuilder(header: JSONValue.object(meta).serialized(), data: data)
        builder.minor = 7
        let read = try NNMFormat.decode(bytes: builder.bytes(), path: "future.nnm")
        #expect(read.metadata.unknownFields["future_member"] == .object(JSONObject([("answer", 42)])))
        #expect(read.metadata.layers[0].unknownFields["dilation"] == 2)
        let path = temporaryPath("rewritten.nnm")
        try NNMFormat.write(read, to: path)
        let reread = try NNMFormat.read(path: path)
        #expect(reread.metadata.unknownFields["future_member"] == .object(JSONObject([("answer", 42)])))
        #expect(reread.metadata.layers[0].unknownFields["dilation"] == 2)
    }

    @Test func writingIsAtomicAndLeavesNoTemporaryFiles() throws {
        let path = temporaryPath("atomic.nnm")
        try NNMFormat.write(tinyModel(), to: path)
        let before = fileBytes(path)
        // An invalid model is refused before anything is written: the old file stays.
        var broken = tinyModel()
        broken.metadata.layers[1].inputSize = 5
        #expect(throws: NNMError.self) { try NNMFormat.write(broken, to: path) }
        #expect(fileBytes(path) == before)
        let dir = (path as NSString).deletingLastPathComponent
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["atomic.nnm"])
    }

    @Test func unwritableDestinationNamesThePath() {
        #expect(throws: NNMError.cannotCreate(path: "/nonexistent-dir/m.nnm", reason: "No such file or directory")) {
            try NNMFormat.write(tinyModel(), to: "/nonexistent-dir/m.nnm")
        }
    }
}

@Suite struct Integrity {
    @Test func everyFlippedByteInTheFileIsDetected() throws {
        let path = temporaryPath("tiny.nnm")
        try NNMFormat.write(tinyModel(), to: path)
        let bytes = fileBytes(path)
        var undetected: [Int] = []
        for i in 0..<bytes.count {
            var corrupt = bytes
            corrupt[i] ^= 0x01
            if (try? NNMFormat.decode(bytes: corrupt, path: "m.nnm")) != nil { undetected.append(i) }
        }
        #expect(undetected.isEmpty, "flips at offsets \(undetected) went undetected")
    }

    @Test func aFlippedTensorByteNamesTheTensor() throws {
        let path = temporaryPath("tiny.nnm")
        try NNMFormat.write(tinyModel(), to: path)
        var bytes = fileBytes(path)
        let header = try NNMFormat.readHeader(path: path)
        let entry = header.tensors[2]
        bytes[header.dataOffset + entry.offset + 5] ^= 0x40
        expectFailure(bytes, containing: "tensor 'layers.1.weight' fails its checksum")
    }
}

/// Header JSON for the tiny model with its tensor table, for crafting broken files.
func tinyHeaderAndData() -> (header: JSONObject, data: [UInt8]) {
    let model = tinyModel()
    let (headerBytes, entries) = NNMFormat.layout(model)
    var data: [UInt8] = []
    for (t, e) in zip(model.tensors, entries) {
        data += [UInt8](repeating: 0, count: e.offset - data.count)
        data += Array(t.tensor.bytes)
    }
    data += [UInt8](repeating: 0, count: (data.count + 63) / 64 * 64 - data.count)
    return (try! JSONValue.parse(headerBytes).objectValue!, data)
}

func withTensorEntry(_ header: JSONObject, _ index: Int, _ key: String, _ value: JSONValue) -> JSONObject {
    var h = header
    var table = h["tensors"]!.arrayValue!
    var entry = table[index].objectValue!
    entry[key] = value
    table[index] = .object(entry)
    h["tensors"] = .array(table)
    return h
}

@Suite struct BadInput {
    let valid: [UInt8] = {
        let (h, d) = tinyHeaderAndData()
        return FileBuilder(header: JSONValue.object(h).serialized(), data: d).bytes()
    }()

    @Test func theHandBuiltFileIsValid() throws {
        _ = try NNMFormat.decode(bytes: valid, path: "m.nnm")
    }

    @Test func emptyFile() { expectFailure([], .empty(path: "m.nnm")) }

    @Test func wrongMagic() {
        expectFailure(Array("PK\u{3}\u{4} this is a zip".utf8), .wrongMagic(path: "m.nnm"))
        var b = valid
        b[1] = UInt8(ascii: "X")
        expectFailure(b, .wrongMagic(path: "m.nnm"))
    }

    @Test func truncationAtEveryStructureBoundary() {
        expectFailure(Array(valid[0..<4]), .truncated(path: "m.nnm", what: "the preamble", expectedBytes: 48, foundBytes: 4))
        expectFailure(Array(valid[0..<30]), .truncated(path: "m.nnm", what: "the preamble", expectedBytes: 48, foundBytes: 30))
        expectFailure(Array(valid[0..<60]), containing: "truncated: the metadata header needs")
        expectFailure(Array(valid[0..<(valid.count - 1)]), containing: "truncated: the declared data section needs \(valid.count) bytes, the file has \(valid.count - 1)")
    }

    @Test func unknownMajorVersionIsRejectedNewerMinorIsNot() throws {
        let (h, d) = tinyHeaderAndData()
        var b = FileBuilder(header: JSONValue.object(h).serialized(), data: d)
        b.major = 2
        expectFailure(b.bytes(), .unsupportedVersion(path: "m.nnm", major: 2, minor: 0))
        #expect(NNMError.unsupportedVersion(path: "m.nnm", major: 2, minor: 0).description
            == "m.nnm: format version 2.0 is not supported (this reader understands 1.x); use a newer nnconv")
        b.major = 1
        b.minor = 3
        _ = try NNMFormat.decode(bytes: b.bytes(), path: "m.nnm")
    }

    @Test func unknownFlags() {
        let (h, d) = tinyHeaderAndData()
        var b = FileBuilder(header: JSONValue.object(h).serialized(), data: d)
        b.flags = 4
        expectFailure(b.bytes(), .unknownFlags(path: "m.nnm", flags: 4))
    }

    @Test func checksumsOfPreambleAndHeader() {
        let (h, d) = tinyHeaderAndData()
        var b = FileBuilder(header: JSONValue.object(h).serialized(), data: d)
        b.fixPreambleCRC = false
        expectFailure(b.bytes(), .preambleChecksumMismatch(path: "m.nnm"))
        b.fixPreambleCRC = true
        b.fixHeaderCRC = false
        expectFailure(b.bytes(), .headerChecksumMismatch(path: "m.nnm"))
    }

    @Test func headerOverTheSizeLimit() {
        var b = FileBuilder(header: "{}", data: [])
        b.headerLength = UInt64(NNMFormat.maximumHeaderBytes + 1)
        expectFailure(b.bytes(), .headerTooLarge(path: "m.nnm", bytes: UInt64(NNMFormat.maximumHeaderBytes + 1), limit: 16 << 20))
        b.headerLength = UInt64.max
        expectFailure(b.bytes(), .headerTooLarge(path: "m.nnm", bytes: UInt64.max, limit: 16 << 20))
    }

    @Test func hugeDataLengthDoesNotOverflowOrAllocate() {
        var b = FileBuilder(header: "{}", data: [])
        b.dataLength = UInt64.max
        expectFailure(b.bytes(), .badLayout(path: "m.nnm", detail: "data length 18446744073709551615 is impossibly large"))
        b.dataLength = 1 << 40
        expectFailure(b.bytes(), containing: "truncated: the declared data section needs")
    }

    @Test func trailingGarbage() {
        expectFailure(valid + [1, 2, 3], .badLayout(path: "m.nnm", detail: "3 bytes of trailing data after the declared end at \(valid.count)"))
    }

    @Test func invalidJSON() {
        expectFailure(FileBuilder(header: "{\"input\": [1, 2", data: []).bytes(), containing: "the metadata header is not valid JSON: invalid JSON at byte")
        expectFailure(FileBuilder(header: "[1, 2]", data: []).bytes(), .invalidJSON(path: "m.nnm", detail: "the header is an array, not an object"))
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        expectFailure(FileBuilder(header: deep, data: []).bytes(), containing: "nesting deeper than 64 levels")
        expectFailure(FileBuilder(header: "{\"a\":1,\"a\":2}", data: []).bytes(), containing: "duplicate member name \"a\"")
    }

    @Test func offsetsPastTheEnd() {
        let (h, d) = tinyHeaderAndData()
        let broken = withTensorEntry(h, 4, "offset", 4096)
        expectFailure(FileBuilder(header: JSONValue.object(broken).serialized(), data: d).bytes(),
                      containing: "tensors[4] 'optimizer.velocity.layers.0.weight': bytes 4096..<4144 lie outside the data section of 320 bytes")
    }

    @Test func overlappingAndOutOfOrderTensors() {
        let (h, d) = tinyHeaderAndData()
        let overlapping = withTensorEntry(h, 1, "offset", 0)
        expectFailure(FileBuilder(header: JSONValue.object(overlapping).serialized(), data: d).bytes(),
                      .overlappingTensors(path: "m.nnm", first: "layers.0.weight", second: "layers.0.bias"))
    }

    @Test func misalignedOffset() {
        let (h, d) = tinyHeaderAndData()
        expectFailure(FileBuilder(header: JSONValue.object(withTensorEntry(h, 1, "offset", 65)).serialized(), data: d).bytes(),
                      containing: "offset 65 is not a multiple of 64")
    }

    @Test func shapeAndLengthOverflow() {
        let (h, d) = tinyHeaderAndData()
        let huge = withTensorEntry(h, 0, "shape", [.integer(Int64(1) << 40), .integer(Int64(1) << 40)])
        expectFailure(FileBuilder(header: JSONValue.object(huge).serialized(), data: d).bytes(), containing: "shape 1099511627776x1099511627776 overflows")
        let negative = withTensorEntry(h, 0, "shape", [-4, 3])
        expectFailure(FileBuilder(header: JSONValue.object(negative).serialized(), data: d).bytes(), containing: "shape entries must be non-negative integers")
        let wrongLength = withTensorEntry(h, 0, "length", 40)
        expectFailure(FileBuilder(header: JSONValue.object(wrongLength).serialized(), data: d).bytes(),
                      containing: "length 40 does not match shape 4x3 of f32 (48 bytes)")
        let deepRank = withTensorEntry(h, 0, "shape", .array([JSONValue](repeating: 1, count: 9)))
        expectFailure(FileBuilder(header: JSONValue.object(deepRank).serialized(), data: d).bytes(), containing: "rank 9 exceeds the limit of 8")
        let badType = withTensorEntry(h, 0, "dtype", "complex128")
        expectFailure(FileBuilder(header: JSONValue.object(badType).serialized(), data: d).bytes(), containing: "unknown dtype \"complex128\"")
    }

    @Test func shapesThatDoNotChain() {
        var model = tinyModel()
        model.metadata.layers[1].inputSize = 4
        #expect(throws: ModelError.layersDoNotChain(location: "layers[1]", expected: 3, found: 4)) { try model.validate() }
        var h = tinyHeaderAndData()
        var layers = h.header["layers"]!.arrayValue!
        var l1 = layers[1].objectValue!
        l1["in"] = 4
        layers[1] = .object(l1)
        h.header["layers"] = .array(layers)
        expectFailure(FileBuilder(header: JSONValue.object(h.header).serialized(), data: h.data).bytes(),
                      message: "m.nnm: layers[1]: input size 4 does not match the previous output size 3")
    }

    @Test func weightShapeThatDoesNotMatchTheLayer() {
        var h = tinyHeaderAndData()
        h.header = withTensorEntry(h.header, 0, "shape", [3, 4])
        expectFailure(FileBuilder(header: JSONValue.object(h.header).serialized(), data: h.data).bytes(),
                      message: "m.nnm: tensor 'layers.0.weight': expected shape 4x3, found 3x4")
    }

    @Test func nonZeroPaddingIsCorruption() {
        var b = valid
        let dataOffset = Int(b[24]) | Int(b[25]) << 8
        b[dataOffset - 1] = 7
        expectFailure(b, .nonZeroPadding(path: "m.nnm", offset: dataOffset - 1))
    }

    @Test func nanWeightsWarnAndNameTheTensor() throws {
        var model = tinyModel()
        var w = model.tensor("layers.1.bias")!.floats()
        w[1] = .nan
        model.setTensor("layers.1.bias", Tensor(w, shape: [2]))
        let warnings = try model.validate()
        #expect(warnings.map(\.description) == ["tensor 'layers.1.bias': holds NaN or infinite values (first at element 1)"])
    }
}
