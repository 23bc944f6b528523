import NNCompression
import NNCore
import NNSystem

/// A `.nnm` file as read: its header (versions, tensor table, sizes) and its validated model.
public struct NNMFile: Sendable {
    public let header: NNMHeader
    /// The model, its structure checked and (with checksums verified) its values scanned.
    public let validated: ValidatedModel
    public var model: Model { validated.model }
}

extension NNMFormat {
    /// Files up to this size are read into memory; larger ones are mapped. A read file cannot
    /// change under the engine; a mapped one could be truncated while in use, which the mapping
    /// guard turns into one line and exit status 75 (`MappedRegion.fileChangedStatus`).
    public static let mappingThreshold = 16 << 20

    /// Reads and fully validates a model file.
    ///
    /// Files over `mappingThreshold` are memory-mapped: f32 and f64 tensors point into the
    /// mapping and are used without copying. Everything is checked before use: the preamble,
    /// the header size limit and checksum, the JSON, every tensor entry (dtype, rank,
    /// overflow-checked byte length, alignment, bounds, order, no overlaps, zero padding, the
    /// whole file covered), the architecture against the tensors, and, unless
    /// `verifyChecksums` is false, every tensor's CRC-32.
    /// Its values are not scanned (`open` does that, for callers that report warnings).
    public static func read(path: String, verifyChecksums: Bool = true) throws(NNMError) -> Model {
        try decode(storage: try load(path: path, mappingThreshold: mappingThreshold), path: path, verifyChecksums: verifyChecksums).model
    }

    /// Reads a model file in one pass: header and validated model. With checksums verified,
    /// every value is also scanned for NaN and infinities (the warnings of `ValidatedModel`).
    public static func open(path: String, verifyChecksums: Bool = true, mappingThreshold: Int = NNMFormat.mappingThreshold) throws(NNMError) -> NNMFile {
        let storage = try load(path: path, mappingThreshold: mappingThreshold)
        let (header, model) = try decode(storage: storage, path: path, verifyChecksums: verifyChecksums)
        return NNMFile(header: header, validated: ValidatedModel(checked: model, warnings: verifyChecksums ? model.valueWarnings() : []))
    }

    /// Reads the preamble and header and checks the layout, without verifying tensor checksums.
    public static func readHeader(path: String) throws(NNMError) -> NNMHeader {
        let storage = try load(path: path, mappingThreshold: 0)
        return try decode(storage: storage, path: path, verifyChecksums: false).header
    }

    /// Decodes a model from bytes in memory; `path` names them in errors.
    public static func decode(bytes: [UInt8], path: String, verifyChecksums: Bool = true) throws(NNMError) -> Model {
        let storage = bytes.withUnsafeBytes { TensorStorage(copying: $0) }
        return try decode(storage: storage, path: path, verifyChecksums: verifyChecksums).model
    }

    /// The whole file: read into memory up to `mappingThreshold` bytes, mapped beyond.
    static func load(path: String, mappingThreshold: Int) throws(NNMError) -> TensorStorage {
        let file: ReadOnlyFile
        do {
            file = try ReadOnlyFile(path: path)
        } catch {
            throw .cannotOpen(path: path, reason: error.reason)
        }
        guard file.size > 0 else { throw .empty(path: path) }
        do {
            if file.size <= mappingThreshold {
                let storage = TensorStorage(allocating: file.size)
                let got = try file.read(at: 0, into: storage.mutableBytes)
                // The file shrank between fstat and the read: what is there is decoded, and the
                // decoder reports what is missing.
                return got == file.size ? storage : TensorStorage(copying: UnsafeRawBufferPointer(rebasing: storage.bytes[0..<got]))
            }
            let region = try file.map()
            return TensorStorage(bytes: region.bytes) { _ in _ = region }
        } catch {
            throw .cannotOpen(path: path, reason: error.reason)
        }
    }

    static func decode(storage: TensorStorage, path: String, verifyChecksums: Bool) throws(NNMError) -> (header: NNMHeader, model: Model) {
        let file = storage.bytes
        let size = file.count
        guard size > 0 else { throw .empty(path: path) }
        guard size >= magic.count, file.prefix(magic.count).elementsEqual(magic) else {
            if size < magic.count, file.elementsEqual(magic.prefix(size)) {
                throw .truncated(path: path, what: "the preamble", expectedBytes: preambleSize, foundBytes: size)
            }
            throw .wrongMagic(path: path)
        }
        guard size >= 12 else { throw .truncated(path: path, what: "the preamble", expectedBytes: preambleSize, foundBytes: size) }
        let major = Int(u16(file, 8)), minor = Int(u16(file, 10))
        // The version comes before everything else: a later major version may lay out the rest differently.
        guard major == majorVersion else { throw .unsupportedVersion(path: path, major: major, minor: minor) }
        guard size >= preambleSize else {
            throw .truncated(path: path, what: "the preamble", expectedBytes: preambleSize, foundBytes: size)
        }
        guard CRC32.checksum(UnsafeRawBufferPointer(rebasing: file[0..<44])) == u32(file, 44) else {
            throw .preambleChecksumMismatch(path: path)
        }
        let flags = u32(file, 12)
        guard flags == 0 else { throw .unknownFlags(path: path, flags: flags) }
        let headerLength = u64(file, 16), dataOffset64 = u64(file, 24), dataLength64 = u64(file, 32)
        guard headerLength <= UInt64(maximumHeaderBytes) else {
            throw .headerTooLarge(path: path, bytes: headerLength, limit: maximumHeaderBytes)
        }
        let headerEnd = preambleSize + Int(headerLength)
        guard dataOffset64 == UInt64(alignUp(headerEnd)) else {
            throw .badLayout(path: path, detail: "data offset \(dataOffset64) is not the header end \(headerEnd) rounded up to \(alignment)")
        }
        let dataOffset = Int(dataOffset64)
        guard dataLength64 <= UInt64(Int.max - dataOffset) else {
            throw .badLayout(path: path, detail: "data length \(dataLength64) is impossibly large")
        }
        let declaredSize = dataOffset + Int(dataLength64)
        if size < declaredSize {
            throw .truncated(path: path, what: headerEnd > size ? "the metadata header" : "the declared data section",
                             expectedBytes: declaredSize, foundBytes: size)
        }
        if size > declaredSize {
            throw .badLayout(path: path, detail: "\(size - declaredSize) bytes of trailing data after the declared end at \(declaredSize)")
        }
        let headerBytes = UnsafeRawBufferPointer(rebasing: file[preambleSize..<headerEnd])
        guard CRC32.checksum(headerBytes) == u32(file, 40) else { throw .headerChecksumMismatch(path: path) }
        try requireZeros(file, headerEnd..<dataOffset, path: path)

        let json: JSONValue
        do {
            json = try JSONValue.parse(headerBytes)
        } catch {
            throw .invalidJSON(path: path, detail: error.description)
        }
        guard case let .object(root) = json else {
            throw .invalidJSON(path: path, detail: "the header is \(json.kindName), not an object")
        }
        let dataLength = Int(dataLength64)
        let entries = try tensorEntries(root, dataLength: dataLength, path: path)
        try checkCoverage(entries, file: file, dataOffset: dataOffset, dataLength: dataLength, path: path)

        let metadata: ModelMetadata
        do {
            metadata = try ModelMetadata(json: json)
        } catch {
            throw .invalidModel(path: path, problem: error)
        }
        var tensors: [NamedTensor] = []
        tensors.reserveCapacity(entries.count)
        for e in entries {
            let start = dataOffset + e.offset
            if verifyChecksums {
                let found = CRC32.checksum(UnsafeRawBufferPointer(rebasing: file[start..<(start + e.length)]))
                guard found == e.crc32 else {
                    throw .checksumMismatch(path: path, tensor: e.name, expected: e.crc32, found: found)
                }
            }
            tensors.append(NamedTensor(e.name, Tensor(dtype: e.dtype, shape: e.shape, storage: storage, byteOffset: start)))
        }
        let model = Model(metadata: metadata, tensors: tensors)
        do {
            try model.validateStructure()
        } catch {
            throw .invalidModel(path: path, problem: error)
        }
        let header = NNMHeader(majorVersion: major, minorVersion: minor, header: root, tensors: entries,
                               metadata: metadata, dataOffset: dataOffset, fileSize: size)
        return (header, model)
    }

    /// Parses and checks the tensor table entry by entry.
    static func tensorEntries(_ root: JSONObject, dataLength: Int, path: String) throws(NNMError) -> [TensorEntry] {
        guard let table = root["tensors"] else {
            throw .badTensorEntry(path: path, location: "tensors", detail: "the header has no tensor table")
        }
        guard case let .array(items) = table else {
            throw .badTensorEntry(path: path, location: "tensors", detail: "expected an array, found \(table.kindName)")
        }
        guard items.count <= maximumTensorCount else {
            throw .badTensorEntry(path: path, location: "tensors", detail: "\(items.count) tensors, more than the limit of \(maximumTensorCount)")
        }
        var entries: [TensorEntry] = []
        var names = Set<String>()
        for (i, item) in items.enumerated() {
            let location = "tensors[\(i)]"
            func bad(_ detail: String) -> NNMError { .badTensorEntry(path: path, location: location, detail: detail) }
            guard case let .object(o) = item else { throw bad("expected an object, found \(item.kindName)") }
            guard let name = o["name"]?.stringValue, !name.isEmpty, name.utf8.count <= maximumNameBytes else {
                throw bad("expected a non-empty name of at most \(maximumNameBytes) bytes")
            }
            let named = "\(location) '\(name)'"
            func badNamed(_ detail: String) -> NNMError { .badTensorEntry(path: path, location: named, detail: detail) }
            guard names.insert(name).inserted else { throw badNamed("duplicate tensor name") }
            guard let dtypeName = o["dtype"]?.stringValue else { throw badNamed("expected a dtype string") }
            guard let dtype = DType(rawValue: dtypeName) else {
                throw badNamed("unknown dtype \"\(dtypeName)\" (expected one of \(DType.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            guard let shapeItems = o["shape"]?.arrayValue else { throw badNamed("expected a shape array") }
            guard shapeItems.count <= maximumRank else { throw badNamed("rank \(shapeItems.count) exceeds the limit of \(maximumRank)") }
            var shape: [Int] = []
            for d in shapeItems {
                guard let n = d.intValue, n >= 0 else { throw badNamed("shape entries must be non-negative integers") }
                shape.append(n)
            }
            guard let offset = o["offset"]?.intValue, offset >= 0 else { throw badNamed("expected a non-negative integer offset") }
            guard offset % NNMFormat.alignment == 0 else { throw badNamed("offset \(offset) is not a multiple of \(NNMFormat.alignment)") }
            guard let length = o["length"]?.intValue, length >= 0 else { throw badNamed("expected a non-negative integer length") }
            guard let expected = ShapeMath.byteCount(shape, elementSize: dtype.size) else {
                throw badNamed("shape \(ShapeMath.describe(shape)) overflows")
            }
            guard expected == length else {
                throw badNamed("length \(length) does not match shape \(ShapeMath.describe(shape)) of \(dtype.rawValue) (\(expected) bytes)")
            }
            guard length <= dataLength, offset <= dataLength - length else {
                // Both are at most Int.max, so their sum is exact in UInt64 (offset + length can trap).
                throw badNamed("bytes \(offset)..<\(UInt64(offset) + UInt64(length)) lie outside the data section of \(dataLength) bytes")
            }
            guard let crc = o["crc32"]?.intValue, (0...Int(UInt32.max)).contains(crc) else {
                throw badNamed("expected a crc32 between 0 and 4294967295")
            }
            entries.append(TensorEntry(name: name, dtype: dtype, shape: shape, offset: offset, length: length, crc32: UInt32(crc)))
        }
        return entries
    }

    /// Tensors must come in offset order without overlaps, and every byte of the data section
    /// that no tensor covers is alignment padding: shorter than 64 bytes and zero. So every byte
    /// of a valid file is covered by a checksum or a zero check.
    static func checkCoverage(_ entries: [TensorEntry], file: UnsafeRawBufferPointer, dataOffset: Int, dataLength: Int,
                              path: String) throws(NNMError) {
        var position = 0
        var previous: String?
        for e in entries {
            if e.offset < position, let previous {
                throw .overlappingTensors(path: path, first: previous, second: e.name)
            }
            guard e.offset - position < alignment else {
                throw .badLayout(path: path, detail: "\(e.offset - position) unused bytes before tensor '\(e.name)'")
            }
            try requireZeros(file, (dataOffset + position)..<(dataOffset + e.offset), path: path)
            position = e.offset + e.length
            previous = e.name
        }
        guard dataLength - position < alignment else {
            throw .badLayout(path: path, detail: "\(dataLength - position) unused bytes after the last tensor")
        }
        try requireZeros(file, (dataOffset + position)..<(dataOffset + dataLength), path: path)
    }

    static func requireZeros(_ file: UnsafeRawBufferPointer, _ range: Range<Int>, path: String) throws(NNMError) {
        for i in range where file[i] != 0 { throw .nonZeroPadding(path: path, offset: i) }
    }

    static func u16(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt16 { UInt16(littleEndian: b.loadUnaligned(fromByteOffset: at, as: UInt16.self)) }
    static func u32(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt32 { UInt32(littleEndian: b.loadUnaligned(fromByteOffset: at, as: UInt32.self)) }
    static func u64(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt64 { UInt64(littleEndian: b.loadUnaligned(fromByteOffset: at, as: UInt64.self)) }
}
