import NNCore

/// A tensor a container declares, known before its data is read: importers check names,
/// shapes, types and that layers chain from these, and read data only once all of that holds.
public struct SourceArray {
    /// Its name or path in the container, e.g. "W1", "weights/0", "0.weight".
    public var name: String
    /// Its shape as declared.
    public var shape: [Int]
    /// The element type the data will be read as (integers are read as f64, exactly up to
    /// 2^53); nil when the values cannot be weights (strings, compound types).
    public var dtype: DType?
    /// The type as the file names it ("<f4", "F32", "float32", "string"), for messages.
    public var typeName: String
    private let load: () throws -> Tensor

    public init(name: String, shape: [Int], dtype: DType?, typeName: String, load: @escaping () throws -> Tensor) {
        self.name = name
        self.shape = shape
        self.dtype = dtype
        self.typeName = typeName
        self.load = load
    }

    /// A tensor already in memory.
    public init(name: String, tensor: Tensor) {
        self.init(name: name, shape: tensor.shape, dtype: tensor.dtype, typeName: tensor.dtype.rawValue) { tensor }
    }

    /// Bytes the data will take once read (0 when the size overflows: such a shape is refused
    /// by the reader itself).
    public var byteCount: Int { ShapeMath.byteCount(shape, elementSize: dtype?.size ?? 0) ?? Int.max }

    /// Reads the data.
    public func tensor() throws -> Tensor { try load() }
}

/// Named tensors and string attributes in one file, whatever holds them: an HDF5 group, a
/// NumPy `.npz`, a safetensors file (and later a PyTorch archive).
///
/// The model-building rules (blog layouts, our own exports) are written once against this
/// protocol; a new container gets them all by conforming.
public protocol TensorContainer: AnyObject {
    /// The file, as errors name it.
    var path: String { get }
    /// What the container is, for messages and provenance: "HDF5", "NumPy .npz", "safetensors".
    var kind: String { get }
    /// Every tensor as declared, in file order; no data is read.
    func arrays() throws -> [SourceArray]
    /// A string attribute: an HDF5 root attribute, a 0-d string array of an `.npz`, an entry of
    /// safetensors' `__metadata__`; nil when absent.
    func stringAttribute(_ name: String) throws -> String?
}

/// Checks that reading tensors of these sizes stays within `budget` bytes.
package func checkTensorBudget(_ byteCounts: [Int], _ budget: Int, path: String) throws(InteropError) {
    var total = 0
    for count in byteCounts {
        let (sum, overflow) = total.addingReportingOverflow(count)
        total = overflow ? Int.max : sum
    }
    guard total <= budget else {
        throw InteropError.badConfig(path: path, detail: "the tensors would take \(total) bytes, more than the \(budget)-byte budget for one import; raise it with --max-tensor-bytes if the file is trusted")
    }
}

extension [SourceArray] {
    /// Checks that reading every array stays within `budget` bytes.
    package func checkBudget(_ budget: Int, path: String) throws(InteropError) {
        try checkTensorBudget(map(\.byteCount), budget, path: path)
    }
}
