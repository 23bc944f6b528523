import NNConvert
import NNCore
import NNONNX
import NNPyTorch

/// Every model file format this package reads and writes, in one registry: the front door of
/// `nnconv`, and of every tool that opens a model.
///
/// Adding a format: write a type conforming to `ModelFileFormat` (in its own module if it
/// brings a dependency), and add one line to `registry`. The order matters only among formats
/// that claim a file with equal evidence (`FormatEvidence`): the first one listed wins.
public enum ModelFiles {
    public static let registry = FormatRegistry([
        HDF5ModelFormat(),
        NumPyModelFormat(),
        KerasArchiveFormat(),
        NNMModelFormat(),
        SafetensorsModelFormat(),
        ONNXModelFormat(),
        PyTorchModelFormat(),
    ])

    /// Converts the file at `path` into a validated model, whatever its format.
    public static func importModel(path: String, options: ImportOptions = ImportOptions()) throws -> ImportResult {
        try registry.importModel(path: path, options: options)
    }

    /// What `nnconv inspect` shows: structure and metadata, without reading tensor data.
    public static func inspect(path: String) throws -> Inspection { try registry.inspect(path: path) }

    /// What `nnconv validate` prints; problems are thrown.
    public static func validate(path: String) throws -> [String] { try registry.validate(path: path) }

    /// Writes `model` in the format the suffix of `path` names.
    public static func export(_ model: ValidatedModel, to path: String, options: ExportOptions = ExportOptions()) throws -> ExportResult {
        try registry.export(model, to: path, options: options)
    }
}
