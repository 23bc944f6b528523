import NNCore
import NNEngine
import NNTestSupport
import Testing

/// On our kernels a sample's outputs do not depend on the batch it comes in: alone (the first
/// one-sample call and later ones), in blocks of any size, on one thread or two, the same bits.
/// nn-infer answering a pipe as images arrive and a Dask cluster cutting a file into partitions
/// rely on it (python/tests/test_dask.py compares the printed probabilities exactly).
@Suite struct BatchInvarianceTests {
    /// 12 x 12 x 1 -> conv 3x3 x 7 (same padding, ReLU) -> max pool 2x2 -> flatten -> dense 10
    /// (softmax): weights that are not small integers, so any change of summation order shows.
    static func cnn() throws -> Model {
        var layers = [try Layer.conv2d(index: 0, inputShape: [12, 12, 1], filters: 7, kernel: [3, 3], strides: [1, 1],
                                       padding: .same, convention: .crossCorrelation, activation: .relu)]
        layers.append(try Layer.maxPool2d(index: 1, inputShape: layers[0].spatial!.outputShape, pool: [2, 2]))
        let pooled = layers[1].spatial!.outputShape
        layers.append(.flatten(inputShape: pooled))
        let features = pooled.reduce(1, *)
        layers.append(.dense(index: 3, inputSize: features, outputSize: 10, activation: .softmax))
        let meta = ModelMetadata(input: InputSpec(shape: [12, 12]), layers: layers, preprocessing: [.scale(factor: 1.0 / 255, offset: 0)],
                                 provenance: Provenance(tool: "tests", created: "2026-12-05T00:00:00Z"))
        return Model(metadata: meta, tensors: [
            NamedTensor("layers.0.weight", Tensor(OneSampleTests.values(63, seed: 4), shape: [3, 3, 1, 7])),
            NamedTensor("layers.0.bias", Tensor(OneSampleTests.values(7, seed: 5), shape: [7])),
            NamedTensor("layers.3.weight", Tensor(OneSampleTests.values(features * 10, seed: 6), shape: [features, 10])),
            NamedTensor("layers.3.bias", Tensor(OneSampleTests.values(10, seed: 7), shape: [10])),
        ])
    }

    /// The models: a dense one with z-score preprocessing, 301 inputs (not a multiple of any kc
    /// block or vector), 130 and 37 outputs (not multiples of 8, 16 or 32, more than 64), a first
    /// layer large enough for two threads; one ending in a single output; one whose first layer
    /// (120 outputs) is one group of columns on AVX-512 and two on AVX2; a CNN.
    static func models() throws -> [(String, Model)] {
        [("dense, z-score", OneSampleTests.model(zscore: true, hidden: .sigmoid, output: .softmax)),
         ("dense, ReLU", OneSampleTests.model(zscore: false, hidden: .relu, output: .identity)),
         ("dense, 120 wide", OneSampleTests.model(zscore: false, hidden: .relu, output: .softmax, width: 120)),
         ("cnn", try cnn())]
    }

    @Test(arguments: MatrixKernel.allCases.filter { $0 != .openblas && $0.isSupported })
    func oneSampleIsItsBatchRow(_ kernel: MatrixKernel) throws {
        for (name, model) in try Self.models() {
            let engine = try InferenceEngine<Float>(model: model, kernel: kernel)
            #expect(engine.matrixKernel == kernel)
            let failures = batchInvarianceFailures(engine, count: 13)
            #expect(failures.isEmpty, "\(kernel.rawValue), \(name): \(failures.prefix(3))")
        }
    }

    /// Bytes in (an IDX file's pixels) give what their floats give, to the bit, on every kernel:
    /// read by the first product as it packs its rows (z-score alone, scale alone, no
    /// preprocessing; the f32 first layer is 130 wide, 301 deep, so its rows cross the prologue's
    /// chunks of 256) and widened first where it cannot (two steps of preprocessing, a CNN).
    @Test(arguments: MatrixKernel.allCases.filter { $0 != .openblas && $0.isSupported })
    func bytesGiveWhatTheirFloatsGive(_ kernel: MatrixKernel) throws {
        let twoSteps = OneSampleTests.model(zscore: true, hidden: .sigmoid, output: .softmax)
        var zscore = twoSteps, scale = OneSampleTests.model(zscore: false, hidden: .relu, output: .identity), none = scale
        zscore.metadata.preprocessing.removeFirst()
        none.metadata.preprocessing = []
        for (name, model) in [("z-score", zscore), ("scale", scale), ("none", none), ("two steps", twoSteps), ("cnn", try Self.cnn())] {
            let failures = byteInputFailures(try InferenceEngine<Float>(model: model, kernel: kernel), count: 13)
            #expect(failures.isEmpty, "\(kernel.rawValue), \(name): \(failures.prefix(3))")
        }
    }

    /// A batch of more than `blockParallelMinimum` samples runs whole blocks on each thread: the
    /// same bits as smaller calls, whose blocks run one at a time with each product shared.
    @Test(arguments: MatrixKernel.allCases.filter { $0 != .openblas && $0.isSupported })
    func wholeBlocksPerThread(_ kernel: MatrixKernel) throws {
        for (name, model) in try Self.models() {
            let engine = try InferenceEngine<Float>(model: model, kernel: kernel)
            let failures = largeBatchFailures(engine)
            #expect(failures.isEmpty, "\(kernel.rawValue), \(name): \(failures.prefix(3))")
        }
    }

    /// The kernels' report says so on two threads, and not on one.
    /// (Other suites set the thread count too, concurrently: the report reads it once, so it is
    /// checked against the count it names.)
    @Test func reportedWhenItApplies() throws {
        let engine = try InferenceEngine<Float>(model: OneSampleTests.model(zscore: true, hidden: .relu, output: .softmax))
        let rule = "batches of \(InferenceEngine<Float>.blockParallelMinimum) or more as whole blocks per thread"
        let saved = BLAS.threadCount
        defer { BLAS.setThreadCount(saved) }
        for threads in [2, 1] {
            BLAS.setThreadCount(threads)
            let report = engine.kernelDescription
            if report.contains("(ours, 2 threads") {
                #expect(report.contains("(ours, 2 threads, \(rule))"), "\(report)")
            } else {
                #expect(report.contains("(ours, 1 thread)") && !report.contains(rule), "\(report)")
            }
        }
    }

    /// A single output: one column in a zero-padded panel, a vector of 8 with 7 unused lanes.
    @Test(arguments: MatrixKernel.allCases.filter { $0 != .openblas && $0.isSupported })
    func oneOutput(_ kernel: MatrixKernel) throws {
        let meta = ModelMetadata(input: InputSpec(shape: [301]),
                                 layers: [Layer.dense(index: 0, inputSize: 301, outputSize: 1, activation: .sigmoid)],
                                 provenance: Provenance(tool: "tests", created: "2026-12-05T00:00:00Z"))
        let model = Model(metadata: meta, tensors: [NamedTensor("layers.0.weight", Tensor(OneSampleTests.values(301, seed: 3), shape: [301, 1])),
                                                    NamedTensor("layers.0.bias", Tensor([0.25], shape: [1]))])
        let failures = batchInvarianceFailures(try InferenceEngine<Float>(model: model, kernel: kernel), count: 7)
        #expect(failures.isEmpty, "\(kernel.rawValue), one output: \(failures.prefix(3))")
    }
}
