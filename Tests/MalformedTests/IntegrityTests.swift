import NNCompression
import NNCore
import Testing
@testable import NNFormat

/// A 784-256-10 model with a training record, as `nn-train` saves one: about 806 KB.
func mnistSizedModel() -> Model {
    var rng = SplitMix64(seed: 784_256_10)
    func values(_ count: Int) -> [Float] {
        (0..<count).map { _ in Float(Int(rng.next() >> 40) - (1 << 23)) / Float(1 << 26) }
    }
    let history = (1...10).map { EpochRecord(epoch: $0, trainLoss: 1.0 / Double($0), testLoss: 1.1 / Double($0),
                                            testAccuracy: 0.8 + Double($0) / 100, seconds: 2.5) }
    let meta = ModelMetadata(
        input: InputSpec(shape: [28, 28]),
        layers: [Layer.dense(index: 0, inputSize: 784, outputSize: 256, activation: .relu),
                 Layer.dense(index: 1, inputSize: 256, outputSize: 10, activation: .softmax)],
        preprocessing: [.scale(factor: 1.0 / 255, offset: 0)],
        classes: (0..<10).map(String.init),
        training: TrainingRecord(loss: "cross-entropy", optimizer: "sgd",
                                 hyperparameters: JSONObject([("lr", 0.1), ("batch_size", 64)]), epochs: 10,
                                 dataset: JSONObject([("name", "mnist"), ("train", 60000), ("test", 10000)]),
                                 history: history, step: 9380),
        provenance: Provenance(tool: "tests", created: "2026-11-24T00:00:00Z"))
    return Model(metadata: meta, tensors: [
        NamedTensor("layers.0.weight", Tensor(values(784 * 256), shape: [784, 256])),
        NamedTensor("layers.0.bias", Tensor(values(256), shape: [256])),
        NamedTensor("layers.1.weight", Tensor(values(256 * 10), shape: [256, 10])),
        NamedTensor("layers.1.bias", Tensor(values(10), shape: [10])),
    ])
}

@Suite struct Integrity {
    /// 10,000 random single-bit flips (seeded) anywhere in an 806 KB file: every one is detected,
    /// and by the check that covers the flipped byte: the magic, the version, the preamble CRC,
    /// the header CRC, the zero padding, or the CRC of the very tensor the byte belongs to.
    @Test func tenThousandRandomBitFlipsAreAllDetected() throws {
        let model = mnistSizedModel()
        let (header, data, entries) = parts(of: model)
        var bytes = NNMFile(header: header, data: data).bytes()
        #expect(bytes.count > 800_000)
        let decoded = try NNMFormat.decode(bytes: bytes, path: "m.nnm")
        #expect(decoded.tensors.map(\.name) == model.tensors.map(\.name))

        let headerEnd = 48 + Array(JSONValue.object(header).serialized(indent: 1).utf8).count
        let dataOffset = (headerEnd + 63) / 64 * 64
        /// The tensor a byte belongs to, if any.
        func tensor(at offset: Int) -> String? {
            entries.first { dataOffset + $0.offset <= offset && offset < dataOffset + $0.offset + $0.length }?.name
        }
        func describe(_ offset: Int) -> String {
            switch offset {
            case 0..<8: return "magic"
            case 8..<10: return "major version"
            case 10..<48: return "preamble"
            case 48..<headerEnd: return "header"
            default: return tensor(at: offset).map { "tensor \($0)" } ?? "padding"
            }
        }

        var rng = SplitMix64(seed: 2026_11_24)
        var undetected: [Int] = []
        var misattributed: [String] = []
        var counts: [String: Int] = [:]
        for _ in 0..<10_000 {
            let bit = Int(rng.next() % UInt64(bytes.count * 8))
            let offset = bit / 8
            let mask = UInt8(1) << UInt8(bit % 8)
            bytes[offset] ^= mask
            defer { bytes[offset] ^= mask }
            let region = describe(offset)
            counts[region.hasPrefix("tensor") ? "tensors" : region, default: 0] += 1
            do {
                _ = try NNMFormat.decode(bytes: bytes, path: "m.nnm", verifyChecksums: true)
                undetected.append(bit)
            } catch {
                let expected: Bool
                switch (region, error) {
                case ("magic", .wrongMagic), ("major version", .unsupportedVersion), ("preamble", .preambleChecksumMismatch),
                     ("header", .headerChecksumMismatch):
                    expected = true
                case ("padding", .nonZeroPadding(_, let at)):
                    expected = at == offset
                case (_, .checksumMismatch(_, let name, _, _)):
                    expected = region == "tensor \(name)"
                default:
                    expected = false
                }
                if !expected { misattributed.append("bit \(bit) in the \(region): \(error)") }
            }
        }
        #expect(undetected.isEmpty, "flips of bits \(undetected) went undetected")
        #expect(misattributed.isEmpty, "\(misattributed.prefix(5))")
        // The flips land where the bytes are: nearly all in the tensors, a few in the header.
        #expect(counts.values.reduce(0, +) == 10_000)
        #expect(counts["tensors", default: 0] > 9_900)
    }
}
