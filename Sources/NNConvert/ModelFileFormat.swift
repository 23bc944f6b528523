import NNCore
import NNSystem
import NNZip

/// How strongly a format claims a file; the registry takes the strongest claim, and the first
/// registered format among equals.
public enum FormatEvidence: Int, Comparable, Sendable {
    /// The bytes look plausible for a format without a magic number (a protobuf start).
    case plausibleContent = 0
    /// The file's name has the format's suffix, and the format has no magic number.
    case name = 1
    /// The file starts with the format's magic number.
    case magic = 2

    public static func < (a: FormatEvidence, b: FormatEvidence) -> Bool { a.rawValue < b.rawValue }
}

/// What formats look at to recognise a file: its name, size and first bytes, read once.
public final class FileProbe {
    /// The file as opened for the probe (formats may read more of it, e.g. a length field).
    public let file: ReadOnlyFile
    /// The first 16 bytes (fewer for a shorter file).
    public let head: [UInt8]

    public var path: String { file.path }
    public var size: Int { file.size }

    public init(path: String) throws(SystemError) {
        file = try ReadOnlyFile(path: path)
        head = try file.head(16)
    }

    /// The zip directory, read once however many formats ask (nil when the file does not start
    /// like a zip or its directory is damaged): NumPy, Keras and PyTorch archives are all zips.
    public private(set) lazy var zip: ZipArchive? = ZipArchive.hasMagic(head) ? try? ZipArchive(path: path) : nil

    /// Whether the file starts with `magic`.
    public func starts(with magic: [UInt8]) -> Bool { head.count >= magic.count && head.starts(with: magic) }

    /// Whether the file's name ends in one of `suffixes` (".h5").
    public func hasSuffix(_ suffixes: [String]) -> Bool { suffixes.contains { path.hasSuffix($0) } }
}

/// Choices for writing a model in another format.
public struct ExportOptions: Sendable {
    /// The orientation of blog-style matrices (HDF5 and NumPy exports).
    public var layout: WeightLayout = .rows
    /// For `.h5` outputs: write a legacy Keras file (`model_config`, `model_weights`) that
    /// `keras.saving.load_model` loads, instead of the blog layout.
    public var keras = false
    public init(layout: WeightLayout = .rows, keras: Bool = false) {
        self.layout = layout
        self.keras = keras
    }
}

/// What an export wrote, for the user: a sentence such as "rows layout: W1, b1, W2, b2", and
/// notes about decisions made on the way.
public struct ExportResult: Sendable {
    public var summary: String
    public var notes: [String]
    public init(summary: String, notes: [String] = []) {
        self.summary = summary
        self.notes = notes
    }
}

/// A model file format: how to recognise it, read it into a model, show what it holds, and
/// (for formats that can hold our models) write one.
///
/// Adding a format is one type conforming to this protocol and one line in the registry
/// (`ModelFiles.registry`); `nnconv import/export/inspect/validate/diff` and every tool that
/// opens a model then know it.
public protocol ModelFileFormat: Sendable {
    /// The name used in messages and in the list of formats: "HDF5 (.h5)".
    var displayName: String { get }
    /// The suffixes export writes this format for (".h5", ".hdf5"); empty when import-only.
    var exportSuffixes: [String] { get }

    /// Whether, and how strongly, this format claims the file.
    func recognize(_ probe: FileProbe) throws -> FormatEvidence?
    /// Reads the file into a validated model, with notes on what was decided.
    func importModel(path: String, options: ImportOptions) throws -> ImportResult
    /// The file's structure, read from its metadata without reading tensor data.
    func inspect(path: String) throws -> Inspection
    /// A full check of the file; problems are thrown, warnings returned as lines.
    func validate(path: String) throws -> [String]
    /// Writes `model` to `path` atomically.
    func export(_ model: ValidatedModel, to path: String, options: ExportOptions) throws -> ExportResult
}

extension ModelFileFormat {
    public var exportSuffixes: [String] { [] }

    /// By default a full import: every tensor read and the model validated.
    public func validate(path: String) throws -> [String] {
        let result = try importModel(path: path, options: ImportOptions())
        return ["\(path): valid \(result.format): converts to a model with \(result.model.tensors.count) tensors"]
            + result.warnings.map { "\(path): warning: \($0)" }
    }

    public func export(_ model: ValidatedModel, to path: String, options: ExportOptions) throws -> ExportResult {
        throw InteropError.badOption("\(path): \(displayName) files can be read but not written")
    }
}
