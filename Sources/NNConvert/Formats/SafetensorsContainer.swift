import NNCore
import NNSafetensors
import NNSystem

/// A safetensors file as a tensor container: the validated header declares every tensor;
/// `__metadata__` entries are its attributes.
package final class SafetensorsContainer: TensorContainer {
    let file: ReadOnlyFile
    package let header: Safetensors.Header
    package var path: String { file.path }
    package let kind = "safetensors"

    package init(path: String) throws {
        file = try ReadOnlyFile(path: path)
        header = try Safetensors.readHeader(file)
    }

    package func arrays() throws -> [SourceArray] {
        header.entries.map { e in
            let file = self.file, header = self.header
            return SourceArray(name: e.name, shape: e.shape, dtype: e.type.dtype, typeName: e.type.rawValue) {
                try Safetensors.tensor(e, header: header, file: file)
            }
        }
    }

    package func stringAttribute(_ name: String) throws -> String? { header.metadata(name) }
}
