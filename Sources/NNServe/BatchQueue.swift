import Foundation
import NNEngine

/// One model's forward passes: requests from any number of tasks are queued, and one thread that
/// owns the model's `InferenceEngine` (which must not be shared between threads) runs them
/// together, so that concurrent clients share the batch kernels.
///
/// A batch starts with the first waiting request. While other requests for the model have been
/// announced (their bodies are being read or decoded) and the batch has room, the thread waits
/// for them, at most `maxWait` seconds from the first; with nobody else on the way it runs at
/// once, so a lone client pays no wait.
final class BatchQueue: @unchecked Sendable {
    // @unchecked Sendable: every mutable field is guarded by `condition`; the engine is used
    // by the worker thread only.
    private struct Job {
        var features: [Float]
        var count: Int
        var continuation: CheckedContinuation<[Float], any Error>
    }

    /// What one forward pass was: for /metrics.
    struct BatchRecord: Sendable {
        var samples: Int
        var requests: Int
        /// From the first request's arrival to the start of the pass.
        var waitSeconds: Double
        var computeSeconds: Double
    }

    let outputSize: Int
    let inputSize: Int
    private let engine: InferenceEngine<Float>
    private let maxBatch: Int
    private let maxWait: Double
    private let onBatch: @Sendable (BatchRecord) -> Void
    private let condition = NSCondition()
    private var pending: [Job] = []
    private var pendingRows = 0
    private var announced = 0
    private var closed = false
    private var firstArrival = 0.0
    private let finished = DispatchSemaphore(value: 0)

    init(engine: InferenceEngine<Float>, maxBatch: Int, maxWait: Double, name: String,
         onBatch: @escaping @Sendable (BatchRecord) -> Void) {
        self.engine = engine
        self.maxBatch = max(1, maxBatch)
        self.maxWait = maxWait
        self.onBatch = onBatch
        outputSize = engine.outputSize
        inputSize = engine.inputSize
        let thread = Thread { [self] in work() }
        thread.name = "nn-serve \(name)"
        thread.start()
    }

    /// Tells the queue that a request for this model is on its way (call `withdraw` if it
    /// never submits).
    func announce() {
        condition.lock()
        announced += 1
        condition.unlock()
    }

    /// A request announced with `announce` that will not submit.
    func withdraw() {
        condition.lock()
        announced -= 1
        condition.signal()
        condition.unlock()
    }

    /// Runs `count` samples of raw features (announced before) and returns the model's outputs.
    func submit(features: [Float], count: Int) async throws -> [Float] {
        try await withCheckedThrowingContinuation { continuation in
            condition.lock()
            announced -= 1
            if closed {
                condition.unlock()
                continuation.resume(throwing: ServeError(503, "the model is being replaced; try again"))
                return
            }
            if pending.isEmpty { firstArrival = Self.now() }
            pending.append(Job(features: features, count: count, continuation: continuation))
            pendingRows += count
            condition.signal()
            condition.unlock()
        }
    }

    /// Lets the queued requests finish, then ends the thread; later submissions are refused.
    func close() {
        condition.lock()
        closed = true
        condition.signal()
        condition.unlock()
    }

    /// Waits until the thread has ended (after `close`).
    func waitUntilFinished() { finished.wait(); finished.signal() }

    private static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

    private func work() {
        while true {
            condition.lock()
            while pending.isEmpty && !closed { condition.wait() }
            if pending.isEmpty {
                condition.unlock()
                finished.signal()
                return
            }
            // The bounded wait: only while more requests are announced and there is room.
            let deadline = Date(timeIntervalSinceNow: max(0, firstArrival + maxWait - Self.now()))
            while announced > 0, pendingRows < maxBatch, !closed {
                if !condition.wait(until: deadline) { break }
            }
            var jobs: [Job] = []
            var rows = 0
            while let job = pending.first, jobs.isEmpty || rows + job.count <= maxBatch {
                jobs.append(pending.removeFirst())
                rows += job.count
            }
            pendingRows -= rows
            let waited = Self.now() - firstArrival
            if !pending.isEmpty { firstArrival = Self.now() }
            condition.unlock()
            run(jobs, rows: rows, waited: waited)
        }
    }

    private func run(_ jobs: [Job], rows: Int, waited: Double) {
        let started = Self.now()
        let outputs: [Float]
        if jobs.count == 1 {
            outputs = engine.predict(raw: jobs[0].features, count: rows)
        } else {
            var input: [Float] = []
            input.reserveCapacity(rows * inputSize)
            for job in jobs { input += job.features }
            outputs = engine.predict(raw: input, count: rows)
        }
        let computed = Self.now() - started
        var offset = 0
        for job in jobs {
            let n = job.count * outputSize
            job.continuation.resume(returning: Array(outputs[offset..<(offset + n)]))
            offset += n
        }
        onBatch(BatchRecord(samples: rows, requests: jobs.count, waitSeconds: waited, computeSeconds: computed))
    }
}
