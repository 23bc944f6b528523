import Foundation
import NNCore
import NNEngine

/// A directory under the repository's Fixtures/, e.g. "interop" or "crosstool".
public func fixturesDirectory(_ name: String) -> String {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.appendingPathComponent("Fixtures/\(name)").path
}

/// The model's outputs in double precision, one row per input row.
public func predictions(_ model: Model, _ input: [[Double]]) throws -> [[Double]] {
    let engine = try InferenceEngine<Double>(model: model)
    let flat = engine.predict(raw: input.flatMap { $0 }, count: input.count)
    return (0..<input.count).map { Array(flat[($0 * engine.outputSize)..<(($0 + 1) * engine.outputSize)]) }
}

/// The largest absolute difference between two matrices of the same shape (infinity otherwise).
public func maxDifference(_ a: [[Double]], _ b: [[Double]]) -> Double {
    guard a.count == b.count, zip(a, b).allSatisfy({ $0.count == $1.count }) else { return .infinity }
    return zip(a.flatMap { $0 }, b.flatMap { $0 }).map { abs($0 - $1) }.max() ?? 0
}

/// The message of the error `body` throws (nil when it does not throw).
public func errorMessage(_ body: () throws -> Void) -> String? {
    do { try body(); return nil } catch { return "\(error)" }
}

/// A new empty directory under the system's temporary directory.
public func scratchDirectory(_ prefix: String) -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)").path
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

/// Softmax of each row, written out here so that tests do not check the engine against itself.
public func softmaxRows(_ rows: [[Double]]) -> [[Double]] {
    rows.map { row in
        let top = row.max() ?? 0
        let e = row.map { Foundation.exp($0 - top) }
        let sum = e.reduce(0, +)
        return e.map { $0 / sum }
    }
}

/// `count` samples of `features` pixel values that take every byte value and differ from sample
/// to sample: the inputs of the batch and byte checks below.
public func testPixels(count: Int, features: Int) -> [UInt8] {
    (0..<(count * features)).map { UInt8(($0 * 37 + $0 / features * 11) % 256) }
}

/// Calls `body` on two threads, then on one (`BLAS.threadCount`, restored afterwards).
private func onTwoThreadsThenOne(_ body: (_ threads: Int) -> Void) {
    let saved = BLAS.threadCount
    defer { BLAS.setThreadCount(saved) }
    for threads in [2, 1] {
        BLAS.setThreadCount(threads)
        body(threads)
    }
}

/// Where `engine` gives a sample other bits than its row of a batch: `count` samples as one batch,
/// each alone (three rounds, so the first one-sample call and later ones are both covered), and
/// in blocks of 5, on two threads and on one. Empty when every way gives the same bits.
public func batchInvarianceFailures(_ engine: InferenceEngine<Float>, count: Int) -> [String] {
    let features = engine.inputSize, outputs = engine.outputSize
    let x = testPixels(count: count, features: features).map(Float.init)
    var failures: [String] = []
    onTwoThreadsThenOne { threads in
        let batch = engine.predict(raw: x, count: count)
        for round in 0..<3 {
            for s in 0..<count {
                let alone = engine.predict(raw: Array(x[(s * features)..<((s + 1) * features)]), count: 1)
                let row = Array(batch[(s * outputs)..<((s + 1) * outputs)])
                if alone != row { failures.append("\(threads) thread(s), round \(round): sample \(s) alone \(alone), in the batch \(row)") }
            }
        }
        var blocks: [Float] = []
        for first in stride(from: 0, to: count, by: 5) {
            let n = min(5, count - first)
            blocks += engine.predict(raw: Array(x[(first * features)..<((first + n) * features)]), count: n)
        }
        if blocks != batch { failures.append("\(threads) thread(s): blocks of 5 differ from one batch") }
    }
    return failures
}

/// Where a batch large enough for whole blocks per thread (`InferenceEngine.blockParallelMinimum`
/// and more, as floats and as bytes) gives other bits than the same samples in calls of 1,000
/// (blocks one at a time, each product shared by the threads), on two threads and on one.
/// Empty when all agree.
public func largeBatchFailures(_ engine: InferenceEngine<Float>) -> [String] {
    let count = InferenceEngine<Float>.blockParallelMinimum + 613, piece = 1000
    let features = engine.inputSize, outputs = engine.outputSize
    let scale: Float = 1 / 255, bytes = testPixels(count: count, features: features), x = bytes.map { Float($0) * scale }
    var failures: [String] = []
    func fromBytes(_ first: Int, _ n: Int) -> [Float] {
        var out = [Float](repeating: .nan, count: n * outputs)
        bytes.withUnsafeBufferPointer { b in
            out.withUnsafeMutableBufferPointer { engine.predict(bytes: b.baseAddress! + first * features, scale: scale, count: n, into: $0.baseAddress!) }
        }
        return out
    }
    onTwoThreadsThenOne { threads in
        let batch = engine.predict(raw: x, count: count)
        var pieces: [Float] = [], bytePieces: [Float] = []
        for first in stride(from: 0, to: count, by: piece) {
            let n = min(piece, count - first)
            pieces += engine.predict(raw: Array(x[(first * features)..<((first + n) * features)]), count: n)
            bytePieces += fromBytes(first, n)
        }
        if let s = (0..<count).first(where: { batch[($0 * outputs)..<(($0 + 1) * outputs)] != pieces[($0 * outputs)..<(($0 + 1) * outputs)] }) {
            failures.append("\(threads) thread(s): sample \(s) differs between one batch of \(count) and calls of \(piece)")
        }
        if fromBytes(0, count) != bytePieces { failures.append("\(threads) thread(s): bytes, one batch of \(count) differs from calls of \(piece)") }
        if bytePieces != pieces { failures.append("\(threads) thread(s): bytes differ from their floats") }
    }
    return failures
}

/// Where `engine` gives other bits for samples given as bytes (`predict(bytes:scale:)`, what
/// nn-infer passes for an IDX file) than for the same values as floats, `Float(byte) * scale`
/// computed here, in the same calls: `count` samples in one call, each alone, and in blocks of 5; scales 1 and
/// 1/255; two threads and one. The bytes take every value 0...255. Empty when all agree.
public func byteInputFailures(_ engine: InferenceEngine<Float>, count: Int) -> [String] {
    let features = engine.inputSize, outputs = engine.outputSize
    let bytes = testPixels(count: count, features: features)
    var failures: [String] = []
    func fromBytes(_ first: Int, _ n: Int, _ scale: Float) -> [Float] {
        var out = [Float](repeating: .nan, count: n * outputs)
        bytes.withUnsafeBufferPointer { b in
            out.withUnsafeMutableBufferPointer { engine.predict(bytes: b.baseAddress! + first * features, scale: scale, count: n, into: $0.baseAddress!) }
        }
        return out
    }
    onTwoThreadsThenOne { threads in
        for scale: Float in [1, 1 / 255] {
            let floats = bytes.map { Float($0) * scale }
            let expected = engine.predict(raw: floats, count: count)
            let label = "\(threads) thread(s), scale \(scale)"
            let batch = fromBytes(0, count, scale)
            if batch.elementsEqual(expected, by: { $0 == $1 || ($0.isNaN && $1.isNaN) }) == false {
                failures.append("\(label): one call of \(count) differs from the floats")
            }
            // Alone and in blocks, against the floats in the same calls (on OpenBLAS a sample alone
            // is a gemv, not its batch row); after two one-sample calls, so that both sides run
            // with the one-sample copies an engine makes on its second such call.
            _ = fromBytes(0, 1, scale)
            _ = fromBytes(0, 1, scale)
            for s in 0..<count where fromBytes(s, 1, scale) != engine.predict(raw: Array(floats[(s * features)..<((s + 1) * features)]), count: 1) {
                failures.append("\(label): sample \(s) alone differs from the floats")
            }
            for first in stride(from: 0, to: count, by: 5) {
                let n = min(5, count - first)
                if fromBytes(first, n, scale) != engine.predict(raw: Array(floats[(first * features)..<((first + n) * features)]), count: n) {
                    failures.append("\(label): the block of 5 from sample \(first) differs from the floats")
                }
            }
        }
    }
    return failures
}
