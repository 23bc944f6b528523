import Foundation
import Testing
@testable import NNHDF5

/// Writing files atomically, reading them back bit for bit, and checking them with h5py.
@Suite struct WriteTests {
    /// Floats with awkward bit patterns: signed zero, a NaN with a payload, subnormals, extremes.
    static let awkwardFloats: [Float] = [
        0, -0.0, .infinity, -.infinity, Float(bitPattern: 0x7FC0_1234), Float(bitPattern: 0xFF80_0001),
        .leastNonzeroMagnitude, .greatestFiniteMagnitude, -.leastNormalMagnitude, 0.1, 1.0 / 3.0, -2.5,
    ]
    static let awkwardDoubles: [Double] = [
        0, -0.0, .infinity, .nan, Double(bitPattern: 0x7FF0_0000_0000_0001), .leastNonzeroMagnitude,
        .greatestFiniteMagnitude, 0.1, 1.0 / 3.0, -1e-300, 12345.678, .pi,
    ]

    @Test func roundTripIsBitIdentical() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("model.h5")
        let shapes: [[Int]] = [[], [12], [3, 4], [2, 3, 2], [1, 2, 3, 2]]

        try HDF5File.createAtomically(path: path) { file in
            for (rank, shape) in shapes.enumerated() {
                let count = shape.reduce(1, *)
                try file.createDataset("floats/r\(rank)", floats: Array(Self.awkwardFloats.prefix(count)), shape: shape)
                try file.createDataset("doubles/r\(rank)", doubles: Array(Self.awkwardDoubles.prefix(count)), shape: shape)
            }
            try file.createDataset("ints", integers: [Int64.min, -1, 0, Int64.max], shape: [2, 2])
            try file.createDataset("empty", floats: [], shape: [0, 4])
            try file.createDataset("names", strings: ["dense", "βeta", ""])
            try file.createDataset("fixed", strings: ["ab", "c"], storage: .fixedLength)
        }
        #expect(try directory.contents() == ["model.h5"])

        let file = try HDF5File.open(path: path)
        for (rank, shape) in shapes.enumerated() {
            let count = shape.reduce(1, *)
            let floats = try file.dataset("floats/r\(rank)")
            #expect(floats.shape == shape)
            #expect(floats.elementType == .float(bits: 32))
            #expect(floatBits(try floats.readFloats()) == floatBits(Array(Self.awkwardFloats.prefix(count))))
            let doubles = try file.dataset("doubles/r\(rank)")
            #expect(doubles.shape == shape)
            #expect(doubleBits(try doubles.readDoubles()) == doubleBits(Array(Self.awkwardDoubles.prefix(count))))
        }
        #expect(try file.dataset("ints").readIntegers() == [Int64.min, -1, 0, Int64.max])
        #expect(try file.dataset("empty").shape == [0, 4])
        #expect(try file.dataset("names").readStrings() == ["dense", "βeta", ""])
        #expect(try file.dataset("fixed").readStrings() == ["ab", "c"])
        #expect(try file.datasetPaths() == [
            "/doubles/r0", "/doubles/r1", "/doubles/r2", "/doubles/r3", "/doubles/r4", "/empty", "/fixed",
            "/floats/r0", "/floats/r1", "/floats/r2", "/floats/r3", "/floats/r4", "/ints", "/names",
        ])
    }

    @Test func attributesRoundTrip() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("attrs.h5")
        try HDF5File.createAtomically(path: path) { file in
            try file.setAttribute("model_config", .string("{\"name\": \"séquentiel\"}"))
            try file.setAttribute("count", .integer(-7))
            try file.setAttribute("rate", .double(0.1))
            try file.setAttribute("sizes", .integers([784, 256, 10]))
            try file.setAttribute("scales", .doubles([0.5, -0.25]))
            try file.setAttribute("tags", .strings(["a", "bé"]))
            let weights = try file.createGroup("model_weights")
            try weights.setAttribute("layer_names", strings: ["dense", "dense_1"], storage: .fixedLength)
            let dense = try weights.createGroup("dense")
            try dense.setAttribute("weight_names", strings: ["dense/kernel:0"], storage: .fixedLength)
            let kernel = try dense.createDataset("dense/kernel:0", floats: [1, 2, 3, 4, 5, 6], shape: [2, 3])
            try kernel.setAttribute("note", .string("first"))
            try kernel.setAttribute("note", .string("replaced"))
            try file.setAttribute("gone", .integer(1))
            try file.deleteAttribute("gone")
        }
        let file = try HDF5File.open(path: path)
        #expect(try file.attributeNames() == ["count", "model_config", "rate", "scales", "sizes", "tags"])
        #expect(try file.stringAttribute("model_config") == "{\"name\": \"séquentiel\"}")
        #expect(try file.attribute("count") == .integer(-7))
        #expect(try file.attribute("rate") == .double(0.1))
        #expect(try file.attribute("sizes") == .integers([784, 256, 10]))
        #expect(try file.attribute("scales") == .doubles([0.5, -0.25]))
        #expect(try file.attribute("tags") == .strings(["a", "bé"]))
        #expect(try file.attributeInfo("model_config").elementType
            == .string(HDF5StringType(length: .variable, encoding: .utf8, padding: .nullTerminated)))
        let weights = try file.group("model_weights")
        #expect(try weights.stringArrayAttribute("layer_names") == ["dense", "dense_1"])
        #expect(try weights.attributeInfo("layer_names").elementType
            == .string(HDF5StringType(length: .fixed(7), encoding: .ascii, padding: .nullPadded)))
        #expect(try file.dataset("model_weights/dense/dense/kernel:0").stringAttribute("note") == "replaced")
    }

    @Test(.enabled(if: Python.hasH5py, "needs python3 with h5py"))
    func h5pyReadsWhatWeWrite() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("for_h5py.h5")
        try HDF5File.createAtomically(path: path) { file in
            try file.setAttribute("model_config", .string("{\"é\": 1}"))
            try file.setAttribute("epochs", .integer(12))
            let weights = try file.createGroup("model_weights")
            try weights.setAttribute("layer_names", strings: ["dense", "dense_1"], storage: .fixedLength)
            try file.createDataset("model_weights/dense/dense/kernel:0", floats: Self.awkwardFloats, shape: [3, 4])
            try file.createDataset("d", doubles: Self.awkwardDoubles, shape: [2, 2, 3])
            try file.createDataset("s", strings: ["x", "ÿ"])
        }
        let script = """
        import sys, json, h5py, numpy as np
        f = h5py.File(sys.argv[1], "r")
        k = f["model_weights/dense/dense/kernel:0"]
        out = {
            "config": f.attrs["model_config"],
            "config_is_str": isinstance(f.attrs["model_config"], str),
            "config_type": str(h5py.check_string_dtype(f.attrs.get_id("model_config").dtype)),
            "epochs": int(f.attrs["epochs"]),
            "layer_names": [n.decode() for n in f["model_weights"].attrs["layer_names"]],
            "layer_names_dtype": f["model_weights"].attrs["layer_names"].dtype.str,
            "kernel_dtype": k.dtype.str, "kernel_shape": list(k.shape),
            "kernel_bits": ["%08x" % v for v in k[()].reshape(-1).view(np.uint32)],
            "d_dtype": f["d"].dtype.str,
            "d_bits": ["%016x" % v for v in f["d"][()].reshape(-1).view(np.uint64)],
            "s": [v.decode() for v in f["s"][()]],
        }
        print(json.dumps(out))
        """
        let output = try Python.run(script, arguments: [path])
        let json = try #require(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any])
        #expect(json["config"] as? String == "{\"é\": 1}")
        #expect(json["config_is_str"] as? Bool == true)
        #expect(json["config_type"] as? String == "string_info(encoding='utf-8', length=None)")
        #expect(json["epochs"] as? Int == 12)
        #expect(json["layer_names"] as? [String] == ["dense", "dense_1"])
        #expect(json["layer_names_dtype"] as? String == "|S7")
        #expect(json["kernel_dtype"] as? String == "<f4")
        #expect(json["kernel_shape"] as? [Int] == [3, 4])
        #expect(json["kernel_bits"] as? [String] == floatBits(Self.awkwardFloats))
        #expect(json["d_dtype"] as? String == "<f8")
        #expect(json["d_bits"] as? [String] == doubleBits(Self.awkwardDoubles))
        #expect(json["s"] as? [String] == ["x", "ÿ"])
    }

    @Test func failedCreationLeavesTheOldFile() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("out.h5")
        try HDF5File.createAtomically(path: path) { file in
            try file.createDataset("version", integers: [1], shape: [1])
        }
        struct Interrupted: Error {}
        #expect(throws: Interrupted.self) {
            try HDF5File.createAtomically(path: path) { file in
                try file.createDataset("version", integers: [2], shape: [1])
                throw Interrupted()
            }
        }
        // A shape mismatch inside the body also aborts cleanly.
        let error = hdf5Error {
            try HDF5File.createAtomically(path: path) { file in
                _ = try file.createDataset("W", floats: [1, 2, 3], shape: [2, 2])
            }
        }
        #expect(error?.description == "\(path): /W: shape [2, 2] holds 4 elements, but 3 values were given")
        // A file dropped without commit is removed too.
        do {
            let file = try HDF5File.create(path: path)
            try file.createDataset("version", integers: [3], shape: [1])
        }
        #expect(try directory.contents() == ["out.h5"])
        #expect(try HDF5File.open(path: path).dataset("version").readIntegers() == [1])

        try HDF5File.createAtomically(path: path) { file in
            try file.createDataset("version", integers: [4], shape: [1])
        }
        #expect(try directory.contents() == ["out.h5"])
        #expect(try HDF5File.open(path: path).dataset("version").readIntegers() == [4])
    }

    @Test func objectsAreClosedByCommit() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("closed.h5")
        let file = try HDF5File.create(path: path)
        let dataset = try file.createDataset("x", doubles: [1, 2], shape: [2])
        #expect(file.isWritable)
        try file.commit()
        try file.commit()
        #expect(!file.isWritable)
        #expect(throws: HDF5Error.closed(file: path, object: "/x")) { try dataset.readDoubles() }
        #expect(throws: HDF5Error.closed(file: path, object: "/")) { try file.members() }
        #expect(try HDF5File.open(path: path).dataset("x").readDoubles() == [1, 2])
    }

    @Test func creationErrors() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("errors.h5")
        try HDF5File.createAtomically(path: path) { file in
            try file.createDataset("a/b", floats: [1], shape: [])
            #expect(hdf5Error { try file.createDataset("a/b", floats: [1], shape: []) }?.description
                == "\(path): /a/b: an object with this name already exists")
            #expect(hdf5Error { try file.createDataset("a/b/c", floats: [1], shape: []) }?.description
                == "\(path): /a/b: expected a group, found a dataset")
            #expect(hdf5Error { try file.createDataset("n", floats: [1], shape: [-1]) }?.description
                == "\(path): /n: shape [-1] is not valid")
            #expect(hdf5Error { try file.createDataset("big", floats: [1], shape: Array(repeating: 1, count: 33)) }?
                .description == "\(path): /big: rank 33 exceeds the maximum of 32")
            #expect(hdf5Error { try file.createDataset("s", strings: ["a\u{0}b"]) }?.description
                == "\(path): /s: a string contains a NUL byte, which HDF5 strings cannot hold")
            #expect(hdf5Error { _ = try file.createGroup("a") }?.description
                == "\(path): /a: an object with this name already exists")
        }
        let missingDirectory = directory.file("no/such/dir/x.h5")
        let error = hdf5Error { _ = try HDF5File.create(path: missingDirectory) }
        #expect(error?.description.hasPrefix(
            "\(missingDirectory): cannot write: cannot create a temporary file in \(directory.file("no/such/dir")): No such file or directory") == true)
        #expect(hdf5Error { try HDF5File.open(path: path).commit() }?.description
            == "\(path): only files made with HDF5File.create(path:) can be committed")
    }

    @Test func writesInParallel() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<6 {
                let path = directory.file("p\(index).h5")
                group.addTask {
                    try HDF5File.createAtomically(path: path) { file in
                        try file.createDataset("v", doubles: [Double(index)], shape: [1])
                        try file.setAttribute("i", .integer(Int64(index)))
                    }
                    let file = try HDF5File.open(path: path)
                    #expect(try file.dataset("v").readDoubles() == [Double(index)])
                    #expect(try file.integerAttribute("i") == Int64(index))
                }
            }
            try await group.waitForAll()
        }
        #expect(try directory.contents() == (0..<6).map { "p\($0).h5" })
    }
}
