import NNCore
import NNSystem

/// The converter's front door: a list of formats, asked in order which one a file is.
///
/// Every tool opens models through a registry (`ModelFiles.registry` holds every format of
/// this package), so a format added there is read, inspected, validated, compared and
/// written everywhere at once.
public struct FormatRegistry: Sendable {
    public let formats: [any ModelFileFormat]

    public init(_ formats: [any ModelFileFormat]) { self.formats = formats }

    /// The format of the file at `path`, from its first bytes (and its name for formats
    /// without a magic number). An empty or unknown file is an error that lists the formats.
    public func format(of path: String) throws -> any ModelFileFormat {
        let probe = try FileProbe(path: path)
        if probe.size == 0 { throw InteropError.unknownFormat(path: path, detail: "the file is empty") }
        var best: (format: any ModelFileFormat, evidence: FormatEvidence)?
        for format in formats {
            guard let evidence = try format.recognize(probe) else { continue }
            if best == nil || evidence > best!.evidence { best = (format, evidence) }
        }
        guard let best else {
            throw InteropError.unknownFormat(path: path, detail: "not a model file: expected \(formatList)")
        }
        return best.format
    }

    /// The format `nnconv export` writes for `path`, chosen by its suffix.
    public func format(forOutput path: String) throws -> any ModelFileFormat {
        guard let format = formats.first(where: { $0.exportSuffixes.contains { path.hasSuffix($0) } }) else {
            let suffixes = formats.flatMap(\.exportSuffixes)
            throw InteropError.badOption("\(path): the output must end in \(Self.orList(suffixes))")
        }
        return format
    }

    /// "HDF5 (.h5), NumPy (.npz), ... or ONNX (.onnx)".
    public var formatList: String { Self.orList(formats.map(\.displayName)) }

    /// Converts the file at `path` into a validated model.
    public func importModel(path: String, options: ImportOptions = ImportOptions()) throws -> ImportResult {
        try format(of: path).importModel(path: path, options: options)
    }

    /// What `nnconv inspect` shows for the file at `path`.
    public func inspect(path: String) throws -> Inspection {
        try format(of: path).inspect(path: path)
    }

    /// What `nnconv validate` prints; problems are thrown.
    public func validate(path: String) throws -> [String] {
        try format(of: path).validate(path: path)
    }

    /// Writes `model` in the format `path`'s suffix names. Formats other than .nnm get int8
    /// weights as their f32 values (`Model.dequantized`): none of them stores our scales.
    public func export(_ model: ValidatedModel, to path: String, options: ExportOptions = ExportOptions()) throws -> ExportResult {
        let format = try format(forOutput: path)
        guard !(format is NNMModelFormat), model.model.metadata.layers.contains(where: { $0.weightScale != nil }) else {
            return try format.export(model, to: path, options: options)
        }
        return try format.export(ValidatedModel(checked: model.model.dequantized(), warnings: model.warnings), to: path, options: options)
    }

    static func orList(_ items: [String]) -> String {
        items.count <= 1 ? items.joined() : items.dropLast().joined(separator: ", ") + " or " + items.last!
    }
}
