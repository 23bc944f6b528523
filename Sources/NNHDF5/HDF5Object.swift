internal import CHDF5

/// A group or dataset in an open HDF5 file: what both have in common, chiefly attributes.
///
/// Objects keep their file open: a dataset obtained from a file stays readable after the
/// `HDF5File` value itself is gone. Every identifier is closed when the object is deinitialized.
/// Objects are not `Sendable`; use each file from one task at a time (different files may be used
/// from different threads concurrently).
public class HDF5Object {
    let state: FileState
    let id: hid_t
    /// The object's absolute path inside the file, "/" for the root group.
    public let path: String
    var isClosed = false

    init(state: FileState, id: hid_t, path: String) {
        self.state = state
        self.id = id
        self.path = path
    }

    deinit {
        if !isClosed && state.objectsValid {
            prepareHDF5()
            _ = H5Oclose(id)
        }
    }

    /// The file's path as it was given to `HDF5File.open(path:)` or `HDF5File.create(path:)`.
    public var filePath: String { state.displayPath }

    /// The last component of `path` ("/" for the root group).
    public var name: String {
        path.split(separator: "/").last.map(String.init) ?? "/"
    }

    /// The limits in force for this object's file.
    public var limits: HDF5Limits { state.limits }

    /// The identifier, after checking it is still valid.
    func liveID() throws -> hid_t {
        guard !isClosed, state.objectsValid else {
            throw HDF5Error.closed(file: filePath, object: path)
        }
        prepareHDF5()
        return id
    }

    func requireWritable(_ object: String) throws {
        guard state.writable else {
            throw HDF5Error.invalidArgument(file: filePath, object: object,
                                            detail: "the file is open read-only")
        }
    }

    func libraryError(_ operation: String, object: String? = nil) -> HDF5Error {
        .library(file: filePath, object: object ?? path, operation: operation, detail: takeHDF5ErrorMessage())
    }

    func checkName(_ name: String, object: String) throws {
        if name.isEmpty || name.utf8.contains(0) {
            throw HDF5Error.invalidArgument(file: filePath, object: object,
                                            detail: "'\(name)' is not a valid name (empty or containing a NUL byte)")
        }
    }

    // MARK: Reading attributes

    /// The names of the object's attributes, in byte order of their names.
    public func attributeNames() throws -> [String] {
        let id = try liveID()
        var info = nn_object_info()
        guard nn_get_object_info(id, &info) >= 0 else { throw libraryError("cannot list the attributes") }
        return try indexedNames(count: info.num_attrs, object: path, counted: "object has \(info.num_attrs) attributes",
                                naming: "an attribute name", listing: "cannot list the attributes") { index, buffer, size in
            H5Aget_name_by_idx(id, ".", H5_INDEX_NAME, H5_ITER_INC, hsize_t(index), buffer, size, state.linkAccess)
        }
    }

    /// Names read by index through one of libhdf5's `*_get_name_by_idx` calls (`name(index, nil,
    /// 0)` gives the length, then the name): `count` of them, each bounded by the limits. Errors
    /// name `object` and say what was `counted` ("the group has 9 members"), what a long name was
    /// (`naming`: "a member name") and the failed operation (`listing`).
    func indexedNames(count: UInt64, object: String, counted: String, naming: String, listing: String,
                      _ name: (Int, UnsafeMutablePointer<CChar>?, Int) -> Int) throws -> [String] {
        guard count <= UInt64(max(0, limits.maxMembers)) else {
            throw HDF5Error.tooLarge(file: filePath, object: object,
                                     detail: "\(counted), more than the limit of \(limits.maxMembers)")
        }
        var names: [String] = []
        names.reserveCapacity(Int(count))
        for index in 0..<Int(count) {
            let length = name(index, nil, 0)
            guard length >= 0 else { throw libraryError(listing, object: object) }
            guard length <= limits.maxNameBytes else {
                throw HDF5Error.tooLarge(file: filePath, object: object,
                                         detail: "\(naming) of \(length) bytes exceeds the limit of \(limits.maxNameBytes)")
            }
            var buffer = [CChar](repeating: 0, count: length + 1)
            guard name(index, &buffer, buffer.count) >= 0 else { throw libraryError(listing, object: object) }
            names.append(decodeCString(buffer))
        }
        return names
    }

    /// Whether the object has an attribute called `name`.
    public func hasAttribute(_ name: String) throws -> Bool {
        let id = try liveID()
        try checkName(name, object: attributeLocation(path, name))
        let exists = H5Aexists(id, name)
        guard exists >= 0 else { throw libraryError("cannot look up the attribute", object: attributeLocation(path, name)) }
        return exists > 0
    }

    /// Opens the attribute `name` for the duration of `body`.
    func withAttribute<T>(_ name: String, _ body: (ValueSource) throws -> T) throws -> T {
        guard try hasAttribute(name) else {
            throw HDF5Error.noSuchAttribute(file: filePath, object: path, attribute: name)
        }
        let location = attributeLocation(path, name)
        let attribute = H5Aopen(id, name, nn_H5P_DEFAULT())
        guard attribute >= 0 else { throw libraryError("cannot open the attribute", object: location) }
        defer { _ = H5Aclose(attribute) }
        return try body(ValueSource(kind: .attribute, id: attribute, file: filePath, object: location,
                                    limits: limits))
    }

    /// The element type and shape of the attribute `name`.
    public func attributeInfo(_ name: String) throws -> HDF5ValueInfo {
        try withAttribute(name) { try $0.info() }
    }

    /// The value of the attribute `name`: strings, integers or floating-point numbers, scalar or
    /// array (arrays of any rank are flattened).
    ///
    /// Throws `HDF5Error.typeMismatch` for other element types (compound, enum, ...), and
    /// `HDF5Error.invalidContent` for an attribute with an empty ("null") dataspace.
    public func attribute(_ name: String) throws -> HDF5AttributeValue {
        try withAttribute(name) { source in
            let info = try source.info()
            let isScalar = info.shape.isEmpty
            if isScalar && info.elementCount == 0 {
                throw HDF5Error.invalidContent(file: filePath, object: source.object,
                                               detail: "the attribute has no value (empty dataspace)")
            }
            switch info.elementType {
            case .string:
                let values = try source.readStrings(expected: "a string attribute").values
                return isScalar ? .string(values.first ?? "") : .strings(values)
            case .float:
                let values = try source.readDoubles(allowingIntegers: false, expected: "a numeric attribute").values
                return isScalar ? .double(values.first ?? 0) : .doubles(values)
            case .signedInteger, .unsignedInteger:
                let values = try source.readIntegers(expected: "an integer attribute").values
                return isScalar ? .integer(values.first ?? 0) : .integers(values)
            case .other:
                throw HDF5Error.typeMismatch(file: filePath, object: source.object,
                                             expected: "a string or numeric attribute", found: info.elementType.name)
            }
        }
    }

    /// The single string in the attribute `name` (a scalar or a one-element array, fixed- or
    /// variable-length, as h5py writes a `str` or a `bytes`).
    public func stringAttribute(_ name: String) throws -> String {
        try withAttribute(name) { source in
            try single(try source.readStrings(expected: "a string attribute"), "string", source.object)
        }
    }

    /// The one value of an attribute read as an array, or an error naming what was found.
    private func single<T>(_ read: (values: [T], info: HDF5ValueInfo), _ noun: String, _ object: String) throws -> T {
        guard read.values.count == 1 else {
            throw HDF5Error.invalidContent(file: filePath, object: object,
                                           detail: "expected a single \(noun), found \(read.info.elementCount) \(noun)s of shape \(read.info.shape)")
        }
        return read.values[0]
    }

    /// The strings in the attribute `name`, flattened; a scalar string gives one element. Reads
    /// Keras's `layer_names` and `weight_names` (arrays of fixed-length byte strings) and arrays of
    /// variable-length strings. An attribute with no elements reads as `[]` whatever its element
    /// type, because Keras writes an empty `weight_names` as an empty float64 array.
    public func stringArrayAttribute(_ name: String) throws -> [String] {
        try withAttribute(name) { source in
            try source.readStrings(expected: "a string attribute", emptyIsAnyType: true).values
        }
    }

    /// The single number in the attribute `name` (floating-point or integer, scalar or one-element
    /// array), as a `Double`.
    public func doubleAttribute(_ name: String) throws -> Double {
        try withAttribute(name) { source in
            try single(try source.readDoubles(allowingIntegers: true, expected: "a numeric attribute"), "number", source.object)
        }
    }

    /// The numbers in the attribute `name` (floating-point or integer), flattened, as `Double`s.
    public func doubleArrayAttribute(_ name: String) throws -> [Double] {
        try withAttribute(name) { source in
            try source.readDoubles(allowingIntegers: true, expected: "a numeric attribute").values
        }
    }

    /// The single integer in the attribute `name` (scalar or one-element array).
    public func integerAttribute(_ name: String) throws -> Int64 {
        try withAttribute(name) { source in
            try single(try source.readIntegers(expected: "an integer attribute"), "integer", source.object)
        }
    }

    /// The integers in the attribute `name`, flattened.
    public func integerArrayAttribute(_ name: String) throws -> [Int64] {
        try withAttribute(name) { source in
            try source.readIntegers(expected: "an integer attribute").values
        }
    }

    // MARK: Writing attributes

    /// Sets the attribute `name`, replacing any existing one, the way h5py stores Python values:
    /// strings as variable-length UTF-8 (scalar or 1-D), integers as little-endian int64, numbers
    /// as little-endian float64.
    public func setAttribute(_ name: String, _ value: HDF5AttributeValue) throws {
        switch value {
        case let .string(text):
            try writeStringAttribute(name, strings: [text], scalar: true, storage: .variableLengthUTF8)
        case let .strings(texts):
            try writeStringAttribute(name, strings: texts, scalar: false, storage: .variableLengthUTF8)
        case let .integer(number):
            try writeNumbers(name, [number], scalar: true, fileType: nn_H5T_STD_I64LE(), memoryType: nn_H5T_NATIVE_INT64())
        case let .integers(numbers):
            try writeNumbers(name, numbers, scalar: false, fileType: nn_H5T_STD_I64LE(), memoryType: nn_H5T_NATIVE_INT64())
        case let .double(number):
            try writeNumbers(name, [number], scalar: true, fileType: nn_H5T_IEEE_F64LE(), memoryType: nn_H5T_NATIVE_DOUBLE())
        case let .doubles(numbers):
            try writeNumbers(name, numbers, scalar: false, fileType: nn_H5T_IEEE_F64LE(), memoryType: nn_H5T_NATIVE_DOUBLE())
        }
    }

    /// A numeric attribute: one scalar (`scalar`, `numbers` holds one value) or a 1-D array.
    private func writeNumbers<Number>(_ name: String, _ numbers: [Number], scalar: Bool, fileType: hid_t,
                                      memoryType: hid_t) throws {
        try numbers.withUnsafeBytes { raw in
            try writeAttribute(name, fileType: fileType, memoryType: memoryType,
                               shape: scalar ? nil : [numbers.count], buffer: raw.baseAddress)
        }
    }

    /// Sets the attribute `name` to a 1-D array of strings, replacing any existing one.
    /// `.fixedLength` writes what Keras writes for `layer_names` (NumPy `S` dtype: null-padded,
    /// as long as the longest string in UTF-8 bytes, at least 1).
    public func setAttribute(_ name: String, strings: [String], storage: HDF5StringStorage) throws {
        try writeStringAttribute(name, strings: strings, scalar: false, storage: storage)
    }

    /// Removes the attribute `name`.
    public func deleteAttribute(_ name: String) throws {
        let location = attributeLocation(path, name)
        try requireWritable(location)
        guard try hasAttribute(name) else {
            throw HDF5Error.noSuchAttribute(file: filePath, object: path, attribute: name)
        }
        guard H5Adelete(id, name) >= 0 else { throw libraryError("cannot delete the attribute", object: location) }
    }

    private func writeStringAttribute(_ name: String, strings: [String], scalar: Bool,
                                      storage: HDF5StringStorage) throws {
        let location = attributeLocation(path, name)
        let type = try makeStringType(strings, storage: storage, file: filePath, object: location)
        defer { _ = H5Tclose(type.id) }
        try withStringBuffer(strings, storage: storage, length: type.length) { buffer in
            try writeAttribute(name, fileType: type.id, memoryType: type.id,
                               shape: scalar ? nil : [strings.count], buffer: buffer)
        }
    }

    /// Creates (replacing) an attribute with a scalar (`shape == nil`) or 1-D dataspace and writes it.
    private func writeAttribute(_ name: String, fileType: hid_t, memoryType: hid_t, shape: [Int]?,
                                buffer: UnsafeRawPointer?) throws {
        let location = attributeLocation(path, name)
        try checkName(name, object: location)
        try requireWritable(location)
        if try hasAttribute(name) {
            guard H5Adelete(id, name) >= 0 else {
                throw libraryError("cannot replace the attribute", object: location)
            }
        }
        let space = try makeDataspace(shape: shape ?? [], scalar: shape == nil, file: filePath, object: location)
        defer { _ = H5Sclose(space) }
        let creation = nn_create_attribute_creation_utf8()
        guard creation >= 0 else { throw libraryError("cannot create the attribute", object: location) }
        defer { _ = H5Pclose(creation) }
        let attribute = H5Acreate2(id, name, fileType, space, creation, nn_H5P_DEFAULT())
        guard attribute >= 0 else { throw libraryError("cannot create the attribute", object: location) }
        defer { _ = H5Aclose(attribute) }
        var placeholder: UInt64 = 0
        let status = withUnsafeMutableBytes(of: &placeholder) { dummy in
            H5Awrite(attribute, memoryType, buffer ?? UnsafeRawPointer(dummy.baseAddress!))
        }
        guard status >= 0 else { throw libraryError("cannot write the attribute", object: location) }
    }
}

// MARK: - Helpers shared by attribute and dataset writers

/// A string datatype for writing: variable-length UTF-8, or fixed-length null-padded of the
/// longest string's byte count. The caller closes `id`.
func makeStringType(_ strings: [String], storage: HDF5StringStorage, file: String,
                    object: String) throws -> (id: hid_t, length: Int) {
    for string in strings where string.utf8.contains(0) {
        throw HDF5Error.invalidArgument(file: file, object: object,
                                        detail: "a string contains a NUL byte, which HDF5 strings cannot hold")
    }
    let type = H5Tcopy(nn_H5T_C_S1())
    guard type >= 0 else {
        throw HDF5Error.library(file: file, object: object, operation: "cannot create the string type",
                                detail: takeHDF5ErrorMessage())
    }
    var length = 0
    let ok: Bool
    switch storage {
    case .variableLengthUTF8:
        ok = H5Tset_size(type, nn_H5T_VARIABLE()) >= 0 && H5Tset_cset(type, H5T_CSET_UTF8) >= 0
            && H5Tset_strpad(type, H5T_STR_NULLTERM) >= 0
    case .fixedLength:
        length = max(1, strings.map { $0.utf8.count }.max() ?? 1)
        ok = H5Tset_size(type, length) >= 0 && H5Tset_cset(type, H5T_CSET_ASCII) >= 0
            && H5Tset_strpad(type, H5T_STR_NULLPAD) >= 0
    }
    guard ok else {
        let message = takeHDF5ErrorMessage()
        _ = H5Tclose(type)
        throw HDF5Error.library(file: file, object: object, operation: "cannot create the string type",
                                detail: message)
    }
    return (type, length)
}

/// Calls `body` with the strings laid out for HDF5: an array of C string pointers for
/// variable-length storage, `count * length` null-padded bytes for fixed-length storage.
func withStringBuffer<T>(_ strings: [String], storage: HDF5StringStorage, length: Int,
                         _ body: (UnsafeRawPointer?) throws -> T) throws -> T {
    switch storage {
    case .variableLengthUTF8:
        var characters: [CChar] = []
        var offsets: [Int] = []
        offsets.reserveCapacity(strings.count)
        for string in strings {
            offsets.append(characters.count)
            characters.append(contentsOf: string.utf8CString)
        }
        return try characters.withUnsafeBufferPointer { base in
            let pointers: [UnsafePointer<CChar>?] = offsets.map { offset in base.baseAddress.map { $0 + offset } }
            return try pointers.withUnsafeBytes { try body($0.baseAddress) }
        }
    case .fixedLength:
        var bytes = [UInt8](repeating: 0, count: strings.count * length)
        for (index, string) in strings.enumerated() {
            var offset = index * length
            for byte in string.utf8 {
                bytes[offset] = byte
                offset += 1
            }
        }
        return try bytes.withUnsafeBytes { try body($0.baseAddress) }
    }
}

/// A scalar or simple dataspace after validating the shape. The caller closes it.
func makeDataspace(shape: [Int], scalar: Bool, file: String, object: String) throws -> hid_t {
    let space: hid_t
    if scalar {
        space = H5Screate(H5S_SCALAR)
    } else {
        guard shape.count <= 32 else {
            throw HDF5Error.invalidArgument(file: file, object: object,
                                            detail: "rank \(shape.count) exceeds the maximum of 32")
        }
        guard shape.allSatisfy({ $0 >= 0 }) else {
            throw HDF5Error.invalidArgument(file: file, object: object, detail: "shape \(shape) has a negative dimension")
        }
        let dims = shape.map { hsize_t($0) }
        space = H5Screate_simple(Int32(dims.count), dims, nil)
    }
    guard space >= 0 else {
        throw HDF5Error.library(file: file, object: object, operation: "cannot create the dataspace",
                                detail: takeHDF5ErrorMessage())
    }
    return space
}

/// Decodes a NUL-terminated buffer as UTF-8 (invalid bytes become U+FFFD).
func decodeCString(_ buffer: [CChar]) -> String {
    let end = buffer.firstIndex(of: 0) ?? buffer.count
    return buffer[..<end].withUnsafeBytes { String(decoding: $0, as: UTF8.self) }
}
