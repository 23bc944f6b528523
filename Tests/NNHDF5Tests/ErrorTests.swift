import Foundation
import Testing
@testable import NNHDF5

/// Damaged, foreign and mistaken inputs give messages that name the file and the object.
@Suite struct ErrorTests {
    @Test func notAnHDF5File() {
        let path = Fixtures.path("not_hdf5.h5")
        let error = hdf5Error { _ = try HDF5File.open(path: path) }
        #expect(error == .notHDF5(file: path, reason: nil))
        #expect(error?.description == "\(path): not an HDF5 file")
    }

    @Test func emptyFile() {
        let path = Fixtures.path("empty.h5")
        #expect(hdf5Error { _ = try HDF5File.open(path: path) }?.description
            == "\(path): not an HDF5 file (the file is empty)")
    }

    @Test func truncatedFile() {
        let path = Fixtures.path("truncated.h5")
        let error = hdf5Error { _ = try HDF5File.open(path: path) }
        guard case let .cannotOpen(file, reason)? = error else {
            Issue.record("expected cannotOpen, got \(String(describing: error))")
            return
        }
        #expect(file == path)
        // HDF5's own diagnosis, from the innermost entry of its error stack.
        #expect(reason.contains("truncated file"), "\(reason)")
        #expect(error?.description.hasPrefix("\(path): cannot open: truncated file") == true)
    }

    @Test func missingFileAndDirectory() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let missing = directory.file("missing.h5")
        #expect(hdf5Error { _ = try HDF5File.open(path: missing) }?.description
            == "\(missing): cannot open: No such file or directory")
        #expect(hdf5Error { _ = try HDF5File.open(path: directory.path) }?.description
            == "\(directory.path): cannot open: it is a directory")
    }

    @Test func missingObjects() throws {
        let path = Fixtures.path("keras.h5")
        let file = try HDF5File.open(path: path)
        #expect(hdf5Error { _ = try file.group("model_weights/dense_2") }?.description
            == "\(path): /model_weights/dense_2: no such object")
        // The first missing component is named, not the whole path.
        #expect(hdf5Error { _ = try file.dataset("/model_weights/conv/conv/kernel:0") }?.description
            == "\(path): /model_weights/conv: no such object")
        let dense = try file.group("model_weights/dense")
        #expect(hdf5Error { _ = try dense.dataset("dense/gamma:0") }?.description
            == "\(path): /model_weights/dense/dense/gamma:0: no such object")
        #expect(hdf5Error { _ = try dense.dataset("") }?.description
            == "\(path): /model_weights/dense: expected a dataset, found a group")
    }

    @Test func wrongKindsAndTypes() throws {
        let path = Fixtures.path("numeric.h5")
        let file = try HDF5File.open(path: path)
        #expect(hdf5Error { _ = try file.dataset("nested") }?.description
            == "\(path): /nested: expected a dataset, found a group")
        #expect(hdf5Error { _ = try file.group("f32_r1") }?.description
            == "\(path): /f32_r1: expected a group, found a dataset")
        let strings = try file.dataset("vlen_str")
        #expect(hdf5Error { _ = try strings.readFloats() }?.description
            == "\(path): /vlen_str: expected a floating-point dataset, found 'string'")
        #expect(hdf5Error { _ = try file.dataset("i32").readFloats() }?.description
            == "\(path): /i32: expected a floating-point dataset, found 'int32'")
        #expect(hdf5Error { _ = try file.dataset("compound").readDoubles(allowingIntegers: true) }?.description
            == "\(path): /compound: expected a numeric dataset, found 'compound'")
        #expect(hdf5Error { _ = try file.dataset("bool").readRawLittleEndian() }?.description
            == "\(path): /bool: expected a numeric dataset, found 'enum'")
        #expect(hdf5Error { _ = try file.dataset("f32_r1").readStrings() }?.description
            == "\(path): /f32_r1: expected a string dataset, found 'float32'")
        #expect(hdf5Error { _ = try file.dataset("f64_r1").readIntegers() }?.description
            == "\(path): /f64_r1: expected an integer dataset, found 'float64'")
    }

    @Test func missingFilterIsReportedFromTheErrorStack() throws {
        // h5py's LZF filter is not part of libhdf5.
        let path = Fixtures.path("numeric.h5")
        let file = try HDF5File.open(path: path)
        let dataset = try file.dataset("lzf_f32")
        #expect(dataset.shape == [100, 10])
        let error = hdf5Error { _ = try dataset.readFloats() }
        #expect(error?.description
            == "\(path): /lzf_f32: cannot read the dataset: required filter 'lzf' is not registered")
    }

    @Test func readsAreBoundedByMaxBytes() throws {
        let path = Fixtures.path("numeric.h5")
        let file = try HDF5File.open(path: path, limits: HDF5Limits(maxBytes: 1000))
        let dataset = try file.dataset("nested/deeper/gzip_f32")
        #expect(hdf5Error { _ = try dataset.readFloats() }?.description
            == "\(path): /nested/deeper/gzip_f32: dataset of shape [100, 10] (float32) needs 4000 bytes, more than the limit of 1000 bytes")
        #expect(hdf5Error { _ = try dataset.readRawLittleEndian() } != nil)
        // Doubles take twice the memory.
        let small = try file.dataset("f32_r4")
        #expect(try small.readFloats().count == 12)
        let strict = try HDF5File.open(path: path, limits: HDF5Limits(maxBytes: 80))
        #expect(hdf5Error { _ = try strict.dataset("f32_r4").readDoubles() }?.description
            == "\(path): /f32_r4: dataset of shape [2, 1, 3, 2] (float32) needs 96 bytes as float64, more than the limit of 80 bytes")
        let strings = try HDF5File.open(path: Fixtures.path("strings.h5"), limits: HDF5Limits(maxBytes: 24))
        #expect(hdf5Error { _ = try strings.dataset("vlen_utf8").readStrings() } != nil)
    }

    @Test func invalidPaths() throws {
        let path = Fixtures.path("keras.h5")
        let file = try HDF5File.open(path: path)
        #expect(hdf5Error { _ = try file.group("a\u{0}b") }?.description
            == "\(path): a\u{0}b: the path contains a NUL byte")
        let tooDeep = Array(repeating: "x", count: 65).joined(separator: "/")
        #expect(hdf5Error { _ = try file.group(tooDeep) }?.description
            == "\(path): \(tooDeep): the path has 65 components, more than the limit of 64")
    }
}
