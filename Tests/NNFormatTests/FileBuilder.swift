import NNCompression
import NNCore
@testable import NNFormat

/// Builds `.nnm` bytes by hand, straight from the spec, so tests can craft valid and broken
/// files independently of the writer.
struct FileBuilder {
    var major: UInt16 = 1
    var minor: UInt16 = 0
    var flags: UInt32 = 0
    var header: [UInt8]
    var data: [UInt8]
    var headerLengthOverride: UInt64?
    var dataOffsetOverride: UInt64?
    var dataLengthOverride: UInt64?
    var fixPreambleCRC = true
    var fixHeaderCRC = true

    init(header: String, data: [UInt8]) {
        self.header = Array(header.utf8)
        self.data = data
    }

    func bytes() -> [UInt8] {
        var out: [UInt8] = [0x89, 0x4E, 0x4E, 0x4D, 0x0D, 0x0A, 0x1A, 0x0A]
        func le<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
        let dataOffset = (48 + header.count + 63) / 64 * 64
        le(major); le(minor); le(flags)
        le(headerLengthOverride ?? UInt64(header.count))
        le(dataOffsetOverride ?? UInt64(dataOffset))
        le(dataLengthOverride ?? UInt64(data.count))
        le(fixHeaderCRC ? CRC32.checksum(header) : 0)
        le(fixPreambleCRC ? CRC32.checksum(out) : 0)
        out += header
        out += [UInt8](repeating: 0, count: dataOffset - out.count)
        out += data
        return out
    }
}

/// A small valid model: 4 inputs (2x2), a hidden layer of 3 ReLU units, 2 softmax outputs.
func tinyModel(dtype: DType = .float32) -> Model {
    let w0: [Double] = [0.5, -0.25, 0.125, 1, 2, -1, 0.75, -0.5, 0.25, 0, 1.5, -2]
    let b0: [Double] = [0.1, -0.2, 0.3]
    let w1: [Double] = [1, -1, 0.5, 0.25, -0.75, 2]
    let b1: [Double] = [0, 0.5]
    func t(_ v: [Double], _ shape: [Int]) -> Tensor {
        dtype == .float64 ? Tensor(v, shape: shape) : Tensor(v.map(Float.init), shape: shape)
    }
    let meta = ModelMetadata(
        input: InputSpec(shape: [2, 2]),
        layers: [Layer.dense(index: 0, inputSize: 4, outputSize: 3, activation: .relu),
                 Layer.dense(index: 1, inputSize: 3, outputSize: 2, activation: .softmax)],
        preprocessing: [.scale(factor: 1.0 / 255, offset: 0)],
        classes: ["no", "yes"],
        training: TrainingRecord(loss: "cross-entropy", optimizer: "momentum",
                                 hyperparameters: JSONObject([("lr", 0.1), ("momentum", 0.9)]), epochs: 2,
                                 dataset: JSONObject([("name", "tiny")]),
                                 history: [EpochRecord(epoch: 1, trainLoss: 0.7, testLoss: 0.8, testAccuracy: 0.5),
                                           EpochRecord(epoch: 2, trainLoss: 0.6, testLoss: 0.65, testAccuracy: 0.75)],
                                 optimizerState: [("layers.0.weight", "optimizer.velocity.layers.0.weight")], step: 10),
        provenance: Provenance(tool: "tests", created: "2026-11-24T00:00:00Z", sourceFile: "tiny.h5", sourceFormat: "h5-rows"))
    return Model(metadata: meta, tensors: [
        NamedTensor("layers.0.weight", t(w0, [4, 3])),
        NamedTensor("layers.0.bias", t(b0, [3])),
        NamedTensor("layers.1.weight", t(w1, [3, 2])),
        NamedTensor("layers.1.bias", t(b1, [2])),
        NamedTensor("optimizer.velocity.layers.0.weight", t(w0.map { $0 * 0.01 }, [4, 3])),
    ])
}
