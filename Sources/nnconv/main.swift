import ArgumentParser
import NNCommandLine
import NNConvert
import NNCore
import NNFormat
import NNModelFiles
import NNPlot
import NNSystem

/// `nnconv`: convert models between the files people have and `.nnm`; inspect, validate, diff.
/// Every file goes through the format registry (`ModelFiles.registry`).
struct NNConv: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nnconv",
        abstract: "Convert neural-network weight files to and from .nnm; inspect, validate and compare them.",
        discussion: "Exit status: 0 success, 1 the models differ (diff), 64 usage, 65 malformed input, 66 missing input, 73/74 cannot write.",
        subcommands: [Import.self, Export.self, Inspect.self, Validate.self, Diff.self, Quantize.self])
}

/// A subcommand that reads files: the supervising parent names them if a library crashes on one.
protocol ReadsFiles {
    var inputFiles: [String] { get }
}

extension ImportChoices {
    /// The options, parsed and checked.
    func importOptions() throws -> ImportOptions {
        var options = ImportOptions()
        options.layout = layout
        if let activations { options.activations = try parseActivations(activations) }
        if let scale { options.scale = try parseScale(scale) }
        switch normalize {
        case nil:
            if stats != nil { throw ToolError("--stats needs --normalize zscore", status: ExitStatus.usage) }
        case "zscore":
            guard let stats else { throw ToolError("--normalize zscore needs --stats TRAIN-IMAGES.idx to compute the mean and std", status: ExitStatus.usage) }
            options.zscore = try zscoreStatistics(imagesPath: stats)
        case let other?:
            throw ToolError("--normalize: unknown value '\(other)' (expected zscore)", status: ExitStatus.usage)
        }
        if let inputShape { options.inputShape = try parseShape(inputShape, option: "--input-shape") }
        if let classNames { options.classNames = classNames.split(separator: ",").map(String.init) }
        if let layerOrder { options.layerOrder = layerOrder.split(separator: ",").map(String.init) }
        if let arch { options.architecture = try FeatureStage.parseList(arch, option: "--arch") }
        if let maxTensorBytes {
            guard maxTensorBytes > 0 else { throw ToolError("--max-tensor-bytes must be positive, not \(maxTensorBytes)", status: ExitStatus.usage) }
            options.maxTensorBytes = maxTensorBytes
        }
        return options
    }
}

struct Import: ParsableCommand, ReadsFiles {
    static let configuration = CommandConfiguration(
        abstract: "Convert an h5py/NumPy blog file (.h5, .npz), a Keras model (.h5, .keras), Keras weights, a PyTorch .safetensors state dict or an ONNX model to .nnm.")

    @Argument(help: "The file to convert.") var source: String
    @Option(name: .shortAndLong, help: "Output .nnm path (default: SOURCE with the extension .nnm).") var output: String?
    @OptionGroup var choices: ImportChoices
    @Flag(help: "Print the result as JSON.") var json = false

    var inputFiles: [String] { [source] + [choices.stats].compactMap { $0 } }

    func run() throws {
        try reportingErrors(tool: "nnconv import") {
            let options = try choices.importOptions()
            let destination = output ?? replacingExtension(of: source, with: NNMFormat.fileExtension)
            guard destination != source else { throw ToolError("\(source): is already .nnm; give -o OUT.nnm", status: ExitStatus.usage) }
            let result = try ModelFiles.importModel(path: source, options: options)
            try NNMFormat.write(result.validated, to: destination)
            // What the validation found goes with the decisions: a NaN weight is worth a word.
            let notes = result.notes + result.warnings.map { "warning: \($0)" }
            if json {
                print(JSONValue.object(JSONObject([("source", .string(source)), ("output", .string(destination)),
                                                   ("format", .string(result.format)),
                                                   ("notes", .array(notes.map { .string($0) }))])).serialized(indent: 2))
            } else {
                print("\(source): \(result.format)")
                notes.forEach { print("  note: \($0)") }
                print("wrote \(destination) (\(describe(result.model)))")
            }
        }
    }
}

struct Export: ParsableCommand, ReadsFiles {
    static let configuration = CommandConfiguration(
        abstract: "Write a .nnm model as HDF5 (.h5) or NumPy (.npz) that h5py/NumPy code loads directly, as safetensors or .pth for PyTorch, as ONNX, or as a Keras model (.keras, or .h5 with --keras).")

    @Argument(help: "The .nnm model.") var model: String
    @Option(name: .shortAndLong, help: "Output file: .h5, .npz, .safetensors, .pth, .onnx or .keras.") var output: String
    @Option(help: "rows (W in x out, b 1 x out; seeds 000/002) or columns (W out x in, b out x 1; seeds 001/003).") var layout: WeightLayout = .rows
    @Flag(help: "With an .h5 output: a legacy Keras file that keras.saving.load_model loads.") var keras = false

    var inputFiles: [String] { [model] }

    func run() throws {
        try reportingErrors(tool: "nnconv export") {
            // Any format but .nnm itself: a .nnm is exported to the others.
            guard let format = try? ModelFiles.registry.format(forOutput: output), !(format is NNMModelFormat) else {
                throw ToolError("\(output): the output must end in .h5, .npz, .safetensors, .pth, .onnx or .keras", status: ExitStatus.usage)
            }
            if keras, !(format is HDF5ModelFormat) {
                throw ToolError("--keras: the output must end in .h5 (a .keras output is always a Keras model)", status: ExitStatus.usage)
            }
            let m = try NNMFormat.open(path: model).validated
            let result = try format.export(m, to: output, options: ExportOptions(layout: layout, keras: keras))
            result.notes.forEach { print("  note: \($0)") }
            print("wrote \(output) (\(result.summary))")
        }
    }
}

struct Quantize: ParsableCommand, ReadsFiles {
    static let configuration = CommandConfiguration(
        abstract: "Write a copy of a .nnm model with smaller weights: int8 (the default) or bfloat16 (--bf16).",
        discussion: """
            int8: every dense and conv2d weight as i8 with one f32 scale per output (symmetric, format 1.3); nn-infer \
            quantizes activations per row at run time and sums in int32, or, with --calibration, with one scale and zero \
            point per layer fitted to the range of that layer's inputs over the given images (format 1.4). --bf16: weights \
            rounded to bfloat16. --weight-bits 7: int8 weights in -63...63, which CPUs without VNNI multiply exactly \
            with vpmaddubsw, 1.3x-1.7x faster than the full range (every CPU gives the same results either way). \
            With --images and --labels (IDX files), prints the accuracy of the original and of the new \
            model on them. Exit status: 0 success, 64 usage, 65 malformed input, 66 missing input, 73/74 cannot write.
            """)

    @Argument(help: "The .nnm model.") var model: String
    @Option(name: .shortAndLong, help: "Output .nnm path.") var output: String
    @Flag(help: "bfloat16 weights (rounded to nearest even) instead of int8.") var bf16 = false
    @Option(help: ArgumentHelp("Bits of each int8 weight: 8 (-127...127) or 7 (-63...63, faster on CPUs without VNNI).",
                               valueName: "bits")) var weightBits: Int?
    @Option(help: "IDX images to measure the accuracy of both models on (needs --labels).") var images: String?
    @Option(help: "IDX labels of --images.") var labels: String?
    @Option(help: ArgumentHelp("IDX images (int8) to fit each layer's activation scale and zero point to, instead of measuring every row at run time.",
                               valueName: "images")) var calibration: String?
    @Option(help: ArgumentHelp("With --calibration: the share of each layer's inputs its range covers, leaving out the extremes (100: minimum to maximum).",
                               valueName: "percent")) var percentile: Double?

    var inputFiles: [String] { [model] + [images, labels, calibration].compactMap { $0 } }

    func run() throws {
        try reportingErrors(tool: "nnconv quantize") {
            guard (images == nil) == (labels == nil) else {
                throw ToolError("--images and --labels go together (the accuracy needs both)", status: ExitStatus.usage)
            }
            guard !(bf16 && calibration != nil) else {
                throw ToolError("--calibration applies to int8 (bf16 keeps activations in floating point)", status: ExitStatus.usage)
            }
            if let percentile {
                guard calibration != nil else { throw ToolError("--percentile applies to --calibration", status: ExitStatus.usage) }
                guard percentile > 50 && percentile <= 100 else {
                    throw ToolError("--percentile must be above 50 and at most 100, not \(percentile)", status: ExitStatus.usage)
                }
            }
            if let weightBits {
                guard !bf16 else { throw ToolError("--weight-bits applies to int8 (bf16 weights have 16 bits)", status: ExitStatus.usage) }
                guard weightBits == 7 || weightBits == 8 else {
                    throw ToolError("--weight-bits must be 7 or 8, not \(weightBits)", status: ExitStatus.usage)
                }
            }
            let percentile = percentile ?? ActivationCalibration.defaultPercentile
            guard output != model else { throw ToolError("\(output): would overwrite the model; give another -o", status: ExitStatus.usage) }
            let original = try NNMFormat.open(path: model).validated
            let kind = bf16 ? "bf16" : weightBits == 7 ? "int8 (7-bit weights)" : "int8"
            let calibrated = try calibration.map { try ActivationCalibration.run(model: original.model, modelPath: model, imagesPath: $0, percentile: percentile) }
            let (quantized, converted) = bf16 ? Quantization.bfloat16(original.model, sourcePath: model)
                : try Quantization.int8(original.model, sourcePath: model, inputs: calibrated?.inputs ?? [:], weightBits: weightBits ?? 8)
            try NNMFormat.write(quantized, to: output)
            print("wrote \(output) (\(describe(quantized)); \(kind): \(converted.isEmpty ? "no weight to convert" : converted.joined(separator: ", ")))")
            if let calibration, let calibrated {
                let layers = quantized.metadata.layers.filter { $0.inputQuantization != nil }.count
                print("activations of \(layers) layer\(layers == 1 ? "" : "s") calibrated on \(calibrated.images) image\(calibrated.images == 1 ? "" : "s") of \(calibration) "
                      + "(\(percentile) % of each layer's inputs in range)")
            }
            if let images, let labels {
                let before = try InferenceRun.accuracy(modelPath: model, imagesPath: images, labelsPath: labels)
                let after = try InferenceRun.accuracy(modelPath: output, imagesPath: images, labelsPath: labels)
                print("accuracy on \(images): original \(formatDecimal(before * 100, digits: 2)) %, \(kind) \(formatDecimal(after * 100, digits: 2)) % "
                      + "(\(formatDecimal((after - before) * 100, digits: 2)) percentage points)")
            }
        }
    }
}

struct Inspect: ParsableCommand, ReadsFiles {
    static let configuration = CommandConfiguration(abstract: "Show the groups, tensors, shapes, dtypes and metadata of any supported file.")

    @Argument(help: "The file.") var file: String
    @Flag(help: "Print JSON.") var json = false
    @Option(help: "Also draw the first convolution layer's filters as an SVG grid to this file.") var plot: String?

    var inputFiles: [String] { [file] }

    func run() throws {
        try reportingErrors(tool: "nnconv inspect") {
            let inspection = try ModelFiles.inspect(path: file)
            if json { print(inspection.json.serialized(indent: 2)) } else { inspection.render().forEach { print($0) } }
            if let plot {
                let svg = try FilterGrid.svg(firstConvolutionOf: try ModelFiles.importModel(path: file).model, path: file)
                try AtomicFileWriter.write(Array(svg.utf8), to: plot)
                if !json { print("filters: \(plot)") }
            }
        }
    }
}

struct Validate: ParsableCommand, ReadsFiles {
    static let configuration = CommandConfiguration(
        abstract: "Fully check a file: every structure, checksum and shape; exit 0 when valid, 65 when not.")

    @Argument(help: "The file (.nnm, or any file nnconv imports).") var file: String

    var inputFiles: [String] { [file] }

    func run() throws {
        try reportingErrors(tool: "nnconv validate") {
            try ModelFiles.validate(path: file).forEach { print($0) }
        }
    }
}

struct Diff: ParsableCommand, ReadsFiles {
    static let configuration = CommandConfiguration(
        abstract: "Compare two models tensor by tensor (any supported formats); with --data, their predictions too.")

    @Argument(help: "First model.") var a: String
    @Argument(help: "Second model.") var b: String
    @Option(help: "IDX images to compare predictions on.") var data: String?
    @Option(help: "Compare at most this many images.") var limit: Int?
    @Option(help: "Largest absolute difference counted as equal.") var tolerance: Double = 0
    @OptionGroup var choices: ImportChoices

    var inputFiles: [String] { [a, b] + [data].compactMap { $0 } }

    func run() throws {
        try reportingErrors(tool: "nnconv diff") {
            let options = try choices.importOptions()
            let ma = try ModelFiles.importModel(path: a, options: options).model
            let mb = try ModelFiles.importModel(path: b, options: options).model
            var comparison = ModelComparison(ma, mb)
            if let data { try comparison.measureAgreement(ma, mb, imagesPath: data, limit: limit) }
            comparison.render(nameA: a, nameB: b, tolerance: tolerance).forEach { print($0) }
            if !comparison.isEquivalent(tolerance: tolerance) { throw ExitCode(ExitStatus.failure) }
        }
    }
}

// The command line is parsed first; then a crash inside libhdf5 on one of the files it names is
// reported by the supervising parent as a corrupt input.
do {
    var command = try NNConv.parseAsRoot()
    IsolatedRun.superviseUnlessWorker(tool: "nnconv", inputs: (command as? ReadsFiles)?.inputFiles ?? [])
    try command.run()
} catch {
    exitReportingUsageError(NNConv.self, tool: "nnconv", error: error)
}
