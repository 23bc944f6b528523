import Foundation
import NNCompression
import NNData
import Testing

// Expected numbers were computed with Python (gzip + NumPy) from the same files, e.g.
// `np.frombuffer(gzip.open(p).read(), np.uint8, offset=16).reshape(-1, 28, 28)[0].sum()`.

@Suite struct IDXRealDataTests {
    static let mnistImages = mnistDirectory + "/t10k-images-idx3-ubyte.gz"
    static let mnistLabels = mnistDirectory + "/t10k-labels-idx1-ubyte.gz"
    static let fashionImages = fashionDirectory + "/t10k-images-idx3-ubyte.gz"
    static let fashionLabels = fashionDirectory + "/t10k-labels-idx1-ubyte.gz"
    static let fashionTrainImages = fashionDirectory + "/train-images-idx3-ubyte.gz"
    static let fashionTrainLabels = fashionDirectory + "/train-labels-idx1-ubyte.gz"

    @Test(.enabled(if: fileExists(mnistImages)))
    func mnistTestImages() throws {
        let file = try IDXFile(path: Self.mnistImages)
        #expect(file.elementType == .u8)
        #expect(file.dims == [10000, 28, 28])
        #expect(file.elementCount == 7_840_000)
        #expect(file.header.dataByteCount == 7_840_000)
        #expect(file.header.headerByteCount == 16)

        let pixels = try file.values(as: UInt8.self)
        #expect(pixels.reduce(0) { $0 + Int($1) } == 264_923_200)
        #expect(pixels.max() == 255)
        let sums = (0..<5).map { i in pixels[(i * 784)..<((i + 1) * 784)].reduce(0) { $0 + Int($1) } }
        #expect(sums == [18454, 28850, 9871, 37014, 19237])

        let images = IDXImages(file, scale: 1 / 255)
        #expect(images.count == 10000)
        #expect(images.featureCount == 784)
        #expect(images.imageShape == [28, 28])
        #expect(images.features.count == 7_840_000)
        #expect(abs(images.image(0).reduce(0, +) - Float(18454) / 255) < 1e-2)
        #expect(abs(images.image(9999).reduce(0, +) - Float(41833) / 255) < 1e-2)
        #expect(abs(images.image(123).reduce(0.0) { $0 + Double($1) } - 24260.0 / 255) < 1e-3)
        let total = file.doubles(scale: 1 / 255).reduce(0, +)
        #expect(abs(total - 1_038_914.5098039217) < 1e-6)
    }

    @Test(.enabled(if: fileExists(mnistLabels)))
    func mnistTestLabels() throws {
        let labels = try IDXLabels(path: Self.mnistLabels)
        #expect(labels.count == 10000)
        #expect(Array(labels.values.prefix(20)) == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9, 0, 6, 9, 0, 1, 5, 9, 7, 3, 4])
        #expect(Array(labels.values.suffix(5)) == [2, 3, 4, 5, 6])
        #expect(labels.values.reduce(0, +) == 44434)
        var counts = [Int](repeating: 0, count: 10)
        for v in labels.values { counts[v] += 1 }
        #expect(counts == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])
    }

    @Test(.enabled(if: fileExists(fashionImages)))
    func fashionTestSet() throws {
        let file = try IDXFile(path: Self.fashionImages)
        #expect(file.dims == [10000, 28, 28])
        let pixels = try file.values(as: UInt8.self)
        #expect(pixels.reduce(0) { $0 + Int($1) } == 573_469_082)
        #expect(pixels[14 * 28 + 14] == 110)
        let ints = try file.ints()
        #expect(ints[14 * 28 + 14] == 110)
        let labels = try IDXLabels(path: Self.fashionLabels)
        #expect(Array(labels.values.prefix(20)) == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7, 4, 5, 7, 3, 4, 1, 2, 4, 8, 0])
        #expect(labels.values.reduce(0, +) == 45000)
    }

    @Test(.enabled(if: fileExists(fashionTrainImages)))
    func fashionTrainingSet() throws {
        let images = try IDXImages(path: Self.fashionTrainImages)
        #expect(images.count == 60000)
        #expect(images.featureCount == 784)
        #expect(images.image(0).reduce(0, +) == 76247)
        #expect(images.image(9999).reduce(0, +) == 79936)
        #expect(images.image(59999).reduce(0, +) == 16684)
        #expect(images.image(0)[images.image(0).startIndex + 14 * 28 + 14] == 217)
        let labels = try IDXLabels(path: Self.fashionTrainLabels)
        #expect(labels.count == 60000)
        #expect(Array(labels.values.suffix(5)) == [5, 1, 3, 0, 5])
        #expect(labels.values.reduce(0, +) == 270_000)
    }

    /// Decompressed, re-written plain and re-gzipped, the file must read back identically.
    @Test(.enabled(if: fileExists(mnistImages)))
    func rewritingTheRealFileKeepsItsBytes() throws {
        let dir = TemporaryDirectory()
        let file = try IDXFile(path: Self.mnistImages)
        try file.write(to: dir.file("plain.idx"))
        try file.write(to: dir.file("again.gz"), gzip: true, level: 1)
        let raw = try readMaybeGzip(path: Self.mnistImages, maxBytes: 1 << 24)
        #expect(dir.read("plain.idx") == raw)
        #expect(try readMaybeGzip(path: dir.file("again.gz"), maxBytes: 1 << 24) == raw)
        #expect(try IDXFile(path: dir.file("plain.idx")).floats() == file.floats())
    }

    /// Prints how long the 10k-image file takes; the numbers go in the report, the bound is loose
    /// because the machine is shared.
    @Test(.enabled(if: fileExists(mnistImages)))
    func readTimings() throws {
        let clock = ContinuousClock()
        var readTimes: [Duration] = []
        var floatTimes: [Duration] = []
        var streamTimes: [Duration] = []
        for _ in 0..<5 {
            var file: IDXFile?
            readTimes.append(try clock.measure { file = try IDXFile(path: Self.mnistImages) })
            var features: [Float] = []
            floatTimes.append(clock.measure { features = file!.floats(scale: 1 / 255) })
            #expect(features.count == 7_840_000)
            streamTimes.append(try clock.measure {
                let stream = try IDXImageStream(path: Self.mnistImages, batchSize: 1000, scale: 1 / 255)
                while try stream.nextBatch() != nil {}
            })
        }
        print("IDX timings (best of 5): read+gunzip \(readTimes.min()!), to Float/255 \(floatTimes.min()!), streamed in batches of 1000 \(streamTimes.min()!)")
        #expect(readTimes.min()! < .seconds(2))
    }
}
