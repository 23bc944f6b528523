import NNCompression
import NNCore

/// A batch of consecutive images from an `IDXImageStream`.
public struct IDXImageBatch: Sendable {
    /// The index of the batch's first image in the file.
    public let startIndex: Int
    /// The number of images in the batch.
    public let count: Int
    /// The number of values in one image.
    public let featureCount: Int
    /// `count * featureCount` values, row-major.
    public let features: [Float]

    public init(startIndex: Int, count: Int, featureCount: Int, features: [Float]) {
        precondition(features.count == count * featureCount, "feature count does not match")
        self.startIndex = startIndex
        self.count = count
        self.featureCount = featureCount
        self.features = features
    }
}

/// Reads the images of an IDX file (plain or gzip) a batch at a time, decompressing as it goes.
///
/// Memory stays at about one batch whatever the file's size, so a million-image file can be
/// run through a model on a small machine. The dimensions map to images as `IDXImageLayout`
/// describes.
///
/// Every check `IDXFile` makes is made here too, as early as the data allows: the header when
/// the stream opens; for an uncompressed regular file, the data size right away as well; for a
/// gzip file or a pipe, truncation when the data runs out, and trailing bytes and the gzip
/// checksum when the last batch is read, so the last batch is only returned if the whole file
/// is valid. Images of 0 values (a zero dimension after the first) are refused when the stream
/// opens (`IDXError.imagesWithoutValues`).
public final class IDXImageStream {
    /// The path or display name errors mention.
    public let path: String
    public let header: IDXHeader
    /// The number of images in the file.
    public let imageCount: Int
    /// The shape of one image, e.g. `[28, 28]`.
    public let imageShape: [Int]
    /// The number of values in one image.
    public let featureCount: Int
    /// The most images a batch holds.
    public let batchSize: Int
    /// The factor every value is multiplied by.
    public let scale: Float
    /// Whether the file is gzip-compressed.
    public let isGzip: Bool
    /// The number of images handed out so far.
    public private(set) var imagesRead = 0

    private let source: any ByteSource
    private let imageBytes: Int
    /// Holds a batch's raw bytes; grows only as data actually arrives, so a header that claims
    /// huge images cannot make the stream allocate memory the file does not back.
    private var raw: UnsafeMutableRawBufferPointer
    private var dataBytesRead = 0
    private var endVerified = false
    /// After an error the position in the data is unknown: every later call throws it again.
    private var failure = FirstFailure()

    /// Opens `path` and reads and validates its header.
    ///
    /// - Parameters:
    ///   - batchSize: the most images per batch (at least 1).
    ///   - scale: every value is multiplied by it (1/255 maps u8 pixels to 0...1).
    ///   - displayName: the name errors mention; `path` when `nil`.
    /// - Throws: `IDXError`.
    public init(path: String, batchSize: Int, scale: Float = 1, displayName: String? = nil) throws {
        precondition(batchSize > 0, "batchSize must be at least 1")
        let name = displayName ?? path
        let opened = try wrappingCompressionErrors { try openMaybeGzip(path: path, displayName: name) }
        let source = opened.source
        let header = try wrappingCompressionErrors { () throws -> IDXHeader in
            var head = try IDXImageStream.readUpTo(4, from: source)
            if head.count == 4 && head[0] == 0 && head[1] == 0 && (1...IDXHeader.maximumRank).contains(Int(head[3])) {
                head += try IDXImageStream.readUpTo(4 * Int(head[3]), from: source)
            }
            return try IDXHeader.parse(head, path: name)
        }
        if !opened.isGzip, let size = opened.fileSize {
            try header.checkDataSize(size - header.headerByteCount, path: name)
        }
        let layout = IDXImageLayout(dims: header.dims)
        // Images of no values cost no data, so a tiny header could declare billions of them and
        // keep a reader looping; no model takes 0 features, so such a file is refused up front.
        if layout.featureCount == 0 && layout.imageCount > 0 {
            throw IDXError.imagesWithoutValues(path: name, dims: header.dims, type: header.elementType)
        }
        self.path = name
        self.header = header
        self.imageCount = layout.imageCount
        self.imageShape = layout.imageShape
        self.featureCount = layout.featureCount
        self.imageBytes = layout.featureCount * header.elementType.size
        self.batchSize = batchSize
        self.scale = scale
        self.isGzip = opened.isGzip
        self.source = source
        self.raw = UnsafeMutableRawBufferPointer.allocate(byteCount: 0, alignment: 16)
    }

    deinit {
        raw.deallocate()
    }

    /// The next batch of up to `batchSize` images, or `nil` after the last one.
    ///
    /// - Throws: `IDXError` when the data is truncated, has trailing bytes, or fails to decompress;
    ///   once a call has thrown, every later call throws the same error.
    public func nextBatch() throws -> IDXImageBatch? {
        try failure.run { try readBatch() }
    }

    /// Decodes the next images into `buffer`, as many as fit (at most `batchSize`), and returns
    /// how many; 0 after the last one. Lets a caller reuse one buffer for every batch.
    ///
    /// `buffer` must have room for at least one image (`featureCount` values).
    public func nextBatch(into buffer: UnsafeMutableBufferPointer<Float>) throws -> Int {
        precondition(buffer.count >= featureCount, "the buffer must hold at least one image")
        return try failure.run { try readBatch(into: buffer) }
    }

    private func readBatch() throws -> IDXImageBatch? {
        let start = imagesRead
        // Reading first means a truncated file allocates nothing for the features.
        let wanted = try readRaw(upTo: batchSize)
        guard wanted > 0 else { return nil }
        let valueCount = wanted * featureCount
        let features = [Float](unsafeUninitializedCapacity: valueCount) { buffer, initialized in
            if valueCount > 0 {
                decodeReals(raw.baseAddress!, type: header.elementType, count: valueCount, scale: scale,
                             into: buffer.baseAddress!)
            }
            initialized = valueCount
        }
        return IDXImageBatch(startIndex: start, count: wanted, featureCount: featureCount, features: features)
    }

    private func readBatch(into buffer: UnsafeMutableBufferPointer<Float>) throws -> Int {
        let fit = featureCount == 0 ? batchSize : buffer.count / featureCount
        let wanted = try readRaw(upTo: fit)
        let valueCount = wanted * featureCount
        if valueCount > 0 {
            decodeReals(raw.baseAddress!, type: header.elementType, count: valueCount, scale: scale,
                         into: buffer.baseAddress!)
        }
        return wanted
    }

    /// Reads the next up to `limit` (and `batchSize`) images' bytes into `raw`, checking the end
    /// after the last one; returns how many, 0 after the last one.
    private func readRaw(upTo limit: Int) throws -> Int {
        let wanted = min(batchSize, imageCount - imagesRead, limit)
        guard wanted > 0 else {
            if imagesRead == imageCount { try verifyEnd() }
            return 0
        }
        try fillRaw(images: wanted)
        try finishBatch(wanted)
        return wanted
    }

    /// Whether the images are bytes (u8, what image files hold) of at least one value, which
    /// `nextBytes` passes on undecoded.
    public var holdsBytes: Bool { header.elementType == .u8 && featureCount > 0 }

    /// Reads the next up to `batchSize` images of a u8 file and calls `body` with their bytes
    /// (valid during the call) and how many images they are, without decoding them: each value
    /// stands for `Float(byte) * scale`, what `nextBatch` would decode. Returns the count, 0 after
    /// the last one (then `body` is not called). Errors of `body` are its own (a later call reads on).
    public func nextBytes(_ body: (_ bytes: UnsafePointer<UInt8>, _ count: Int) throws -> Void) throws -> Int {
        precondition(holdsBytes, "nextBytes reads u8 images")
        let count = try failure.run { try readRaw(upTo: batchSize) }
        if count > 0 { try body(raw.baseAddress!.assumingMemoryBound(to: UInt8.self), count) }
        return count
    }

    private func finishBatch(_ count: Int) throws {
        imagesRead += count
        if imagesRead == imageCount { try verifyEnd() }
    }

    /// Reads `images` images' bytes into `raw`, or throws `truncated` naming the bytes found.
    private func fillRaw(images: Int) throws {
        let needed = images * imageBytes
        var got = 0
        while got < needed {
            if got == raw.count {
                // Grow geometrically from 1 MiB so memory follows the data that really exists.
                let newSize = min(needed, max(raw.count * 2, 1 << 20))
                let bigger = UnsafeMutableRawBufferPointer.allocate(byteCount: newSize, alignment: 16)
                if got > 0 { bigger.baseAddress!.copyMemory(from: raw.baseAddress!, byteCount: got) }
                raw.deallocate()
                raw = bigger
            }
            let want = min(needed, raw.count) - got
            let n = try wrappingCompressionErrors {
                try source.read(into: UnsafeMutableRawBufferPointer(rebasing: raw[got..<(got + want)]))
            }
            got += n
            if n < want {
                throw IDXError.truncated(path: path, dims: header.dims, type: header.elementType,
                                         expectedBytes: header.dataByteCount, foundBytes: dataBytesRead + got)
            }
        }
        dataBytesRead += needed
    }

    /// Reads past the last image to make sure nothing follows it and, for gzip, that the
    /// stream's checksum and length match.
    private func verifyEnd() throws {
        guard !endVerified else { return }
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 16)
        defer { scratch.deallocate() }
        var extra = 0
        while true {
            let n = try wrappingCompressionErrors { try source.read(into: scratch) }
            if n == 0 { break }
            extra += n
        }
        if extra > 0 {
            throw IDXError.trailingBytes(path: path, dims: header.dims, type: header.elementType,
                                         expectedBytes: header.dataByteCount, foundBytes: dataBytesRead + extra)
        }
        endVerified = true
    }

    private static func readUpTo(_ count: Int, from source: any ByteSource) throws -> [UInt8] {
        try [UInt8](unsafeUninitializedCapacity: count) { buffer, got in
            got = try source.read(into: UnsafeMutableRawBufferPointer(buffer))
        }
    }
}
