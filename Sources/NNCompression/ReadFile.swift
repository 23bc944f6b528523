/// The first two bytes of every gzip member.
public let gzipMagic: (UInt8, UInt8) = (0x1f, 0x8b)

/// deflate cannot expand data by more than about 1032:1, so a hint beyond that is a lie.
private let maximumDeflateRatio = 1032

/// A file opened for reading its (decompressed) content as a stream.
public struct OpenedFile {
    /// Yields the file's bytes, decompressed when `isGzip`.
    public let source: any ByteSource
    /// Whether the file starts with the gzip magic and is being decompressed.
    public let isGzip: Bool
    /// The size of the file on disk when it is a regular file (compressed size for gzip).
    public let fileSize: Int?
}

/// Opens `path` for streaming: a gzip file (told by its magic 1f 8b, not by its name) is
/// decompressed on the fly, anything else is read as it is. Works on pipes too.
///
/// - Parameter displayName: the name errors mention; `path` when `nil`.
public func openMaybeGzip(path: String, displayName: String? = nil) throws -> OpenedFile {
    let file = try FileByteSource(path: path, displayName: displayName)
    let head = try file.peek(2)
    let size = file.fileSize
    if head.count == 2 && head[0] == gzipMagic.0 && head[1] == gzipMagic.1 {
        let stream = try InflateStream(source: file, format: .gzip)
        return OpenedFile(source: stream, isGzip: true, fileSize: size)
    }
    return OpenedFile(source: file, isGzip: false, fileSize: size)
}

/// Reads a whole file, refusing files larger than `maxBytes` before reading them.
public func readFileBytes(path: String, maxBytes: Int, displayName: String? = nil) throws -> [UInt8] {
    let file = try FileByteSource(path: path, displayName: displayName)
    let size = file.fileSize
    if let size, size > maxBytes {
        throw CompressionError.tooLarge(name: file.name, limit: maxBytes, decompressed: false)
    }
    return try file.readAll(maxBytes: maxBytes, sizeHint: size)
}

/// Reads a whole file, gunzipping it when it starts with the gzip magic 1f 8b.
///
/// At most `maxBytes` are allocated for the (decompressed) content; a larger file throws
/// `CompressionError.tooLarge`. For gzip, the size in the trailer sizes the single allocation
/// (when it is plausible), so a 7.8 MB MNIST file is decompressed without copying.
///
/// - Parameter displayName: the name errors mention; `path` when `nil`.
public func readMaybeGzip(path: String, maxBytes: Int, displayName: String? = nil) throws -> [UInt8] {
    let file = try FileByteSource(path: path, displayName: displayName)
    let head = try file.peek(2)
    let size = file.fileSize
    guard head.count == 2 && head[0] == gzipMagic.0 && head[1] == gzipMagic.1 else {
        if let size, size > maxBytes {
            throw CompressionError.tooLarge(name: file.name, limit: maxBytes, decompressed: false)
        }
        return try file.readAll(maxBytes: maxBytes, sizeHint: size)
    }
    var hint: Int? = nil
    if let size, size >= 18 {
        // ISIZE, the last member's length mod 2^32: exact for the usual single-member file under 4 GiB.
        let trailer = try file.readBytes(atOffset: size - 4, count: 4)
        if trailer.count == 4 {
            let isize = Int(trailer[0]) | Int(trailer[1]) << 8 | Int(trailer[2]) << 16 | Int(trailer[3]) << 24
            let plausible = size.multipliedReportingOverflow(by: maximumDeflateRatio)
            hint = plausible.overflow ? isize : min(isize, plausible.partialValue)
        }
    }
    let stream = try InflateStream(source: file, format: .gzip, inputChunkSize: 1 << 17)
    return try stream.readAll(maxBytes: maxBytes, sizeHint: hint ?? min(maxBytes, max(1 << 16, (size ?? 0) * 4)))
}
