import ArgumentParser
import NNCommandLine
import NNServe

/// `nn-serve MODEL...`: serve models over HTTP (Open Inference Protocol, a classify route, a page).
struct NNServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nn-serve",
        abstract: "Serve models over HTTP: the Open Inference Protocol (KServe v2), a classify route and a page to draw digits on.",
        discussion: """
            Each MODEL (.nnm, or any file nnconv imports, converted at start) is served under its file name \
            without extension, or NAME=PATH. SIGTERM or SIGINT makes readiness answer 503, waits --shutdown-delay seconds, stops accepting connections \
            and answers the requests in flight; SIGHUP reloads every model, and a model whose file changes is reloaded (the old one serves \
            until the new one is validated). One log line per request goes to standard error.
            Exit status: 0 stopped by a signal, 64 usage, 65 a model is malformed, 66 a model is missing, \
            69 nnconv not found (for a model that is not .nnm), 70 internal error, 71 cannot listen on the address.
            """)

    @Argument(help: "Models to serve: PATH or NAME=PATH.") var models: [String] = []
    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on (0: any free port, printed).") var port = 8080
    @Option(help: "Largest request body, in bytes.") var maxBodyBytes = ServeLimits().maxBodyBytes
    @Option(help: "Largest picture decoded, in pixels.") var maxPixels = ServeLimits().maxPixels
    @Option(help: "Most tensor elements in one request.") var maxTensorElements = ServeLimits().maxTensorElements
    @Option(help: "Most samples in one request and in one forward pass.") var maxBatch = ServeLimits().maxBatch
    @Option(help: "Most requests handled at once.") var maxConcurrent = ServeLimits().maxConcurrentRequests
    @Option(help: "Longest a request may take, in seconds.") var requestTimeout = ServeLimits().requestSeconds
    @Option(help: "Longest a forward pass waits for more requests to batch, in milliseconds (0: no wait).") var batchWaitMs = ServeLimits().batchWaitSeconds * 1000
    @Option(help: "Seconds between checks of the models' files for changes (0: only SIGHUP reloads).") var watch = 2.0
    @Option(help: "Seconds between SIGTERM and closing the listening socket, while readiness answers 503 (for a load balancer to notice).")
    var shutdownDelay = 0.0
    @Option(help: ArgumentHelp("IDX file of 8-bit test pictures (and its labels-idx1 file beside it) offered on the page, or 'none'.",
                               discussion: "Default: Fashion-MNIST's test set (Debian's dataset-fashion-mnist) for models whose classes are Fashion-MNIST's."))
    var examples: String?
    @OptionGroup(title: "Converting a model that is not .nnm (as nnconv import takes them)") var importChoices: ImportChoices

    func run() async throws {
        try await reportingAsyncErrors(tool: "nn-serve") {
            var configuration = ServeConfiguration(sources: try models.map(ModelSource.init(argument:)))
            configuration.host = host
            guard (0...65535).contains(port) else { throw ToolError("--port must be from 0 to 65535, not \(port)", status: ExitStatus.usage) }
            configuration.port = port
            configuration.watchSeconds = watch
            guard shutdownDelay >= 0, shutdownDelay.isFinite, watch >= 0, watch.isFinite else {
                throw ToolError("--watch and --shutdown-delay must be 0 or more seconds", status: ExitStatus.usage)
            }
            configuration.shutdownDelaySeconds = shutdownDelay
            configuration.examplesPath = examples
            configuration.limits = try ServeLimits(maxBodyBytes: maxBodyBytes, maxPixels: maxPixels, maxTensorElements: maxTensorElements,
                                                   maxBatch: maxBatch, maxConcurrentRequests: maxConcurrent,
                                                   requestSeconds: requestTimeout, batchWaitSeconds: batchWaitMs / 1000)
            try await NNServer.run(configuration, importChoices: importChoices)
        }
    }
}

await runAsyncCommandLine(NNServeCommand.self, tool: "nn-serve")
