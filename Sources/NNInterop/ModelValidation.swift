import NNCore
import NNFormat

/// What `nnconv validate` found.
public struct ValidationReport: Sendable {
    public var lines: [String]
}

public enum ModelValidation {
    /// Checks a file completely: for `.nnm` every structure and every tensor checksum, and
    /// warnings for NaN or infinite weights; for other formats, a full import. Problems that make
    /// the file unreadable are thrown; warnings are reported and leave it valid.
    public static func validate(path: String) throws -> ValidationReport {
        let model: Model
        var lines: [String] = []
        if try ModelImporter.kind(of: path) == .nnm {
            let header = try NNMFormat.readHeader(path: path)
            model = try NNMFormat.read(path: path, verifyChecksums: true)
            lines.append("\(path): valid .nnm \(header.majorVersion).\(header.minorVersion): \(model.tensors.count) tensors, all checksums match")
        } else {
            let result = try ModelImporter.importModel(path: path)
            model = result.model
            lines.append("\(path): valid \(result.format): converts to a model with \(model.tensors.count) tensors")
        }
        let warnings = try model.validate()
        for w in warnings { lines.append("\(path): warning: \(w)") }
        return ValidationReport(lines: lines)
    }
}
