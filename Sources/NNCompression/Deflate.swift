internal import CZlib

/// A streaming deflate compressor that passes its output to a sink in pieces of at most the
/// output chunk size, so a large file is compressed with a fixed amount of memory.
///
/// With `.gzip` it writes a `.gz` file's bytes (zlib's default header: no name, mtime 0, so the
/// output depends only on the input); with `.rawDeflate` it writes a zip member's data (compute
/// the zip CRC separately with `CRC32`).
public final class DeflateStream {
    public let name: String
    public let format: CompressionFormat
    private let sink: (UnsafeRawBufferPointer) throws -> Void
    private let stream: UnsafeMutablePointer<z_stream>
    private let output: UnsafeMutableRawBufferPointer
    private var finished = false
    /// Uncompressed bytes taken in so far.
    public private(set) var totalIn = 0
    /// Compressed bytes handed to the sink so far.
    public private(set) var totalOut = 0

    /// - Parameters:
    ///   - format: `.gzip`, `.zlib` or `.rawDeflate`.
    ///   - level: 0 (store) to 9 (smallest), or -1 for zlib's default (6).
    ///   - name: used in error messages.
    ///   - sink: receives the compressed bytes; the buffer is only valid during the call.
    public init(format: CompressionFormat, level: Int = -1, name: String,
                outputChunkSize: Int = 1 << 16,
                sink: @escaping (UnsafeRawBufferPointer) throws -> Void) throws {
        precondition(format != .gzipOrZlib, "choose gzip or zlib when compressing")
        precondition((-1...9).contains(level), "compression level must be -1...9")
        precondition(outputChunkSize > 0 && outputChunkSize <= Int(UInt32.max), "bad output chunk size")
        self.name = name
        self.format = format
        self.sink = sink
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        let rc = nn_deflateInit2(stream, Int32(level), format.windowBits)
        guard rc == Z_OK else {
            stream.deinitialize(count: 1)
            stream.deallocate()
            if rc == Z_MEM_ERROR { throw CompressionError.outOfMemory(name: name) }
            throw CompressionError.zlibFailure(name: name, operation: "deflateInit2", code: rc)
        }
        output = .allocate(byteCount: outputChunkSize, alignment: 16)
    }

    deinit {
        deflateEnd(stream)
        releaseZStream(stream, buffer: output)
    }

    /// Compresses `bytes`; output may be held back by zlib until later writes or `finish()`.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        precondition(!finished, "write after finish")
        guard var next = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return }
        var remaining = bytes.count
        while remaining > 0 {
            let n = min(remaining, 1 << 30)
            // zlib's next_in is not const in its API but it never writes through it.
            stream.pointee.next_in = UnsafeMutablePointer(mutating: next)
            stream.pointee.avail_in = UInt32(n)
            try run(flush: Z_NO_FLUSH)
            next += n
            remaining -= n
            totalIn += n
        }
    }

    /// Compresses the bytes of an array.
    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    /// Flushes everything and writes the stream's trailer; the stream takes no more input.
    public func finish() throws {
        guard !finished else { return }
        stream.pointee.next_in = nil
        stream.pointee.avail_in = 0
        try run(flush: Z_FINISH)
        finished = true
    }

    private func run(flush: Int32) throws {
        while true {
            stream.pointee.next_out = output.baseAddress!.assumingMemoryBound(to: UInt8.self)
            stream.pointee.avail_out = UInt32(output.count)
            let rc = deflate(stream, flush)
            let made = output.count - Int(stream.pointee.avail_out)
            if made > 0 {
                try sink(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(output)[..<made]))
                totalOut += made
            }
            switch rc {
            case Z_STREAM_END:
                return
            case Z_OK, Z_BUF_ERROR:
                // A full output buffer may mean more is pending; otherwise all input is consumed.
                if stream.pointee.avail_out == 0 { continue }
                if flush == Z_FINISH { continue }
                return
            default:
                throw CompressionError.zlibFailure(name: name, operation: "deflate", code: rc)
            }
        }
    }
}

/// One-call compression of data in memory.
public enum Deflate {
    /// Compresses `bytes` into `format` (`.gzip`, `.zlib` or `.rawDeflate`).
    public static func compress(_ bytes: UnsafeRawBufferPointer, format: CompressionFormat,
                                level: Int = -1) throws -> [UInt8] {
        var result: [UInt8] = []
        let stream = try DeflateStream(format: format, level: level, name: "deflate") { chunk in
            result.append(contentsOf: chunk)
        }
        try stream.write(bytes)
        try stream.finish()
        return result
    }

    /// Compresses the bytes of an array into `format`.
    public static func compress(_ bytes: [UInt8], format: CompressionFormat, level: Int = -1) throws -> [UInt8] {
        try bytes.withUnsafeBytes { try compress($0, format: format, level: level) }
    }
}
