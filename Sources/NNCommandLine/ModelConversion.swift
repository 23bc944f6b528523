import NNCore
import NNFormat
import NNSystem

/// A model file that is not `.nnm`, converted for one run.
///
/// `nn-infer` links no converter (no libhdf5, protobuf or pickle code: it starts faster and
/// stays small), so it asks `nnconv import` in a child process to write a temporary `.nnm`,
/// which it reads into memory (or maps) and which is removed when this value goes away. The
/// child also confines a crash of a C library on a hostile file to one error line.
public struct ModelConversion {
    /// The temporary `.nnm` written by nnconv.
    public let file: TemporaryFile
    /// The format nnconv recognised, e.g. "PyTorch checkpoint (zip)".
    public let format: String
    /// What the converter decided or found (its notes and warnings).
    public let notes: [String]

    /// Whether the file at `path` is something other than a `.nnm` (its first bytes are not
    /// the `.nnm` magic). Files named `.nnm`, that cannot be opened or are shorter than the magic
    /// count as `.nnm`, so that the `.nnm` reader says what is wrong with them (a damaged magic
    /// number, a missing file).
    public static func isForeign(path: String) -> Bool {
        guard !path.hasSuffix(".\(NNMFormat.fileExtension)"), let file = try? ReadOnlyFile(path: path), file.size >= NNMFormat.magic.count,
              let head = try? file.read(at: 0, count: NNMFormat.magic.count) else { return false }
        return head != NNMFormat.magic
    }

    /// Converts `path` with `nnconv import`, passing `choices` on.
    /// - Parameter tool: the tool that asks, for messages ("nn-infer").
    public init(path: String, choices: ImportChoices, tool: String) throws {
        guard let converter = ChildProcess.locate("nnconv") else {
            throw ToolError("\(path): is not a .nnm model, and converting it needs nnconv, which is neither beside \(tool) nor on PATH (or convert it first: nnconv import \(path))",
                            status: ExitStatus.unavailable)
        }
        file = try TemporaryFile(suffix: ".nnm")
        let completed: CompletedProcess
        do {
            completed = try ChildProcess.run(executable: converter, arguments: ["import", path, "-o", file.path, "--json"] + choices.arguments)
        } catch {
            throw ToolError("\(path): is not a .nnm model, and the converter cannot be run: \(error)", status: ExitStatus.unavailable)
        }
        switch completed.termination {
        case .signaled(let signal):
            throw ToolError("\(path): the converter (\(converter)) was killed by signal \(signal)", status: ExitStatus.dataError)
        case .exited(let status) where status != 0:
            // nnconv's error is one line naming the file; it is ours now, without its prefix.
            let lines = String(decoding: completed.standardError, as: UTF8.self).split(separator: "\n")
            let line = lines.last.map { $0.hasPrefix("nnconv import: ") ? String($0.dropFirst(15)) : String($0) }
            throw ToolError(line ?? "\(path): the converter (\(converter)) failed with status \(status)", status: status)
        case .exited:
            guard let result = try? JSONValue.parse(completed.standardOutput), let format = result["format"]?.stringValue,
                  let notes = result["notes"]?.arrayValue else {
                throw ToolError("\(path): the converter (\(converter)) printed no result; is it the nnconv of this nn-infer?", status: ExitStatus.software)
            }
            self.format = format
            self.notes = notes.compactMap(\.stringValue)
        }
    }
}
