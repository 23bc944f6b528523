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
        try run(input: .idx(path: images), labels: labels)
    }

    /// Runs `input`; `onPrediction` also sees each prediction (to collect a submission file).
    @discardableResult
    public func run(input: InferenceInput, labels: String?,
                    onPrediction: (ImagePrediction) throws -> Void = { _ in }) throws -> InferenceSummary {
        var first = true
        let summary = try run.run(input: input, labelsPath: labels, onStart: { description in
            var head = JSONObject([("model", .string(run.modelPath)), ("input", .string(input.path)),
                                   ("classes", .array(report.classes.map { .string($0) })),
                                   ("image_shape", .array(description.shape.map { .integer(Int64($0)) })),
                                   ("output_kind", .string(run.model.metadata.outputKind.rawValue)),
                                   ("conversion", .string(run.values.conversionName(outputs: run.model.metadata.outputSize)))])
            if let mode = input.samples?.preprocess { head["preprocess"] = .string(mode.rawValue) }
            if let conversion = run.conversion {
                head["model_format"] = .string(conversion.format)
                head["model_notes"] = .array(conversion.notes.map { .string($0) })
            }
            var text = JSONValue.object(head).serialized()
            text.removeLast()  // reopen the object to append the predictions
            print(text + ",\"predictions\":[", terminator: "")
        }) { prediction in
            print((first ? "\n" : ",\n") + report.json(prediction).serialized(), terminator: "")
            first = false
            try onPrediction(prediction)
        }
        var tail = JSONValue.object(report.json(summary)).serialized()
        tail.removeFirst()
        print("\n]," + tail)
        return summary
    }
}
