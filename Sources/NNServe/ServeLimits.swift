import NNCommandLine

/// The bounds nn-serve puts on every request (README, "nn-serve: limits"). Each one, crossed,
/// is a 4xx answer with a JSON error; none is a crash or an unbounded allocation.
public struct ServeLimits: Sendable, Equatable {
    /// The largest request body read, in bytes (413).
    public var maxBodyBytes: Int = 16 << 20
    /// The largest picture decoded, in pixels, checked from its header before decoding (413).
    public var maxPixels: Int = 16_000_000
    /// The most tensor elements one inference request may carry (413).
    public var maxTensorElements: Int = 784 * 1024
    /// The most samples one request may carry, and the most one forward pass takes (413).
    public var maxBatch: Int = 1024
    /// The most requests handled at once; one more is refused (429). Health checks, the page
    /// and /metrics are not counted, so that probes still answer under load.
    public var maxConcurrentRequests: Int = 256
    /// The longest a request may take, reading its body included (408).
    public var requestSeconds: Double = 30
    /// The longest the batching queue holds the first request of a batch waiting for others
    /// (only while other requests for the model are on their way).
    public var batchWaitSeconds: Double = 0.001

    public init() {}

    /// Limits as the command line gives them; each must be positive (the wait may be 0).
    public init(maxBodyBytes: Int, maxPixels: Int, maxTensorElements: Int, maxBatch: Int, maxConcurrentRequests: Int,
                requestSeconds: Double, batchWaitSeconds: Double) throws {
        for (value, option) in [(maxBodyBytes, "--max-body-bytes"), (maxPixels, "--max-pixels"), (maxTensorElements, "--max-tensor-elements"),
                                (maxBatch, "--max-batch"), (maxConcurrentRequests, "--max-concurrent")] where value < 1 {
            throw ToolError("\(option) must be at least 1, not \(value)", status: ExitStatus.usage)
        }
        guard requestSeconds > 0, requestSeconds.isFinite else {
            throw ToolError("--request-timeout must be a positive number of seconds, not \(requestSeconds)", status: ExitStatus.usage)
        }
        guard batchWaitSeconds >= 0, batchWaitSeconds <= 1 else {
            throw ToolError("--batch-wait-ms must be from 0 to 1000, not \(batchWaitSeconds * 1000)", status: ExitStatus.usage)
        }
        self.maxBodyBytes = maxBodyBytes
        self.maxPixels = maxPixels
        self.maxTensorElements = maxTensorElements
        self.maxBatch = maxBatch
        self.maxConcurrentRequests = maxConcurrentRequests
        self.requestSeconds = requestSeconds
        self.batchWaitSeconds = batchWaitSeconds
    }
}

/// An answer other than success: an HTTP status and one line, sent as `{"error": "..."}` (the
/// Open Inference Protocol's error object).
public struct ServeError: Error, CustomStringConvertible, Sendable {
    public var status: Int
    public var message: String

    public init(_ status: Int, _ message: String) {
        self.status = status
        self.message = message
    }

    public var description: String { message }

    static func badRequest(_ message: String) -> ServeError { ServeError(400, message) }
    static func notFound(_ message: String) -> ServeError { ServeError(404, message) }
    static func tooLarge(_ message: String) -> ServeError { ServeError(413, message) }
}
