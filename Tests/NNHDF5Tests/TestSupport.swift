import Foundation
import Testing
@testable import NNHDF5

/// Fixtures written by `make_fixtures.py` (real h5py), found next to this file.
enum Fixtures {
    static let directory: String = {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Resources").path
    }()

    static func path(_ name: String) -> String {
        directory + "/" + name
    }

    /// `expected.json`: the values NumPy/h5py computed for the fixtures.
    static func expected() throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path("expected.json")))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    /// The expected entry for one fixture file.
    static func expected(_ file: String) throws -> [String: Any] {
        try #require(try expected()[file] as? [String: Any])
    }
}

/// A fresh directory for one test; removed by `remove()`.
struct TemporaryDirectory {
    let path: String

    init() throws {
        path = NSTemporaryDirectory() + "nnhdf5-tests-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func file(_ name: String) -> String { path + "/" + name }

    func contents() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: path).sorted()
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// Bit patterns as `make_fixtures.py` writes them: lower-case hex.
func floatBits(_ values: [Float]) -> [String] {
    values.map { String(format: "%08x", $0.bitPattern) }
}

func doubleBits(_ values: [Double]) -> [String] {
    values.map { String(format: "%016llx", $0.bitPattern) }
}

func hexString(_ bytes: [UInt8]) -> String {
    bytes.map { String(format: "%02x", $0) }.joined()
}

/// Runs `body` and returns the `HDF5Error` it throws (failing the test if it throws nothing or
/// something else).
func hdf5Error(_ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) -> HDF5Error? {
    do {
        try body()
        Issue.record("expected an HDF5Error, but nothing was thrown", sourceLocation: sourceLocation)
        return nil
    } catch let error as HDF5Error {
        return error
    } catch {
        Issue.record("expected an HDF5Error, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

/// Python 3 with h5py and NumPy, for checking files this library writes.
enum Python {
    /// The first `python3` on `PATH`.
    static let executable: String? = {
        let searchPath = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in searchPath.split(separator: ":") {
            let candidate = String(directory) + "/python3"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }()

    static let hasH5py: Bool = {
        guard executable != nil else { return false }
        return (try? run("import h5py, numpy")) != nil
    }()

    /// Runs `script` with `arguments` and returns its standard output; throws if it fails.
    static func run(_ script: String, arguments: [String] = []) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try #require(executable))
        process.arguments = ["-c", script] + arguments
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        let errorData = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw PythonFailure(message: String(decoding: errorData, as: UTF8.self))
        }
        return String(decoding: outputData, as: UTF8.self)
    }

    struct PythonFailure: Error, CustomStringConvertible {
        let message: String
        var description: String { "python3 failed: \(message)" }
    }
}
