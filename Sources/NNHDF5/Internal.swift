internal import CHDF5
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - Library state

/// Makes HDF5 quiet on the calling thread. Every entry point calls this first: HDF5's automatic
/// error printing is a per-thread setting in thread-safe builds, and a library must not write
/// error stacks to stderr.
@inline(__always)
func prepareHDF5() {
    nn_silence_errors_on_this_thread()
}

/// The HDF5 error stack of the current thread, summarized as one line, then cleared.
///
/// Call it right after the failing call: any other HDF5 API call resets the stack.
func takeHDF5ErrorMessage() -> String {
    final class Collector {
        var descriptions: [String] = []
        var majors: [hid_t] = []
        var minors: [hid_t] = []
    }
    let collector = Collector()
    withExtendedLifetime(collector) {
        let context = Unmanaged.passUnretained(collector).toOpaque()
        _ = H5Ewalk2(nn_H5E_DEFAULT(), H5E_WALK_DOWNWARD, { _, entry, data in
            guard let entry, let data else { return 0 }
            let collector = Unmanaged<Collector>.fromOpaque(data).takeUnretainedValue()
            guard collector.descriptions.count < 64 else { return 0 }
            collector.descriptions.append(entry.pointee.desc.map { String(cString: $0) } ?? "")
            collector.majors.append(entry.pointee.maj_num)
            collector.minors.append(entry.pointee.min_num)
            return 0
        }, context)
    }
    _ = H5Eclear2(nn_H5E_DEFAULT())
    // The innermost entry (last when walking downward) names the actual cause; the outer ones
    // repeat "unable to open file", "can't read data" and the like. Failed searches for filter
    // plugins sit below the real cause ("required filter 'lzf' is not registered"): skip them.
    let plugin = nn_H5E_PLUGIN()
    let order = collector.descriptions.indices.reversed().filter { collector.majors[$0] != plugin }
        + collector.descriptions.indices.reversed().filter { collector.majors[$0] == plugin }
    for index in order {
        let text = collector.descriptions[index].trimmingSpaces()
        if !text.isEmpty { return oneLine(text) }
        var buffer = [CChar](repeating: 0, count: 256)
        if H5Eget_msg(collector.minors[index], nil, &buffer, buffer.count) > 0 {
            let minor = decodeCString(buffer)
            if !minor.isEmpty { return minor }
        }
    }
    return "unknown HDF5 error"
}

/// HDF5's low-level I/O errors span several lines ("file write failed: time = ..., errno = 27,
/// error message = 'File too large', ..."): keep the system's own message, on one line.
func oneLine(_ text: String) -> String {
    if let start = text.firstRange(of: "error message = '") {
        let rest = text[start.upperBound...]
        if let end = rest.firstIndex(of: "'") {
            let prefix = text[..<start.lowerBound].split(separator: ":").first.map(String.init) ?? "I/O error"
            return "\(prefix): \(rest[..<end])"
        }
    }
    return text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }).joined(separator: " ")
}

extension String {
    func trimmingSpaces() -> String {
        var scalars = Substring(self)
        while let first = scalars.first, first == " " || first == "\n" || first == "\t" {
            scalars.removeFirst()
        }
        while let last = scalars.last, last == " " || last == "\n" || last == "\t" {
            scalars.removeLast()
        }
        return String(scalars)
    }
}

/// Shared by a file and every object opened from it; keeps the file identifier alive until the
/// last of them is gone.
final class FileState {
    let displayPath: String
    let fileID: hid_t
    /// Never follows external links; bounds soft-link chains.
    let linkAccess: hid_t
    let limits: HDF5Limits
    let writable: Bool
    /// `fileID` is still open.
    var fileOpen = true
    /// Object identifiers opened in this file are still valid (false once a strong close or a
    /// commit closed them all).
    var objectsValid = true

    init(displayPath: String, fileID: hid_t, linkAccess: hid_t, limits: HDF5Limits, writable: Bool) {
        self.displayPath = displayPath
        self.fileID = fileID
        self.linkAccess = linkAccess
        self.limits = limits
        self.writable = writable
    }

    deinit {
        prepareHDF5()
        if fileOpen { _ = H5Fclose(fileID) }
        _ = H5Pclose(linkAccess)
    }
}

// MARK: - Paths

/// Joins an object path and a relative path, normalizing slashes.
func joinObjectPath(_ base: String, _ components: [Substring]) -> String {
    var result = base == "/" ? "" : base
    for component in components { result += "/" + component }
    return result.isEmpty ? "/" : result
}

/// The path of the attribute `name` on the object at `path`, for error messages.
func attributeLocation(_ path: String, _ name: String) -> String {
    "\(path) (attribute '\(name)')"
}

// MARK: - Shapes and types

/// The dimensions of a dataspace, with overflow and rank checks.
struct Extent {
    var shape: [Int]
    var count: Int
}

func readExtent(space: hid_t, file: String, object: String) throws -> Extent {
    switch H5Sget_simple_extent_type(space) {
    case H5S_NULL:
        return Extent(shape: [], count: 0)
    case H5S_SCALAR:
        return Extent(shape: [], count: 1)
    case H5S_SIMPLE:
        let rank = H5Sget_simple_extent_ndims(space)
        if rank < 0 {
            throw HDF5Error.library(file: file, object: object, operation: "cannot read the shape",
                                    detail: takeHDF5ErrorMessage())
        }
        if rank > 32 {
            throw HDF5Error.invalidContent(file: file, object: object,
                                           detail: "rank \(rank) exceeds the maximum of 32")
        }
        var dims = [hsize_t](repeating: 0, count: max(Int(rank), 1))
        if H5Sget_simple_extent_dims(space, &dims, nil) < 0 {
            throw HDF5Error.library(file: file, object: object, operation: "cannot read the shape",
                                    detail: takeHDF5ErrorMessage())
        }
        var shape: [Int] = []
        shape.reserveCapacity(Int(rank))
        var count = 1
        var overflow = false
        for dim in dims.prefix(Int(rank)) {
            guard dim <= hsize_t(Int.max) else {
                throw HDF5Error.tooLarge(file: file, object: object,
                                         detail: "dimension \(dim) is too large to address")
            }
            shape.append(Int(dim))
            if !overflow {
                let (product, didOverflow) = count.multipliedReportingOverflow(by: Int(dim))
                if didOverflow { overflow = true } else { count = product }
            }
        }
        if overflow && !shape.contains(0) {
            throw HDF5Error.tooLarge(file: file, object: object,
                                     detail: "shape \(shape) has too many elements to address")
        }
        if shape.contains(0) { count = 0 }
        return Extent(shape: shape, count: count)
    default:
        throw HDF5Error.library(file: file, object: object, operation: "cannot read the shape",
                                detail: takeHDF5ErrorMessage())
    }
}

/// A readable description of an HDF5 datatype.
func describeType(_ type: hid_t, file: String, object: String) throws -> HDF5ElementType {
    let typeClass = H5Tget_class(type)
    if typeClass == H5T_NO_CLASS {
        throw HDF5Error.library(file: file, object: object, operation: "cannot read the element type",
                                detail: takeHDF5ErrorMessage())
    }
    let size = H5Tget_size(type)
    if size == 0 {
        throw HDF5Error.library(file: file, object: object, operation: "cannot read the element size",
                                detail: takeHDF5ErrorMessage())
    }
    // The file format stores sizes in 32 bits; anything else is not a type this code can use.
    guard size > 0, size <= Int(UInt32.max) else {
        return .other("type of \(UInt(bitPattern: size)) bytes")
    }
    switch typeClass {
    case H5T_FLOAT:
        switch size {
        case 4:
            if H5Tequal(type, nn_H5T_IEEE_F32LE()) > 0 || H5Tequal(type, nn_H5T_IEEE_F32BE()) > 0 {
                return .float(bits: 32)
            }
        case 8:
            if H5Tequal(type, nn_H5T_IEEE_F64LE()) > 0 || H5Tequal(type, nn_H5T_IEEE_F64BE()) > 0 {
                return .float(bits: 64)
            }
        case 2:
            var signPosition = 0, exponentPosition = 0, exponentSize = 0
            var mantissaPosition = 0, mantissaSize = 0
            if H5Tget_fields(type, &signPosition, &exponentPosition, &exponentSize,
                             &mantissaPosition, &mantissaSize) >= 0,
               (signPosition, exponentPosition, exponentSize, mantissaPosition, mantissaSize)
                == (15, 10, 5, 0, 10),
               H5Tget_ebias(type) == 15, H5Tget_precision(type) == 16, H5Tget_offset(type) == 0 {
                return .float(bits: 16)
            }
            _ = H5Eclear2(nn_H5E_DEFAULT())
        default:
            break
        }
        return .other("float\(size * 8) (non-IEEE layout)")
    case H5T_INTEGER:
        let bits = size * 8
        guard [1, 2, 4, 8].contains(size), H5Tget_precision(type) == bits, H5Tget_offset(type) == 0
        else { return .other("int\(bits) (unusual layout)") }
        return H5Tget_sign(type) == H5T_SGN_NONE
            ? .unsignedInteger(bits: bits) : .signedInteger(bits: bits)
    case H5T_STRING:
        let variable = H5Tis_variable_str(type)
        if variable < 0 {
            throw HDF5Error.library(file: file, object: object, operation: "cannot read the string type",
                                    detail: takeHDF5ErrorMessage())
        }
        let encoding: HDF5StringType.Encoding = H5Tget_cset(type) == H5T_CSET_UTF8 ? .utf8 : .ascii
        let padding: HDF5StringType.Padding
        switch H5Tget_strpad(type) {
        case H5T_STR_NULLPAD: padding = .nullPadded
        case H5T_STR_SPACEPAD: padding = .spacePadded
        default: padding = .nullTerminated
        }
        return .string(HDF5StringType(length: variable > 0 ? .variable : .fixed(size),
                                      encoding: encoding, padding: padding))
    case H5T_COMPOUND: return .other("compound")
    case H5T_ENUM: return .other("enum")
    case H5T_ARRAY: return .other("array")
    case H5T_VLEN: return .other("variable-length sequence")
    case H5T_OPAQUE: return .other("opaque")
    case H5T_BITFIELD: return .other("bitfield")
    case H5T_REFERENCE: return .other("reference")
    case H5T_TIME: return .other("time")
    default: return .other("unknown")
    }
}

// MARK: - Reading values from datasets and attributes

/// A dataset or an attribute: the two differ only in the calls that read them.
struct ValueSource {
    enum Kind {
        case dataset
        case attribute
    }

    let kind: Kind
    let id: hid_t
    let file: String
    /// The object path (with the attribute name for attributes), for messages.
    let object: String
    let limits: HDF5Limits

    /// "dataset" or "attribute", for messages.
    var noun: String { kind == .dataset ? "dataset" : "attribute" }

    /// Calls `body` with the value's file datatype and dataspace, and closes both.
    func withTypeAndSpace<T>(_ body: (_ type: hid_t, _ space: hid_t) throws -> T) throws -> T {
        let type = kind == .dataset ? H5Dget_type(id) : H5Aget_type(id)
        guard type >= 0 else {
            throw HDF5Error.library(file: file, object: object, operation: "cannot read the element type",
                                    detail: takeHDF5ErrorMessage())
        }
        defer { _ = H5Tclose(type) }
        let space = kind == .dataset ? H5Dget_space(id) : H5Aget_space(id)
        guard space >= 0 else {
            throw HDF5Error.library(file: file, object: object, operation: "cannot read the shape",
                                    detail: takeHDF5ErrorMessage())
        }
        defer { _ = H5Sclose(space) }
        return try body(type, space)
    }

    func info() throws -> HDF5ValueInfo {
        try withTypeAndSpace { type, space in
            let extent = try readExtent(space: space, file: file, object: object)
            let elementType = try describeType(type, file: file, object: object)
            return HDF5ValueInfo(elementType: elementType, shape: extent.shape, elementCount: extent.count)
        }
    }

    /// Reads every element, converted by HDF5 to `memoryType`, into `buffer`.
    func read(memoryType: hid_t, into buffer: UnsafeMutableRawPointer) throws {
        let status = kind == .dataset
            ? H5Dread(id, memoryType, nn_H5S_ALL(), nn_H5S_ALL(), nn_H5P_DEFAULT(), buffer)
            : H5Aread(id, memoryType, buffer)
        if status < 0 {
            throw HDF5Error.library(file: file, object: object, operation: "cannot read the \(noun)",
                                    detail: takeHDF5ErrorMessage())
        }
    }

    /// Throws unless `count * elementSize` bytes fit under the limit.
    /// `typeName` is the stored type, `memoryName` the type read into when it differs.
    func checkSize(count: Int, elementSize: Int, shape: [Int], typeName: String, memoryName: String? = nil) throws {
        let (bytes, overflow) = count.multipliedReportingOverflow(by: max(elementSize, 1))
        if overflow || bytes > limits.maxBytes {
            var needs = overflow ? "more than \(Int.max) bytes" : "\(bytes) bytes"
            if let memoryName, memoryName != typeName { needs += " as \(memoryName)" }
            throw HDF5Error.tooLarge(
                file: file, object: object,
                detail: "\(noun) of shape \(shape) (\(typeName)) needs \(needs), more than the limit of \(limits.maxBytes) bytes")
        }
    }

    /// Reads all elements as `T`, converted by HDF5 from the file type to `memoryType`.
    func readAll<T: BitwiseCopyable>(as: T.Type, memoryType: hid_t, count: Int, shape: [Int],
                                     typeName: String) throws -> [T] {
        let memoryName: String
        switch T.self {
        case is Double.Type: memoryName = "float64"
        case is Float.Type: memoryName = "float32"
        case is Int64.Type: memoryName = "int64"
        case is UInt64.Type: memoryName = "uint64"
        default: memoryName = typeName
        }
        try checkSize(count: count, elementSize: MemoryLayout<T>.stride, shape: shape, typeName: typeName,
                      memoryName: memoryName)
        if count == 0 { return [] }
        return try [T](unsafeUninitializedCapacity: count) { buffer, initialized in
            try read(memoryType: memoryType, into: UnsafeMutableRawPointer(buffer.baseAddress!))
            initialized = count
        }
    }

    /// Reads floating-point or (if allowed) integer elements as `Double`.
    func readDoubles(allowingIntegers: Bool, expected: String) throws -> (values: [Double], info: HDF5ValueInfo) {
        let info = try self.info()
        guard info.elementType.isFloatingPoint || (allowingIntegers && info.elementType.isInteger) else {
            throw HDF5Error.typeMismatch(file: file, object: object, expected: expected,
                                         found: info.elementType.name)
        }
        let values = try readAll(as: Double.self, memoryType: nn_H5T_NATIVE_DOUBLE(),
                                 count: info.elementCount, shape: info.shape, typeName: info.elementType.name)
        return (values, info)
    }

    /// Reads floating-point or (if allowed) integer elements as `Float`. Float64 values are
    /// rounded to nearest (as NumPy's `astype(np.float32)` does).
    func readFloats(allowingIntegers: Bool, expected: String) throws -> [Float] {
        let info = try self.info()
        switch info.elementType {
        case .float(bits: 64):
            let doubles = try readAll(as: Double.self, memoryType: nn_H5T_NATIVE_DOUBLE(),
                                      count: info.elementCount, shape: info.shape, typeName: "float64")
            return doubles.map { Float($0) }
        case .float:
            return try readAll(as: Float.self, memoryType: nn_H5T_NATIVE_FLOAT(),
                               count: info.elementCount, shape: info.shape, typeName: info.elementType.name)
        case .signedInteger, .unsignedInteger:
            guard allowingIntegers else {
                throw HDF5Error.typeMismatch(file: file, object: object, expected: expected,
                                             found: info.elementType.name)
            }
            // Straight to float (one rounding, as NumPy does); via double could round twice.
            return try readAll(as: Float.self, memoryType: nn_H5T_NATIVE_FLOAT(),
                               count: info.elementCount, shape: info.shape, typeName: info.elementType.name)
        default:
            throw HDF5Error.typeMismatch(file: file, object: object, expected: expected,
                                         found: info.elementType.name)
        }
    }

    /// Reads integer elements as `Int64`; unsigned 64-bit values above `Int64.max` are an error.
    func readIntegers(expected: String) throws -> (values: [Int64], info: HDF5ValueInfo) {
        let info = try self.info()
        switch info.elementType {
        case .unsignedInteger(bits: 64):
            let raw = try readAll(as: UInt64.self, memoryType: nn_H5T_NATIVE_UINT64(),
                                  count: info.elementCount, shape: info.shape, typeName: "uint64")
            var values: [Int64] = []
            values.reserveCapacity(raw.count)
            for value in raw {
                guard let converted = Int64(exactly: value) else {
                    throw HDF5Error.invalidContent(file: file, object: object,
                                                   detail: "value \(value) does not fit in a signed 64-bit integer")
                }
                values.append(converted)
            }
            return (values, info)
        case .signedInteger, .unsignedInteger:
            let values = try readAll(as: Int64.self, memoryType: nn_H5T_NATIVE_INT64(),
                                     count: info.elementCount, shape: info.shape,
                                     typeName: info.elementType.name)
            return (values, info)
        default:
            throw HDF5Error.typeMismatch(file: file, object: object, expected: expected,
                                         found: info.elementType.name)
        }
    }

    /// Reads numeric elements as little-endian bytes of their own width.
    func readRawLittleEndian(expected: String) throws -> HDF5RawData {
        var buffer = UnsafeMutableRawBufferPointer(start: nil, count: 0)
        defer { buffer.deallocate() }
        let info = try readRawLittleEndian(expected: expected) { total in
            buffer = .allocate(byteCount: max(total, 1), alignment: 16)
            return buffer
        }
        let total = info.elementCount * (info.elementType.byteCount ?? 1)
        return HDF5RawData(elementType: info.elementType, shape: info.shape, bytes: Array(UnsafeRawBufferPointer(rebasing: buffer[0..<total])))
    }

    /// Reads the elements as `readRawLittleEndian(expected:)` does, straight into the memory
    /// `destination` returns for the byte count (checked against the limits first).
    func readRawLittleEndian(expected: String, into destination: (Int) throws -> UnsafeMutableRawBufferPointer) throws -> HDF5ValueInfo {
        let info = try self.info()
        let memoryType: hid_t
        var ownsMemoryType = false
        switch info.elementType {
        case .float(bits: 32): memoryType = nn_H5T_IEEE_F32LE()
        case .float(bits: 64): memoryType = nn_H5T_IEEE_F64LE()
        case .float(bits: 16):
            // No predefined half type in HDF5 1.10: the file's own layout, little-endian.
            memoryType = try withTypeAndSpace { type, _ in
                let copy = H5Tcopy(type)
                guard copy >= 0, H5Tset_order(copy, H5T_ORDER_LE) >= 0 else {
                    let message = takeHDF5ErrorMessage()
                    if copy >= 0 { _ = H5Tclose(copy) }
                    throw HDF5Error.library(file: file, object: object, operation: "cannot set up the read",
                                            detail: message)
                }
                return copy
            }
            ownsMemoryType = true
        case .signedInteger(bits: 8): memoryType = nn_H5T_STD_I8LE()
        case .signedInteger(bits: 16): memoryType = nn_H5T_STD_I16LE()
        case .signedInteger(bits: 32): memoryType = nn_H5T_STD_I32LE()
        case .signedInteger(bits: 64): memoryType = nn_H5T_STD_I64LE()
        case .unsignedInteger(bits: 8): memoryType = nn_H5T_STD_U8LE()
        case .unsignedInteger(bits: 16): memoryType = nn_H5T_STD_U16LE()
        case .unsignedInteger(bits: 32): memoryType = nn_H5T_STD_U32LE()
        case .unsignedInteger(bits: 64): memoryType = nn_H5T_STD_U64LE()
        default:
            throw HDF5Error.typeMismatch(file: file, object: object, expected: expected,
                                         found: info.elementType.name)
        }
        defer { if ownsMemoryType { _ = H5Tclose(memoryType) } }
        let width = info.elementType.byteCount ?? 1
        try checkSize(count: info.elementCount, elementSize: width, shape: info.shape,
                      typeName: info.elementType.name)
        let total = info.elementCount * width
        let buffer = try destination(total)
        precondition(buffer.count >= total, "the destination is smaller than the data")
        if total > 0 { try read(memoryType: memoryType, into: buffer.baseAddress!) }
        return info
    }

    /// Reads fixed- or variable-length strings. With `emptyIsAnyType`, a value with no elements
    /// reads as `[]` whatever its type (Keras writes an empty `weight_names` as float64).
    func readStrings(expected: String, emptyIsAnyType: Bool = false) throws -> (values: [String], info: HDF5ValueInfo) {
        try withTypeAndSpace { type, space in
            let extent = try readExtent(space: space, file: file, object: object)
            let elementType = try describeType(type, file: file, object: object)
            let info = HDF5ValueInfo(elementType: elementType, shape: extent.shape, elementCount: extent.count)
            guard case let .string(stringType) = elementType else {
                if emptyIsAnyType && extent.count == 0 { return ([], info) }
                throw HDF5Error.typeMismatch(file: file, object: object, expected: expected,
                                             found: elementType.name)
            }
            if extent.count == 0 { return ([], info) }
            switch stringType.length {
            case let .fixed(length):
                return (try readFixedStrings(type: type, length: length, stringType: stringType,
                                             count: extent.count, shape: extent.shape), info)
            case .variable:
                return (try readVariableStrings(type: type, space: space, count: extent.count,
                                                shape: extent.shape), info)
            }
        }
    }

    private func readFixedStrings(type: hid_t, length: Int, stringType: HDF5StringType,
                                  count: Int, shape: [Int]) throws -> [String] {
        try checkSize(count: count, elementSize: length, shape: shape, typeName: "string")
        let memoryType = H5Tcopy(type)
        guard memoryType >= 0 else {
            throw HDF5Error.library(file: file, object: object, operation: "cannot set up the read",
                                    detail: takeHDF5ErrorMessage())
        }
        defer { _ = H5Tclose(memoryType) }
        let total = count * length
        let bytes = try [UInt8](unsafeUninitializedCapacity: total) { buffer, n in
            try read(memoryType: memoryType, into: UnsafeMutableRawPointer(buffer.baseAddress!))
            n = total
        }
        var strings: [String] = []
        strings.reserveCapacity(count)
        for index in 0..<count {
            var slot = bytes[(index * length)..<((index + 1) * length)]
            switch stringType.padding {
            case .nullTerminated:
                if let end = slot.firstIndex(of: 0) { slot = slot[..<end] }
            case .nullPadded:
                while slot.last == 0 { slot.removeLast() }
            case .spacePadded:
                while slot.last == 0x20 || slot.last == 0 { slot.removeLast() }
            }
            strings.append(String(decoding: slot, as: UTF8.self))
        }
        return strings
    }

    private func readVariableStrings(type: hid_t, space: hid_t, count: Int, shape: [Int]) throws -> [String] {
        try checkSize(count: count, elementSize: MemoryLayout<UnsafeMutablePointer<CChar>?>.stride,
                      shape: shape, typeName: "string")
        // Same character set as the file: HDF5 does not convert between ASCII and UTF-8.
        let memoryType = H5Tcopy(nn_H5T_C_S1())
        guard memoryType >= 0 else {
            throw HDF5Error.library(file: file, object: object, operation: "cannot set up the read",
                                    detail: takeHDF5ErrorMessage())
        }
        defer { _ = H5Tclose(memoryType) }
        guard H5Tset_size(memoryType, nn_H5T_VARIABLE()) >= 0,
              H5Tset_cset(memoryType, H5Tget_cset(type)) >= 0 else {
            throw HDF5Error.library(file: file, object: object, operation: "cannot set up the read",
                                    detail: takeHDF5ErrorMessage())
        }
        // H5Dvlen_get_buf_size crashes on scalar dataspaces in HDF5 1.10 (it builds a rank-0
        // point selection); a scalar holds a single string, so it needs no estimate.
        if kind == .dataset && !shape.isEmpty {
            var needed: hsize_t = 0
            if H5Dvlen_get_buf_size(id, memoryType, space, &needed) < 0 {
                throw HDF5Error.library(file: file, object: object, operation: "cannot read the dataset",
                                        detail: takeHDF5ErrorMessage())
            }
            if needed > hsize_t(max(0, limits.maxBytes)) {
                throw HDF5Error.tooLarge(
                    file: file, object: object,
                    detail: "\(noun) of shape \(shape) (string) needs \(needed) bytes, more than the limit of \(limits.maxBytes) bytes")
            }
        }
        var pointers = [UnsafeMutablePointer<CChar>?](repeating: nil, count: count)
        try pointers.withUnsafeMutableBytes { raw in
            try read(memoryType: memoryType, into: raw.baseAddress!)
        }
        let strings = pointers.map { pointer -> String in
            guard let pointer else { return "" }
            return String(decoding: UnsafeRawBufferPointer(start: pointer, count: strlen(pointer)),
                          as: UTF8.self)
        }
        pointers.withUnsafeMutableBytes { raw in
            _ = nn_reclaim(memoryType, space, raw.baseAddress!)
        }
        return strings
    }
}
