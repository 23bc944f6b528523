import Foundation
import Testing
@testable import NNHDF5

/// Reading numeric datasets h5py wrote, compared bit for bit with NumPy's own conversions.
@Suite struct NumericReadTests {
    static let floatDatasets = [
        "/f32_r0", "/f32_r1", "/f32_r2", "/f32_r3", "/f32_r4",
        "/f64_r0", "/f64_r1", "/f64_r2", "/f64_r3", "/f64_r4",
        "/f16_r0", "/f16_r1", "/f16_r2",
        "/f32_be", "/f64_be", "/empty_f32", "/nested/deeper/gzip_f32",
    ]

    static let integerDatasets = [
        "/i8", "/i16", "/i32", "/i64", "/u8", "/u16", "/u32", "/u64", "/i32_be",
    ]

    static let numpyTypeNames: [String: HDF5ElementType] = [
        "float16": .float(bits: 16), "float32": .float(bits: 32), "float64": .float(bits: 64),
        "int8": .signedInteger(bits: 8), "int16": .signedInteger(bits: 16),
        "int32": .signedInteger(bits: 32), "int64": .signedInteger(bits: 64),
        "uint8": .unsignedInteger(bits: 8), "uint16": .unsignedInteger(bits: 16),
        "uint32": .unsignedInteger(bits: 32), "uint64": .unsignedInteger(bits: 64),
    ]

    static func entry(_ name: String) throws -> [String: Any] {
        try #require(try Fixtures.expected("numeric.h5")[name] as? [String: Any])
    }

    @Test("float datasets of rank 0-4, f16/f32/f64, either byte order", arguments: floatDatasets)
    func floatDataset(name: String) throws {
        let expected = try Self.entry(name)
        let file = try HDF5File.open(path: Fixtures.path("numeric.h5"))
        let dataset = try file.dataset(name)

        #expect(dataset.shape == (expected["shape"] as? [Int]))
        let dtype = try #require(expected["dtype"] as? String)
        #expect(dataset.elementType == Self.numpyTypeNames[dtype])
        #expect(dataset.elementType.name == dtype)
        #expect(dataset.path == name)

        #expect(floatBits(try dataset.readFloats()) == (expected["f32"] as? [String]))
        #expect(doubleBits(try dataset.readDoubles()) == (expected["f64"] as? [String]))
        let raw = try dataset.readRawLittleEndian()
        #expect(raw.shape == dataset.shape)
        #expect(raw.elementType == dataset.elementType)
        #expect(hexString(raw.bytes) == (expected["le_bytes"] as? String))
    }

    @Test("integer datasets of every width, either byte order", arguments: integerDatasets)
    func integerDataset(name: String) throws {
        let expected = try Self.entry(name)
        let file = try HDF5File.open(path: Fixtures.path("numeric.h5"))
        let dataset = try file.dataset(name)

        #expect(dataset.shape == (expected["shape"] as? [Int]))
        let dtype = try #require(expected["dtype"] as? String)
        #expect(dataset.elementType == Self.numpyTypeNames[dtype])

        let integers = try dataset.readIntegers()
        #expect(integers.map { String($0) } == (expected["i64"] as? [String]))
        #expect(floatBits(try dataset.readFloats(allowingIntegers: true)) == (expected["f32"] as? [String]))
        #expect(doubleBits(try dataset.readDoubles(allowingIntegers: true)) == (expected["f64"] as? [String]))
        #expect(hexString(try dataset.readRawLittleEndian().bytes) == (expected["le_bytes"] as? String))
    }

    @Test func uint64BeyondInt64IsAnErrorButReadsRaw() throws {
        let expected = try Self.entry("/u64_big")
        let file = try HDF5File.open(path: Fixtures.path("numeric.h5"))
        let dataset = try file.dataset("u64_big")
        let error = hdf5Error { _ = try dataset.readIntegers() }
        #expect(error?.description
            == "\(Fixtures.path("numeric.h5")): /u64_big: value 18446744073709551615 does not fit in a signed 64-bit integer")
        #expect(hexString(try dataset.readRawLittleEndian().bytes) == (expected["le_bytes"] as? String))
        #expect(doubleBits(try dataset.readDoubles(allowingIntegers: true)) == (expected["f64"] as? [String]))
    }

    @Test func scalarAndEmptyShapes() throws {
        let file = try HDF5File.open(path: Fixtures.path("numeric.h5"))
        let scalar = try file.dataset("f32_r0")
        #expect(scalar.shape == [])
        #expect(scalar.rank == 0)
        #expect(scalar.elementCount == 1)

        let empty = try file.dataset("empty_f32")
        #expect(empty.shape == [0, 3])
        #expect(empty.elementCount == 0)
        #expect(try empty.readFloats() == [])

        let null = try file.dataset("null_space")
        #expect(null.shape == [])
        #expect(null.elementCount == 0)
        #expect(try null.readFloats() == [])
    }

    @Test func datasetsOutliveTheirFileObject() throws {
        let expected = try Self.entry("/f32_r2")
        let dataset = try HDF5File.open(path: Fixtures.path("numeric.h5")).dataset("f32_r2")
        #expect(floatBits(try dataset.readFloats()) == (expected["f32"] as? [String]))

        let file = try HDF5File.open(path: Fixtures.path("numeric.h5"))
        let other = try file.dataset("f32_r2")
        file.close()
        #expect(floatBits(try other.readFloats()) == (expected["f32"] as? [String]))
        #expect(throws: HDF5Error.closed(file: Fixtures.path("numeric.h5"), object: "/")) {
            try file.members()
        }
    }

    @Test func readsInParallel() async throws {
        let expected = try #require(try Self.entry("/nested/deeper/gzip_f32")["f32"] as? [String])
        let results = try await withThrowingTaskGroup(of: [String].self) { group in
            for _ in 0..<8 {
                group.addTask {
                    let file = try HDF5File.open(path: Fixtures.path("numeric.h5"))
                    return floatBits(try file.dataset("nested/deeper/gzip_f32").readFloats())
                }
            }
            var all: [[String]] = []
            for try await result in group { all.append(result) }
            return all
        }
        #expect(results.count == 8)
        #expect(results.allSatisfy { $0 == expected })
    }
}
