import Dispatch
import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOPosix
import NNCommandLine
import NNCore
import NNSystem
import ServiceLifecycle
import UnixSignals

/// Wraps the router: every request is counted against the concurrency limit and the time
/// limit, every error becomes a JSON error, and each request ends with one log line and its
/// metrics.
public struct ServeResponder<Inner: HTTPResponder>: HTTPResponder where Inner.Context == BasicRequestContext {
    public typealias Context = BasicRequestContext
    let inner: Inner
    let state: ServeState

    public init(inner: Inner, state: ServeState) {
        self.inner = inner
        self.state = state
    }

    public func respond(to request: Request, context: Context) async throws -> Response {
        let started = DispatchTime.now().uptimeNanoseconds
        let path = request.uri.path
        let route = routePattern(path)
        // Probes, the page and the metrics answer whatever the load.
        let counted = !(route == "/" || route == "/metrics" || route.hasPrefix("/v2/health"))
        var response: Response
        if counted, !state.active.enter() {
            response = errorResponse(ServeError(429, "too many requests at once (the limit is \(state.limits.maxConcurrentRequests)); try again"))
        } else {
            if counted { state.metrics.enter() }
            do {
                let inner = inner
                response = try await withTimeLimit(seconds: state.limits.requestSeconds) {
                    try await inner.respond(to: request, context: context)
                }
            } catch let error as ServeError {
                response = errorResponse(error)
            } catch let error as HTTPError {
                response = errorResponse(ServeError(Int(error.status.code), error.body ?? error.status.reasonPhrase))
            } catch {
                state.logger.error("\(request.method) \(path): \(error)")
                response = errorResponse(ServeError(500, "internal error: \(error)"))
            }
            if counted {
                state.active.leave()
                state.metrics.leave()
            }
        }
        // The router's own "not found" has no JSON body.
        if response.status.code >= 400, response.headers[.contentType] != "application/json" {
            let message = response.status == .notFound ? "no route for \(request.method) \(path)" : response.status.reasonPhrase
            response = errorResponse(ServeError(Int(response.status.code), message))
        }
        let elapsed = DispatchTime.now().uptimeNanoseconds - started
        state.metrics.request(route: route, method: request.method.rawValue, status: Int(response.status.code), nanoseconds: elapsed)
        state.logger.info("\(request.method) \(path) \(response.status.code) \(formatDecimal(Double(elapsed) / 1e6, digits: 2)) ms")
        return response
    }

    private func errorResponse(_ error: ServeError) -> Response {
        jsonResponse(.object(JSONObject([("error", .string(error.message))])), status: .init(code: error.status))
    }
}

/// The route a path belongs to, with the model name and version as placeholders, for metrics
/// (so that their labels stay few whatever paths clients send).
func routePattern(_ path: String) -> String {
    let parts = path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
    switch parts.count {
    case 2 where ["", "metrics", "v2"].contains(parts[1]): return path
    case 4 where parts[1] == "v2" && parts[2] == "health" && ["live", "ready"].contains(parts[3]): return path
    case 3 where parts[1] == "v1" && parts[2] == "models": return path
    case 4 where parts[2] == "models" && ["v1", "v2"].contains(parts[1]): return "/\(parts[1])/models/{name}"
    case 5 where parts[2] == "models" && ["v1", "v2"].contains(parts[1]) && ["ready", "infer", "classify", "examples"].contains(parts[4]):
        return "/\(parts[1])/models/{name}/\(parts[4])"
    case 6 where parts[1] == "v2" && parts[2] == "models" && parts[4] == "versions": return "/v2/models/{name}/versions/{version}"
    case 7 where parts[1] == "v2" && parts[2] == "models" && parts[4] == "versions" && ["ready", "infer"].contains(parts[6]):
        return "/v2/models/{name}/versions/{version}/\(parts[6])"
    default: return "other"
    }
}

/// Runs `work`, or throws a 408 error once `seconds` have passed (the work is then cancelled and
/// its result dropped).
///
/// The deadline is a task scheduled on an event loop and cancelled when the work ends, which
/// frees it at once. (A cancelled `Task.sleep` keeps its timer until the deadline: at 9,000
/// requests/s and a 30 s limit that held 320 MiB of sleeping timers.)
func withTimeLimit<T: Sendable>(seconds: Double, _ work: @escaping @Sendable () async throws -> T) async throws -> T {
    let once = FirstResult<T>()
    return try await withCheckedThrowingContinuation { continuation in
        once.continuation = continuation
        let worker = Task {
            do { once.finish(.success(try await work())) } catch { once.finish(.failure(error)) }
        }
        let deadline = MultiThreadedEventLoopGroup.singleton.next().scheduleTask(in: .nanoseconds(Int64(min(seconds * 1e9, 9e18)))) {
            if once.finish(.failure(ServeError(408, "the request took longer than the limit of \(formatDecimal(seconds, digits: 3)) s"))) {
                worker.cancel()
            }
        }
        once.setDeadline(deadline)
    }
}

/// A continuation resumed by whichever result comes first; the first result also cancels the
/// deadline.
private final class FirstResult<T: Sendable>: @unchecked Sendable {
    // @unchecked Sendable: guarded by `lock`.
    let lock = NSLock()
    var continuation: CheckedContinuation<T, any Error>?
    private var deadline: Scheduled<Void>?
    init() {}

    /// Keeps the deadline to cancel, or cancels it now when a result came first.
    func setDeadline(_ scheduled: Scheduled<Void>) {
        let finished = lock.withLock { () -> Bool in
            if continuation == nil { return true }
            deadline = scheduled
            return false
        }
        if finished { scheduled.cancel() }
    }

    /// Resumes the continuation with `result` unless another result came first; true if this one did.
    @discardableResult
    func finish(_ result: Result<T, any Error>) -> Bool {
        let (taken, scheduled) = lock.withLock { () -> (CheckedContinuation<T, any Error>?, Scheduled<Void>?) in
            defer { continuation = nil; deadline = nil }
            return (continuation, deadline)
        }
        guard let taken else { return false }
        scheduled?.cancel()
        taken.resume(with: result)
        return true
    }
}

/// Reloads the models on SIGHUP, and those whose files changed every `pollSeconds`. Both loops
/// end as soon as graceful shutdown starts (a shutdown never waits out a polling interval).
struct ReloadService: Service {
    let registry: ModelRegistry
    let logger: Logger
    let pollSeconds: Double

    func run() async throws {
        await withDiscardingTaskGroup { group in
            group.addTask {
                for await _ in await UnixSignalsSequence(trapping: .sighup).cancelOnGracefulShutdown() {
                    logger.notice("SIGHUP: reloading the models")
                    registry.reload(logger: logger)
                }
            }
            if pollSeconds > 0 {
                group.addTask {
                    // The sleep is cancelled when graceful shutdown starts.
                    _ = try? await cancelWhenGracefulShutdown {
                        while true {
                            try await Task.sleep(nanoseconds: UInt64(pollSeconds * 1e9))
                            registry.reload(changedOnly: true, logger: logger)
                        }
                    }
                }
            }
        }
    }
}

/// Marks the server as draining once graceful shutdown starts, so that readiness probes answer
/// 503, then keeps the server accepting requests for `delaySeconds` (time for a load balancer to
/// notice) before the application stops listening. It is the last service of the group, so it is
/// the first told to shut down, and the application only after it returns.
struct DrainService: Service {
    let state: ServeState
    let delaySeconds: Double

    func run() async throws {
        // Cancelled (not shut down gracefully): nothing to drain.
        guard (try? await gracefulShutdown()) != nil else { return }
        state.draining.start()
        state.logger.notice("shutting down: readiness answers 503; still accepting for \(formatDecimal(delaySeconds, digits: 3)) s, then draining")
        if delaySeconds > 0 { try? await Task.sleep(nanoseconds: UInt64(delaySeconds * 1e9)) }
    }
}

/// What `nn-serve` is asked to do.
public struct ServeConfiguration: Sendable {
    public var sources: [ModelSource]
    public var host = "127.0.0.1"
    public var port = 8080
    public var limits = ServeLimits()
    /// Seconds between checks of the models' files for changes (0: only SIGHUP reloads).
    public var watchSeconds = 2.0
    /// Seconds between SIGTERM (readiness then answers 503) and closing the listening socket.
    public var shutdownDelaySeconds = 0.0
    /// An IDX file of test pictures for the page ("none": none); nil: Fashion-MNIST's test set for
    /// Fashion-MNIST models (ExamplePictures.forModels).
    public var examplesPath: String?

    public init(sources: [ModelSource]) { self.sources = sources }
}

/// The server: its models, state and application.
public enum NNServer {
    /// Loads the models of `configuration` (converting those that are not `.nnm` with
    /// `importChoices`) into a registry.
    public static func registry(_ configuration: ServeConfiguration, importChoices: ImportChoices, metrics: ServeMetrics) throws -> ModelRegistry {
        let limits = configuration.limits
        let choices = SendableBox(importChoices)
        return try ModelRegistry(sources: configuration.sources) { source in
            try ServedModel(source: source, importChoices: choices.value, limits: limits) { metrics.batch(model: $0, $1) }
        }
    }

    /// The application serving `state` on `host`:`port`; `onRunning` gets the port it listens on.
    public static func application(state: ServeState, host: String, port: Int, services: [any Service] = [],
                                   onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) -> some ApplicationProtocol {
        Application(responder: ServeResponder(inner: makeRouter(state).buildResponder(), state: state),
                    configuration: .init(address: .hostname(host, port: port), serverName: "nn-serve"),
                    services: services,
                    onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? port) },
                    logger: state.logger)
    }

    /// Loads the models and serves them until SIGTERM or SIGINT, after which the requests in
    /// flight finish and it returns. Prints "listening on http://HOST:PORT" once it is.
    public static func run(_ configuration: ServeConfiguration, importChoices: ImportChoices) async throws {
        // Bounds the allocator's per-thread arenas on the event loops and batch threads (see MemoryAllocator).
        MemoryAllocator.limitArenas(to: 2)
        var logger = Logger(label: "nn-serve")
        logger.logLevel = .info
        let metrics = ServeMetrics()
        let registry = try registry(configuration, importChoices: importChoices, metrics: metrics)
        for model in registry.all {
            model.warnings.forEach { printError("nn-serve: \($0)") }
            printError("nn-serve: \(model.name): \(model.path) (\(describe(model.model)))")
        }
        let examples = try ExamplePictures.forModels(registry.all, path: configuration.examplesPath)
        for (name, found) in examples.sorted(by: { $0.key < $1.key }) {
            printError("nn-serve: \(name): \(found.pictures.count) example pictures from \(found.path)")
        }
        let state = ServeState(registry: registry, limits: configuration.limits, metrics: metrics, logger: logger, examples: examples)
        let host = configuration.host
        let app = application(state: state, host: host, port: configuration.port) { port in
            print("nn-serve: listening on http://\(host.contains(":") ? "[\(host)]" : host):\(port)")
            fflush(nil)
        }
        let reload = ReloadService(registry: registry, logger: logger, pollSeconds: configuration.watchSeconds)
        let drain = DrainService(state: state, delaySeconds: configuration.shutdownDelaySeconds)
        // Graceful shutdown goes from the last service to the first, each after the one before has returned.
        let group = ServiceGroup(configuration: .init(services: [.init(service: app), .init(service: reload), .init(service: drain)],
                                                      gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch {
            throw ToolError("cannot serve on \(host):\(configuration.port): \(error)", status: ExitStatus.osError)
        }
        registry.close()
        printError("nn-serve: stopped; the requests in flight were answered")
    }
}

/// Carries a value that is only read across a concurrency boundary.
struct SendableBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
