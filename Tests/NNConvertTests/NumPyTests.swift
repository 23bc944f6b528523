import Foundation
import NNCompression
import NNCore
import NNHDF5
import Testing
@testable import NNConvert
import NNModelFiles
@testable import NNZip
@testable import NNNumPy
@testable import NNSafetensors

/// Builds `.npy` images by hand, for headers NumPy would never write.
enum NPYCraft {
    static func file(version: UInt8 = 1, header: String, data: [UInt8] = [], headerLength: Int? = nil) -> [UInt8] {
        let body = Array(header.utf8)
        var out: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, version, 0]
        let length = headerLength ?? body.count
        if version == 1 {
            out += [UInt8(length & 0xFF), UInt8((length >> 8) & 0xFF)]
        } else {
            out += (0..<4).map { UInt8((length >> (8 * $0)) & 0xFF) }
        }
        return out + body + data
    }
}

@Suite struct NumPyReadingTests {
    typealias Kit = ZipTestKit

    /// The fixture's `value` from expected.h5, as NumPy computed it.
    func expectedValue(_ id: String) throws -> [Double] {
        let file = try HDF5File.open(path: Kit.fixture("expected.h5"))
        return try file.dataset("\(id)/value").readDoubles()
    }

    @Test(arguments: [
        ("npy_v1_0_f32", "<f4", "1.0", false, DType.float32),
        ("npy_v2_0_f64", "<f8", "2.0", false, .float64),
        ("npy_v3_0_f64", "<f8", "3.0", false, .float64),
        ("npy_v1_0_fortran_f64", "<f8", "1.0", true, .float64),
        ("npy_v1_0_bigendian_f64", ">f8", "1.0", false, .float64),
    ])
    func readsTheNpyFixtures(id: String, descr: String, version: String, fortran: Bool, dtype: DType) throws {
        let array = try NumPyFile.read(path: Kit.fixture(id + ".npy"))
        #expect(array.descr == descr)
        #expect(array.formatVersion == version)
        #expect(array.fortranOrder == fortran)
        let tensor = try #require(array.tensor)
        #expect(tensor.dtype == dtype)
        #expect(tensor.shape == [12, 6])
        // Bit-exact: f32 values widen to f64 exactly.
        #expect(tensor.doubles() == (try expectedValue(id)))
    }

    @Test func readsTheNpzFixturesInStoredOrder() throws {
        let cases: [(String, [String], DType)] = [
            ("npz_blog_rows_2layer_f64.npz", ["W1", "b1", "W2", "b2"], .float64),
            ("npz_blog_rows_3layer_f32_compressed.npz", ["W1", "b1", "W2", "b2", "W3", "b3"], .float32),
            ("npz_nielsen_f64.npz", ["weights_0", "biases_0", "weights_1", "biases_1"], .float64),
        ]
        for (file, names, dtype) in cases {
            let path = Kit.fixture(file)
            let archive = try NumPyArchive.read(path: path)
            #expect(archive.names == names)
            #expect(archive.members.map(\.memberName) == names.map { $0 + ".npy" })
            let reference = Kit.json(try Kit.python("""
                import numpy as np, sys, json
                f = np.load(sys.argv[1])
                print(json.dumps({k: {'shape': list(f[k].shape), 'hex': np.ascontiguousarray(f[k]).tobytes().hex()} for k in f.files}))
                """, [path]))
            for member in archive.members {
                let tensor = try #require(member.array.tensor)
                let expected = try #require(reference[member.name] as? [String: Any])
                #expect(tensor.dtype == dtype)
                #expect(tensor.shape == expected["shape"] as? [Int])
                #expect(Kit.hex(tensor.bytes) == expected["hex"] as? String, "\(file) \(member.name)")
            }
        }
    }

    /// Every dtype, byte order and layout, written by NumPy and read by us, compared with what
    /// NumPy itself converts them to.
    @Test func readsWhatNumPyWrites() throws {
        let dir = Kit.TemporaryDirectory()
        let reference = Kit.json(try Kit.python("""
            import numpy as np, sys, json
            d = sys.argv[1]
            rng = np.random.default_rng(7)
            a = {
              'f2': rng.standard_normal((3, 4)).astype('<f2'),
              'f2be': rng.standard_normal((3,)).astype('>f2'),
              'f4be': rng.standard_normal((5, 3)).astype('>f4'),
              'f8be': rng.standard_normal((2, 2)).astype('>f8'),
              'f8nan': np.array([np.nan, -0.0, np.inf, -np.inf, 5e-324, 1.7976931348623157e308]),
              'i1': np.array([-128, -1, 0, 127], dtype='i1'),
              'i2be': rng.integers(-30000, 30000, (2, 3)).astype('>i2'),
              'i4': rng.integers(-2**31, 2**31, (4,)).astype('<i4'),
              'i8be': np.array([-2**63, -1, 2**63 - 1], dtype='>i8'),
              'u1': np.array([0, 1, 255], dtype='u1'),
              'u2': np.array([0, 1, 65535], dtype='<u2'),
              'u2be': np.array([0, 258, 65535], dtype='>u2'),
              'u4': np.array([0, 4294967295], dtype='<u4'),
              'u8': np.array([0, 2**63 - 1], dtype='<u8'),
              'u8be': np.array([7, 2**40], dtype='>u8'),
              'b1': np.array([[True, False], [False, True]]),
              'scalar': np.array(3.5),
              'empty': np.zeros((0, 3), '<f4'),
              'fortran3d': np.asfortranarray(rng.standard_normal((2, 3, 4))),
              'fortran_i2be': np.asfortranarray(np.arange(12, dtype='>i2').reshape(3, 4)),
              'fortran_u2': np.asfortranarray(np.arange(20, dtype='<u2').reshape(4, 5)),
              'fortran_1d': np.asfortranarray(np.arange(5, dtype='<f4')),
            }
            target = {'f': None, 'i': None, 'u': {1: '|u1', 2: '<i4', 4: '<i8', 8: '<i8'}, 'b': {1: '|u1'}}
            out = {}
            for k, v in a.items():
                np.save(f'{d}/{k}.npy', v)
                t = target[v.dtype.kind]
                to = t[v.dtype.itemsize] if t else v.dtype.newbyteorder('<')
                c = np.ascontiguousarray(v.astype(to))
                out[k] = {'descr': v.dtype.str, 'shape': list(v.shape), 'hex': c.tobytes().hex(),
                          'fortran': bool(v.flags.f_contiguous and not v.flags.c_contiguous and v.ndim > 1)}
            np.savez(f'{d}/all.npz', **a)
            np.savez_compressed(f'{d}/allc.npz', **a)
            print(json.dumps(out))
            """, [dir.path]))
        #expect(reference.count == 22)
        let dtypes: [String: DType] = [
            "f2": .float16, "f2be": .float16, "f4be": .float32, "f8be": .float64, "f8nan": .float64,
            "i1": .int8, "i2be": .int16, "i4": .int32, "i8be": .int64, "u1": .uint8, "u2": .int32,
            "u2be": .int32, "u4": .int64, "u8": .int64, "u8be": .int64, "b1": .uint8, "scalar": .float64,
            "empty": .float32, "fortran3d": .float64, "fortran_i2be": .int16, "fortran_u2": .int32,
            "fortran_1d": .float32,
        ]
        let npz = try NumPyArchive.read(path: dir.file("all.npz"))
        let npzCompressed = try NumPyArchive.read(path: dir.file("allc.npz"))
        #expect(npz.names == npzCompressed.names)
        #expect(Set(npz.names) == Set(reference.keys))
        for (name, value) in reference {
            let expected = try #require(value as? [String: Any])
            let single = try NumPyFile.read(path: dir.file(name + ".npy"))
            for array in [single, try #require(npz[name]), try #require(npzCompressed[name])] {
                let tensor = try #require(array.tensor, "\(name)")
                #expect(array.descr == expected["descr"] as? String, "\(name)")
                #expect(array.fortranOrder == expected["fortran"] as? Bool, "\(name)")
                #expect(tensor.dtype == dtypes[name], "\(name)")
                #expect(tensor.shape == expected["shape"] as? [Int], "\(name)")
                #expect(Kit.hex(tensor.bytes) == expected["hex"] as? String, "\(name)")
            }
        }
    }

    @Test func readsUnicodeScalarsAndPython2Headers() throws {
        let dir = Kit.TemporaryDirectory()
        _ = try Kit.python("""
            import numpy as np, sys
            np.save(sys.argv[1] + '/s.npy', np.array('h\\u00e9llo \\u2713 \\U0001F600'))
            np.save(sys.argv[1] + '/be.npy', np.array('big', dtype='>U5'))
            np.save(sys.argv[1] + '/empty.npy', np.array(''))
            """, [dir.path])
        #expect(try NumPyFile.read(path: dir.file("s.npy")).string == "héllo ✓ 😀")
        #expect(try NumPyFile.read(path: dir.file("be.npy")).string == "big")
        #expect(try NumPyFile.read(path: dir.file("be.npy")).descr == ">U5")
        #expect(try NumPyFile.read(path: dir.file("empty.npy")).string == "")

        // NumPy under Python 2 wrote long integers with an L suffix; NumPy still reads them.
        let old = NPYCraft.file(header: "{'descr': '<i2', 'fortran_order': False, 'shape': (2L, 1L), }\n", data: [1, 0, 2, 0])
        let array = try NumPyFile.decode(old, name: "old.npy")
        #expect(array.tensor?.shape == [2, 1])
        #expect(array.tensor?.doubles() == [1, 2])
        // Double quotes, no trailing comma, keys in any order, a (3,) tuple and a 0-d shape.
        let quoted = NPYCraft.file(header: "{\"shape\": (3,), \"fortran_order\": True, \"descr\": \"|u1\"}", data: [7, 8, 9])
        #expect(try NumPyFile.decode(quoted, name: "q.npy").tensor?.doubles() == [7, 8, 9])
        let scalar = NPYCraft.file(header: "{'descr': '<i8', 'fortran_order': False, 'shape': ()}", data: [42, 0, 0, 0, 0, 0, 0, 0])
        #expect(try NumPyFile.decode(scalar, name: "s.npy").tensor?.shape == [])
    }

    @Test func rejectsPickledObjectArrays() throws {
        let path = Kit.fixture("bad_object_pickle.npz")
        Kit.expectError("\(path): member 'weights.npy': refusing to read pickled object arrays (dtype '|O'): they can run code") {
            _ = try NumPyArchive.read(path: path)
        }
        let standalone = NPYCraft.file(header: "{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", data: Array("\u{80}\u{04}".utf8))
        Kit.expectError("obj.npy: refusing to read pickled object arrays (dtype '|O'): they can run code") {
            _ = try NumPyFile.decode(standalone, name: "obj.npy")
        }
    }

    @Test func rejectsAMemberThatIsNotNpy() {
        let path = Kit.fixture("bad_member_not_npy.npz")
        Kit.expectError("\(path): member 'W1.npy': not a NumPy .npy array (it does not start with the magic string \\x93NUMPY)") {
            _ = try NumPyArchive.read(path: path)
        }
        Kit.expectError("model.npz: member 'W1.npy': not a NumPy .npy array (it does not start with the magic string \\x93NUMPY)") {
            _ = try NumPyArchive.read(path: path, displayName: "model.npz")
        }
    }

    @Test func passesZipDamageThrough() {
        let truncated = Kit.fixture("bad_truncated.npz")
        Kit.expectError("\(truncated): corrupt zip: no end-of-central-directory record (the file is truncated or is not a zip archive)") {
            _ = try NumPyArchive.read(path: truncated)
        }
        let central = Kit.fixture("bad_corrupt_central_dir.npz")
        Kit.expectError("\(central): corrupt zip: central directory entry 1 has a bad signature") {
            _ = try NumPyArchive.read(path: central)
        }
    }

    @Test func rejectsHostileHeaders() throws {
        func check(_ bytes: [UInt8], _ message: String, limits: NumPyLimits = .default,
                   sourceLocation: SourceLocation = #_sourceLocation) {
            Kit.expectError("x.npy: " + message, sourceLocation: sourceLocation) {
                _ = try NumPyFile.decode(bytes, name: "x.npy", limits: limits)
            }
        }
        func header(_ descr: String = "'<f8'", fortran: String = "False", shape: String) -> String {
            "{'descr': \(descr), 'fortran_order': \(fortran), 'shape': \(shape), }"
        }
        // A shape whose byte count overflows, and one that merely exceeds the data: neither may
        // allocate.
        check(NPYCraft.file(header: header(shape: "(4000000000, 4000000000, 4000000000)")),
              "the shape (4000000000, 4000000000, 4000000000) with dtype '<f8' is too large to address")
        check(NPYCraft.file(header: header(shape: "(100000000000,)"), data: [1, 2, 3]),
              "truncated array data: shape (100000000000,) of '<f8' needs 800000000000 bytes but only 3 follow the header")
        check(NPYCraft.file(header: header(shape: "(99999999999999999999999,)")),
              "malformed .npy header: the dimension 99999999999999999999999 in 'shape' is too large")
        // Header lengths past the end, or past the limit.
        check(NPYCraft.file(header: header(shape: "(1,)"), headerLength: 5000),
              "truncated .npy header: it needs 5010 bytes but there are only \(10 + header(shape: "(1,)").utf8.count)")
        check(NPYCraft.file(header: "", headerLength: 60000),
              "the .npy header is 60000 bytes long, more than the limit of 10000")
        check(NPYCraft.file(version: 2, header: "", headerLength: 0xFFFF_FFFF),
              "the .npy header is 4294967295 bytes long, more than the limit of 10000")
        check(NPYCraft.file(header: header(shape: "(1,)"), data: Array(repeating: 0, count: 8)),
              "the .npy header is 57 bytes long, more than the limit of 10",
              limits: NumPyLimits(maxHeaderBytes: 10))
        check([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, 100],
              "truncated .npy header: it needs 10 bytes but there are only 9")
        check([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 2, 0, 0, 0, 0],
              "truncated .npy header: it needs 12 bytes but there are only 11")
        check(Array("PK\u{3}\u{4} not npy".utf8), "not a NumPy .npy array (it does not start with the magic string \\x93NUMPY)")
        check([], "not a NumPy .npy array (it does not start with the magic string \\x93NUMPY)")
        check(NPYCraft.file(version: 4, header: header(shape: "()")),
              "unsupported .npy format version 4.0 (1.0, 2.0 and 3.0 are supported)")
        // Data sizes.
        check(NPYCraft.file(header: header(shape: "(2,)"), data: Array(repeating: 0, count: 20)),
              "4 unexpected bytes follow the 16 bytes of array data")
        check(NPYCraft.file(header: header(shape: "(2,)"), data: Array(repeating: 0, count: 16)),
              "the array is 16 bytes, more than the limit of 8 bytes", limits: NumPyLimits(maxArrayBytes: 8))
        // dtypes.
        check(NPYCraft.file(header: header("'<c16'", shape: "(1,)"), data: Array(repeating: 0, count: 16)),
              "unsupported dtype '<c16'")
        check(NPYCraft.file(header: header("'<M8[ns]'", shape: "(1,)")), "unsupported dtype '<M8[ns]'")
        check(NPYCraft.file(header: header("'<f16'", shape: "(1,)")), "unsupported dtype '<f16'")
        check(NPYCraft.file(header: header("'float32'", shape: "(1,)")), "unsupported dtype 'float32'")
        check(NPYCraft.file(header: header("[('a', '<f4'), ('b', '<i4')]", shape: "(1,)")),
              "structured (record) dtypes are not supported")
        check(NPYCraft.file(header: header("'<U3'", shape: "(2,)"), data: Array(repeating: 0, count: 24)),
              "unsupported dtype '<U3': string arrays are only read as 0-d scalars (shape ())")
        check(NPYCraft.file(header: header("'<U1'", shape: "()"), data: [0, 0xD8, 0, 0]),
              "the '<U1' array holds a value that is not a Unicode character")
        check(NPYCraft.file(header: header("'<u8'", shape: "(3,)"),
                            data: Array(repeating: 0, count: 16) + Array(repeating: 0xFF, count: 8)),
              "element 2 of the '<u8' array is larger than 9223372036854775807 and does not fit in i64")
        // The literal itself.
        check(NPYCraft.file(header: header(shape: "(3)")),
              "malformed .npy header: 'shape' is not a tuple (a one-element tuple needs a trailing comma)")
        check(NPYCraft.file(header: header(shape: "(-1,)")), "malformed .npy header: 'shape' has the negative dimension -1")
        check(NPYCraft.file(header: header(shape: "(1.5,)")), "malformed .npy header: only plain integers are allowed here at byte 52 of the header")
        check(NPYCraft.file(header: header(shape: "('a',)")), "malformed .npy header: 'shape' holds something other than integers")
        check(NPYCraft.file(header: header(fortran: "1", shape: "()")), "malformed .npy header: 'fortran_order' is not True or False")
        check(NPYCraft.file(header: header(fortran: "__import__('os')", shape: "()")),
              "malformed .npy header: unexpected name '__import__' at byte 34 of the header")
        check(NPYCraft.file(header: "{'descr': '<f8', 'shape': ()}"), "malformed .npy header: the key 'fortran_order' is missing")
        check(NPYCraft.file(header: "{'descr': '<f8', 'descr': '<f8', 'fortran_order': False, 'shape': ()}"),
              "malformed .npy header: the key 'descr' appears twice")
        check(NPYCraft.file(header: "{'descr': '<f8', 'fortran_order': False, 'shape': (), 'x': 1}"),
              "malformed .npy header: unexpected key 'x'")
        check(NPYCraft.file(header: "['descr']"), "malformed .npy header: the header is not a dictionary")
        check(NPYCraft.file(header: "{'descr': '<f8', 'fortran_order': False, 'shape': ()} junk"),
              "malformed .npy header: unexpected text after the dictionary at byte 54 of the header")
        check(NPYCraft.file(header: "{'descr': '<f\\x38', 'fortran_order': False, 'shape': ()}"),
              "malformed .npy header: escape sequences in strings are not supported at byte 13 of the header")
        check(NPYCraft.file(header: "{'descr': '<f8, 'fortran_order': False, 'shape': ()}"),
              "malformed .npy header: expected ',' or '}' at byte 17 of the header")
        check(NPYCraft.file(header: "{'descr' '<f8'}"), "malformed .npy header: expected ':' at byte 9 of the header")
        check(NPYCraft.file(header: "{'descr': '<f8'"), "malformed .npy header: unexpected end of the header at byte 15 of the header")
        check(NPYCraft.file(header: String(repeating: "(", count: 40)), "malformed .npy header: nesting is too deep at byte 16 of the header")
        check(NPYCraft.file(header: header(shape: "(" + String(repeating: "1, ", count: 65) + ")")),
              "malformed .npy header: 'shape' has 65 dimensions, more than NumPy's 64")
    }

    @Test func reportsArraysWithTheSameNameInOneArchive() throws {
        let dir = Kit.TemporaryDirectory()
        let path = dir.file("dup.npz")
        let writer = try ZipWriter(path: path)
        let npy = try NumPyFile.encode(.tensor(Tensor([1.0], shape: [1])))
        try writer.addMember(name: "W1.npy", bytes: npy)
        try writer.addMember(name: "W1", bytes: npy)
        try writer.finish()
        Kit.expectError("\(path): two members hold the array 'W1' ('W1.npy' and 'W1')") {
            _ = try NumPyArchive.read(path: path)
        }
        Kit.expectError("\(path): the arrays total \(2 * npy.count) bytes, more than the limit of 100 bytes") {
            _ = try NumPyArchive.read(path: path, limits: NumPyLimits(maxTotalBytes: 100))
        }
    }

    @Test func reportsUnreadableFiles() {
        let dir = Kit.TemporaryDirectory()
        let missing = dir.file("nope.npy")
        Kit.expectError("\(missing): cannot open: No such file or directory") { _ = try NumPyFile.read(path: missing) }
        Kit.expectError("\(missing): cannot open: No such file or directory") { _ = try NumPyArchive.read(path: missing) }
    }
}

@Suite struct NumPyWritingTests {
    typealias Kit = ZipTestKit

    /// Tensors with awkward values: signed zeros, NaN payloads, infinities, subnormals.
    static let tensors: [NamedTensor] = {
        let f32: [Float] = [0, -0.0, .nan, Float(bitPattern: 0x7FC0_1234), .infinity, -.infinity,
                            .leastNonzeroMagnitude, .greatestFiniteMagnitude, 1.0 / 3.0, -2.5, 1e-3, 42]
        let f64: [Double] = [-0.0, .nan, .infinity, .leastNonzeroMagnitude, .pi, -1e300, 7]
        let i64: [Int64] = [Int64.min, -1, 0, 1, Int64.max, 123_456_789_012]
        let u8: [UInt8] = Array(0...255)
        return [
            NamedTensor("W1", Tensor(f32, shape: [3, 4])),
            NamedTensor("b1", Tensor(f64, shape: [7])),
            NamedTensor("steps", i64.withUnsafeBytes { Tensor(dtype: .int64, shape: [2, 3], copying: $0) }),
            NamedTensor("pixels", u8.withUnsafeBytes { Tensor(dtype: .uint8, shape: [4, 4, 16], copying: $0) }),
            NamedTensor("scalar", Tensor([2.5], shape: [])),
            NamedTensor("empty", Tensor([Float](), shape: [0, 5])),
            NamedTensor("dense/kernel", Tensor([1, 2] as [Float], shape: [1, 2])),
        ]
    }()

    static let loadScript = """
        import numpy as np, sys, json
        f = np.load(sys.argv[1])
        out = {'order': list(f.files), 'arrays': {}}
        for k in f.files:
            a = f[k]
            if a.dtype.kind == 'U':
                out['arrays'][k] = {'descr': a.dtype.str, 'shape': list(a.shape), 'text': str(a)}
            else:
                out['arrays'][k] = {'descr': a.dtype.str, 'shape': list(a.shape), 'hex': a.tobytes().hex(),
                                    'c': bool(a.flags.c_contiguous)}
        print(json.dumps(out))
        """

    @Test(arguments: [false, true])
    func numpyLoadsOurNpzBitExactly(compressed: Bool) throws {
        let dir = Kit.TemporaryDirectory()
        let path = dir.file("model.npz")
        let metadata = #"{"format": "nnm", "classes": ["zéro", "un ✓", "😀"], "note": "quote \" and \\ backslash"}"#
        try NumPyArchive.write(tensors: Self.tensors, metadata: metadata, to: path, compressed: compressed)
        let report = Kit.json(try Kit.python(Self.loadScript, [path]))
        let names = Self.tensors.map(\.name) + [NumPyArchive.metadataKey]
        #expect(report["order"] as? [String] == names)
        let arrays = try #require(report["arrays"] as? [String: Any])
        let descrs: [DType: String] = [.float32: "<f4", .float64: "<f8", .int64: "<i8", .uint8: "|u1"]
        for item in Self.tensors {
            let a = try #require(arrays[item.name] as? [String: Any])
            #expect(a["descr"] as? String == descrs[item.tensor.dtype], "\(item.name)")
            #expect(a["shape"] as? [Int] == item.tensor.shape, "\(item.name)")
            #expect(a["hex"] as? String == Kit.hex(item.tensor.bytes), "\(item.name)")
        }
        let meta = try #require(arrays[NumPyArchive.metadataKey] as? [String: Any])
        #expect(meta["text"] as? String == metadata)
        #expect(meta["shape"] as? [Int] == [])
        #expect(meta["descr"] as? String == "<U\(metadata.unicodeScalars.count)")

        // str(np.load(f)['nnm_metadata']) without allow_pickle gives the string back.
        let printed = try Kit.python("import numpy as np, sys; sys.stdout.write(str(np.load(sys.argv[1])['nnm_metadata']))", [path])
        #expect(printed == metadata)

        // And we read our own file back.
        let archive = try NumPyArchive.read(path: path)
        #expect(archive.names == names)
        #expect(archive[NumPyArchive.metadataKey]?.string == metadata)
        for item in Self.tensors {
            let tensor = try #require(archive[item.name]?.tensor)
            #expect(tensor.isBitIdentical(to: item.tensor), "\(item.name)")
        }
        if compressed {
            #expect(try ZipArchive(path: path).entries.allSatisfy { $0.method == .deflate })
        }
    }

    /// Our `.npy` files are byte for byte what `np.save` writes.
    @Test func writesTheSameBytesAsNpSave() throws {
        let dir = Kit.TemporaryDirectory()
        _ = try Kit.python("""
            import numpy as np, sys
            d = sys.argv[1]
            np.save(d + '/f32.npy', np.arange(12, dtype='<f4').reshape(3, 4))
            np.save(d + '/f64.npy', np.arange(7, dtype='<f8'))
            np.save(d + '/i64.npy', np.arange(24, dtype='<i8').reshape(2, 3, 4))
            np.save(d + '/u8.npy', np.arange(256, dtype='u1').reshape(16, 16))
            np.save(d + '/scalar.npy', np.array(2.5))
            np.save(d + '/empty.npy', np.zeros((0, 5), '<f4'))
            np.save(d + '/wide.npy', np.zeros((1234567890123, 0), '<f8'))
            np.save(d + '/text.npy', np.array('h\\u00e9llo'))
            np.save(d + '/deep.npy', np.zeros((1,) * 32, '<f4'))
            """, [dir.path])
        func ints(_ values: [Int64], _ shape: [Int]) -> Tensor {
            values.withUnsafeBytes { Tensor(dtype: .int64, shape: shape, copying: $0) }
        }
        let cases: [(String, NumPyValue)] = [
            ("f32", .tensor(Tensor((0..<12).map(Float.init), shape: [3, 4]))),
            ("f64", .tensor(Tensor((0..<7).map(Double.init), shape: [7]))),
            ("i64", .tensor(ints((0..<24).map(Int64.init), [2, 3, 4]))),
            ("u8", .tensor((0...255).map(UInt8.init).withUnsafeBytes { Tensor(dtype: .uint8, shape: [16, 16], copying: $0) })),
            ("scalar", .tensor(Tensor([2.5], shape: []))),
            ("empty", .tensor(Tensor([Float](), shape: [0, 5]))),
            ("wide", .tensor(Tensor([Double](), shape: [1_234_567_890_123, 0]))),
            ("text", .string("héllo")),
            ("deep", .tensor(Tensor([Float](repeating: 0, count: 1), shape: Array(repeating: 1, count: 32)))),
        ]
        for (name, value) in cases {
            #expect(try NumPyFile.encode(value) == Kit.readBytes(dir.file(name + ".npy")), "\(name)")
            try NumPyFile.write(value, to: dir.file(name + ".ours.npy"))
            #expect(Kit.readBytes(dir.file(name + ".ours.npy")) == Kit.readBytes(dir.file(name + ".npy")), "\(name)")
        }
        // Every header leaves the data 64-byte aligned, as NumPy's do.
        for (_, value) in cases {
            let bytes = try NumPyFile.encode(value)
            let headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            #expect((10 + headerLength) % 64 == 0)
        }
    }

    @Test func switchesToVersion2WhenTheHeaderOutgrowsVersion1() throws {
        // A header longer than 65,535 bytes only fits version 2.0's 32-bit length.
        let descr = "<f8"
        let shape = Array(repeating: 1, count: 64)
        let v1 = NumPyFile.header(descr: descr, shape: shape)
        #expect(v1[6] == 1)
        let long = NumPyFile.header(descr: "<" + String(repeating: "x", count: 70_000), shape: [1])
        #expect(long[6] == 2)
        let length = (0..<4).reduce(0) { $0 | Int(long[8 + $1]) << (8 * $1) }
        #expect((12 + length) % 64 == 0)
        #expect(long.count == 12 + length)
    }

    @Test func numpyLoadsOurNpyFiles() throws {
        let dir = Kit.TemporaryDirectory()
        for item in Self.tensors {
            try NumPyFile.write(.tensor(item.tensor), to: dir.file(item.name.replacingOccurrences(of: "/", with: "_") + ".npy"))
        }
        try NumPyFile.write(.string("metadata ✓"), to: dir.file("meta.npy"))
        let report = Kit.json(try Kit.python("""
            import numpy as np, sys, json, glob, os
            out = {}
            for p in glob.glob(sys.argv[1] + '/*.npy'):
                a = np.load(p)
                k = os.path.basename(p)[:-4]
                out[k] = str(a) if a.dtype.kind == 'U' else a.tobytes().hex()
            print(json.dumps(out))
            """, [dir.path]))
        for item in Self.tensors {
            #expect(report[item.name.replacingOccurrences(of: "/", with: "_")] as? String == Kit.hex(item.tensor.bytes))
        }
        #expect(report["meta"] as? String == "metadata ✓")
        // Our reader agrees.
        #expect(try NumPyFile.read(path: dir.file("meta.npy")).string == "metadata ✓")
        #expect(try NumPyFile.read(path: dir.file("W1.npy")).tensor?.isBitIdentical(to: Self.tensors[0].tensor) == true)
    }

    @Test func refusesTensorsNumPyCannotHold() throws {
        let dir = Kit.TemporaryDirectory()
        let bf16 = [UInt16(0x3F80)].withUnsafeBytes { Tensor(dtype: .bfloat16, shape: [1], copying: $0) }
        Kit.expectError("\(dir.file("x.npz")): cannot store tensor 'w' as a NumPy array: NumPy has no bf16 dtype") {
            try NumPyArchive.write([("w", .tensor(bf16))], to: dir.file("x.npz"))
        }
        Kit.expectError("\(dir.file("x.npy")): cannot store tensor 'w' as a NumPy array: NumPy has no bf16 dtype") {
            try NumPyFile.write(.tensor(bf16), to: dir.file("x.npy"), name: "w")
        }
        Kit.expectError("cannot store tensor 'array' as a NumPy array: NumPy has no bf16 dtype") {
            _ = try NumPyFile.encode(.tensor(bf16))
        }
        #expect(dir.contents().isEmpty)
        Kit.expectError("\(dir.file("y.npz")): cannot store member 'a.npy': a member with this name was already added") {
            try NumPyArchive.write([("a", .string("1")), ("a", .string("2"))], to: dir.file("y.npz"))
        }
        #expect(dir.contents().isEmpty)
    }

    /// A 100 MB stored member is read with `pread` into the tensor itself: close to the cost of
    /// copying the bytes once (plus the CRC-32 pass).
    @Test func readsALargeStoredMemberQuickly() throws {
        let dir = Kit.TemporaryDirectory()
        let count = 25 << 20                                  // 100 MiB of f32
        let values = [Float](unsafeUninitializedCapacity: count) { buffer, n in
            for i in 0..<count { buffer[i] = Float(i & 0xFFFF) }
            n = count
        }
        let big = Tensor(values, shape: [count / 1024, 1024])
        let path = dir.file("big.npz")
        try NumPyArchive.write(tensors: [NamedTensor("W", big)], to: path)

        // The baseline: one copy into freshly allocated memory, page faults included, as the
        // reader's copy is.
        let clock = ContinuousClock()
        var copy: Tensor? = nil
        let copyTime = clock.measure { copy = Tensor(dtype: .float32, shape: big.shape, copying: big.bytes) }
        #expect(copy?.isBitIdentical(to: big) == true)
        var best = Duration.seconds(100)
        for _ in 0..<3 {
            var archive: NumPyArchive? = nil
            let t = try clock.measure { archive = try NumPyArchive.read(path: path) }
            best = min(best, t)
            #expect(archive?["W"]?.tensor?.isBitIdentical(to: big) == true)
        }
        print("100 MiB stored npz member: read \(best), copy \(copyTime), ratio \(best / copyTime)")
        #expect(best < .seconds(2))
    }
}
