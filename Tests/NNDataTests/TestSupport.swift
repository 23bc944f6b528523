import Foundation
import Testing

/// The package root, found from this file's location (Tests/NNDataTests/TestSupport.swift).
let packageRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
}()

/// Real MNIST test files shared beside the work tree.
let mnistDirectory = packageRoot + "/../shared/data/mnist"
let fashionDirectory = "/usr/share/datasets/fashion-mnist"

func fileExists(_ path: String) -> Bool {
    FileManager.default.fileExists(atPath: path)
}

/// A fresh directory for one test; tests run in parallel, so each gets its own.
final class TemporaryDirectory {
    let path: String

    init() {
        path = NSTemporaryDirectory() + "nndata-tests-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }

    /// Writes `bytes` to `name` inside the directory and returns the full path.
    @discardableResult
    func write(_ bytes: [UInt8], to name: String) -> String {
        let file = path + "/" + name
        try! Data(bytes).write(to: URL(fileURLWithPath: file))
        return file
    }

    func read(_ name: String) -> [UInt8] {
        [UInt8](try! Data(contentsOf: URL(fileURLWithPath: path + "/" + name)))
    }

    func file(_ name: String) -> String { path + "/" + name }
}

/// Asserts that `body` throws an error whose description is exactly `message`.
func expectError(_ message: String, sourceLocation: SourceLocation = #_sourceLocation,
                 _ body: () throws -> Void) {
    do {
        try body()
        Issue.record("expected the error \"\(message)\", got none", sourceLocation: sourceLocation)
    } catch {
        #expect("\(error)" == message, sourceLocation: sourceLocation)
    }
}

/// Bytes from a hex string written by Python (`bytes.hex()`), for fixtures made outside this code.
func hexBytes(_ hex: String) -> [UInt8] {
    var out: [UInt8] = []
    var index = hex.startIndex
    while index < hex.endIndex {
        let next = hex.index(index, offsetBy: 2)
        out.append(UInt8(hex[index..<next], radix: 16)!)
        index = next
    }
    return out
}

/// A big-endian IDX header assembled by hand, independently of the writer under test.
func rawHeader(type: UInt8, dims: [UInt32]) -> [UInt8] {
    var out: [UInt8] = [0, 0, type, UInt8(dims.count)]
    for d in dims { out += [UInt8(d >> 24), UInt8((d >> 16) & 0xff), UInt8((d >> 8) & 0xff), UInt8(d & 0xff)] }
    return out
}
