import NNCompression
import NNCore
import NNSystem

/// Writes IDX files of any element type and rank, plain or gzip-compressed.
///
/// Files are written through NNCore's `AtomicFileWriter`: a reader sees either the old file or
/// the complete new one, never a half-written file. Values are byte-swapped in fixed-size
/// chunks, so writing needs little memory beyond the values themselves.
public enum IDXWriter {
    /// Writes `values` with shape `dims` to `path`.
    ///
    /// - Parameters:
    ///   - dims: the shape, outermost first; their product must equal `values.count`.
    ///   - gzip: compress the file (the MNIST distribution's `.gz` form).
    ///   - level: the gzip level, 0...9.
    /// - Throws: `IDXError` for an invalid shape, NNCore's `FileWriteError` when writing fails.
    public static func write<T: IDXElement>(_ values: [T], dims: [Int], to path: String,
                                            gzip: Bool = false, level: Int = 6) throws {
        try values.withUnsafeBufferPointer { try write($0, dims: dims, to: path, gzip: gzip, level: level) }
    }

    /// Writes `values` with shape `dims` to `path`; see `write(_:dims:to:gzip:level:)` for arrays.
    public static func write<T: IDXElement>(_ values: UnsafeBufferPointer<T>, dims: [Int], to path: String,
                                            gzip: Bool = false, level: Int = 6) throws {
        let header = try makeHeader(T.self, dims: dims, valueCount: values.count, path: path)
        try header.encoded().withUnsafeBytes { headerBytes in
            try writeEncoded(header: headerBytes, native: UnsafeRawBufferPointer(values),
                             elementSize: header.elementType.size, to: path, gzip: gzip, level: level)
        }
    }

    /// The bytes of an uncompressed IDX file holding `values` with shape `dims`.
    public static func encode<T: IDXElement>(_ values: [T], dims: [Int]) throws -> [UInt8] {
        let header = try makeHeader(T.self, dims: dims, valueCount: values.count, path: "<memory>")
        let headerBytes = header.encoded()
        let headerSize = headerBytes.count
        let total = headerSize + header.dataByteCount
        return [UInt8](unsafeUninitializedCapacity: total) { buffer, count in
            headerBytes.withUnsafeBufferPointer { h in _ = buffer.initialize(from: h) }
            values.withUnsafeBytes { native in
                if values.count > 0 {
                    swapBytes(native.baseAddress!, into: UnsafeMutableRawPointer(buffer.baseAddress! + headerSize),
                              count: values.count, elementSize: header.elementType.size)
                }
            }
            count = total
        }
    }

    private static func makeHeader<T: IDXElement>(_: T.Type, dims: [Int], valueCount: Int,
                                                  path: String) throws -> IDXHeader {
        precondition(MemoryLayout<T>.size == T.idxType.size, "\(T.self) cannot be an IDX element")
        let header = try IDXHeader(elementType: T.idxType, dims: dims, path: path)
        guard header.elementCount == valueCount else {
            throw IDXError.shapeMismatch(path: path, dims: dims, valueCount: valueCount)
        }
        return header
    }

    /// Writes a header and native-order values, swapping them to big-endian chunk by chunk.
    private static func writeEncoded(header: UnsafeRawBufferPointer, native: UnsafeRawBufferPointer,
                                     elementSize: Int, to path: String, gzip: Bool, level: Int) throws {
        try withOutput(path: path, gzip: gzip, level: level) { emit in
            try emit(header)
            if elementSize == 1 {
                try emit(native)
                return
            }
            let chunkElements = (1 << 18) / elementSize
            let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkElements * elementSize, alignment: 16)
            defer { scratch.deallocate() }
            let total = native.count / elementSize
            var done = 0
            while done < total {
                let n = min(chunkElements, total - done)
                swapBytes(native.baseAddress! + done * elementSize, into: scratch.baseAddress!,
                          count: n, elementSize: elementSize)
                try emit(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(scratch)[..<(n * elementSize)]))
                done += n
            }
        }
    }

    /// Writes a header and data that are already big-endian.
    static func writeEncoded(header: UnsafeRawBufferPointer, data: UnsafeRawBufferPointer,
                             to path: String, gzip: Bool, level: Int) throws {
        try withOutput(path: path, gzip: gzip, level: level) { emit in
            try emit(header)
            try emit(data)
        }
    }

    /// Opens an atomic writer (through gzip when asked), lets `body` emit bytes, and commits;
    /// on any error the destination is left as it was.
    private static func withOutput(path: String, gzip: Bool, level: Int,
                                   _ body: ((UnsafeRawBufferPointer) throws -> Void) throws -> Void) throws {
        let file = try AtomicFileWriter(path: path)
        if gzip {
            let compressor = try wrappingCompressionErrors {
                try DeflateStream(format: .gzip, level: level, name: path) { try file.write($0) }
            }
            try body { bytes in
                // The sink's FileWriteError passes through; only zlib's own errors are wrapped.
                do { try compressor.write(bytes) } catch let error as CompressionError { throw IDXError.compression(error) }
            }
            do { try compressor.finish() } catch let error as CompressionError { throw IDXError.compression(error) }
        } else {
            try body { try file.write($0) }
        }
        try file.commit()
    }
}
