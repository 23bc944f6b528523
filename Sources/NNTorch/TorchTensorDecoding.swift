import NNCore
import NNPickle

/// Tensors from torch's tensor records:
/// `torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])`,
/// `_rebuild_tensor_v3(..., backward_hooks, dtype[, metadata])` for untyped storages, and the
/// parameter wrappers `_rebuild_parameter(tensor, requires_grad, hooks)` and
/// `_rebuild_parameter_with_state(tensor, requires_grad, hooks, state)`.
///
/// Offsets, sizes and strides count elements. Every view is checked against its storage with
/// checked arithmetic. A contiguous view uses the storage's bytes in place when they are aligned
/// for the element type; any other view is gathered into a new contiguous tensor.
enum TorchTensorDecoding {
    /// Torch's own limit on dimensions.
    static let maxRank = 64

    /// A view with more elements than its storage repeats elements (a stride of 0, as `expand`
    /// makes); gathering it is allowed up to this many bytes (256 MiB). Views within their
    /// storage's size are bounded by the file and need no such limit.
    static let maxRepeatedViewBytes = 1 << 28

    static func tensor(_ value: PickleValue, storages: [String: TorchStorageBytes]) throws(TorchError) -> Tensor {
        let view = try declaration(value)
        guard let bytes = storages[view.reference.record.key] else {
            throw .malformed("storage '\(PickleError.oneLine(view.reference.record.key))' was not loaded")
        }
        return try view.materialize(bytes)
    }

    /// What a tensor record declares, checked against its storage's declared size: everything
    /// but the data.
    static func declaration(_ value: PickleValue) throws(TorchError) -> View {
        guard case let .call(callee, args) = value, case let .global("torch._utils", function) = callee else {
            throw .malformed("expected a tensor, found \(value.kindDescription)")
        }
        switch (function, args.count) {
        case ("_rebuild_parameter", 3), ("_rebuild_parameter_with_state", 4):
            return try declaration(args[0])
        case ("_rebuild_tensor_v2", 6), ("_rebuild_tensor_v2", 7):
            return try View(args, dtypeArgument: nil)
        case ("_rebuild_tensor_v3", 7), ("_rebuild_tensor_v3", 8):
            return try View(args, dtypeArgument: args[6])
        default:
            throw .malformed("expected a tensor, found torch._utils.\(function) with \(args.count) arguments")
        }
    }

    /// A checked view of a storage: element type, shape, strides and where it starts.
    struct View {
        let reference: TorchStorageReference
        let dtype: DType
        let shape: [Int]
        let strides: [Int]
        /// Bytes of the view's elements when contiguous.
        let byteCount: Int
        /// Where the view starts, in bytes from the storage's start.
        let startInStorage: Int
        /// Bytes of the storage (or legacy view) the tensor may use.
        let available: Int

        init(_ args: [PickleValue], dtypeArgument: PickleValue?) throws(TorchError) {
            guard case let .persistent(id) = args[0], let reference = try TorchStorageReference(persistentID: id) else {
                throw .malformed("a tensor's storage is \(args[0].kindDescription), not a storage persistent id")
            }
            let record = reference.record

            let dtype: DType
            if let dtypeArgument {
                guard case let .global("torch", name) = dtypeArgument, let known = TorchAllowList.dtypes[name] else {
                    throw .malformed("a tensor dtype that is \(dtypeArgument.kindDescription)")
                }
                guard let known else { throw .unsupported("torch.\(name) tensors are not supported (no matching element type)") }
                if let storageType = record.dtype, storageType != known {
                    throw .malformed("a torch.\(name) tensor over a \(record.typeName)")
                }
                dtype = known
            } else {
                guard let storageType = record.dtype else {
                    throw .malformed("_rebuild_tensor_v2 over an UntypedStorage, which gives no dtype")
                }
                dtype = storageType
            }

            guard case let .int(offset64) = args[1], offset64 >= 0 else {
                throw .malformed("a storage offset that is \(args[1].kindDescription) or negative")
            }
            let shape = try dimensions(args[2], "size")
            let strides = try dimensions(args[3], "stride")
            guard shape.count == strides.count else {
                throw .malformed("a size of \(shape.count) dimensions with a stride of \(strides.count)")
            }
            guard let byteCount = ShapeMath.byteCount(shape, elementSize: dtype.size) else {
                throw .malformed("size \(ShapeMath.describe(shape)) is too large to address")
            }

            // The bytes this tensor may use: the storage, or the legacy view of it.
            let storageElementSize = record.dtype?.size ?? 1
            let available = reference.viewCount * storageElementSize
            let viewStart = reference.viewOffset * storageElementSize

            // The last element the view touches, in elements of `dtype`: offset + sum((size - 1) * stride).
            let size = dtype.size
            let outOfRange = TorchError.malformed(
                "a \(ShapeMath.describe(shape)) view with stride \(strides.map(String.init).joined(separator: ",")) at offset \(offset64) "
                    + "is out of bounds of storage '\(PickleError.oneLine(record.key))' (\(available) bytes)")
            guard let offset = Int(exactly: offset64) else { throw outOfRange }
            var end = offset  // one past the last element
            if byteCount > 0 {
                for (n, s) in zip(shape, strides) {
                    guard case (let step, false) = (n - 1).multipliedReportingOverflow(by: s),
                          case (let sum, false) = end.addingReportingOverflow(step) else { throw outOfRange }
                    end = sum
                }
                guard case (let next, false) = end.addingReportingOverflow(1) else { throw outOfRange }
                end = next
            }
            guard case (let endBytes, false) = end.multipliedReportingOverflow(by: size), endBytes <= available else { throw outOfRange }
            self.reference = reference
            self.dtype = dtype
            self.shape = shape
            self.strides = strides
            self.byteCount = byteCount
            self.startInStorage = viewStart + offset * size
            self.available = available
        }

        /// The tensor over `bytes`, the storage's data.
        func materialize(_ bytes: TorchStorageBytes) throws(TorchError) -> Tensor {
            let size = dtype.size
            let start = bytes.byteOffset + startInStorage

            if byteCount == 0 {
                return Tensor(dtype: dtype, shape: shape, copying: UnsafeRawBufferPointer(start: nil, count: 0))
            }
            if isContiguous(shape, strides) {
                let source = UnsafeRawBufferPointer(rebasing: bytes.storage.bytes[start..<(start + byteCount)])
                // In place only when aligned: NNCore reads f32 and f64 tensors through typed pointers.
                if let base = source.baseAddress, Int(bitPattern: base) % size == 0 {
                    return Tensor(dtype: dtype, shape: shape, storage: bytes.storage, byteOffset: start)
                }
                return Tensor(dtype: dtype, shape: shape, copying: source)
            }
            let count = byteCount / size
            guard count <= available / size || byteCount <= maxRepeatedViewBytes else {
                throw .unsupported("a \(ShapeMath.describe(shape)) view that repeats the \(available) bytes of storage "
                                   + "'\(PickleError.oneLine(reference.record.key))' would need \(byteCount) bytes (the limit is \(maxRepeatedViewBytes))")
            }
            guard let source = UnsafeRawBufferPointer(rebasing: bytes.storage.bytes[start...]).baseAddress, !shape.isEmpty else {
                throw .malformed("a view outside storage '\(PickleError.oneLine(reference.record.key))'")
            }
            return Tensor.gathering(dtype: dtype, shape: shape, strides: strides, from: source)
        }
    }

    /// A size or stride: a tuple (or torch.Size) of non-negative ints.
    private static func dimensions(_ value: PickleValue, _ what: String) throws(TorchError) -> [Int] {
        var value = value
        if case let .call(.global("torch", "Size"), args) = value, args.count == 1 { value = args[0] }
        guard let items = value.elements, items.count <= maxRank else {
            throw .malformed("a tensor \(what) that is \(value.kindDescription) (torch writes a tuple of at most \(maxRank) ints)")
        }
        var dims: [Int] = []
        for item in items {
            guard case let .int(n) = item else { throw .malformed("a tensor \(what) with an element that is \(item.kindDescription)") }
            guard n >= 0, let d = Int(exactly: n) else { throw .malformed("a negative tensor \(what) (\(n))") }
            dims.append(d)
        }
        return dims
    }

    /// Row-major strides, ignoring dimensions of size 1 (their stride is never used).
    static func isContiguous(_ shape: [Int], _ strides: [Int]) -> Bool {
        var expected = 1
        for (n, s) in zip(shape, strides).reversed() where n != 1 {
            guard s == expected else { return false }
            expected *= n
        }
        return true
    }
}

