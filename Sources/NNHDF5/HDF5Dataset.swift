internal import CHDF5

/// A dataset: an n-dimensional array of elements of one type.
///
/// Reads return all elements in C (row-major) order. Each read first checks that the result fits
/// under `HDF5Limits.maxBytes`.
public final class HDF5Dataset: HDF5Object {
    /// The dimensions; `[]` for a scalar (one element) or an empty ("null") dataspace.
    public let shape: [Int]
    /// The element type as stored in the file.
    public let elementType: HDF5ElementType
    /// The number of elements: the product of `shape`, 1 for a scalar, 0 for a null dataspace.
    public let elementCount: Int

    init(state: FileState, datasetID id: hid_t, path: String) throws {
        let source = ValueSource(kind: .dataset, id: id, file: state.displayPath, object: path, limits: state.limits)
        let info = try source.info()
        shape = info.shape
        elementType = info.elementType
        elementCount = info.elementCount
        super.init(state: state, id: id, path: path)
    }

    /// The number of dimensions.
    public var rank: Int { shape.count }

    /// The shape and element type together.
    public var info: HDF5ValueInfo {
        HDF5ValueInfo(elementType: elementType, shape: shape, elementCount: elementCount)
    }

    private func source() throws -> ValueSource {
        ValueSource(kind: .dataset, id: try liveID(), file: filePath, object: path, limits: limits)
    }

    /// The elements as `Float`s. float16 and float32 convert exactly; float64 rounds to nearest
    /// (like NumPy's `astype(np.float32)`). Integer datasets are accepted only with
    /// `allowingIntegers: true`; anything else throws `HDF5Error.typeMismatch`.
    public func readFloats(allowingIntegers: Bool = false) throws -> [Float] {
        try source().readFloats(allowingIntegers: allowingIntegers,
                                expected: allowingIntegers ? "a numeric dataset" : "a floating-point dataset")
    }

    /// The elements as `Double`s (floating-point datasets, or integer ones with
    /// `allowingIntegers: true`).
    public func readDoubles(allowingIntegers: Bool = false) throws -> [Double] {
        try source().readDoubles(allowingIntegers: allowingIntegers,
                                 expected: allowingIntegers ? "a numeric dataset" : "a floating-point dataset").values
    }

    /// The elements of an integer dataset as `Int64`s (uint64 values above `Int64.max` throw).
    public func readIntegers() throws -> [Int64] {
        try source().readIntegers(expected: "an integer dataset").values
    }

    /// The elements of a string dataset (fixed- or variable-length). Fixed-length strings lose
    /// their padding: null-padded ones their trailing NULs (as NumPy's `S` dtype does),
    /// null-terminated ones everything from the first NUL, space-padded ones trailing spaces.
    /// Bytes that are not valid UTF-8 become U+FFFD.
    public func readStrings() throws -> [String] {
        try source().readStrings(expected: "a string dataset").values
    }

    /// The elements of a numeric dataset as little-endian bytes of the dataset's own element
    /// width, whatever the byte order in the file.
    public func readRawLittleEndian() throws -> HDF5RawData {
        try source().readRawLittleEndian(expected: "a numeric dataset")
    }

    /// Reads the elements as `readRawLittleEndian()` does, straight into the memory that
    /// `destination` returns for their byte count (one copy, from the library into the caller's
    /// storage); returns their element type and shape.
    public func readRawLittleEndian(into destination: (Int) throws -> UnsafeMutableRawBufferPointer) throws -> HDF5ValueInfo {
        try source().readRawLittleEndian(expected: "a numeric dataset", into: destination)
    }
}
