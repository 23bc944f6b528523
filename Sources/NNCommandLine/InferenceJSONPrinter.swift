import NNCore

/// Prints an inference run as one JSON document, streaming predictions as they come so that
/// memory stays bounded for any number of images.
public struct InferenceJSONPrinter {
    let run: InferenceRun
    let report: InferenceReport

    public init(run: InferenceRun, report: InferenceReport) {
        self.run = run
        self.report = report
    }

    @discardableResult
    public func run(images: String, labels: String?) throws -> InferenceSummary {
        var first = true
        let summary = try run.run(imagesPath: images, labelsPath: labels, onStart: { stream in
            let head = JSONObject([("model", .string(run.modelPath)), ("input", .string(images)),
                                   ("classes", .array(report.classes.map { .string($0) })),
                                   ("image_shape", .array(stream.imageShape.map { .integer(Int64($0)) })),
                                   ("output_kind", .string(run.model.metadata.outputKind.rawValue)),
                                   ("conversion", .string(run.values.conversionName(outputs: run.model.metadata.outputSize)))])
            var text = JSONValue.object(head).serialized()
            text.removeLast()  // reopen the object to append the predictions
            print(text + ",\"predictions\":[", terminator: "")
        }) { prediction in
            print((first ? "\n" : ",\n") + report.json(prediction).serialized(), terminator: "")
            first = false
        }
        var tail = JSONValue.object(report.json(summary)).serialized()
        tail.removeFirst()
        print("\n]," + tail)
        return summary
    }
}
