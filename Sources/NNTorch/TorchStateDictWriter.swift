import NNCore
import NNPickle

/// A state dict as `torch.save` writes it in the zip format, so that
/// `torch.load(path, weights_only=True)` returns an `OrderedDict` of tensors that
/// `module.load_state_dict` takes.
///
/// The records, under the folder `archiveName/`: `data.pkl` (`pickle(_:)`), `.format_version`
/// ("1"), `byteorder` ("little"), `data/<i>` (one storage per tensor, little-endian) and `version`
/// ("3"), stored uncompressed as torch does (NNPyTorch writes the zip). The pickle builds each tensor with
/// `torch._utils._rebuild_tensor_v2(storage, 0, shape, contiguous strides, False, OrderedDict())`,
/// the storage being the persistent id `('storage', torch.<Type>Storage, '<i>', 'cpu', count)`: only
/// globals on the weights-only allow-list.
public enum TorchStateDictWriter {
    /// The folder torch.save names after the file; any name loads, this one is fixed so that the
    /// same tensors always give the same bytes.
    public static let archiveName = "archive"

    /// The storage class of each element type a state dict holds.
    static func storageClass(_ dtype: DType) -> String {
        switch dtype {
        case .float32: return "FloatStorage"
        case .float64: return "DoubleStorage"
        case .float16: return "HalfStorage"
        case .bfloat16: return "BFloat16Storage"
        case .int64: return "LongStorage"
        case .int32: return "IntStorage"
        case .int16: return "ShortStorage"
        case .int8: return "CharStorage"
        case .uint8: return "ByteStorage"
        }
    }

    /// The pickle of the state dict `entries` (keys in order), whose storages are `data/0`,
    /// `data/1`, ... in the same order.
    public static func pickle(_ entries: [(key: String, tensor: Tensor)]) -> [UInt8] {
        var w = PickleWriter(protocolVersion: 2)
        w.global("collections", "OrderedDict")
        w.op(.emptyTuple)
        w.op(.reduce)
        w.op(.mark)
        for (i, entry) in entries.enumerated() {
            let shape = entry.tensor.shape
            w.string(entry.key)
            w.global("torch._utils", "_rebuild_tensor_v2")
            w.tuple { w in
                w.tuple { w in
                    w.string("storage")
                    w.global("torch", storageClass(entry.tensor.dtype))
                    w.string(String(i))
                    w.string("cpu")
                    w.int(entry.tensor.count)
                }
                w.op(.binPersID)
                w.int(0)
                w.intTuple(shape)
                w.intTuple(Tensor.rowMajorStrides(shape))
                w.bool(false)
                w.global("collections", "OrderedDict")
                w.op(.emptyTuple)
                w.op(.reduce)
            }
            w.op(.reduce)
        }
        w.op(.setItems)
        return w.finish()
    }
}
