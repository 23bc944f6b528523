import NNCompression
import NNCore
@testable import NNFormat
import NNTestSupport

typealias FileBuilder = NNMBytes

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
