import ArgumentParser
import NNCommandLine
import NNPlot
import NNCore
import NNEngine
import NNSystem

/// `nn-infer MODEL.nnm IMAGES.idx`: predict classes for IDX images with a `.nnm` model.
struct NNInfer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nn-infer",
        abstract: "Classify the images of an IDX file (plain or gzip) with a .nnm model.",
        discussion: """
            Prints each image's predicted class and its top-K probabilities; with --labels, also \
            the accuracy and a confusion matrix. Large inputs are streamed in batches with bounded memory.
            Exit status: 0 success, 64 usage, 65 malformed or mismatched input, 66 missing input, 70 internal error.
            """)

    @Argument(help: "The model (.nnm).") var model: String
    @Argument(help: "Images: an IDX file, e.g. t10k-images-idx3-ubyte.gz, or one 28x28 image.") var images: String
    @Option(name: .long, help: "IDX label file: report accuracy and a confusion matrix.") var labels: String?
    @Option(name: .long, help: "How many of the most probable classes to print per image.") var top: Int = 3
    @Option(name: .long, help: "Images per forward pass.") var batch: Int = 1024
    @Option(name: .long, help: "How many images to list one per line: a number or 'all'.") var show: String = "20"
    @Flag(name: .long, help: "Print one JSON document instead of text.") var json = false
    @Option(name: .long, help: "Compute precision: f32 or f64.") var precision: String = "f32"
    @Flag(name: .long, help: "Skip verifying tensor checksums (faster for huge models).") var noVerify = false
    @Flag(name: .long, help: "Show the model's raw outputs (logits or log-probabilities) instead of probabilities.") var raw = false
    @Option(name: .long, help: "With --labels: also draw the confusion matrix as an SVG picture to this file.") var confusionSvg: String?
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
            if confusionSvg != nil, labels == nil {
                throw ToolError("--confusion-svg needs --labels (the true classes)", status: ExitStatus.usage)
            }
            let run = try InferenceRun(modelPath: model, precision: precision, batchSize: batch, topK: top, verify: !noVerify, raw: raw)
            run.warnings().forEach { printError("nn-infer: \($0)") }
            let report = InferenceReport(model: run.model, modelPath: model, values: run.values)
            if json {
                let summary = try InferenceJSONPrinter(run: run, report: report).run(images: images, labels: labels)
                try writeConfusionChart(summary, classes: report.classes)
                return
            }
            var listed = 0
            let summary = try run.run(imagesPath: images, labelsPath: labels, onStart: { stream in
                print("model: \(model) (\(describe(run.model)))")
                print("input: \(images) (\(stream.imageCount) image\(stream.imageCount == 1 ? "" : "s") of \(ShapeMath.describe(stream.imageShape)))")
                if let explanation = run.values.explanation { print("outputs: \(explanation)") }
            }) { prediction in
                if listed < limit {
                    print(report.line(prediction))
                    listed += 1
                }
            }
            if summary.imageCount > listed { print("(\(summary.imageCount - listed) more not listed; --show all lists every image)") }
            report.summary(summary).forEach { print($0) }
            try writeConfusionChart(summary, classes: report.classes)
            if let confusionSvg { print("confusion matrix picture: \(confusionSvg)") }
        }
    }

    private func writeConfusionChart(_ summary: InferenceSummary, classes: [String]) throws {
        guard let confusionSvg, let matrix = summary.confusion else { return }
        let svg = try ConfusionMatrixChart.svg(matrix: matrix, classes: classes, title: "\(model) on \(images)")
        try AtomicFileWriter.write(Array(svg.utf8), to: confusionSvg)
    }
}

runCommandLine(NNInfer.self, tool: "nn-infer")
