internal import CZlib

/// A streaming deflate decompressor: pulls compressed bytes from a source in fixed-size chunks
/// and hands decompressed bytes out into buffers the caller owns.
///
/// Memory use is the input chunk plus zlib's 32 KiB window, whatever the size of the data.
/// Concatenated gzip members (what `cat a.gz b.gz` makes) decompress as one stream, and zero
/// padding after the last member is ignored, as `gzip -d` and Python's `gzip` module do.
/// A stream that stops early throws `CompressionError.truncated`; data zlib rejects (including a
/// wrong CRC or length in a gzip trailer) throws `CompressionError.corrupt` with zlib's message.
public final class InflateStream: ByteSource {
    public let name: String
    /// The container asked for.
    public let format: CompressionFormat
    private let source: any ByteSource
    // zlib keeps a pointer back to the z_stream and checks it, so it needs a fixed address.
    private let stream: UnsafeMutablePointer<z_stream>
    private let input: UnsafeMutableRawBufferPointer
    private var sourceEnded = false
    private var finished = false
    /// Whether members may follow one another; known once the first bytes are seen.
    private var isGzip: Bool
    /// Compressed bytes taken from the source so far, for error messages.
    private var compressedRead = 0
    /// Decompressed bytes produced so far.
    public private(set) var totalOut = 0

    /// Starts decompressing `source`; `name` is used in error messages (by default the source's).
    public init(source: any ByteSource, format: CompressionFormat = .gzipOrZlib,
                name: String? = nil, inputChunkSize: Int = 1 << 16) throws {
        precondition(inputChunkSize > 0 && inputChunkSize <= Int(UInt32.max), "bad input chunk size")
        self.name = name ?? source.name
        self.format = format
        self.source = source
        self.isGzip = format == .gzip
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        let rc = nn_inflateInit2(stream, format.windowBits)
        guard rc == Z_OK else {
            stream.deinitialize(count: 1)
            stream.deallocate()
            if rc == Z_MEM_ERROR { throw CompressionError.outOfMemory(name: name ?? source.name) }
            throw CompressionError.zlibFailure(name: name ?? source.name, operation: "inflateInit2", code: rc)
        }
        input = .allocate(byteCount: inputChunkSize, alignment: 16)
    }

    deinit {
        inflateEnd(stream)
        releaseZStream(stream, buffer: input)
    }

    /// The format actually being decoded (`gzipOrZlib` resolves after the first read).
    private var resolvedFormat: CompressionFormat {
        switch format {
        case .gzipOrZlib: return isGzip ? .gzip : (compressedRead > 0 ? .zlib : .gzipOrZlib)
        default: return format
        }
    }

    /// Decompresses into `buffer`, filling it unless the stream ends first; returns 0 at the end.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard !finished, let base = buffer.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return 0 }
        var produced = 0
        while produced < buffer.count {
            if stream.pointee.avail_in == 0 {
                if !sourceEnded { try refill() }
                if stream.pointee.avail_in == 0 {
                    throw CompressionError.truncated(name: name, format: resolvedFormat, compressedBytes: compressedRead)
                }
            }
            // avail_out is 32-bit; larger buffers are filled in several calls.
            let chunk = min(buffer.count - produced, 1 << 30)
            stream.pointee.next_out = base + produced
            stream.pointee.avail_out = UInt32(chunk)
            let rc = inflate(stream, Z_NO_FLUSH)
            let made = chunk - Int(stream.pointee.avail_out)
            produced += made
            totalOut += made
            switch rc {
            case Z_OK:
                continue
            case Z_STREAM_END:
                if try !startNextMember() {
                    finished = true
                    return produced
                }
            case Z_BUF_ERROR:
                // No progress without more input; the loop refills or reports truncation.
                if stream.pointee.avail_in != 0 {
                    throw CompressionError.zlibFailure(name: name, operation: "inflate", code: rc)
                }
            case Z_DATA_ERROR:
                throw CompressionError.corrupt(name: name, format: resolvedFormat, message: zlibMessage ?? "invalid data")
            case Z_NEED_DICT:
                throw CompressionError.corrupt(name: name, format: resolvedFormat, message: "the stream needs a preset dictionary")
            case Z_MEM_ERROR:
                throw CompressionError.outOfMemory(name: name)
            default:
                throw CompressionError.zlibFailure(name: name, operation: "inflate", code: rc)
            }
        }
        return produced
    }

    private var zlibMessage: String? {
        stream.pointee.msg.map { String(cString: $0) }
    }

    private func refill() throws {
        let n = try source.read(into: input)
        if n == 0 {
            sourceEnded = true
        } else if compressedRead == 0 && format == .gzipOrZlib {
            let bytes = input.baseAddress!.assumingMemoryBound(to: UInt8.self)
            isGzip = bytes[0] == 0x1f && (n < 2 || bytes[1] == 0x8b)
        }
        compressedRead += n
        stream.pointee.next_in = input.baseAddress!.assumingMemoryBound(to: UInt8.self)
        stream.pointee.avail_in = UInt32(n)
    }

    /// After a stream end: readies the next gzip member and returns true, or returns false at the
    /// true end of the data; anything else that follows is an error rather than silently dropped.
    private func startNextMember() throws -> Bool {
        while true {
            if stream.pointee.avail_in == 0 {
                if !sourceEnded { try refill() }
                if stream.pointee.avail_in == 0 { return false }
            }
            let next = stream.pointee.next_in!
            guard isGzip else {
                throw CompressionError.trailingGarbage(name: name, format: resolvedFormat,
                                                       offset: compressedRead - Int(stream.pointee.avail_in))
            }
            // gzip files padded with zeros (tape blocks, some uploaders) are still valid gzip.
            if next[0] == 0 {
                var skip = 0
                let available = Int(stream.pointee.avail_in)
                while skip < available && next[skip] == 0 { skip += 1 }
                stream.pointee.next_in = next + skip
                stream.pointee.avail_in -= UInt32(skip)
                continue
            }
            guard next[0] == 0x1f else {
                throw CompressionError.trailingGarbage(name: name, format: .gzip,
                                                       offset: compressedRead - Int(stream.pointee.avail_in))
            }
            let rc = inflateReset(stream)
            guard rc == Z_OK else {
                throw CompressionError.zlibFailure(name: name, operation: "inflateReset", code: rc)
            }
            return true
        }
    }
}

/// One-call decompression of data already in memory.
public enum Inflate {
    /// Decompresses `bytes`, refusing more than `maxBytes` of output.
    ///
    /// `sizeHint` (a zip entry's declared size, say) only sizes the first allocation.
    public static func decompress(_ bytes: UnsafeRawBufferPointer, format: CompressionFormat,
                                  maxBytes: Int, sizeHint: Int? = nil, name: String) throws -> [UInt8] {
        let stream = try InflateStream(source: RawBufferSource(bytes, name: name), format: format,
                                       inputChunkSize: max(1, min(bytes.count, 1 << 20)))
        return try stream.readAll(maxBytes: maxBytes, sizeHint: sizeHint ?? min(maxBytes, max(1 << 16, bytes.count * 4)))
    }

    /// Decompresses `bytes`, refusing more than `maxBytes` of output.
    public static func decompress(_ bytes: [UInt8], format: CompressionFormat,
                                  maxBytes: Int, sizeHint: Int? = nil, name: String) throws -> [UInt8] {
        try bytes.withUnsafeBytes {
            try decompress($0, format: format, maxBytes: maxBytes, sizeHint: sizeHint, name: name)
        }
    }
}

/// Frees a zlib stream state and its chunk buffer once `deflateEnd` or `inflateEnd` has run.
func releaseZStream(_ stream: UnsafeMutablePointer<z_stream>, buffer: UnsafeMutableRawBufferPointer) {
    stream.deinitialize(count: 1)
    stream.deallocate()
    buffer.deallocate()
}
