import NNCompression
import NNCore
import NNSystem

#if canImport(Glibc)
import Glibc
#endif

/// The `.nnm` container, version 1. The layout is specified in `Schemas/nnm-v1.md`:
///
///     0   8  magic  89 4E 4E 4D 0D 0A 1A 0A   ("\x89NNM\r\n\x1a\n")
///     8   2  major version (u16 LE)            = 1
///     10  2  minor version (u16 LE)            = 1, or 2 / 3 when the model uses what 1.2 / 1.3 added
///     12  4  flags (u32 LE)                    = 0; a set bit is a feature the reader must know
///     16  8  header length in bytes (u64 LE)
///     24  8  data offset (u64 LE)              = header end rounded up to 64
///     32  8  data length (u64 LE)              = file size - data offset
///     40  4  CRC-32 of the header bytes (u32 LE)
///     44  4  CRC-32 of bytes 0..<44 (u32 LE)
///     48  .. header: UTF-8 JSON object, then zero padding to the data offset
///     data: tensors at 64-byte-aligned offsets (relative to the data offset), zero padding between
public enum NNMFormat {
    public static let magic: [UInt8] = [0x89, 0x4E, 0x4E, 0x4D, 0x0D, 0x0A, 0x1A, 0x0A]
    public static let majorVersion = 1
    /// The newest minor version this code reads and writes. Writers write the lowest version
    /// that describes the model (`ModelMetadata.minorVersion`): a model that 1.1 can describe
    /// gives the same bytes as before 1.2 existed. Readers accept any minor version of major 1.
    public static let newestMinorVersion = 3
    public static let preambleSize = 48
    public static let alignment = 64
    /// Largest metadata header a reader accepts (16 MiB); the spec states it.
    public static let maximumHeaderBytes = 16 << 20
    /// Largest tensor rank a reader accepts.
    public static let maximumRank = 8
    /// Largest number of tensors in one file.
    public static let maximumTensorCount = 65_536
    /// Longest tensor name, in UTF-8 bytes.
    public static let maximumNameBytes = 1024
    /// The file name extension.
    public static let fileExtension = "nnm"

    static func alignUp(_ n: Int) -> Int { (n + alignment - 1) / alignment * alignment }
}

/// One row of the tensor table, as stored.
public struct TensorEntry: Equatable, Sendable {
    public var name: String
    public var dtype: DType
    public var shape: [Int]
    /// Offset from the start of the data section; a multiple of 64.
    public var offset: Int
    public var length: Int
    public var crc32: UInt32
}

/// What the preamble and header of a file say, before any tensor is touched.
public struct NNMHeader: Sendable {
    public var majorVersion: Int
    public var minorVersion: Int
    public var header: JSONObject
    public var tensors: [TensorEntry]
    public var metadata: ModelMetadata
    public var dataOffset: Int
    public var fileSize: Int
}

// MARK: - Writing

extension NNMFormat {
    /// Serializes a model's header (metadata plus tensor table) and returns it with the entries.
    static func layout(_ model: Model) -> (header: [UInt8], entries: [TensorEntry]) {
        var entries: [TensorEntry] = []
        var offset = 0
        for t in model.tensors {
            let length = t.tensor.byteCount
            entries.append(TensorEntry(name: t.name, dtype: t.tensor.dtype, shape: t.tensor.shape, offset: offset,
                                       length: length, crc32: CRC32.checksum(t.tensor.bytes)))
            offset = alignUp(offset + length)
        }
        var root = model.metadata.json
        root["tensors"] = .array(entries.map { e in
            .object(JSONObject([("name", .string(e.name)), ("dtype", .string(e.dtype.rawValue)),
                                ("shape", .array(e.shape.map { .integer(Int64($0)) })),
                                ("offset", .integer(Int64(e.offset))), ("length", .integer(Int64(e.length))),
                                ("crc32", .integer(Int64(e.crc32)))]))
        })
        return (Array(JSONValue.object(root).serialized(indent: 1).utf8), entries)
    }

    /// Validates `model`, then writes it to `path` atomically; an invalid model is never written.
    public static func write(_ model: Model, to path: String) throws(NNMError) {
        let validated: ValidatedModel
        do {
            validated = try ValidatedModel(model)
        } catch {
            throw .invalidModel(path: path, problem: error)
        }
        try write(validated, to: path)
    }

    /// Writes a validated model to `path` atomically (temporary file, fsync, rename).
    public static func write(_ validated: ValidatedModel, to path: String) throws(NNMError) {
        let model = validated.model
        let (header, entries) = layout(model)
        let dataOffset = alignUp(preambleSize + header.count)
        let dataLength = entries.last.map { alignUp($0.offset + $0.length) } ?? 0

        var preamble = [UInt8]()
        preamble.reserveCapacity(preambleSize)
        preamble += magic
        appendLE(&preamble, UInt16(majorVersion))
        appendLE(&preamble, UInt16(model.metadata.minorVersion))
        appendLE(&preamble, UInt32(0))
        appendLE(&preamble, UInt64(header.count))
        appendLE(&preamble, UInt64(dataOffset))
        appendLE(&preamble, UInt64(dataLength))
        appendLE(&preamble, CRC32.checksum(header))
        appendLE(&preamble, CRC32.checksum(preamble))

        do {
            let writer = try AtomicFileWriter(path: path)
            try writer.write(preamble)
            try writer.write(header)
            try writer.writeZeros(dataOffset - preambleSize - header.count)
            var position = 0
            for (t, e) in zip(model.tensors, entries) {
                try writer.writeZeros(e.offset - position)
                try writer.write(t.tensor.bytes)
                position = e.offset + e.length
            }
            try writer.writeZeros(dataLength - position)
            try writer.commit()
        } catch let error as FileWriteError {
            switch error {
            case .cannotCreate: throw .cannotCreate(path: path, reason: error.reason)
            case .writeFailed: throw .writeFailed(path: path, reason: error.reason)
            }
        } catch {
            throw .writeFailed(path: path, reason: "\(error)")
        }
    }

    private static func appendLE<T: FixedWidthInteger>(_ bytes: inout [UInt8], _ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes += $0 }
    }
}
