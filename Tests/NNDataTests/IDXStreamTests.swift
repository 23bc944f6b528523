import Foundation
import NNCompression
import NNData
import Testing

@Suite struct IDXStreamTests {
    static let mnistImages = mnistDirectory + "/t10k-images-idx3-ubyte.gz"

    /// Streams a file and checks the concatenated batches against a whole read.
    private func checkStream(_ path: String, batchSize: Int, expected: [Float], imageCount: Int) throws {
        let stream = try IDXImageStream(path: path, batchSize: batchSize, scale: 1 / 255)
        #expect(stream.imageCount == imageCount)
        var all: [Float] = []
        all.reserveCapacity(expected.count)
        var next = 0
        while let batch = try stream.nextBatch() {
            #expect(batch.startIndex == next)
            #expect(batch.count == min(batchSize, imageCount - next))
            #expect(batch.features.count == batch.count * stream.featureCount)
            next += batch.count
            all += batch.features
        }
        #expect(next == imageCount)
        #expect(stream.imagesRead == imageCount)
        #expect(try stream.nextBatch() == nil)
        #expect(all == expected)
    }

    @Test(.enabled(if: fileExists(mnistImages)))
    func batchesEqualTheWholeRead() throws {
        let whole = IDXImages(try IDXFile(path: Self.mnistImages), scale: 1 / 255)
        for batchSize in [1000, 777, 10000, 65536] {
            try checkStream(Self.mnistImages, batchSize: batchSize, expected: whole.features, imageCount: 10000)
        }
        let dir = TemporaryDirectory()
        let plain = dir.write(try readMaybeGzip(path: Self.mnistImages, maxBytes: 1 << 24), to: "t10k.idx")
        try checkStream(plain, batchSize: 333, expected: whole.features, imageCount: 10000)
        let stream = try IDXImageStream(path: plain, batchSize: 64)
        #expect(!stream.isGzip)
        #expect(stream.header.dims == [10000, 28, 28])
        #expect(stream.imageShape == [28, 28] && stream.featureCount == 784)
    }

    @Test(.enabled(if: fileExists(mnistImages)))
    func batchesIntoACallerBuffer() throws {
        let whole = try IDXFile(path: Self.mnistImages).floats()
        let stream = try IDXImageStream(path: Self.mnistImages, batchSize: 500)
        #expect(stream.isGzip)
        // Room for 300 images: the buffer, not the batch size, limits each read.
        var buffer = [Float](repeating: -1, count: 300 * 784 + 5)
        var all: [Float] = []
        var counts: [Int] = []
        while true {
            let n = try buffer.withUnsafeMutableBufferPointer { try stream.nextBatch(into: $0) }
            if n == 0 { break }
            counts.append(n)
            all += buffer[..<(n * 784)]
        }
        #expect(counts == [Int](repeating: 300, count: 33) + [100])
        #expect(all == whole)
    }

    @Test func smallFilesAndOddLayouts() throws {
        let dir = TemporaryDirectory()
        // One 28x28 image, one flat vector, a rank-4 stack, and an empty set.
        let cases: [([Int], Int, Int)] = [([28, 28], 1, 784), ([784], 1, 784), ([5, 2, 2, 3], 5, 12), ([0, 28, 28], 0, 784)]
        for (dims, count, features) in cases {
            let values = (0..<dims.reduce(1, *)).map { UInt8($0 % 256) }
            let path = dir.file("layout-\(dims.count).idx.gz")
            try IDXWriter.write(values, dims: dims, to: path, gzip: true)
            let stream = try IDXImageStream(path: path, batchSize: 2)
            #expect(stream.imageCount == count)
            #expect(stream.featureCount == features)
            var all: [Float] = []
            var batches = 0
            while let batch = try stream.nextBatch() { all += batch.features; batches += 1 }
            #expect(batches == (count + 1) / 2)
            #expect(all == values.map { Float($0) / 255 * 255 })
        }
    }

    /// The stream's raw buffer holds one batch; reading a file many batches long keeps it there.
    @Test func memoryStaysAtOneBatch() throws {
        let dir = TemporaryDirectory()
        let count = 20000
        let values = (0..<(count * 100)).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 7) }
        let path = dir.file("many.idx.gz")
        try IDXWriter.write(values, dims: [count, 10, 10], to: path, gzip: true, level: 1)
        let stream = try IDXImageStream(path: path, batchSize: 128)
        var seen = 0
        var checksum = 0.0
        while let batch = try stream.nextBatch() {
            #expect(batch.features.count <= 128 * 100)
            seen += batch.count
            checksum += batch.features.reduce(0.0) { $0 + Double($1) }
        }
        #expect(seen == count)
        #expect(checksum == Double(values.reduce(0) { $0 + Int($1) }))
    }

    /// Streams from a pipe (how a CLI reads standard input): no file size, so nothing can be
    /// checked up front, and truncation shows up when the data runs out.
    @Test func readsFromAPipe() throws {
        let values = (0..<(50 * 16)).map { UInt8($0 % 256) }
        let idx = try IDXWriter.encode(values, dims: [50, 4, 4])
        let whole = try IDXFile(bytes: idx, name: "mem").floats()
        // Each payload fits in the pipe's buffer, so writing it all before reading cannot block.
        for (payload, gzip) in [(idx, false), (try Deflate.compress(idx, format: .gzip), true)] {
            let fds = try pipeWith(payload)
            defer { close(fds) }
            let stream = try IDXImageStream(path: "/dev/fd/\(fds)", batchSize: 7, displayName: "stdin")
            #expect(stream.isGzip == gzip)
            var all: [Float] = []
            while let batch = try stream.nextBatch() { all += batch.features }
            #expect(all == whole)
        }
        let fds = try pipeWith(Array(idx.dropLast(20)))
        defer { close(fds) }
        let stream = try IDXImageStream(path: "/dev/fd/\(fds)", batchSize: 7, displayName: "stdin")
        var batches = 0
        let message = "stdin: truncated: the header declares 50x4x4 u8 (800 bytes of data), the file has 780"
        expectError(message) { while try stream.nextBatch() != nil { batches += 1 } }
        #expect(batches == 6)
        // Later calls repeat the error rather than reading misaligned data.
        expectError(message) { _ = try stream.nextBatch() }
    }

    /// A pipe holding `bytes` and then the end of data; returns the read end.
    private func pipeWith(_ bytes: [UInt8]) throws -> Int32 {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        let written = bytes.withUnsafeBytes { write(fds[1], $0.baseAddress, $0.count) }
        #expect(written == bytes.count)
        close(fds[1])
        return fds[0]
    }
}
