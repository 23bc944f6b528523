import Dispatch
import Prometheus

/// What /metrics shows, in Prometheus's text format: requests by route, method and status; their
/// latency; and each forward pass's samples, requests, batching wait and compute time by model.
///
/// Each server has its own registry (no process-wide metrics system), so that tests can run
/// several servers in one process.
public final class ServeMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    private let inFlight: Gauge

    /// Latency buckets, in seconds: 0.1 ms to 10 s.
    static let latencyBuckets: [Duration] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
        .map { Duration.nanoseconds(Int64($0 * 1e9)) }
    static let batchBuckets: [Double] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
    static let waitBuckets: [Double] = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01]

    public init() {
        inFlight = registry.makeGauge(descriptor: Self.name("requests_in_flight", "", "Requests being handled now (health checks, the page and /metrics not counted)."))
    }

    /// One request answered.
    func request(route: String, method: String, status: Int, nanoseconds: UInt64) {
        registry.makeCounter(descriptor: Self.name("requests", "total", "HTTP requests answered, by route pattern, method and status."),
                             labels: [("route", route), ("method", method), ("status", String(status))]).increment()
        registry.makeDurationHistogram(descriptor: Self.name("request_duration", "seconds", "Time from a request's arrival to its response, by route pattern."),
                                       labels: [("route", route)], buckets: Self.latencyBuckets)
            .recordNanoseconds(Int64(clamping: nanoseconds))
    }

    func enter() { inFlight.increment() }
    func leave() { inFlight.decrement() }

    /// One forward pass of `model`.
    func batch(model: String, _ record: BatchQueue.BatchRecord) {
        let labels = [("model", model)]
        registry.makeValueHistogram(descriptor: Self.name("batch_samples", "", "Samples per forward pass (requests batched together)."), labels: labels, buckets: Self.batchBuckets).record(Double(record.samples))
        registry.makeValueHistogram(descriptor: Self.name("batch_requests", "", "Requests per forward pass."), labels: labels, buckets: Self.batchBuckets).record(Double(record.requests))
        registry.makeValueHistogram(descriptor: Self.name("batch_wait", "seconds", "Time a forward pass's first request waited for others to join it."), labels: labels, buckets: Self.waitBuckets).record(record.waitSeconds)
        registry.makeValueHistogram(descriptor: Self.name("forward", "seconds", "Time of each forward pass."), labels: labels,
                                    buckets: Self.waitBuckets + [0.025, 0.05, 0.1, 0.5, 1]).record(record.computeSeconds)
    }

    private static func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "nn_serve", metricName: metric, unitName: unit, helpText: help)
    }

    /// The text exposition.
    public func text() -> [UInt8] { registry.emitToBuffer() }
}
