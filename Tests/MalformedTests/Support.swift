import Foundation
import NNCompression
import NNCore
import Testing

// Malformed-input tests: every reader against truncated, bit-flipped, oversized and inconsistent
// files. The files are built from bytes in the tests (nothing binary is committed), and every case
// asserts the reader's specific message, which starts with the name the reader was given.

/// One malformed input and the exact message its reader must report.
struct MalformedCase: CustomTestStringConvertible, Sendable {
    var name: String
    var bytes: [UInt8]
    var message: String
    var testDescription: String { name }

    init(_ name: String, _ bytes: [UInt8], _ message: String) {
        self.name = name
        self.bytes = bytes
        self.message = message
    }
}

/// Asserts that `body` throws an error whose description is exactly `message`.
func expectMessage(_ message: String, sourceLocation: SourceLocation = #_sourceLocation,
                   _ body: () throws -> Void) {
    do {
        try body()
        Issue.record("succeeded; expected the error '\(message)'", sourceLocation: sourceLocation)
    } catch {
        #expect("\(error)" == message, sourceLocation: sourceLocation)
    }
}

/// A fresh directory per use (tests run in parallel), removed when the value goes away.
final class ScratchDirectory: @unchecked Sendable {
    let path: String
    init() {
        path = NSTemporaryDirectory() + "nnm-malformed-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }

    /// Writes `bytes` to `name` in the directory and returns the path.
    func write(_ bytes: [UInt8], to name: String) -> String {
        let file = path + "/" + name
        try! Data(bytes).write(to: URL(fileURLWithPath: file))
        return file
    }
}

extension Array where Element == UInt8 {
    mutating func le<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }

    mutating func be<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.bigEndian) { append(contentsOf: $0) }
    }

    /// Overwrites `T.bitWidth / 8` bytes at `offset`, little-endian.
    mutating func setLE<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        Swift.withUnsafeBytes(of: value.littleEndian) { raw in
            for (i, b) in raw.enumerated() { self[offset + i] = b }
        }
    }

    /// The first `count` bytes.
    func prefixArray(_ count: Int) -> [UInt8] { Array(prefix(count)) }

    /// A copy with bit `bit` of byte `offset` flipped.
    func flipping(_ offset: Int, bit: Int = 0) -> [UInt8] {
        var copy = self
        copy[offset] ^= UInt8(1) << UInt8(bit)
        return copy
    }
}

/// A seeded generator (SplitMix64), so "random" cases are the same on every run.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// gzip of `bytes` made by our zlib wrapper.
func gzipped(_ bytes: [UInt8]) -> [UInt8] {
    try! Deflate.compress(bytes, format: .gzip, level: 6)
}
