import NNCore
import NNHDF5

extension HDF5Dataset {
    /// The type the dataset is read as weights: floats keep their width (f16, f32, f64),
    /// integers become f64 (exactly, up to 2^53); anything else is an error naming the dataset.
    func weightDType(sourcePath: String) throws -> DType {
        switch elementType {
        case let .float(bits): return bits == 16 ? .float16 : bits == 32 ? .float32 : .float64
        case .signedInteger, .unsignedInteger: return .float64
        default: throw InteropError.badDType(path: sourcePath, name: path, found: elementType.description)
        }
    }

    /// The dataset as a tensor of `weightDType`.
    func tensor(sourcePath: String) throws -> Tensor {
        let dtype = try weightDType(sourcePath: sourcePath)
        guard case .float = elementType else { return Tensor(try readDoubles(allowingIntegers: true), shape: shape) }
        // Read by libhdf5 straight into the tensor's storage.
        var storage: TensorStorage?
        let info = try readRawLittleEndian { total in
            storage = TensorStorage(allocating: total)
            return storage!.mutableBytes
        }
        return Tensor(dtype: dtype, shape: info.shape, storage: storage!, byteOffset: 0)
    }

    /// The dataset's declaration (shape, `weightDType`) as a `SourceArray` whose data is read
    /// on request; a dataset that cannot hold weights is refused here, unread.
    func declaration(name: String, sourcePath: String) throws -> SourceArray {
        SourceArray(name: name, shape: shape, dtype: try weightDType(sourcePath: sourcePath), typeName: elementType.name) { [self] in
            try tensor(sourcePath: sourcePath)
        }
    }
}

extension HDF5Group {
    /// A string attribute, or an array of strings (Keras name lists come as either, fixed- or
    /// variable-length); an empty numeric array (Keras writes one for a layer without weights) is
    /// an empty list.
    func stringList(_ name: String) throws -> [String] {
        switch try attribute(name) {
        case let .strings(s): return s
        case let .string(s): return [s]
        case let .doubles(d) where d.isEmpty: return []
        case let .integers(i) where i.isEmpty: return []
        default:
            throw HDF5Error.typeMismatch(file: filePath, object: "\(path) (attribute '\(name)')", expected: "a list of strings", found: "numbers")
        }
    }
}
