/// The element type of a dataset or attribute, as far as this library understands it.
public enum HDF5ElementType: Equatable, Hashable, Sendable, CustomStringConvertible {
    /// IEEE 754 binary floating point of 16, 32 or 64 bits (either byte order in the file).
    case float(bits: Int)
    /// Two's-complement signed integer of 8, 16, 32 or 64 bits.
    case signedInteger(bits: Int)
    /// Unsigned integer of 8, 16, 32 or 64 bits.
    case unsignedInteger(bits: Int)
    /// A fixed- or variable-length string.
    case string(HDF5StringType)
    /// Anything else (compound, enum, array, opaque, reference, ..., or a number with an unusual
    /// layout), named by the given text, e.g. "compound" or "enum".
    case other(String)

    /// A short name as NumPy would spell it: "float32", "int8", "uint64", "string", or the name
    /// of an unsupported type ("compound").
    public var name: String {
        switch self {
        case let .float(bits): return "float\(bits)"
        case let .signedInteger(bits): return "int\(bits)"
        case let .unsignedInteger(bits): return "uint\(bits)"
        case .string: return "string"
        case let .other(name): return name
        }
    }

    /// The size in bytes of one element in the little-endian raw form
    /// (`HDF5Dataset.readRawLittleEndian()`); `nil` for strings and other types.
    public var byteCount: Int? {
        switch self {
        case let .float(bits), let .signedInteger(bits), let .unsignedInteger(bits): return bits / 8
        case .string, .other: return nil
        }
    }

    /// Whether this is a floating-point type.
    public var isFloatingPoint: Bool {
        if case .float = self { return true }
        return false
    }

    /// Whether this is a signed or unsigned integer type.
    public var isInteger: Bool {
        switch self {
        case .signedInteger, .unsignedInteger: return true
        default: return false
        }
    }

    /// The name, with the details of string types, e.g. "string (fixed length 7, ASCII, null-padded)".
    public var description: String {
        if case let .string(type) = self { return "string (\(type))" }
        return name
    }
}

/// How a string type is stored.
public struct HDF5StringType: Equatable, Hashable, Sendable, CustomStringConvertible {
    /// Fixed-length strings of `length` bytes, or variable-length strings.
    public enum Length: Equatable, Hashable, Sendable {
        case fixed(Int)
        case variable
    }

    /// The character set HDF5 records for the string.
    public enum Encoding: Equatable, Hashable, Sendable {
        case ascii
        case utf8
    }

    /// How fixed-length strings shorter than their slot are padded.
    public enum Padding: Equatable, Hashable, Sendable {
        case nullTerminated
        case nullPadded
        case spacePadded
    }

    public var length: Length
    public var encoding: Encoding
    public var padding: Padding

    public init(length: Length, encoding: Encoding, padding: Padding) {
        self.length = length
        self.encoding = encoding
        self.padding = padding
    }

    public var description: String {
        let lengthText: String
        switch length {
        case let .fixed(n): lengthText = "fixed length \(n)"
        case .variable: lengthText = "variable length"
        }
        let encodingText = encoding == .ascii ? "ASCII" : "UTF-8"
        switch padding {
        case .nullTerminated: return "\(lengthText), \(encodingText), null-terminated"
        case .nullPadded: return "\(lengthText), \(encodingText), null-padded"
        case .spacePadded: return "\(lengthText), \(encodingText), space-padded"
        }
    }
}

/// Bounds that keep a damaged or hostile file from exhausting memory or the stack.
///
/// Limits are set when a file is opened or created and apply to every object read through it.
public struct HDF5Limits: Equatable, Sendable {
    /// The most bytes one read of a dataset or attribute may allocate: the element count times
    /// the in-memory element size, and for variable-length string datasets (not attributes, which
    /// HDF5 cannot measure beforehand) also the string bytes.
    public var maxBytes: Int
    /// The most members one group listing, or attributes one attribute listing, may return.
    public var maxMembers: Int
    /// The most components a path may have, and the deepest nesting a recursive walk descends to.
    public var maxPathDepth: Int
    /// The longest link or attribute name, in bytes.
    public var maxNameBytes: Int
    /// The most objects a recursive walk (`HDF5Group.datasetPaths()`) may visit.
    public var maxWalkObjects: Int

    public init(maxBytes: Int = 1 << 32, maxMembers: Int = 1 << 20, maxPathDepth: Int = 64,
                maxNameBytes: Int = 1 << 16, maxWalkObjects: Int = 1 << 20) {
        self.maxBytes = maxBytes
        self.maxMembers = maxMembers
        self.maxPathDepth = maxPathDepth
        self.maxNameBytes = maxNameBytes
        self.maxWalkObjects = maxWalkObjects
    }

    /// 4 GiB per read, a million members per group, 64 levels of nesting, 64 KiB names.
    public static let `default` = HDF5Limits()
}

/// What a group member is.
public enum HDF5MemberKind: Equatable, Hashable, Sendable, CustomStringConvertible {
    /// A group (possibly reached through a soft link).
    case group
    /// A dataset (possibly reached through a soft link).
    case dataset
    /// A named (committed) datatype.
    case namedDatatype
    /// A link to an object in another file; this library never follows these.
    case externalLink
    /// A soft link whose target does not exist.
    case danglingLink
    /// Anything else (a user-defined link type, a name HDF5 itself cannot resolve).
    case other

    public var description: String {
        switch self {
        case .group: return "a group"
        case .dataset: return "a dataset"
        case .namedDatatype: return "a named datatype"
        case .externalLink: return "an external link"
        case .danglingLink: return "a dangling soft link"
        case .other: return "an unsupported object"
        }
    }
}

/// One entry of a group listing.
public struct HDF5Member: Equatable, Hashable, Sendable {
    /// The link name inside the group.
    public var name: String
    /// What the link leads to.
    public var kind: HDF5MemberKind

    public init(name: String, kind: HDF5MemberKind) {
        self.name = name
        self.kind = kind
    }
}

/// The shape and element type of a dataset or attribute.
public struct HDF5ValueInfo: Equatable, Sendable {
    /// The element type.
    public var elementType: HDF5ElementType
    /// The dimensions; `[]` for a scalar (one element) or for an empty ("null") dataspace.
    public var shape: [Int]
    /// The number of elements: the product of `shape`, 1 for a scalar, 0 for a null dataspace.
    public var elementCount: Int
}

/// The value of an attribute. Arrays of any rank are flattened in C (row-major) order; the shape
/// is available from `HDF5Object.attributeInfo(_:)`.
public enum HDF5AttributeValue: Equatable, Sendable {
    /// A scalar string.
    case string(String)
    /// An array of strings.
    case strings([String])
    /// A scalar integer (any signed width, unsigned up to `Int64.max`).
    case integer(Int64)
    /// An array of integers.
    case integers([Int64])
    /// A scalar floating-point number (float16/32 widen exactly).
    case double(Double)
    /// An array of floating-point numbers.
    case doubles([Double])
}

/// How `HDF5Object.setAttribute(_:strings:storage:)` stores strings.
public enum HDF5StringStorage: Equatable, Sendable {
    /// Variable-length UTF-8 strings, as h5py writes a Python `str`.
    case variableLengthUTF8
    /// Fixed-length, null-padded ASCII-tagged byte strings as long as the longest string
    /// (NumPy's `S` dtype; Keras writes `layer_names` and `weight_names` this way).
    case fixedLength
}

/// The elements of a numeric dataset as little-endian bytes.
public struct HDF5RawData: Equatable, Sendable {
    /// The element type (each element takes `elementType.byteCount` bytes).
    public var elementType: HDF5ElementType
    /// The dimensions; `[]` for a scalar.
    public var shape: [Int]
    /// The elements in C (row-major) order, each little-endian.
    public var bytes: [UInt8]
}
