import NNCore
import NNSafetensors
import NNSystem

/// A safetensors file as a tensor container: the validated header declares every tensor;
/// `__metadata__` entries are its attributes.
final class SafetensorsContainer: TensorContainer {
    let file: ReadOnlyFile
    let header: Safetensors.Header
    var path: String { file.path }
    let kind = "safetensors"

    init(path: String) throws {
        file = try ReadOnlyFile(path: path)
        header = try Safetensors.readHeader(file)
    }

    func arrays() throws -> [SourceArray] {
        header.entries.map { e in
            let file = self.file, header = self.header
            return SourceArray(name: e.name, shape: e.shape, dtype: e.type.dtype, typeName: e.type.rawValue) {
                try Safetensors.tensor(e, header: header, file: file)
            }
        }
    }

    func stringAttribute(_ name: String) throws -> String? { header.metadata(name) }
}
