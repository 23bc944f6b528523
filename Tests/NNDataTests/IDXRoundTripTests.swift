import Foundation
import NNCompression
import NNCore
import NNData
import Testing
import NNSystem

/// Shapes of every supported rank with a few elements each.
private let shapes: [[Int]] = (1...8).map { rank in Array([3, 2, 4, 1, 2, 1, 2, 1].prefix(rank)) }

@Suite struct IDXRoundTripTests {
    /// Writes values of one type in every rank, plain and gzip, and reads them back every way.
    private func roundTrip<T: IDXElement & Equatable>(_ type: T.Type, _ make: (Int) -> T,
                                                      asDouble: (T) -> Double) throws {
        let dir = TemporaryDirectory()
        for dims in shapes {
            let count = dims.reduce(1, *)
            let values = (0..<count).map(make)
            for gzip in [false, true] {
                let path = dir.file("\(T.idxType)-\(dims.count)\(gzip ? ".gz" : "")")
                try IDXWriter.write(values, dims: dims, to: path, gzip: gzip)
                let onDisk = dir.read((path as NSString).lastPathComponent)
                #expect((onDisk.prefix(2) == [0x1f, 0x8b]) == gzip)
                let file = try IDXFile(path: path)
                #expect(file.dims == dims)
                #expect(file.elementType == T.idxType)
                #expect(try file.values(as: T.self) == values)
                #expect(file.doubles() == values.map(asDouble))
                #expect(file.floats() == values.map { Float(asDouble($0)) })
                #expect(file.floats(scale: 0.5) == values.map { Float(asDouble($0)) * 0.5 })
                if T.idxType.isInteger {
                    #expect(try file.ints() == values.map { Int(asDouble($0)) })
                }
                if !gzip {
                    #expect(onDisk == (try IDXWriter.encode(values, dims: dims)))
                }
                // The stream must agree with the whole read for every rank's image layout.
                let stream = try IDXImageStream(path: path, batchSize: 2)
                var streamed: [Float] = []
                while let batch = try stream.nextBatch() { streamed += batch.features }
                #expect(streamed == file.floats())
            }
        }
    }

    @Test func u8() throws { try roundTrip(UInt8.self, { UInt8(($0 * 37) % 256) }, asDouble: { Double($0) }) }
    @Test func i8() throws { try roundTrip(Int8.self, { Int8(truncatingIfNeeded: $0 * 37 - 128) }, asDouble: { Double($0) }) }
    @Test func i16() throws {
        try roundTrip(Int16.self, { [Int16.min, -1, 0, 1, Int16.max, 300][$0 % 6] &+ Int16($0) }, asDouble: { Double($0) })
    }
    @Test func i32() throws {
        try roundTrip(Int32.self, { [Int32.min, -70000, 0, 16_909_060, Int32.max][$0 % 5] &- Int32($0) }, asDouble: { Double($0) })
    }
    @Test func f32() throws {
        try roundTrip(Float.self, { [Float(-1.5), 0, 3.25e-7, .greatestFiniteMagnitude, -.infinity][$0 % 5] }, asDouble: { Double($0) })
    }
    @Test func f64() throws {
        try roundTrip(Double.self, { [-1.0 / 3, 0, 1e300, .leastNonzeroMagnitude, .pi][$0 % 5] * Double($0 + 1) }, asDouble: { $0 })
    }

    /// The encoded bytes, written out by hand from the format's definition.
    @Test func encodedBytesMatchTheFormat() throws {
        #expect(try IDXWriter.encode([1, -2, 300] as [Int16], dims: [3])
            == [0, 0, 0x0B, 1, 0, 0, 0, 3, 0x00, 0x01, 0xFF, 0xFE, 0x01, 0x2C])
        #expect(try IDXWriter.encode([-1, 16_909_060] as [Int32], dims: [2])
            == [0, 0, 0x0C, 1, 0, 0, 0, 2, 0xFF, 0xFF, 0xFF, 0xFF, 0x01, 0x02, 0x03, 0x04])
        #expect(try IDXWriter.encode([1.0, -2.5] as [Float], dims: [1, 2])
            == [0, 0, 0x0D, 2, 0, 0, 0, 1, 0, 0, 0, 2, 0x3F, 0x80, 0, 0, 0xC0, 0x20, 0, 0])
        #expect(try IDXWriter.encode([1.0] as [Double], dims: [1])
            == [0, 0, 0x0E, 1, 0, 0, 0, 1, 0x3F, 0xF0, 0, 0, 0, 0, 0, 0])
        #expect(try IDXWriter.encode([1, 2, 3, 4] as [UInt8], dims: [2, 2])
            == [0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3, 4])
        #expect(try IDXWriter.encode([-1, 127] as [Int8], dims: [2]) == [0, 0, 0x09, 1, 0, 0, 0, 2, 0xFF, 0x7F])
        #expect(try IDXWriter.encode([UInt8](), dims: [0, 28, 28])
            == [0, 0, 0x08, 3, 0, 0, 0, 0, 0, 0, 0, 28, 0, 0, 0, 28])
    }

    /// Hand-made bytes decode to the numbers they spell.
    @Test func decodesHandMadeBytes() throws {
        let i16 = try IDXFile(bytes: rawHeader(type: 0x0B, dims: [3]) + [0x00, 0x01, 0xFF, 0xFE, 0x01, 0x2C], name: "h")
        #expect(i16.floats() == [1, -2, 300])
        #expect(i16.floats(scale: 0.5) == [0.5, -1, 150])
        #expect(try i16.ints() == [1, -2, 300])
        let f64 = try IDXFile(bytes: rawHeader(type: 0x0E, dims: [1]) + [0xC0, 0x04, 0, 0, 0, 0, 0, 0], name: "h")
        #expect(f64.doubles() == [-2.5])
        #expect(f64.floats() == [-2.5])
        let i8 = try IDXFile(bytes: rawHeader(type: 0x09, dims: [2]) + [0x80, 0x7F], name: "h")
        #expect(try i8.ints() == [-128, 127])
    }

    @Test func imageLayouts() throws {
        #expect(IDXImageLayout(dims: [10000, 28, 28]) == IDXImageLayout(dims: [10000, 28, 28]))
        let three = IDXImageLayout(dims: [10000, 28, 28])
        #expect(three.imageCount == 10000 && three.featureCount == 784 && three.imageShape == [28, 28])
        let two = IDXImageLayout(dims: [28, 28])
        #expect(two.imageCount == 1 && two.featureCount == 784 && two.imageShape == [28, 28])
        let one = IDXImageLayout(dims: [784])
        #expect(one.imageCount == 1 && one.featureCount == 784)
        let four = IDXImageLayout(dims: [5, 28, 28, 3])
        #expect(four.imageCount == 5 && four.featureCount == 2352 && four.imageShape == [28, 28, 3])

        let single = try IDXFile(bytes: try IDXWriter.encode([UInt8](repeating: 255, count: 784), dims: [28, 28]), name: "one")
        let images = IDXImages(single, scale: 1 / 255)
        #expect(images.count == 1 && images.featureCount == 784)
        #expect(images.image(0).allSatisfy { $0 == 1 })
    }

    @Test func typeAndShapeMisuse() throws {
        let pixels = try IDXFile(bytes: try IDXWriter.encode([UInt8](repeating: 1, count: 8), dims: [2, 2, 2]), name: "px.idx")
        expectError("px.idx: the elements are u8, not f32") { _ = try pixels.values(as: Float.self) }
        expectError("px.idx: not a label file: labels are a rank-1 integer IDX file (u8 in MNIST), this one is 2x2x2 u8") {
            _ = try IDXLabels(pixels)
        }
        let floats = try IDXFile(bytes: try IDXWriter.encode([1.5] as [Float], dims: [1]), name: "f.idx")
        expectError("f.idx: the elements are f32, not integers") { _ = try floats.ints() }
        expectError("f.idx: not a label file: labels are a rank-1 integer IDX file (u8 in MNIST), this one is 1 f32") {
            _ = try IDXLabels(floats)
        }
    }

    @Test func writerRejectsBadShapesAndReportsIOErrors() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("out.idx")
        expectError("\(path): cannot write: the dimensions 2x3 do not hold 5 values") {
            try IDXWriter.write([UInt8](repeating: 0, count: 5), dims: [2, 3], to: path)
        }
        expectError("\(path): IDX rank 0: a file needs at least one dimension") {
            try IDXWriter.write([UInt8](), dims: [], to: path)
        }
        expectError("\(path): IDX rank 9 is larger than the supported maximum of 8") {
            try IDXWriter.write([UInt8](repeating: 0, count: 1), dims: [Int](repeating: 1, count: 9), to: path)
        }
        expectError("\(path): cannot write: the dimensions 4294967296x0 are not all in 0...4294967295") {
            try IDXWriter.write([UInt8](), dims: [1 << 32, 0], to: path)
        }
        expectError("\(path): cannot write: the dimensions -1 are not all in 0...4294967295") {
            try IDXWriter.write([UInt8](), dims: [-1], to: path)
        }
        #expect(!fileExists(path))
        let missing = dir.path + "/no/such/dir/x.idx"
        expectError("\(missing): cannot create output file: No such file or directory") {
            try IDXWriter.write([UInt8](repeating: 0, count: 1), dims: [1], to: missing, gzip: true)
        }
    }

    @Test func writingReplacesAnExistingFileAndLeavesNoTemporaryFiles() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("labels.idx.gz")
        try IDXWriter.write([1, 2, 3] as [UInt8], dims: [3], to: path, gzip: true)
        try IDXWriter.write([4, 5] as [UInt8], dims: [2], to: path, gzip: true)
        #expect(try IDXLabels(path: path).values == [4, 5])
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["labels.idx.gz"])
    }
}
