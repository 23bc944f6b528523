import ArgumentParser
import NNCompression
import NNCore
import NNData
import NNImage
import NNNumPy

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// How raw records on a stream are laid out (`nn-infer --records`); without it the stream is
/// told by its magic number (IDX or `.npy`).
public enum RecordFormat: String, CaseIterable, ExpressibleByArgument, Sendable {
    /// One byte per value, the model's input size per record (raw pixels, as IDX u8 images).
    case u8
    /// Little-endian float32 values, the model's input size per record (NumPy's `<f4` bytes).
    case f32
    /// JSON Lines: one object per line with the values under `"pixels"` (flat, or nested lists
    /// such as 28 rows of 28); every other member is carried to the output line.
    case jsonl
}

/// A batch of consecutive records from a `RecordStream`.
public struct RecordBatch {
    /// The index of the batch's first record in the stream.
    public let startIndex: Int
    public let count: Int
    /// `count * featureCount` values, row-major.
    public let features: [Float]
    /// For JSON Lines, each record's members other than `"pixels"`, in their order; nil for
    /// formats that carry none.
    public let carried: [JSONObject]?
}

/// Reads records (model inputs) from a stream of unknown length, a pipe or standard input, a
/// batch at a time as they arrive: memory stays at one batch whatever the stream's length.
///
/// The stream is IDX (the header's sizes checked as `IDXFile` checks them), `.npy` (the header
/// read by `NumPyFile`'s parser), or raw records of the model's input size (`RecordFormat`);
/// gzip is decompressed on the way. A batch is returned as soon as at least one record has
/// arrived and no more bytes are waiting, so a consumer downstream sees results while a slow
/// producer is still writing (gzip input is decompressed in full batches). The last record
/// must be complete, and an IDX or `.npy` stream must hold exactly the records its header
/// declares; otherwise the error names the stream and the record.
public final class RecordStream {
    /// The name errors mention ("stdin" for `-`).
    public let name: String
    /// Values per record: the model's input features.
    public let featureCount: Int
    /// What the stream holds, for messages: "IDX 10000x28x28 u8", ".npy (10000, 784) |u1", "u8 records".
    public let formatDescription: String
    /// The most records a batch holds.
    public let batchSize: Int
    /// Records handed out so far.
    public private(set) var recordsRead = 0

    /// The longest JSON line accepted: 1 MiB plus 32 bytes per value.
    public var maxLineBytes: Int { (1 << 20) + 32 * featureCount }

    private let buffer: StreamBuffer
    private let layout: Layout
    /// The records a header declares (IDX, `.npy`); nil for raw records, which end with the data.
    private let declaredCount: Int?
    private var lineNumber = 0
    private var finished = false
    private var failure = FirstFailure()

    private enum Layout {
        case fixed(element: RecordElement, recordBytes: Int)
        case jsonLines
    }

    /// Opens `path` (`-`: standard input) for records of `inputShape`'s size.
    ///
    /// - Parameters:
    ///   - format: raw records; nil: IDX or `.npy`, told by the first bytes.
    ///   - batchSize: the most records per batch (at least 1).
    /// - Throws: `ToolError` (status 65 for data that is not what it should be, 66 for a path
    ///   that cannot be opened), `IDXError`, `NumPyFileError`, `ImageError`, `CompressionError`.
    public init(path: String, inputShape: [Int], format: RecordFormat?, batchSize: Int) throws {
        precondition(batchSize > 0, "batchSize must be at least 1")
        let name = path == "-" ? "stdin" : path
        let file: FileByteSource
        if path == "-" {
            file = FileByteSource(descriptor: 0, name: name)
        } else {
            do { file = try FileByteSource(path: path, displayName: name) } catch let error as CompressionError {
                throw ToolError(error.description, status: ExitStatus.noInput)
            }
        }
        let features = inputShape.reduce(1, *)
        self.name = name
        self.featureCount = features
        self.batchSize = batchSize
        // gzip is told by its magic whatever follows, as for files (`openMaybeGzip`).
        let head = try file.peek(2)
        let isGzip = head.count == 2 && head[0] == gzipMagic.0 && head[1] == gzipMagic.1
        let source: any ByteSource = isGzip ? try InflateStream(source: file, format: .gzip) : file
        let buffer = StreamBuffer(source: source, direct: isGzip ? nil : file)
        self.buffer = buffer
        let gz = isGzip ? "gzip " : ""

        if let format {
            switch format {
            case .u8, .f32:
                let element: RecordElement = format == .u8 ? .idx(.u8) : .f32LittleEndian
                layout = .fixed(element: element, recordBytes: features * element.size)
                formatDescription = "\(gz)\(format.rawValue) records of \(features) values"
            case .jsonl:
                layout = .jsonLines
                formatDescription = "\(gz)JSON Lines"
            }
            declaredCount = nil
            return
        }
        try buffer.ensure(6)
        let lead = buffer.peek(6)
        if lead.isEmpty {
            throw ToolError("\(name): empty input: expected IDX or .npy data, or raw records with --records u8|f32|jsonl",
                            status: ExitStatus.dataError)
        }
        if lead.count >= 6, Array(lead) == NumPyFile.magic {
            let declaration = try NumPyFile.streamDeclaration(from: buffer, name: name)
            try SampleSet.checkNPYImages(path: name, descr: declaration.descr, shape: declaration.shape, inputShape: inputShape)
            if declaration.fortranOrder && declaration.shape.filter({ $0 > 1 }).count > 1 {
                throw ToolError("\(name): the .npy array is in Fortran order, which cannot be read record by record; save it in C order (np.ascontiguousarray)",
                                status: ExitStatus.dataError)
            }
            let element = try RecordElement(numpyDescr: declaration.descr, name: name)
            layout = .fixed(element: element, recordBytes: features * element.size)
            declaredCount = declaration.shape[0]
            formatDescription = "\(gz).npy \(numpyShapeText(declaration.shape)) \(declaration.descr)"
            return
        }
        if lead[0] == 0 {
            try buffer.ensure(4)
            let rank = buffer.peek(4).count == 4 ? Int(buffer.peek(4)[3]) : 0
            if (1...IDXHeader.maximumRank).contains(rank) { try buffer.ensure(4 + 4 * rank) }
            let header = try IDXHeader.parse(buffer.peek(4 + 4 * max(rank, 0)), path: name)
            buffer.consume(header.headerByteCount)
            let idx = IDXImageLayout(dims: header.dims)
            guard idx.featureCount == features else {
                throw ToolError("\(name): IDX images are \(ShapeMath.describe(idx.imageShape)) (\(idx.featureCount) values) but the model expects \(ShapeMath.describe(inputShape)) (\(features) values)",
                                status: ExitStatus.dataError)
            }
            layout = .fixed(element: .idx(header.elementType), recordBytes: features * header.elementType.size)
            declaredCount = idx.imageCount
            formatDescription = "\(gz)IDX \(header)"
            return
        }
        let shown = lead.prefix(4).map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined(separator: " ")
        throw ToolError("\(name): neither IDX nor .npy (first bytes \(shown)); raw records need --records u8, f32 or jsonl",
                        status: ExitStatus.dataError)
    }

    /// The next batch: at least one record, at most `batchSize`, as many as have arrived; nil
    /// at the end of the stream.
    ///
    /// - Throws: when the stream ends inside a record or before the records its header declares,
    ///   when bytes follow them, or when a JSON line is bad; once a call has thrown, every later
    ///   call throws the same error.
    public func nextBatch() throws -> RecordBatch? {
        try failure.run { try readBatch() }
    }

    private func readBatch() throws -> RecordBatch? {
        guard !finished else { return nil }
        switch layout {
        case let .fixed(element, recordBytes):
            return try readFixed(element: element, recordBytes: recordBytes)
        case .jsonLines:
            return try readLines()
        }
    }

    private func readFixed(element: RecordElement, recordBytes: Int) throws -> RecordBatch? {
        var wanted = batchSize
        if let declaredCount { wanted = min(wanted, declaredCount - recordsRead) }
        guard wanted > 0 else {
            try verifyEnd()
            return nil
        }
        let full = wanted * recordBytes
        buffer.reserve(full)
        // At least one record, then whatever else is already waiting.
        while buffer.available < full, !buffer.ended {
            if buffer.available >= recordBytes, !buffer.moreIsWaiting { break }
            try buffer.readMore()
        }
        let count = min(wanted, buffer.available / recordBytes)
        if count == 0 {
            if buffer.available == 0 && declaredCount == nil {
                finished = true
                return nil
            }
            throw truncated(at: recordsRead, bytes: buffer.available, of: recordBytes)
        }
        let values = count * featureCount
        let features = [Float](unsafeUninitializedCapacity: values) { out, initialized in
            element.decode(buffer.pointer, count: values, into: out.baseAddress!)
            initialized = values
        }
        buffer.consume(count * recordBytes)
        let batch = RecordBatch(startIndex: recordsRead, count: count, features: features, carried: nil)
        recordsRead += count
        return batch
    }

    private func truncated(at index: Int, bytes: Int, of recordBytes: Int) -> ToolError {
        let declared = declaredCount.map { " (the header declares \($0) records)" } ?? ""
        if bytes == 0 {
            return ToolError("\(name): the data ends before record \(index)\(declared)", status: ExitStatus.dataError)
        }
        return ToolError("\(name): record \(index) is truncated: \(bytes) of its \(recordBytes) bytes\(declared)",
                         status: ExitStatus.dataError)
    }

    /// The records a header declares have been read: nothing may follow them.
    private func verifyEnd() throws {
        finished = true
        var extra = buffer.available
        buffer.consume(extra)
        while !buffer.ended {
            try buffer.readMore()
            extra += buffer.available
            buffer.consume(buffer.available)
        }
        if extra > 0 {
            throw ToolError("\(name): \(extra) bytes follow the \(declaredCount ?? 0) records the header declares",
                            status: ExitStatus.dataError)
        }
    }

    private func readLines() throws -> RecordBatch? {
        var features: [Float] = []
        var carried: [JSONObject] = []
        let limit = maxLineBytes
        let start = recordsRead
        while carried.count < batchSize {
            if let newline = buffer.firstIndex(of: 0x0A) {
                lineNumber += 1
                try parseLine(length: newline, features: &features, carried: &carried)
                buffer.consume(newline + 1)
                continue
            }
            if buffer.available > limit {
                throw ToolError("\(name): line \(lineNumber + 1) is longer than \(limit) bytes", status: ExitStatus.dataError)
            }
            if buffer.ended {
                if buffer.available > 0 {
                    // A last line without its newline, as editors and many writers leave it.
                    lineNumber += 1
                    let length = buffer.available
                    try parseLine(length: length, features: &features, carried: &carried)
                    buffer.consume(length)
                }
                break
            }
            if !carried.isEmpty, !buffer.moreIsWaiting { break }
            buffer.reserve(min(limit + 1, max(buffer.available * 2, 1 << 16)))
            try buffer.readMore()
        }
        if carried.isEmpty {
            finished = buffer.ended
            return nil
        }
        recordsRead += carried.count
        return RecordBatch(startIndex: start, count: carried.count, features: features, carried: carried)
    }

    /// The output members a carried member may not replace.
    public static let reservedKeys: Set<String> = ["index", "class", "name", "top", "label", "source"]

    private func parseLine(length: Int, features: inout [Float], carried: inout [JSONObject]) throws {
        let line = UnsafeRawBufferPointer(start: buffer.pointer, count: length)
        // Blank lines (a trailing empty line, CRLF endings) are skipped.
        if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { return }
        let where_ = "\(name): line \(lineNumber) (record \(recordsRead + carried.count))"
        let value: JSONValue
        do {
            value = try JSONValue.parse(line)
        } catch {
            throw ToolError("\(where_): \(error)", status: ExitStatus.dataError)
        }
        guard case let .object(object) = value else {
            throw ToolError("\(where_): expected a JSON object with \"pixels\", found \(value.kindName)", status: ExitStatus.dataError)
        }
        guard let pixels = object["pixels"] else {
            throw ToolError("\(where_): no \"pixels\" member", status: ExitStatus.dataError)
        }
        let before = features.count
        func flatten(_ v: JSONValue) throws {
            switch v {
            case let .array(items): for item in items { try flatten(item) }
            case let .integer(i): features.append(Float(i))
            case let .number(d): features.append(Float(d))
            default:
                throw ToolError("\(where_): \"pixels\" holds \(v.kindName) at value \(features.count - before); expected numbers",
                                status: ExitStatus.dataError)
            }
            if features.count - before > featureCount {
                throw ToolError("\(where_): \"pixels\" holds more than the model's \(featureCount) values", status: ExitStatus.dataError)
            }
        }
        try flatten(pixels)
        guard features.count - before == featureCount else {
            throw ToolError("\(where_): \"pixels\" holds \(features.count - before) values but the model takes \(featureCount)",
                            status: ExitStatus.dataError)
        }
        var kept = JSONObject()
        for member in object where member.key != "pixels" {
            if RecordStream.reservedKeys.contains(member.key) {
                throw ToolError("\(where_): member \"\(member.key)\" would replace the output's own; rename it",
                                status: ExitStatus.dataError)
            }
            kept[member.key] = member.value
        }
        carried.append(kept)
    }
}

/// How one value of a fixed-size record is stored.
enum RecordElement {
    /// As in IDX files (big-endian; u8 and i8 single bytes).
    case idx(IDXElementType)
    case f32LittleEndian
    case f64LittleEndian
    case f16(bigEndian: Bool)

    init(numpyDescr descr: String, name: String) throws {
        switch descr {
        case "|u1", "u1": self = .idx(.u8)
        case ">f4": self = .idx(.f32)
        case ">f8": self = .idx(.f64)
        case "<f4": self = .f32LittleEndian
        case "<f8": self = .f64LittleEndian
        case "<f2": self = .f16(bigEndian: false)
        case ">f2": self = .f16(bigEndian: true)
        default: throw ToolError("\(name): dtype '\(descr)' cannot be read as records", status: ExitStatus.dataError)
        }
    }

    var size: Int {
        switch self {
        case let .idx(type): return type.size
        case .f32LittleEndian: return 4
        case .f64LittleEndian: return 8
        case .f16: return 2
        }
    }

    func decode(_ src: UnsafeRawPointer, count: Int, into dst: UnsafeMutablePointer<Float>) {
        switch self {
        case let .idx(type):
            decodeReals(src, type: type, count: count, scale: Float(1), into: dst)
        case .f32LittleEndian:
            for i in 0..<count { dst[i] = Float(bitPattern: UInt32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
        case .f64LittleEndian:
            for i in 0..<count { dst[i] = Float(Double(bitPattern: UInt64(littleEndian: src.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)))) }
        case let .f16(bigEndian):
            for i in 0..<count {
                let raw = src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)
                dst[i] = Float(Float16(bitPattern: bigEndian ? UInt16(bigEndian: raw) : UInt16(littleEndian: raw)))
            }
        }
    }
}

/// A window over a stream's bytes: what has arrived and not been consumed. Reads from the
/// descriptor directly (`FileByteSource.readSome`) return what a pipe holds instead of waiting
/// for a full buffer.
final class StreamBuffer: ByteSource {
    let name: String
    private let source: any ByteSource
    private let direct: FileByteSource?
    private var storage: UnsafeMutableRawBufferPointer
    private var start = 0
    private var end = 0
    /// Whether the source has reported its end.
    private(set) var ended = false

    init(source: any ByteSource, direct: FileByteSource?) {
        self.name = source.name
        self.source = source
        self.direct = direct
        storage = .allocate(byteCount: 1 << 16, alignment: 16)
    }

    deinit { storage.deallocate() }

    var available: Int { end - start }
    var pointer: UnsafeRawPointer { UnsafeRawPointer(storage.baseAddress! + start) }

    /// The first `count` bytes that have arrived (fewer if fewer have).
    func peek(_ count: Int) -> [UInt8] {
        Array(UnsafeRawBufferPointer(start: storage.baseAddress! + start, count: min(count, available)))
    }

    func consume(_ count: Int) {
        precondition(count <= available)
        start += count
        if start == end { start = 0; end = 0 }
    }

    func firstIndex(of byte: UInt8) -> Int? {
        guard available > 0, let found = memchr(storage.baseAddress! + start, Int32(byte), available) else { return nil }
        return UnsafeRawPointer(found) - UnsafeRawPointer(storage.baseAddress! + start)
    }

    /// Makes room for `bytes` bytes from `start`, moving what is there to the front.
    func reserve(_ bytes: Int) {
        if start > 0 && start + bytes > storage.count {
            if available > 0 { storage.baseAddress!.copyMemory(from: storage.baseAddress! + start, byteCount: available) }
            end = available
            start = 0
        }
        if bytes > storage.count {
            let bigger = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes, alignment: 16)
            if available > 0 { bigger.baseAddress!.copyMemory(from: storage.baseAddress! + start, byteCount: available) }
            end = available
            start = 0
            storage.deallocate()
            storage = bigger
        }
    }

    /// Whether a read would return at once: bytes are waiting in a pipe, or the source is not
    /// a pipe (a file, a decompressor, which fill what they are asked).
    var moreIsWaiting: Bool {
        guard let direct, !ended else { return !ended }
        var fd = pollfd(fd: direct.descriptor, events: Int16(POLLIN), revents: 0)
        return poll(&fd, 1, 0) > 0
    }

    /// Reads into the free space (at least 1 byte of room is made); at the end sets `ended`.
    func readMore() throws {
        // Callers reserve what they need first; this only makes room when the window is full.
        if end == storage.count { reserve(start > 0 ? available + 1 : storage.count * 2) }
        let room = UnsafeMutableRawBufferPointer(rebasing: storage[end...])
        let n = try direct?.readSome(into: room) ?? source.read(into: room)
        if n == 0 { ended = true }
        end += n
    }

    /// Makes at least `count` bytes available, unless the stream ends first.
    func ensure(_ count: Int) throws {
        reserve(count)
        while available < count, !ended { try readMore() }
    }

    /// `ByteSource`: hands out buffered bytes first, then reads the source (the `.npy` header
    /// parser reads through this).
    func read(into out: UnsafeMutableRawBufferPointer) throws -> Int {
        var filled = 0
        while filled < out.count {
            if available == 0 {
                if ended { break }
                try readMore()
                continue
            }
            let n = min(available, out.count - filled)
            (out.baseAddress! + filled).copyMemory(from: storage.baseAddress! + start, byteCount: n)
            consume(n)
            filled += n
        }
        return filled
    }
}
