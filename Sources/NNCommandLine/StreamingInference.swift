import NNCore
import NNData
import NNEngine

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `nn-infer MODEL -`: classifies a stream of records as they arrive and writes one JSON object
/// per record and line (JSON Lines), the batch's lines written together as each batch is done,
/// so that a consumer downstream (a Dask or Spark worker reading the pipe) sees results while
/// the producer is still writing. Memory stays at one batch for any length of stream.
///
/// Each line is `--json`'s prediction object (`InferenceReport.json`: `index`, `class`, `name`
/// when the model names its classes, `top`), followed by the members a JSON Lines record
/// carried besides its `"pixels"`. Lines written are always whole; if the stream turns out to
/// be bad (a truncated last record), the records before it have their lines and the error
/// names the stream and the record.
public struct StreamingInference {
    let run: InferenceRun
    let report: InferenceReport
    /// The descriptor the lines go to (standard output).
    let output: Int32

    public init(run: InferenceRun, report: InferenceReport, output: Int32 = 1) {
        self.run = run
        self.report = report
        self.output = output
    }

    /// Opens `path` (`-`: standard input) as a `RecordStream` of `format` and classifies it.
    @discardableResult
    public static func run(_ run: InferenceRun, path: String, format: RecordFormat?) throws -> InferenceSummary {
        let stream = try RecordStream(path: path, inputShape: run.model.metadata.input.shape, format: format,
                                      batchSize: run.batchSize)
        let report = InferenceReport(model: run.model, modelPath: run.modelPath, values: run.values)
        return try StreamingInference(run: run, report: report).run(stream: stream)
    }

    /// Classifies every record of `stream`, batch by batch.
    @discardableResult
    public func run(stream: RecordStream) throws -> InferenceSummary {
        let started = Clock.monotonicSeconds()
        var summary = InferenceSummary()
        switch run.precision {
        case .float32:
            let engine = try InferenceEngine<Float>(model: run.model)
            summary.kernels = engine.kernelDescription
            while let batch = try stream.nextBatch() {
                let t0 = Clock.monotonicSeconds()
                let out = engine.predict(raw: batch.features, count: batch.count)
                summary.computeSeconds += Clock.monotonicSeconds() - t0
                try emit(out, batch: batch, summary: &summary)
            }
        case .float64:
            let engine = try InferenceEngine<Double>(model: run.model)
            summary.kernels = engine.kernelDescription
            while let batch = try stream.nextBatch() {
                let input = batch.features.map(Double.init)
                let t0 = Clock.monotonicSeconds()
                let out = engine.predict(raw: input, count: batch.count)
                summary.computeSeconds += Clock.monotonicSeconds() - t0
                try emit(out, batch: batch, summary: &summary)
            }
        }
        summary.totalSeconds = Clock.monotonicSeconds() - started
        return summary
    }

    private func emit<S: BLASScalar>(_ out: [S], batch: RecordBatch, summary: inout InferenceSummary) throws {
        var text: [UInt8] = []
        text.reserveCapacity(batch.count * 200)
        try out.withUnsafeBufferPointer { out in
            try run.report(out, startIndex: batch.startIndex, labels: nil, sources: nil, summary: &summary) { prediction in
                var line = report.json(prediction)
                if let carried = batch.carried?[prediction.index - batch.startIndex], !carried.isEmpty, case var .object(object) = line {
                    for member in carried { object[member.key] = member.value }
                    line = .object(object)
                }
                line.write(into: &text)
                text.append(UInt8(ascii: "\n"))
            }
        }
        try writeAll(text)
    }

    private func writeAll(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = write(output, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw ToolError("stdout: write failed: \(String(cString: strerror(errno)))", status: ExitStatus.ioError)
                }
                offset += n
            }
        }
    }
}
