import Glibc
import NNConvert
import NNCore
import NNSystem

/// ONNX external data (`TensorProto.data_location == EXTERNAL`): a tensor whose bytes live in
/// another file, named by the `location`, `offset` and `length` entries of `external_data`.
///
/// Only files inside the model's own directory are read, as onnxruntime does: a location must
/// be relative, have no `..` component, and resolve (symlinks followed) inside that directory;
/// it must be a regular file (a FIFO or a device is refused without blocking). Every declared
/// size is checked, with checked arithmetic, against the tensor's shape and the file's size
/// before a byte of data is read.
struct ONNXExternalData {
    /// The model file whose directory holds the data; errors name it.
    let modelPath: String

    /// Where one tensor's bytes are: a file inside the model's directory, and a range in it.
    struct Location {
        var file: String
        var offset: Int
        var count: Int
    }

    func fail(_ what: String, _ detail: String) -> InteropError {
        InteropError.badConfig(path: modelPath, detail: "\(what): external data \(detail)")
    }

    /// The model's directory, resolved.
    func directory() throws -> String {
        let slash = modelPath.lastIndex(of: "/")
        let dir = slash.map { modelPath[..<$0].isEmpty ? "/" : String(modelPath[..<$0]) } ?? "."
        guard let resolved = Self.realPath(dir) else {
            throw InteropError.badConfig(path: modelPath, detail: "the model's directory '\(dir)' cannot be resolved")
        }
        return resolved
    }

    static func realPath(_ path: String) -> String? {
        guard let p = realpath(path, nil) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }

    /// Checks the declaration of `p` (`byteCount` bytes by its dims and type) against the rules
    /// and the data file's size; reads no data.
    func locate(_ p: Onnx_TensorProto, byteCount: Int, what: String) throws -> Location {
        var entries: [String: String] = [:]
        for e in p.externalData {
            guard entries[e.key] == nil else { throw fail(what, "declares '\(e.key)' twice") }
            entries[e.key] = e.value
        }
        guard let location = entries["location"], !location.isEmpty else { throw fail(what, "has no 'location'") }
        guard !location.utf8.contains(0) else { throw fail(what, "location contains a NUL byte") }
        guard !location.hasPrefix("/"), !location.hasPrefix("\\"), !(location.count > 1 && location.dropFirst().first == ":") else {
            throw fail(what, "location '\(location)' is an absolute path; only files in the model's directory are read")
        }
        let components = location.split(whereSeparator: { $0 == "/" || $0 == "\\" })
        guard !components.contains("..") else {
            throw fail(what, "location '\(location)' has a '..' component; only files in the model's directory are read")
        }
        func number(_ key: String) throws -> Int? {
            guard let text = entries[key] else { return nil }
            guard !text.isEmpty, text.utf8.allSatisfy({ (48...57).contains($0) }), let n = Int(text) else {
                throw fail(what, "\(key) '\(text)' is not a non-negative integer")
            }
            return n
        }
        let offset = try number("offset") ?? 0
        if let length = try number("length"), length != byteCount {
            throw fail(what, "length \(length) disagrees with its dims \(ShapeMath.describe(p.dims.map { Int(clamping: $0) })) of \(ONNXFile.typeName(p.dataType)), which need \(byteCount) bytes")
        }
        let dir = try directory()
        let joined = dir == "/" ? "/" + location : dir + "/" + location
        guard let resolved = Self.realPath(joined) else {
            throw fail(what, "file '\(location)' is missing (looked for \(joined))")
        }
        guard resolved.hasPrefix(dir == "/" ? "/" : dir + "/") else {
            throw fail(what, "file '\(location)' resolves to \(resolved), outside the model's directory \(dir) (a symlink?); only files in the model's directory are read")
        }
        let file: ReadOnlyFile
        do {
            file = try ReadOnlyFile(path: resolved)
        } catch {
            throw fail(what, "file '\(location)' cannot be read: \(error)")
        }
        let (end, overflow) = offset.addingReportingOverflow(byteCount)
        guard !overflow, end <= file.size else {
            throw fail(what, "offset \(offset) + length \(byteCount) lies beyond the end of '\(location)' (\(file.size) bytes)")
        }
        return Location(file: resolved, offset: offset, count: byteCount)
    }

    /// The bytes of a located tensor.
    func read(_ location: Location, what: String) throws -> [UInt8] {
        do {
            let file = try ReadOnlyFile(path: location.file)
            // The file may have shrunk since it was located.
            guard location.offset + location.count <= file.size else {
                throw fail(what, "file \(location.file) is shorter than when it was checked")
            }
            let bytes = try file.read(at: location.offset, count: location.count)
            guard bytes.count == location.count else { throw fail(what, "file \(location.file) ended early") }
            return bytes
        } catch let error as InteropError {
            throw error
        } catch {
            throw fail(what, "cannot be read: \(error)")
        }
    }
}
