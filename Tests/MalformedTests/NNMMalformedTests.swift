import NNCompression
import NNCore
import NNTestSupport
import Testing
@testable import NNFormat

typealias NNMFile = NNMBytes

/// The small valid model of these tests: 4 inputs (2x2), 3 ReLU units, 2 softmax outputs, a
/// training record with optimizer state. Its data section is 320 bytes: five tensors at 0, 64,
/// 128, 192 and 256.
func smallModel() -> Model {
    let w0: [Float] = [0.5, -0.25, 0.125, 1, 2, -1, 0.75, -0.5, 0.25, 0, 1.5, -2]
    let meta = ModelMetadata(
        input: InputSpec(shape: [2, 2]),
        layers: [Layer.dense(index: 0, inputSize: 4, outputSize: 3, activation: .relu),
                 Layer.dense(index: 1, inputSize: 3, outputSize: 2, activation: .softmax)],
        preprocessing: [.scale(factor: 1.0 / 255, offset: 0)],
        classes: ["no", "yes"],
        training: TrainingRecord(loss: "cross-entropy", optimizer: "momentum", epochs: 2,
                                 history: [EpochRecord(epoch: 1, trainLoss: 0.7), EpochRecord(epoch: 2, trainLoss: 0.6)],
                                 optimizerState: [("layers.0.weight", "optimizer.velocity.layers.0.weight")], step: 10),
        provenance: Provenance(tool: "tests", created: "2026-11-24T00:00:00Z"))
    return Model(metadata: meta, tensors: [
        NamedTensor("layers.0.weight", Tensor(w0, shape: [4, 3])),
        NamedTensor("layers.0.bias", Tensor([0.1, -0.2, 0.3] as [Float], shape: [3])),
        NamedTensor("layers.1.weight", Tensor([1, -1, 0.5, 0.25, -0.75, 2] as [Float], shape: [3, 2])),
        NamedTensor("layers.1.bias", Tensor([0, 0.5] as [Float], shape: [2])),
        NamedTensor("optimizer.velocity.layers.0.weight", Tensor(w0.map { $0 * 0.01 }, shape: [4, 3])),
    ])
}

/// The header object (with its tensor table), the data section and the entries of a model, as
/// the writer lays them out.
func parts(of model: Model) -> (header: JSONObject, data: [UInt8], entries: [TensorEntry]) {
    let (headerBytes, entries) = NNMFormat.layout(model)
    var data: [UInt8] = []
    for (t, e) in zip(model.tensors, entries) {
        data += [UInt8](repeating: 0, count: e.offset - data.count)
        data += Array(t.tensor.bytes)
    }
    data += [UInt8](repeating: 0, count: (data.count + 63) / 64 * 64 - data.count)
    return (try! JSONValue.parse(headerBytes).objectValue!, data, entries)
}

enum Small {
    static let parts = makeSmallParts()
    static var header: JSONObject { parts.header }
    static var data: [UInt8] { parts.data }
    static var entries: [TensorEntry] { parts.entries }
    static let file = NNMFile(header: parts.header, data: parts.data)
    static let valid = file.bytes()
    static var dataOffset: Int { file.alignedDataOffset }
    static var headerEnd: Int { 48 + file.header.count }

    /// The small file with `edit` applied to its header object.
    static func editing(_ edit: (inout JSONObject) -> Void) -> [UInt8] {
        var h = header
        edit(&h)
        return NNMFile(header: h, data: data).bytes()
    }

    /// The small file with member `key` of tensor entry `index` set to `value`.
    static func entry(_ index: Int, _ key: String, _ value: JSONValue?) -> [UInt8] {
        editing { h in
            var table = h["tensors"]!.arrayValue!
            var entry = table[index].objectValue!
            entry[key] = value
            table[index] = .object(entry)
            h["tensors"] = .array(table)
        }
    }

    /// The small file with member `key` of layer `index` set to `value`.
    static func layer(_ index: Int, _ key: String, _ value: JSONValue?) -> [UInt8] {
        editing { h in
            var layers = h["layers"]!.arrayValue!
            var layer = layers[index].objectValue!
            layer[key] = value
            layers[index] = .object(layer)
            h["layers"] = .array(layers)
        }
    }

    /// A file whose header is `text` (any bytes) and whose data section is empty.
    static func headerText(_ text: String) -> [UInt8] {
        NNMFile(header: Array(text.utf8), data: []).bytes()
    }

    /// The small file with its preamble modified by `edit` (CRCs recomputed unless told not to).
    static func preamble(_ edit: (inout NNMFile) -> Void) -> [UInt8] {
        var f = file
        edit(&f)
        return f.bytes()
    }
}

private func makeSmallParts() -> (header: JSONObject, data: [UInt8], entries: [TensorEntry]) {
    parts(of: smallModel())
}

private let p = "m.nnm: "

/// Truncation at every structure boundary: inside the magic, the version, the preamble; at the
/// header's start and end; at the data section's start; at the start and the last byte of every
/// tensor; one byte short of the end.
let nnmTruncationCases: [MalformedCase] = {
    let v = Small.valid
    var cases: [MalformedCase] = [
        MalformedCase("empty", [], p + "the file is empty"),
        MalformedCase("4 bytes of magic", v.prefixArray(4), p + "truncated: the preamble needs 48 bytes, the file has 4"),
        MalformedCase("magic only", v.prefixArray(8), p + "truncated: the preamble needs 48 bytes, the file has 8"),
        MalformedCase("inside the version", v.prefixArray(11), p + "truncated: the preamble needs 48 bytes, the file has 11"),
        MalformedCase("after the version", v.prefixArray(12), p + "truncated: the preamble needs 48 bytes, the file has 12"),
        MalformedCase("inside the sizes", v.prefixArray(30), p + "truncated: the preamble needs 48 bytes, the file has 30"),
        MalformedCase("one byte short of the preamble", v.prefixArray(47), p + "truncated: the preamble needs 48 bytes, the file has 47"),
    ]
    let total = v.count
    for (label, end) in [("preamble only", 48), ("half the header", 48 + (Small.headerEnd - 48) / 2)] {
        cases.append(MalformedCase(label, v.prefixArray(end),
                                   p + "truncated: the metadata header needs \(total) bytes, the file has \(end)"))
    }
    var ends = [("header without padding", Small.headerEnd), ("header and padding", Small.dataOffset)]
    for e in Small.entries {
        ends.append(("at the start of '\(e.name)'", Small.dataOffset + e.offset))
        ends.append(("inside the last byte of '\(e.name)'", Small.dataOffset + e.offset + e.length - 1))
    }
    ends.append(("one byte short", total - 1))
    for (label, end) in ends {
        cases.append(MalformedCase(label, v.prefixArray(end),
                                   p + "truncated: the declared data section needs \(total) bytes, the file has \(end)"))
    }
    return cases
}()

/// Wrong magic, version, flags and checksums of the preamble and header.
let nnmPreambleCases: [MalformedCase] = {
    let v = Small.valid
    var textMode = v
    textMode.remove(at: 4)                      // "\r\n" -> "\n", as a text-mode transfer does
    var highBitStripped = v
    highBitStripped[0] = 0x09
    return [
        MalformedCase("a zip file", Array("PK\u{3}\u{4} this is a zip".utf8), p + "not an .nnm model file (wrong magic bytes)"),
        MalformedCase("an HDF5 signature", [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A] + [UInt8](repeating: 0, count: 60),
                      p + "not an .nnm model file (wrong magic bytes)"),
        MalformedCase("a text-mode transfer", textMode, p + "not an .nnm model file (wrong magic bytes)"),
        MalformedCase("high bit stripped", highBitStripped, p + "not an .nnm model file (wrong magic bytes)"),
        MalformedCase("three bytes of text", Array("abc".utf8), p + "not an .nnm model file (wrong magic bytes)"),
        MalformedCase("major version 0", Small.preamble { $0.major = 0 },
                      p + "format version 0.0 is not supported (this reader understands 1.x); use a newer nnconv"),
        MalformedCase("major version 2", Small.preamble { $0.major = 2 },
                      p + "format version 2.0 is not supported (this reader understands 1.x); use a newer nnconv"),
        MalformedCase("major version 65535.7", Small.preamble { $0.major = 0xFFFF; $0.minor = 7 },
                      p + "format version 65535.7 is not supported (this reader understands 1.x); use a newer nnconv"),
        MalformedCase("an unknown major version comes before truncation",
                      Small.preamble { $0.major = 2 }.prefixArray(12),
                      p + "format version 2.0 is not supported (this reader understands 1.x); use a newer nnconv"),
        MalformedCase("an unknown major version comes before the preamble CRC",
                      Small.preamble { $0.major = 3; $0.fixPreambleCRC = false },
                      p + "format version 3.0 is not supported (this reader understands 1.x); use a newer nnconv"),
        MalformedCase("flag bit 0", Small.preamble { $0.flags = 1 }, p + "the file uses features this reader does not know (flags 0x1)"),
        MalformedCase("flag bit 31", Small.preamble { $0.flags = 0x8000_0000 },
                      p + "the file uses features this reader does not know (flags 0x80000000)"),
        MalformedCase("preamble CRC wrong", Small.preamble { $0.fixPreambleCRC = false }, p + "corrupt: the preamble checksum does not match"),
        MalformedCase("flipped bit in the header length", v.flipping(16, bit: 3), p + "corrupt: the preamble checksum does not match"),
        MalformedCase("flipped bit in the minor version", v.flipping(10), p + "corrupt: the preamble checksum does not match"),
        MalformedCase("flipped bit in the preamble CRC", v.flipping(47, bit: 7), p + "corrupt: the preamble checksum does not match"),
        MalformedCase("header CRC wrong", Small.preamble { $0.fixHeaderCRC = false }, p + "corrupt: the metadata header checksum does not match"),
        MalformedCase("flipped bit in the header", v.flipping(60, bit: 1), p + "corrupt: the metadata header checksum does not match"),
    ]
}()

/// The preamble's sizes against the file: limits, overflow, trailing data, padding.
let nnmLayoutCases: [MalformedCase] = {
    let v = Small.valid
    let d = Small.dataOffset
    let limit = 16 << 20
    var paddedHeader = v
    paddedHeader[d - 1] = 7
    var paddedTensor = v
    paddedTensor[d + Small.entries[0].length] = 1       // between layers.0.weight and layers.0.bias
    var paddedEnd = v
    paddedEnd[v.count - 1] = 0x80                       // after the last tensor
    return [
        MalformedCase("header one byte over 16 MiB", Small.preamble { $0.headerLength = UInt64(limit + 1) },
                      p + "the metadata header is \(limit + 1) bytes, more than the limit of \(limit)"),
        MalformedCase("header length 2^64-1", Small.preamble { $0.headerLength = .max },
                      p + "the metadata header is 18446744073709551615 bytes, more than the limit of \(limit)"),
        MalformedCase("data offset not aligned", Small.preamble { $0.dataOffset = UInt64(d + 1) },
                      p + "corrupt layout: data offset \(d + 1) is not the header end \(Small.headerEnd) rounded up to 64"),
        MalformedCase("data offset 0", Small.preamble { $0.dataOffset = 0 },
                      p + "corrupt layout: data offset 0 is not the header end \(Small.headerEnd) rounded up to 64"),
        MalformedCase("data offset 2^64-64", Small.preamble { $0.dataOffset = .max - 63 },
                      p + "corrupt layout: data offset 18446744073709551552 is not the header end \(Small.headerEnd) rounded up to 64"),
        MalformedCase("data length 2^64-1", Small.preamble { $0.dataLength = .max },
                      p + "corrupt layout: data length 18446744073709551615 is impossibly large"),
        MalformedCase("data length one past Int.max minus the offset", Small.preamble { $0.dataLength = UInt64(Int.max - d) + 1 },
                      p + "corrupt layout: data length \(UInt64(Int.max - d) + 1) is impossibly large"),
        MalformedCase("data length 1 TiB", Small.preamble { $0.dataLength = 1 << 40 },
                      p + "truncated: the declared data section needs \(d + (1 << 40)) bytes, the file has \(v.count)"),
        MalformedCase("data length 64 short", Small.preamble { $0.dataLength = 256 },
                      p + "corrupt layout: 64 bytes of trailing data after the declared end at \(d + 256)"),
        MalformedCase("trailing garbage", v + [1, 2, 3], p + "corrupt layout: 3 bytes of trailing data after the declared end at \(v.count)"),
        MalformedCase("a second copy appended", v + v, p + "corrupt layout: \(v.count) bytes of trailing data after the declared end at \(v.count)"),
        MalformedCase("non-zero header padding", paddedHeader, p + "corrupt: padding byte at offset \(d - 1) is not zero"),
        MalformedCase("non-zero padding between tensors", paddedTensor,
                      p + "corrupt: padding byte at offset \(d + Small.entries[0].length) is not zero"),
        MalformedCase("non-zero padding after the last tensor", paddedEnd, p + "corrupt: padding byte at offset \(v.count - 1) is not zero"),
        MalformedCase("64 zero bytes after the last tensor", NNMFile(header: Small.header, data: Small.data + [UInt8](repeating: 0, count: 64)).bytes(),
                      p + "corrupt layout: 80 unused bytes after the last tensor"),
    ]
}()

/// Header JSON that is not JSON, too deep, ambiguous or not an object.
let nnmJSONCases: [MalformedCase] = {
    let j = p + "the metadata header is not valid JSON: invalid JSON at byte "
    let deepArrays = String(repeating: "[", count: 65) + String(repeating: "]", count: 65)
    let deepObjects = String(repeating: "{\"a\":", count: 65) + "1" + String(repeating: "}", count: 65)
    var invalidUTF8 = Array("{\"a\": \"".utf8) + [0xC3, 0x28] + Array("\"}".utf8)
    invalidUTF8 = NNMFile(header: invalidUTF8, data: []).bytes()
    let longNumber = "{\"a\": " + String(repeating: "1", count: 401) + "}"
    return [
        MalformedCase("not JSON", Small.headerText("hello"), j + "0: unexpected character 'h'"),
        MalformedCase("empty header", Small.headerText(""), j + "0: unexpected end of text"),
        MalformedCase("a UTF-8 byte order mark", Small.headerText("\u{FEFF}{}"), j + "0: unexpected character 'ï'"),
        MalformedCase("an array", Small.headerText("[1, 2]"), p + "the metadata header is not valid JSON: the header is an array, not an object"),
        MalformedCase("a string", Small.headerText("\"model\""), p + "the metadata header is not valid JSON: the header is a string, not an object"),
        MalformedCase("65 nested arrays", Small.headerText(deepArrays), j + "64: nesting deeper than 64 levels"),
        MalformedCase("65 nested objects", Small.headerText(deepObjects), j + "\(64 * 5): nesting deeper than 64 levels"),
        MalformedCase("10,000 nested arrays", Small.headerText(String(repeating: "[", count: 10_000)), j + "64: nesting deeper than 64 levels"),
        MalformedCase("duplicate member", Small.headerText("{\"a\":1,\"a\":2}"), j + "10: duplicate member name \"a\""),
        MalformedCase("invalid UTF-8 in a string", invalidUTF8, j + "7: string is not valid UTF-8"),
        MalformedCase("unpaired surrogate", Small.headerText("{\"a\": \"\\ud800x\"}"), j + "13: unpaired surrogate"),
        MalformedCase("control character in a string", Small.headerText("{\"a\": \"x\ny\"}"), j + "8: control character in a string"),
        MalformedCase("unterminated string", Small.headerText("{\"a\": \"xyz"), j + "10: unterminated string"),
        MalformedCase("number with 401 digits", Small.headerText(longNumber), j + "407: number too long"),
        MalformedCase("number out of range", Small.headerText("{\"a\": 1e400}"), j + "6: number out of range"),
        MalformedCase("leading zero", Small.headerText("{\"a\": 01}"), j + "8: leading zero in a number"),
        MalformedCase("text after the document", Small.headerText("{} x"), j + "3: unexpected text after the document"),
        MalformedCase("NaN", Small.headerText("{\"a\": NaN}"), j + "6: unexpected character 'N'"),
        MalformedCase("trailing comma", Small.headerText("{\"a\": 1,}"), j + "8: expected a member name in quotes"),
    ]
}()

/// The tensor table: counts, names, dtypes, shapes, offsets, lengths, CRCs, order and overlap.
let nnmTensorTableCases: [MalformedCase] = {
    let e = Small.entries
    let velocity = "tensors[4] 'optimizer.velocity.layers.0.weight': "
    let w0 = "tensors[0] 'layers.0.weight': "
    let tooMany = "{\"tensors\": [" + Array(repeating: "{}", count: 65_537).joined(separator: ",") + "]}"
    let hugeOffset = Int.max - 63                // a multiple of 64
    return [
        MalformedCase("no tensor table", Small.editing { $0["tensors"] = nil }, p + "tensors: the header has no tensor table"),
        MalformedCase("tensor table is an object", Small.editing { $0["tensors"] = [:] }, p + "tensors: expected an array, found an object"),
        MalformedCase("65,537 tensors", Small.headerText(tooMany), p + "tensors: 65537 tensors, more than the limit of 65536"),
        MalformedCase("entry is a number", Small.editing { $0["tensors"] = [1] }, p + "tensors[0]: expected an object, found a number"),
        MalformedCase("no name", Small.entry(0, "name", nil), p + "tensors[0]: expected a non-empty name of at most 1024 bytes"),
        MalformedCase("empty name", Small.entry(0, "name", ""), p + "tensors[0]: expected a non-empty name of at most 1024 bytes"),
        MalformedCase("1025-byte name", Small.entry(0, "name", .string(String(repeating: "é", count: 513))),
                      p + "tensors[0]: expected a non-empty name of at most 1024 bytes"),
        MalformedCase("duplicate name", Small.entry(1, "name", "layers.0.weight"), p + "tensors[1] 'layers.0.weight': duplicate tensor name"),
        MalformedCase("dtype missing", Small.entry(0, "dtype", nil), p + w0 + "expected a dtype string"),
        MalformedCase("dtype complex128", Small.entry(0, "dtype", "complex128"),
                      p + w0 + "unknown dtype \"complex128\" (expected one of f16, bf16, f32, f64, u8, i8, i16, i32, i64)"),
        MalformedCase("dtype in capitals", Small.entry(0, "dtype", "F32"),
                      p + w0 + "unknown dtype \"F32\" (expected one of f16, bf16, f32, f64, u8, i8, i16, i32, i64)"),
        MalformedCase("shape missing", Small.entry(0, "shape", nil), p + w0 + "expected a shape array"),
        MalformedCase("shape is a number", Small.entry(0, "shape", 12), p + w0 + "expected a shape array"),
        MalformedCase("rank 9", Small.entry(0, "shape", .array([JSONValue](repeating: 1, count: 9))), p + w0 + "rank 9 exceeds the limit of 8"),
        MalformedCase("negative dimension", Small.entry(0, "shape", [-4, 3]), p + w0 + "shape entries must be non-negative integers"),
        MalformedCase("fractional dimension", Small.entry(0, "shape", [1.5, 3]), p + w0 + "shape entries must be non-negative integers"),
        MalformedCase("dimension as a string", Small.entry(0, "shape", ["4", 3]), p + w0 + "shape entries must be non-negative integers"),
        MalformedCase("dimension 1e300", Small.entry(0, "shape", [1e300, 3]), p + w0 + "shape entries must be non-negative integers"),
        MalformedCase("dimensions whose product overflows", Small.entry(0, "shape", [.integer(1 << 40), .integer(1 << 40)]),
                      p + w0 + "shape 1099511627776x1099511627776 overflows"),
        MalformedCase("dimension Int64.max", Small.entry(0, "shape", [.integer(.max)]), p + w0 + "shape 9223372036854775807 overflows"),
        MalformedCase("length does not match the shape", Small.entry(0, "length", 40), p + w0 + "length 40 does not match shape 4x3 of f32 (48 bytes)"),
        MalformedCase("negative length", Small.entry(0, "length", -48), p + w0 + "expected a non-negative integer length"),
        MalformedCase("negative offset", Small.entry(0, "offset", -64), p + w0 + "expected a non-negative integer offset"),
        MalformedCase("misaligned offset", Small.entry(1, "offset", 65), p + "tensors[1] 'layers.0.bias': offset 65 is not a multiple of 64"),
        MalformedCase("offset past the end", Small.entry(4, "offset", 4096),
                      p + velocity + "bytes 4096..<4144 lie outside the data section of 320 bytes"),
        MalformedCase("offset near Int.max", Small.entry(4, "offset", .integer(Int64(hugeOffset))),
                      p + velocity + "bytes \(hugeOffset)..<\(hugeOffset + 48) lie outside the data section of 320 bytes"),
        MalformedCase("a tensor longer than the data section", Small.editing { h in
            var table = h["tensors"]!.arrayValue!
            var entry = table[4].objectValue!
            entry["shape"] = [100, 100]
            entry["length"] = 40_000
            table[4] = .object(entry)
            h["tensors"] = .array(table)
        }, p + velocity + "bytes 256..<40256 lie outside the data section of 320 bytes"),
        MalformedCase("crc32 missing", Small.entry(0, "crc32", nil), p + w0 + "expected a crc32 between 0 and 4294967295"),
        MalformedCase("crc32 2^32", Small.entry(0, "crc32", 4_294_967_296), p + w0 + "expected a crc32 between 0 and 4294967295"),
        MalformedCase("crc32 negative", Small.entry(0, "crc32", -1), p + w0 + "expected a crc32 between 0 and 4294967295"),
        MalformedCase("crc32 wrong", Small.entry(2, "crc32", .integer(Int64(e[2].crc32 ^ 1))),
                      p + "corrupt: tensor 'layers.1.weight' fails its checksum (stored crc32 \(hex8(e[2].crc32 ^ 1)), computed \(hex8(e[2].crc32)))"),
        MalformedCase("overlapping tensors", Small.entry(1, "offset", 0),
                      p + "tensors 'layers.0.weight' and 'layers.0.bias' overlap or are out of order"),
        MalformedCase("out of order", Small.editing { h in
            var table = h["tensors"]!.arrayValue!
            table.swapAt(0, 1)
            h["tensors"] = .array(table)
        }, p + "corrupt layout: 64 unused bytes before tensor 'layers.0.bias'"),
        MalformedCase("an 80-byte hole before a tensor", Small.entry(1, "offset", 128),
                      p + "corrupt layout: 80 unused bytes before tensor 'layers.0.bias'"),
        MalformedCase("a 64-byte gap at the start", NNMFile(header: {
            var h = Small.header
            var table = h["tensors"]!.arrayValue!
            for i in table.indices {
                var entry = table[i].objectValue!
                entry["offset"] = .integer(Int64(entry["offset"]!.intValue! + 64))
                table[i] = .object(entry)
            }
            h["tensors"] = .array(table)
            return h
        }(), data: [UInt8](repeating: 0, count: 64) + Small.data).bytes(),
                      p + "corrupt layout: 64 unused bytes before tensor 'layers.0.weight'"),
    ]
}()

/// Metadata that parses but does not describe a usable model.
let nnmModelCases: [MalformedCase] = {
    [
        MalformedCase("no layers", Small.editing { $0["layers"] = [] }, p + "the model has no layers"),
        MalformedCase("layers missing", Small.editing { $0["layers"] = nil }, p + "layers: expected a value, found nothing"),
        MalformedCase("input missing", Small.editing { $0["input"] = nil }, p + "input: expected an object, found nothing"),
        MalformedCase("input dimension 0", Small.editing { $0["input"] = ["shape": [0, 2], "features": 0] },
                      p + "input.shape[0]: expected an integer in 1...2147483647, found 0"),
        MalformedCase("input rank 9", Small.editing { $0["input"] = ["shape": .array([JSONValue](repeating: 1, count: 9)), "features": 1] },
                      p + "input.shape: expected at most 8 dimensions, found 9"),
        MalformedCase("input features over 2^31-1", Small.editing { $0["input"] = ["shape": [65536, 65536], "features": 0] },
                      p + "input.shape: expected at most 2147483647 features, found 65536x65536"),
        MalformedCase("layer width 2^31", Small.layer(0, "in", 2_147_483_648),
                      p + "layers[0].in: expected an integer in 1...2147483647, found 2147483648"),
        MalformedCase("layer width as text", Small.layer(0, "out", "3"), p + "layers[0].out: expected an integer, found a string"),
        MalformedCase("unknown layer kind", Small.layer(0, "kind", "conv3d"), p + "layers[0].kind: expected one of dense, conv2d, max_pool2d, flatten, batch_norm, avg_pool2d, global_avg_pool2d, global_max_pool2d, found \"conv3d\""),
        MalformedCase("unknown activation", Small.layer(1, "activation", "mish"),
                      p + "layers[1].activation: expected one of identity, relu, sigmoid, tanh, softmax, leaky_relu, elu, selu, gelu, softplus, swish, hard_sigmoid, relu6, log_softmax, found \"mish\""),
        MalformedCase("layers do not chain", Small.layer(1, "in", 4), p + "layers[1]: input size 4 does not match the previous output size 3"),
        MalformedCase("first layer does not fit the input", Small.layer(0, "in", 5),
                      p + "layers[0] (after input 2x2): input size 5 does not match the previous output size 4"),
        MalformedCase("weight tensor missing", Small.layer(1, "weight", "nope"),
                      p + "layers[1].weight: names tensor 'nope', which the model does not contain"),
        MalformedCase("integer weights", Small.entry(3, "dtype", "i32"),
                      p + "tensor 'layers.1.bias': dtype i32 cannot be used here (expected f16, bf16, f32 or f64)"),
        MalformedCase("weight shape transposed", Small.entry(0, "shape", [3, 4]), p + "tensor 'layers.0.weight': expected shape 4x3, found 3x4"),
        MalformedCase("one class for two outputs", Small.editing { $0["classes"] = ["only"] },
                      p + "classes: expected 2 names (one per output), found 1"),
        MalformedCase("class name not a string", Small.editing { $0["classes"] = ["a", 2] }, p + "classes[1]: expected a string, found a number"),
        MalformedCase("unknown preprocessing", Small.editing { $0["preprocessing"] = [["op": "pca"]] },
                      p + "preprocessing[0].op: expected \"scale\" or \"zscore\", found \"pca\""),
        MalformedCase("z-score statistics missing", Small.editing { $0["preprocessing"] = [["op": "zscore", "mean": "m", "std": "s"]] },
                      p + "preprocessing[0].mean: names tensor 'm', which the model does not contain"),
        MalformedCase("provenance missing", Small.editing { $0["provenance"] = nil }, p + "provenance: expected an object, found nothing"),
        MalformedCase("negative epochs", Small.editing { h in
            var t = h["training"]!.objectValue!
            t["epochs"] = -1
            h["training"] = .object(t)
        }, p + "training.epochs: expected an integer in 0...2147483647, found -1"),
        MalformedCase("optimizer state for a missing parameter", Small.editing { h in
            var t = h["training"]!.objectValue!
            t["optimizer_state"] = ["step": 1, "tensors": ["layers.9.weight": "optimizer.velocity.layers.0.weight"]]
            h["training"] = .object(t)
        }, p + "training.optimizer_state.tensors: names tensor 'layers.9.weight', which the model does not contain"),
    ]
}()

func hex8(_ v: UInt32) -> String {
    let s = String(v, radix: 16)
    return String(repeating: "0", count: 8 - s.count) + s
}

@Suite struct NNMMalformed {
    @Test func theSmallFileIsValid() throws {
        let model = try NNMFormat.decode(bytes: Small.valid, path: "m.nnm")
        #expect(model.tensors.count == 5)
        #expect(Small.data.count == 320)
        #expect(Small.headerEnd < Small.dataOffset, "the header padding cases need padding")
    }

    @Test(arguments: nnmTruncationCases) func truncation(_ c: MalformedCase) { check(c) }
    @Test(arguments: nnmPreambleCases) func preamble(_ c: MalformedCase) { check(c) }
    @Test(arguments: nnmLayoutCases) func layout(_ c: MalformedCase) { check(c) }
    @Test(arguments: nnmJSONCases) func json(_ c: MalformedCase) { check(c) }
    @Test(arguments: nnmTensorTableCases) func tensorTable(_ c: MalformedCase) { check(c) }
    @Test(arguments: nnmModelCases) func model(_ c: MalformedCase) { check(c) }

    func check(_ c: MalformedCase, sourceLocation: SourceLocation = #_sourceLocation) {
        expectMessage(c.message, sourceLocation: sourceLocation) {
            _ = try NNMFormat.decode(bytes: c.bytes, path: "m.nnm")
        }
    }

    /// A newer minor version and unknown members are not errors.
    @Test func newerMinorVersionAndUnknownMembersAreAccepted() throws {
        _ = try NNMFormat.decode(bytes: Small.preamble { $0.minor = 9 }, path: "m.nnm")
        _ = try NNMFormat.decode(bytes: Small.editing { $0["future"] = ["x": [1, 2]] }, path: "m.nnm")
    }
}
