import Foundation
import NNCore
import NNEngine
import NNHDF5
import NNTestSupport
import Testing
@testable import NNConvert
import NNModelFiles

// Fixtures/keras/ (written by Fixtures/generate_keras_layers.py with Keras 3.15, JAX backend):
// models using format 1.2's layers and activations as `.keras` and legacy `.h5`, their inputs
// and the outputs Keras predicted.

let kerasLayersDirectory = fixturesDirectory("keras")

/// One model of Fixtures/keras/expected.json, in one of its files.
struct KerasLayerCase: CustomStringConvertible, Sendable {
    var name: String
    var file: String
    var input: [Double]
    var rows: Int
    var expected: [Double]
    var classes: Int
    var top1: [Int]
    var description: String { file }

    static let all: [KerasLayerCase] = {
        guard let data = FileManager.default.contents(atPath: "\(kerasLayersDirectory)/expected.json"),
              let root = try? JSONValue.parse([UInt8](data)), let cases = root["cases"]?.arrayValue else { return [] }
        func matrix(_ v: JSONValue?) -> [[Double]] { (v?.arrayValue ?? []).map { ($0.arrayValue ?? []).compactMap(\.doubleValue) } }
        return cases.flatMap { c -> [KerasLayerCase] in
            let input = matrix(c["input"]), expected = matrix(c["expected"])
            return (c["files"]?.arrayValue ?? []).compactMap(\.stringValue).map { file in
                KerasLayerCase(name: c["name"]?.stringValue ?? "?", file: file, input: input.flatMap { $0 }, rows: input.count,
                               expected: expected.flatMap { $0 }, classes: c["classes"]?.intValue ?? 0,
                               top1: (c["top1"]?.arrayValue ?? []).compactMap(\.intValue))
            }
        }
    }()
}

@Suite struct KerasLayerImport {
    @Test func everyModelIsListed() {
        #expect(KerasLayerCase.all.count == 14)
    }

    @Test(arguments: KerasLayerCase.all)
    func predictsAsKeras(_ c: KerasLayerCase) throws {
        let result = try ModelFiles.importModel(path: "\(kerasLayersDirectory)/\(c.file)")
        // f32 with batch normalization folded (what nn-infer runs), and the f64 reference path.
        let f32 = try InferenceEngine<Float>(model: result.model).predict(raw: c.input.map(Float.init), count: c.rows).map(Double.init)
        let f64 = try InferenceEngine<Double>(model: result.model, foldingBatchNorm: false).predict(raw: c.input, count: c.rows)
        for (label, ours) in [("f32", f32), ("f64", f64)] {
            #expect(ours.count == c.expected.count)
            let worst = zip(ours, c.expected).map { abs($0 - $1) }.max() ?? .infinity
            #expect(worst <= 1e-5, "\(label): max abs error \(worst)")
            let top1 = (0..<c.rows).map { r in
                (0..<c.classes).max { ours[r * c.classes + $0] < ours[r * c.classes + $1] }!
            }
            #expect(top1 == c.top1, "\(label)")
        }
    }

    @Test func layersAndActivationsAreKerass() throws {
        let mlp = try ModelFiles.importModel(path: "\(kerasLayersDirectory)/k3_gelu_mlp.keras").model.metadata
        #expect(mlp.layers.map(\.activation) == [.gelu(.exact), .leakyRelu(alpha: 0.3), .swish, .elu(alpha: 0.7), .selu, .softplus,
                                                 .hardSigmoid, .leakyRelu(alpha: 0.2), .swish, .elu(alpha: 1), .softmax])
        let cnn = try ModelFiles.importModel(path: "\(kerasLayersDirectory)/k3_bn_cnn_legacy.h5").model.metadata
        #expect(cnn.layers.map(\.kind) == [.conv2d, .batchNorm, .maxPool2d, .flatten, .dense, .batchNorm, .dense])
        #expect(cnn.layers[0].bias == nil)
        #expect(cnn.layers[1].activation == .relu)
        #expect(cnn.layers[1].batchNorm?.epsilon == 0.001)
        #expect(cnn.layers[5].batchNorm?.gamma == nil && cnn.layers[5].batchNorm?.beta == nil)
        #expect(cnn.layers[5].batchNorm?.epsilon == 0.01)
        #expect(cnn.layers[2].spatial?.padding == .same)
        let same = try ModelFiles.importModel(path: "\(kerasLayersDirectory)/k3_conv_same.keras").model.metadata
        #expect(same.layers[1].kind == .avgPool2d && same.layers[1].countIncludePad == false && same.layers[1].spatial?.padding == .same)
        #expect(same.outputKind == .logProbabilities)
        let logits = try ModelFiles.importModel(path: "\(kerasLayersDirectory)/k3_global_max.keras").model.metadata
        #expect(logits.layers[0].activation == .clippedRelu(maxValue: 2.5))
        #expect(logits.outputKind == .logits)
    }

    @Test func malformedFilesHaveOneLineEach() {
        let d = kerasLayersDirectory
        let cases = [
            ("bad_negative_epsilon.keras", "Keras layer 'batch_normalization': epsilon must be positive, found -0.001"),
            ("bad_variance_size.keras", "batch_normalization/moving_variance: expected 4, found 3"),
            ("bad_variance_size_legacy.h5", "batch_normalization/moving_variance: expected 4, found 3"),
            ("bad_pool_too_large.keras",
             "Keras layer 'max_pooling2d' (MaxPooling2D): layers[2].pool: expected a window that fits the input 5x5x4 with 'valid' padding, found 8x8"),
            ("bad_weights_only_batchnorm.weights.h5",
             "unexpected 'layers/batch_normalization': without a configuration only Dense layers (layers/dense, layers/dense_1, ...) can be read; import the .keras archive or the legacy .h5 that holds the architecture"),
            ("bad_unknown_activation.keras",
             "Keras layer 'dense' uses activation 'mish', which is not supported (\(KerasModelConfig.activationNames))"),
        ]
        for (file, message) in cases {
            do {
                _ = try ModelFiles.importModel(path: "\(d)/\(file)")
                Issue.record("\(file) imported")
            } catch {
                #expect("\(error)" == "\(d)/\(file): \(message)")
            }
        }
    }
}

/// `nnconv export`'s summary names exactly the datasets the file holds.
@Suite struct ExportSummaries {
    @Test(arguments: ["k3_bn_cnn.keras", "k3_lenet5_legacy.h5", "k3_gelu_mlp.keras"])
    func h5SummaryNamesEveryDataset(_ file: String) throws {
        let model = try ModelFiles.importModel(path: "\(kerasLayersDirectory)/\(file)").validated
        let dir = scratchDirectory("export-summary")
        let out = "\(dir)/m.h5"
        let summary = try ModelFiles.export(model, to: out).summary
        let h5 = try HDF5File.open(path: out)
        defer { h5.close() }
        let written = try h5.datasetPaths().map { $0.hasPrefix("/") ? String($0.dropFirst()) : $0 }.sorted()
        // "rows layout: W1, W2, b2; nnm_tensors: layers.1.gamma, ..." -> every name with its group.
        let parts = summary.dropFirst("rows layout: ".count).split(separator: ";")
        var named = parts[0].split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        if parts.count > 1 {
            let group = parts[1].trimmingCharacters(in: .whitespaces)
            named += group.dropFirst("nnm_tensors: ".count).split(separator: ",").map { "nnm_tensors/" + $0.trimmingCharacters(in: .whitespaces) }
        }
        #expect(named.sorted() == written, "\(summary)")
    }
}

/// Keras layers our export adds, read back in the places they can be.
@Suite struct KerasExportLayersImport {
    func importConfig(_ layers: [String], _ weights: [String: Tensor] = [:]) throws -> ImportResult {
        let config = try KerasModelConfig(json: #"{"class_name": "Sequential", "config": {"name": "s", "layers": ["# + layers.joined(separator: ", ") + "]}}", path: "k.json")
        return try KerasImporter.convolutionalModel(config: config, stages: try config.stages(path: "k.json"), path: "k.json",
                                                    options: ImportOptions(), sourceFormat: "test") { _, name, variables in
            var found: [String: SourceArray] = [:]
            for v in variables {
                let t = weights["\(name)/\(v)"]!
                found[v] = SourceArray(name: "\(name)/\(v)", shape: t.shape, dtype: t.dtype, typeName: "f64") { t }
            }
            return found
        }
    }

    @Test func zeroPaddingMustPrecedeAValidConvolutionOrAverage() throws {
        let input = #"{"class_name": "InputLayer", "config": {"name": "in", "batch_shape": [null, 4, 4, 1]}}"#
        let pad = #"{"class_name": "ZeroPadding2D", "config": {"name": "z", "padding": [[1, 0], [0, 1]]}}"#
        let maxPool = #"{"class_name": "MaxPooling2D", "config": {"name": "m", "pool_size": [2, 2]}}"#
        #expect(errorMessage { _ = try importConfig([input, pad, maxPool, #"{"class_name": "Flatten", "config": {"name": "f"}}"#]) }
                == "k.json: Keras layer 'z' (ZeroPadding2D): only before a Conv2D or AveragePooling2D with 'valid' padding is it supported")
        let average = #"{"class_name": "AveragePooling2D", "config": {"name": "a", "pool_size": [2, 2], "strides": [1, 1]}}"#
        let model = try importConfig([input, pad, average, #"{"class_name": "Flatten", "config": {"name": "f"}}"#]).model.metadata
        #expect(model.layers[0].spatial?.padding == .explicit(top: 1, left: 0, bottom: 0, right: 1))
        #expect(model.layers[0].countIncludePad)
    }

    @Test func rescalingAfterALayerIsRefused() {
        let input = #"{"class_name": "InputLayer", "config": {"name": "in", "batch_shape": [null, 2]}}"#
        let dense = #"{"class_name": "Dense", "config": {"name": "d", "units": 2, "use_bias": false}}"#
        let rescale = #"{"class_name": "Rescaling", "config": {"name": "r", "scale": 2}}"#
        #expect(errorMessage { _ = try importConfig([input, dense, rescale], ["d/kernel": Tensor([1.0, 0, 0, 1], shape: [2, 2])]) }
                == "k.json: Keras layer 'r' (Rescaling): only before every other layer (as preprocessing) is it supported")
    }
}
