/// Element types a tensor can be stored in.
public enum DType: String, CaseIterable, Sendable {
    case float16 = "f16"
    case bfloat16 = "bf16"
    case float32 = "f32"
    case float64 = "f64"
    case uint8 = "u8"
    case int8 = "i8"
    case int16 = "i16"
    case int32 = "i32"
    case int64 = "i64"

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .uint8, .int8: return 1
        case .float16, .bfloat16, .int16: return 2
        case .float32, .int32: return 4
        case .float64, .int64: return 8
        }
    }

    /// Whether the type holds real numbers (weights and statistics must).
    public var isFloatingPoint: Bool {
        switch self {
        case .float16, .bfloat16, .float32, .float64: return true
        default: return false
        }
    }
}

/// Memory that tensors point into: a heap buffer or a read-only file mapping.
///
/// Tensors read from a mapped `.nnm` file share one storage and use the file's bytes in place.
public final class TensorStorage: @unchecked Sendable {
    // Sendable: the bytes are never mutated after the storage is built.
    public let bytes: UnsafeRawBufferPointer
    private let release: (@Sendable (UnsafeRawBufferPointer) -> Void)?

    /// Wraps memory that `release` frees when the storage goes away.
    public init(bytes: UnsafeRawBufferPointer, release: (@Sendable (UnsafeRawBufferPointer) -> Void)?) {
        self.bytes = bytes
        self.release = release
    }

    /// Copies `count` bytes into a new 64-byte-aligned heap buffer.
    public convenience init(copying source: UnsafeRawBufferPointer) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(source.count, 1), alignment: 64)
        if let base = source.baseAddress, source.count > 0 {
            buffer.baseAddress!.copyMemory(from: base, byteCount: source.count)
        }
        self.init(bytes: UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(buffer)[0..<source.count])) { b in
            UnsafeMutableRawPointer(mutating: b.baseAddress)?.deallocate()
        }
    }

    /// A new 64-byte-aligned heap buffer of `byteCount` bytes, not initialised, for a reader to
    /// fill completely through `mutableBytes` before any tensor shares it (one copy from the
    /// file, no intermediate array).
    public convenience init(allocating byteCount: Int) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(byteCount, 1), alignment: 64)
        self.init(bytes: UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(buffer)[0..<byteCount])) { b in
            UnsafeMutableRawPointer(mutating: b.baseAddress)?.deallocate()
        }
    }

    /// The bytes, writable: only for filling a storage made by `init(allocating:)` before a
    /// tensor uses it.
    public var mutableBytes: UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(mutating: bytes) }

    deinit { release?(bytes) }
}

/// An n-dimensional array of one element type, stored little-endian and row-major (C order).
public struct Tensor: @unchecked Sendable {
    public let dtype: DType
    public let shape: [Int]
    /// The storage the tensor's bytes live in, and where in it they start.
    public let storage: TensorStorage
    public let byteOffset: Int

    /// Number of elements (the product of the shape; 1 for a scalar).
    public var count: Int { ShapeMath.elementCount(shape) }
    public var byteCount: Int { count * dtype.size }

    /// The tensor's raw little-endian bytes.
    public var bytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: storage.bytes[byteOffset..<(byteOffset + byteCount)])
    }

    /// A tensor over existing storage; the caller guarantees the bytes are in range.
    public init(dtype: DType, shape: [Int], storage: TensorStorage, byteOffset: Int) {
        precondition(byteOffset >= 0 && byteOffset + ShapeMath.elementCount(shape) * dtype.size <= storage.bytes.count,
                     "tensor bytes outside its storage")
        self.dtype = dtype
        self.shape = shape
        self.storage = storage
        self.byteOffset = byteOffset
    }

    /// A tensor that copies raw little-endian bytes.
    public init(dtype: DType, shape: [Int], copying raw: UnsafeRawBufferPointer) {
        precondition(raw.count == ShapeMath.elementCount(shape) * dtype.size, "byte count does not match shape")
        self.init(dtype: dtype, shape: shape, storage: TensorStorage(copying: raw), byteOffset: 0)
    }

    /// An f32 tensor holding `values`.
    public init(_ values: [Float], shape: [Int]) {
        precondition(values.count == ShapeMath.elementCount(shape), "value count does not match shape")
        self = values.withUnsafeBytes { Tensor(dtype: .float32, shape: shape, copying: $0) }
    }

    /// An f64 tensor holding `values`.
    public init(_ values: [Double], shape: [Int]) {
        precondition(values.count == ShapeMath.elementCount(shape), "value count does not match shape")
        self = values.withUnsafeBytes { Tensor(dtype: .float64, shape: shape, copying: $0) }
    }

    /// The elements converted to Float (f16 and bf16 widen exactly; f64 rounds).
    public func floats() -> [Float] {
        let n = count
        let raw = bytes
        return [Float](unsafeUninitializedCapacity: n) { out, initialized in
            switch dtype {
            case .float32:
                UnsafeMutableRawBufferPointer(out).copyMemory(from: raw)
            case .float64:
                for i in 0..<n { out[i] = Float(raw.loadUnaligned(fromByteOffset: i * 8, as: Double.self)) }
            case .float16:
                for i in 0..<n { out[i] = Float(Float16(bitPattern: raw.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self))) }
            case .bfloat16:
                for i in 0..<n {
                    let bits = UInt32(raw.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)) << 16
                    out[i] = Float(bitPattern: bits)
                }
            default:
                for i in 0..<n { out[i] = Float(integerElement(i, raw)) }
            }
            initialized = n
        }
    }

    /// The elements converted to Double (exact for every stored type but i64 beyond 2^53).
    public func doubles() -> [Double] {
        let n = count
        let raw = bytes
        if dtype == .float64 {
            return [Double](unsafeUninitializedCapacity: n) { out, initialized in
                UnsafeMutableRawBufferPointer(out).copyMemory(from: raw)
                initialized = n
            }
        }
        if dtype.isFloatingPoint { return floats().map(Double.init) }
        return (0..<n).map { Double(integerElement($0, raw)) }
    }

    /// The elements of an integer tensor as Int64, exactly (nil for float tensors).
    public func integers() -> [Int64]? {
        guard !dtype.isFloatingPoint else { return nil }
        let raw = bytes
        return (0..<count).map { integerElement($0, raw) }
    }

    private func integerElement(_ i: Int, _ raw: UnsafeRawBufferPointer) -> Int64 {
        switch dtype {
        case .uint8: return Int64(raw[i])
        case .int8: return Int64(Int8(bitPattern: raw[i]))
        case .int16: return Int64(raw.loadUnaligned(fromByteOffset: i * 2, as: Int16.self))
        case .int32: return Int64(raw.loadUnaligned(fromByteOffset: i * 4, as: Int32.self))
        case .int64: return raw.loadUnaligned(fromByteOffset: i * 8, as: Int64.self)
        default: return 0
        }
    }

    /// The index of the first element that is NaN or infinite, if any.
    public func firstNonFiniteIndex() -> Int? {
        let raw = bytes
        switch dtype {
        case .float32:
            let p = raw.bindMemory(to: Float.self)
            return p.firstIndex { !$0.isFinite }
        case .float64:
            let p = raw.bindMemory(to: Double.self)
            return p.firstIndex { !$0.isFinite }
        case .float16, .bfloat16:
            return floats().firstIndex { !$0.isFinite }
        default:
            return nil
        }
    }

    /// The transpose of a 2-D tensor, in a new storage.
    public func transposed() -> Tensor {
        precondition(shape.count == 2, "transposed() needs a 2-D tensor")
        return permuted([1, 0])
    }

    /// The tensor with its axes reordered: axis `i` of the result is axis `axes[i]` of this one
    /// (NumPy's `transpose(axes)`), written once into a new storage. PyTorch's OIHW kernels
    /// become HWIO with `[2, 3, 1, 0]`.
    public func permuted(_ axes: [Int]) -> Tensor {
        precondition(axes.count == shape.count && Set(axes) == Set(shape.indices), "permuted() needs a permutation of the axes")
        let strides = Tensor.rowMajorStrides(shape)
        return Tensor.gathering(dtype: dtype, shape: axes.map { shape[$0] }, strides: axes.map { strides[$0] },
                                from: bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 64)!)
    }

    /// The tensor with the order of its elements reversed along `axes` (NumPy's `flip`), in a new
    /// storage: `[0, 1]` turns an HWIO kernel by 180 degrees.
    public func reversingAxes(_ axes: Set<Int>) -> Tensor {
        precondition(axes.allSatisfy { shape.indices.contains($0) }, "reversingAxes() needs axes of the tensor")
        guard count > 0 else { return self }
        var strides = Tensor.rowMajorStrides(shape)
        var start = 0
        for axis in axes {
            start += (shape[axis] - 1) * strides[axis]
            strides[axis] = -strides[axis]
        }
        return Tensor.gathering(dtype: dtype, shape: shape, strides: strides, from: bytes.baseAddress! + start * dtype.size)
    }

    /// Element strides of a row-major (C order) array of `shape`.
    public static func rowMajorStrides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        for i in stride(from: shape.count - 2, through: 0, by: -1) { strides[i] = strides[i + 1] * shape[i + 1] }
        return strides
    }

    /// A new row-major tensor of `shape` whose element at index `i` is the element at
    /// `sum(i[k] * strides[k])` (in elements) from `source`: a strided view (PyTorch), a
    /// Fortran-ordered array (NumPy) or a permutation, copied once. Runs along the last axis are
    /// copied whole when its stride is 1. The caller guarantees every element lies in memory
    /// it owns.
    public static func gathering(dtype: DType, shape: [Int], strides: [Int], from source: UnsafeRawPointer) -> Tensor {
        let size = dtype.size
        let count = ShapeMath.elementCount(shape)
        let storage = TensorStorage(allocating: count * size)
        guard count > 0 else { return Tensor(dtype: dtype, shape: shape, storage: storage, byteOffset: 0) }
        let out = storage.mutableBytes.baseAddress!
        let rank = shape.count
        let run = rank > 0 && strides[rank - 1] == 1 ? shape[rank - 1] : 1
        let outer = rank - (run > 1 ? 1 : 0)
        var index = [Int](repeating: 0, count: rank)
        var element = 0
        var written = 0
        while written < count * size {
            (out + written).copyMemory(from: source + element * size, byteCount: run * size)
            written += run * size
            // The odometer over the axes not copied as runs, keeping the source offset in step.
            var d = outer - 1
            while d >= 0 {
                index[d] += 1
                element += strides[d]
                if index[d] < shape[d] { break }
                element -= strides[d] * shape[d]
                index[d] = 0
                d -= 1
            }
        }
        return Tensor(dtype: dtype, shape: shape, storage: storage, byteOffset: 0)
    }

    public func reshaped(_ newShape: [Int]) -> Tensor {
        precondition(newShape.reduce(1, *) == count, "reshaped() must keep the element count")
        return Tensor(dtype: dtype, shape: newShape, storage: storage, byteOffset: byteOffset)
    }

    /// Whether two tensors have the same type, shape and bytes.
    public func isBitIdentical(to other: Tensor) -> Bool {
        dtype == other.dtype && shape == other.shape && bytes.elementsEqual(other.bytes)
    }
}

/// A tensor with the name it is stored under.
public struct NamedTensor: Sendable {
    public var name: String
    public var tensor: Tensor
    public init(_ name: String, _ tensor: Tensor) {
        self.name = name
        self.tensor = tensor
    }
}

/// Shape arithmetic with overflow checks, for sizes read from untrusted files.
public enum ShapeMath {
    /// The product of `dims` times `elementSize`, or nil if a dim is negative or it overflows.
    public static func byteCount(_ dims: [Int], elementSize: Int) -> Int? {
        var total = elementSize
        for d in dims {
            guard d >= 0 else { return nil }
            let (p, overflow) = total.multipliedReportingOverflow(by: d)
            if overflow { return nil }
            total = p
        }
        return total
    }

    /// The number of elements of `dims`: 0 when any dimension is 0, whatever the others (so
    /// `[2^40, 2^40, 0]`, which a file may declare, counts 0 instead of overflowing), else their
    /// product. The caller has checked the product of the non-zero dimensions (`byteCount`).
    public static func elementCount(_ dims: [Int]) -> Int {
        dims.contains(0) ? 0 : dims.reduce(1, *)
    }

    /// "784x256", "scalar" for rank 0.
    public static func describe(_ dims: [Int]) -> String {
        dims.isEmpty ? "scalar" : dims.map(String.init).joined(separator: "x")
    }
}

/// Rounds a Float to bfloat16 (to nearest, ties to even), as the bit pattern; NaN stays a quiet
/// NaN, values beyond bfloat16's range become infinities.
public func bfloat16Bits(_ x: Float) -> UInt16 {
    let bits = x.bitPattern
    if x.isNaN { return UInt16(bits >> 16) | 0x40 }
    let rounding = 0x7FFF + ((bits >> 16) & 1)
    return UInt16((bits &+ rounding) >> 16)
}
