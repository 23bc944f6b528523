import ArgumentParser
import NNCommandLine
import NNPlot
import NNCore
import NNEngine
import NNImage
import NNSystem

/// `nn-infer MODEL INPUT`: predict classes with a model (`.nnm`, or converted by nnconv) for IDX images, pictures, a
/// folder of pictures, a Kaggle CSV or a `.npy` array.
struct NNInfer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nn-infer",
        abstract: "Classify images with a model (.nnm, or any file nnconv imports): an IDX file, a picture, a folder of pictures, a Kaggle CSV or a .npy array.",
        discussion: """
            Prints each image's predicted class and its top-K probabilities; with --labels (or a CSV \
            label column), also the accuracy and a confusion matrix. IDX files are streamed in batches \
            with bounded memory. Pictures (.png, .jpg, .jpeg, .pgm, .ppm; at most 50 megapixels) are \
            made gray and preprocessed: by default with MNIST's procedure for a 28x28 one-channel model. \
            A model that is not .nnm (.h5, .keras, .npz, .pth, .safetensors, .onnx) is converted by \
            nnconv (beside nn-infer or on PATH) for this run, with the import options below; its notes go \
            to standard error.
            Streaming: 'nn-infer MODEL -' reads standard input (IDX or .npy, told by the magic, gzip or not; \
            raw records of the model's input size with --records u8 or f32; JSON Lines with --records jsonl, \
            each line an object with "pixels" whose other members are carried to the output) and writes one \
            JSON object per record and line (index, class, top as in --json), a batch at a time as records \
            arrive (--batch, default 256 here), with bounded memory. Standard error stays quiet unless \
            something fails; a truncated last record or a header's count not met is exit status 65, after \
            the complete lines of the records before it.
            Exit status: 0 success (every record classified), 64 usage, 65 malformed or mismatched input, 66 missing input, \
            69 nnconv not found or OpenBLAS (f64) cannot be loaded, 70 internal error, \
            73 an output (--csv-out, --save-preprocessed, --confusion-svg) cannot be created, 74 writing it (or standard output) failed.
            """)

    @Argument(help: "The model: .nnm, or any file nnconv imports (converted for this run).") var model: String
    @Argument(help: "Images: an IDX file (e.g. t10k-images-idx3-ubyte.gz), a picture, a folder of pictures (sorted by name), a CSV (label,pixel0,... or pixel0,...) or a .npy of shape (N,28,28) or (N,784); '-' streams standard input as JSON Lines.") var images: String
    @Option(name: .long, help: "IDX label file: report accuracy and a confusion matrix.") var labels: String?
    @Option(name: .long, help: "How many of the most probable classes to print per image.") var top: Int = 3
    @Option(name: .long, help: "Images per forward pass (default 1024; 256 for a stream).") var batch: Int?
    @Option(name: .long, help: "Stream raw records instead of IDX or .npy: u8 (a byte per value), f32 (little-endian float32) or jsonl (JSON Lines with \"pixels\"); the input is then streamed even if it is a file.") var records: RecordFormat?
    @Option(name: .long, help: "How many images to list one per line: a number or 'all'.") var show: String = "20"
    @Flag(name: .long, help: "Print one JSON document instead of text.") var json = false
    @Option(name: .long, help: "Compute precision: f32 or f64.") var precision: String = "f32"
    @Flag(name: .long, help: "Skip verifying tensor checksums (faster for huge models).") var noVerify = false
    @Flag(name: .long, help: "Show the model's raw outputs (logits or log-probabilities) instead of probabilities.") var raw = false
    @Option(name: .long, help: "With --labels: also draw the confusion matrix as an SVG picture to this file.") var confusionSvg: String?
    @Option(name: .long, help: "How pictures become the model's input: mnist (LeCun's procedure), fit (scale and pad) or none (exact size). Default: mnist for a 28x28 one-channel model, else fit.") var preprocess: PreprocessMode?
    @Option(name: .long, help: "Write each picture as the model saw it (after preprocessing) as PNG into this folder.") var savePreprocessed: String?
    @Option(name: .long, help: "Write the predictions as Kaggle's submission CSV (ImageId,Label) to this file.") var csvOut: String?
    @Flag(name: .long, help: "Refuse a model that is not .nnm instead of converting it with nnconv.") var requireNnm = false
    @OptionGroup(title: "Converting a model that is not .nnm (as nnconv import takes them)") var importChoices: ImportChoices
    @OptionGroup var threadOptions: ThreadOptions

    func run() throws {
        try reportingErrors(tool: "nn-infer") {
            guard let precision = Precision(rawValue: precision) else {
                throw ToolError("--precision must be f32 or f64, not '\(self.precision)'", status: ExitStatus.usage)
            }
            let limit: Int
            if show == "all" { limit = .max } else if let n = Int(show), n >= 0 { limit = n } else {
                throw ToolError("--show must be a non-negative number or 'all', not '\(show)'", status: ExitStatus.usage)
            }
            try threadOptions.apply()
            if images == "-" || records != nil {
                let refused = [("--labels", labels != nil), ("--confusion-svg", confusionSvg != nil), ("--csv-out", csvOut != nil),
                               ("--save-preprocessed", savePreprocessed != nil), ("--preprocess", preprocess != nil)]
                if let option = refused.first(where: { $0.1 })?.0 {
                    throw ToolError("\(option) does not apply to a stream of records (nn-infer MODEL -)", status: ExitStatus.usage)
                }
                let run = try InferenceRun(modelPath: model, precision: precision, batchSize: batch ?? 256, topK: top, verify: !noVerify,
                                           raw: raw, importChoices: importChoices, requireNNM: requireNnm)
                run.warnings(includingNotes: false).forEach { printError("nn-infer: \($0)") }
                try StreamingInference.run(run, path: images, format: records)
                return
            }
            if confusionSvg != nil, labels == nil {
                throw ToolError("--confusion-svg needs --labels (the true classes)", status: ExitStatus.usage)
            }
            let run = try InferenceRun(modelPath: model, precision: precision, batchSize: batch ?? 1024, topK: top, verify: !noVerify, raw: raw,
                                       importChoices: importChoices, requireNNM: requireNnm)
            run.warnings().forEach { printError("nn-infer: \($0)") }
            let report = InferenceReport(model: run.model, modelPath: model, values: run.values)
            // A submission that cannot be created is refused before any work (the probe leaves nothing).
            if let csvOut { try AtomicFileWriter(path: csvOut).discard() }
            let input = try InferenceInput.open(path: images, inputShape: run.model.metadata.input.shape, preprocess: preprocess,
                                                classes: report.classes)
            if preprocess != nil, input.samples?.preprocess == nil {
                throw ToolError("--preprocess applies to pictures; \(images) is not a picture or a folder of pictures", status: ExitStatus.usage)
            }
            input.samples?.notes.forEach { printError("nn-infer: note: \($0)") }
            if let savePreprocessed {
                guard let samples = input.samples else {
                    throw ToolError("--save-preprocessed needs pictures, a CSV or a .npy, not an IDX file", status: ExitStatus.usage)
                }
                try samples.savePictures(to: savePreprocessed)
            }
            var predicted: [Int] = []
            if json {
                let summary = try InferenceJSONPrinter(run: run, report: report).run(input: input, labels: labels) { predicted.append($0.predicted) }
                try writeConfusionChart(summary, classes: report.classes)
                try writeSubmission(predicted)
                return
            }
            var listed = 0
            let summary = try run.run(input: input, labelsPath: labels, onStart: { description in
                print("model: \(model) (\(describe(run.model)))")
                print("input: \(images) (\(description.count) image\(description.count == 1 ? "" : "s") of \(ShapeMath.describe(description.shape)))")
                if let mode = input.samples?.preprocess { print("preprocess: \(mode.rawValue)\(mode == .mnist ? " (MNIST's procedure: gray, ink on black, cropped, fit in 20x20, centred by mass in 28x28)" : "")") }
                if let explanation = run.values.explanation { print("outputs: \(explanation)") }
            }) { prediction in
                predicted.append(prediction.predicted)
                if listed < limit {
                    print(report.line(prediction))
                    listed += 1
                }
            }
            if summary.imageCount > listed { print("(\(summary.imageCount - listed) more not listed; --show all lists every image)") }
            report.summary(summary).forEach { print($0) }
            try writeConfusionChart(summary, classes: report.classes)
            if let confusionSvg { print("confusion matrix picture: \(confusionSvg)") }
            try writeSubmission(predicted)
            if let csvOut { print("submission: \(csvOut)") }
            if let savePreprocessed { print("preprocessed pictures: \(savePreprocessed)") }
        }
    }

    private func writeSubmission(_ predicted: [Int]) throws {
        guard let csvOut else { return }
        try AtomicFileWriter.write(KaggleCSV.submission(predicted), to: csvOut)
    }

    private func writeConfusionChart(_ summary: InferenceSummary, classes: [String]) throws {
        guard let confusionSvg, let matrix = summary.confusion else { return }
        let svg = try ConfusionMatrixChart.svg(matrix: matrix, classes: classes, title: "\(model) on \(images)")
        try AtomicFileWriter.write(Array(svg.utf8), to: confusionSvg)
    }
}

runCommandLine(NNInfer.self, tool: "nn-infer")
