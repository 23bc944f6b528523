import ArgumentParser
import NNCommandLine
import NNCore
import NNFormat
import NNInterop
import NNONNX

/// `nnconv`: convert models between the files people have and `.nnm`; inspect, validate, diff.
struct NNConv: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nnconv",
        abstract: "Convert neural-network weight files to and from .nnm; inspect, validate and compare them.",
        discussion: "Exit status: 0 success, 1 the models differ (diff), 64 usage, 65 malformed input, 66 missing input, 73/74 cannot write.",
        subcommands: [Import.self, Export.self, Inspect.self, Validate.self, Diff.self])
}

struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert an h5py/NumPy blog file (.h5, .npz), a Keras model (.h5, .keras), Keras weights, a PyTorch .safetensors state dict or an ONNX model to .nnm.")

    @Argument(help: "The file to convert.") var source: String
    @Option(name: .shortAndLong, help: "Output .nnm path (default: SOURCE with the extension .nnm).") var output: String?
    @Option(help: "Orientation of blog matrices: rows (W in x out) or columns (W out x in); inferred when unambiguous.") var layout: String?
    @Option(help: "One activation per layer, e.g. relu,softmax (blog files do not record them).") var activations: String?
    @Option(help: "Store input scaling, e.g. 1/255.") var scale: String?
    @Option(help: "Store input normalization: zscore (needs --stats).") var normalize: String?
    @Option(help: "IDX training images to compute the z-score statistics from, as the blog's normalize() did.") var stats: String?
    @Option(help: "Shape of one input, e.g. 28x28.") var inputShape: String?
    @Option(help: "Comma-separated output class names.") var classNames: String?
    @Option(help: "Order of named PyTorch layers when their shapes do not tell it, e.g. fc1,fc2,fc3.") var layerOrder: String?
    @Flag(help: "Print the result as JSON.") var json = false

    func run() throws {
        try reportingErrors(tool: "nnconv import") {
            var options = ImportOptions()
            if let layout { options.layout = try parseChoice(layout, option: "--layout", as: WeightLayout.self) }
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
            let destination = output ?? replacingExtension(of: source, with: NNMFormat.fileExtension)
            guard destination != source else { throw ToolError("\(source): is already .nnm; give -o OUT.nnm", status: ExitStatus.usage) }
            let result = try AnyFormat.importModel(path: source, options: options)
            try NNMFormat.write(result.model, to: destination)
            if json {
                print(JSONValue.object(JSONObject([("source", .string(source)), ("output", .string(destination)),
                                                   ("format", .string(result.format)),
                                                   ("notes", .array(result.notes.map { .string($0) }))])).serialized(indent: 2))
            } else {
                print("\(source): \(result.format)")
                result.notes.forEach { print("  note: \($0)") }
                print("wrote \(destination) (\(describe(result.model)))")
            }
        }
    }
}

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a .nnm model as HDF5 (.h5) or NumPy (.npz) that h5py/NumPy code loads directly, as safetensors for PyTorch, or as ONNX.")

    @Argument(help: "The .nnm model.") var model: String
    @Option(name: .shortAndLong, help: "Output file: .h5, .npz, .safetensors or .onnx.") var output: String
    @Option(help: "rows (W in x out, b 1 x out; seeds 000/002) or columns (W out x in, b out x 1; seeds 001/003).") var layout: String = "rows"

    func run() throws {
        try reportingErrors(tool: "nnconv export") {
            let layout = try parseChoice(layout, option: "--layout", as: WeightLayout.self)
            let npz = output.hasSuffix(".npz")
            guard npz || output.hasSuffix(".h5") || output.hasSuffix(".hdf5") || output.hasSuffix(".safetensors") || output.hasSuffix(".onnx") else {
                throw ToolError("\(output): the output must end in .h5, .npz, .safetensors or .onnx", status: ExitStatus.usage)
            }
            let m = try NNMFormat.read(path: model)
            if output.hasSuffix(".safetensors") {
                try SafetensorsExport.write(m, to: output)
                print("wrote \(output) (PyTorch \(SafetensorsExport.pytorchModule(for: m.metadata)); .nnm metadata in __metadata__)")
                return
            }
            if output.hasSuffix(".onnx") {
                let notes = try ONNXExport.write(m, to: output)
                notes.forEach { print("  note: \($0)") }
                print("wrote \(output) (ONNX opset \(ONNXExport.opset): input '\(ONNXExport.inputName)' [batch, \(m.metadata.input.features)], output '\(ONNXExport.outputName)' [batch, \(m.metadata.outputSize)])")
                return
            }
            if npz {
                try NumPyExport.write(m, to: output, layout: layout)
            } else {
                try HDF5Export.write(m, to: output, layout: layout)
            }
            print("wrote \(output) (\(layout.rawValue) layout: \(m.metadata.layers.indices.map { "W\($0 + 1), b\($0 + 1)" }.joined(separator: ", ")))")
        }
    }
}

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the groups, tensors, shapes, dtypes and metadata of any supported file.")

    @Argument(help: "The file.") var file: String
    @Flag(help: "Print JSON.") var json = false
    @Option(help: "Also draw the first convolution layer's filters as an SVG grid to this file.") var plot: String?

    func run() throws {
        try reportingErrors(tool: "nnconv inspect") {
            let inspection = try AnyFormat.inspect(path: file)
            if json { print(inspection.json.serialized(indent: 2)) } else { inspection.render().forEach { print($0) } }
            if let plot {
                let svg = try Inspection.filterPicture(try AnyFormat.importModel(path: file).model, path: file)
                try AtomicFileWriter.write(Array(svg.utf8), to: plot)
                if !json { print("filters: \(plot)") }
            }
        }
    }
}

struct Validate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fully check a file: every structure, checksum and shape; exit 0 when valid, 65 when not.")

    @Argument(help: "The file (.nnm, or any file nnconv imports).") var file: String

    func run() throws {
        try reportingErrors(tool: "nnconv validate") {
            try AnyFormat.validate(path: file).forEach { print($0) }
        }
    }
}

struct Diff: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare two models tensor by tensor (any supported formats); with --data, their predictions too.")

    @Argument(help: "First model.") var a: String
    @Argument(help: "Second model.") var b: String
    @Option(help: "IDX images to compare predictions on.") var data: String?
    @Option(help: "Compare at most this many images.") var limit: Int?
    @Option(help: "Largest absolute difference counted as equal.") var tolerance: Double = 0
    @Option(help: "Orientation for blog files (as for import).") var layout: String?
    @Option(help: "Activations for files that do not record them (as for import).") var activations: String?

    func run() throws {
        try reportingErrors(tool: "nnconv diff") {
            var options = ImportOptions()
            if let layout { options.layout = try parseChoice(layout, option: "--layout", as: WeightLayout.self) }
            if let activations { options.activations = try parseActivations(activations) }
            let ma = try AnyFormat.importModel(path: a, options: options).model
            let mb = try AnyFormat.importModel(path: b, options: options).model
            var comparison = ModelComparison(ma, mb)
            if let data { try comparison.measureAgreement(ma, mb, imagesPath: data, limit: limit) }
            comparison.render(nameA: a, nameB: b, tolerance: tolerance).forEach { print($0) }
            if !comparison.isEquivalent(tolerance: tolerance) { throw ExitCode(ExitStatus.failure) }
        }
    }
}

// Positional arguments are the files read; a crash inside libhdf5 on one of them is reported
// by the supervising parent as a corrupt input.
let optionsWithValues: Set<String> = ["-o", "--output", "--layout", "--activations", "--scale", "--normalize", "--stats",
                                      "--input-shape", "--class-names", "--layer-order", "--data", "--limit", "--tolerance", "--plot"]
var inputFiles: [String] = []
var previous = ""
for argument in CommandLine.arguments.dropFirst(2) {
    if !argument.hasPrefix("-"), !optionsWithValues.contains(previous) { inputFiles.append(argument) }
    previous = argument
}
IsolatedRun.superviseUnlessWorker(tool: "nnconv", inputs: inputFiles)
NNConv.main()
