import Foundation
import Testing
@testable import NNHDF5

/// String datasets and a Keras-style legacy `.h5` file, as h5py writes them.
@Suite struct StringAndKerasTests {
    static let stringDatasets = [
        "/vlen_utf8", "/vlen_ascii", "/fixed_nullpad", "/vlen_2d", "/scalar_vlen", "/fixed_nullterm",
    ]

    @Test("string datasets: fixed, variable, ASCII, UTF-8, any rank", arguments: stringDatasets)
    func stringDataset(name: String) throws {
        let expected = try #require(try Fixtures.expected("strings.h5")[name] as? [String: Any])
        let file = try HDF5File.open(path: Fixtures.path("strings.h5"))
        let dataset = try file.dataset(name)
        #expect(dataset.shape == (expected["shape"] as? [Int]))
        #expect(dataset.elementType.name == "string")
        #expect(try dataset.readStrings() == (expected["strings"] as? [String]))
    }

    @Test func stringTypeDetails() throws {
        let file = try HDF5File.open(path: Fixtures.path("strings.h5"))
        #expect(try file.dataset("vlen_utf8").elementType
            == .string(HDF5StringType(length: .variable, encoding: .utf8, padding: .nullTerminated)))
        #expect(try file.dataset("vlen_ascii").elementType
            == .string(HDF5StringType(length: .variable, encoding: .ascii, padding: .nullTerminated)))
        #expect(try file.dataset("fixed_nullpad").elementType
            == .string(HDF5StringType(length: .fixed(5), encoding: .ascii, padding: .nullPadded)))
        #expect(try file.dataset("fixed_nullpad").elementType.description
            == "string (fixed length 5, ASCII, null-padded)")
    }

    @Test func kerasRootAttributes() throws {
        let expected = try Fixtures.expected("keras.h5")
        let file = try HDF5File.open(path: Fixtures.path("keras.h5"))
        #expect(try file.attributeNames() == ["backend", "keras_version", "model_config"])
        // h5py stores `bytes` as variable-length ASCII, `str` as variable-length UTF-8.
        #expect(try file.stringAttribute("keras_version") == (expected["keras_version"] as? String))
        #expect(try file.attributeInfo("keras_version").elementType
            == .string(HDF5StringType(length: .variable, encoding: .ascii, padding: .nullTerminated)))
        #expect(try file.stringAttribute("backend") == (expected["backend"] as? String))
        let config = try file.stringAttribute("model_config")
        #expect(config == (expected["model_config"] as? String))
        #expect(try file.attribute("model_config") == .string(config))
        #expect(try file.attributeInfo("model_config").elementType
            == .string(HDF5StringType(length: .variable, encoding: .utf8, padding: .nullTerminated)))
    }

    @Test func kerasLayerAndWeightNames() throws {
        let expected = try Fixtures.expected("keras.h5")
        let weightNames = try #require(expected["weight_names"] as? [String: [String]])
        let file = try HDF5File.open(path: Fixtures.path("keras.h5"))
        let weights = try file.group("model_weights")

        // `layer_names` is an array of fixed-length, null-padded byte strings.
        let layers = try weights.stringArrayAttribute("layer_names")
        #expect(layers == (expected["layer_names"] as? [String]))
        #expect(try weights.attributeInfo("layer_names").elementType
            == .string(HDF5StringType(length: .fixed(7), encoding: .ascii, padding: .nullPadded)))
        #expect(try weights.attribute("layer_names") == .strings(layers))

        for layer in layers {
            let group = try weights.group(layer)
            let names = try group.stringArrayAttribute("weight_names")
            #expect(names == weightNames[layer], "layer \(layer)")
        }
        // Keras writes an empty list of names as an empty float64 array.
        #expect(try weights.group("dropout").attributeInfo("weight_names")
            == HDF5ValueInfo(elementType: .float(bits: 64), shape: [0], elementCount: 0))
    }

    @Test func kerasWeightsByPathAndByWalk() throws {
        let expected = try Fixtures.expected("keras.h5")
        let datasets = try #require(expected["datasets"] as? [String: [String: Any]])
        let file = try HDF5File.open(path: Fixtures.path("keras.h5"))
        for (path, entry) in datasets {
            let dataset = try file.dataset(path)
            #expect(dataset.shape == (entry["shape"] as? [Int]), "\(path)")
            #expect(floatBits(try dataset.readFloats()) == (entry["f32"] as? [String]), "\(path)")
        }
        // Relative paths from a subgroup, the weight names joined the way Keras does.
        let dense = try file.group("/model_weights/dense")
        #expect(dense.path == "/model_weights/dense")
        for name in try dense.stringArrayAttribute("weight_names") {
            #expect(try dense.dataset(name).path == "/model_weights/dense/" + name)
        }
        let walked = try file.datasetPaths()
        #expect(Set(walked) == Set(datasets.keys))
        #expect(walked.count == datasets.count)
        #expect(try file.group("model_weights").datasetPaths() == [
            "/model_weights/dense/dense/bias:0", "/model_weights/dense/dense/kernel:0",
            "/model_weights/dense_1/dense_1/bias:0", "/model_weights/dense_1/dense_1/kernel:0",
        ])
    }

    @Test func membersOfKerasGroups() throws {
        let file = try HDF5File.open(path: Fixtures.path("keras.h5"))
        #expect(try file.members() == [
            HDF5Member(name: "keras3", kind: .group), HDF5Member(name: "model_weights", kind: .group),
        ])
        #expect(try file.group("model_weights/dense/dense").members() == [
            HDF5Member(name: "bias:0", kind: .dataset), HDF5Member(name: "kernel:0", kind: .dataset),
        ])
        #expect(try file.kind(of: "model_weights/dense/dense/kernel:0") == .dataset)
        #expect(try file.kind(of: "model_weights/nothing/here") == nil)
        #expect(try file.contains("/keras3/model_weights"))
    }
}
