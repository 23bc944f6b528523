import Foundation
import NNCore
import NNConvert
import NNModelFiles
import NNPyTorch
import NNTestSupport
import Testing
@testable import NNONNX

/// Whether `python3` can import the real tools. CI installs them (`make setup`); there a missing
/// package must fail the test rather than skip it.
let pythonToolsReady: Bool = {
    if ProcessInfo.processInfo.environment["CI"] != nil { return true }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "-c", "import numpy, onnx, onnxruntime, safetensors"]
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    guard (try? process.run()) != nil else { return false }
    process.waitUntilExit()
    return process.terminationStatus == 0
}()

/// Runs check_exports.py on a request and returns its outputs by tool.
func runPythonCheck(_ request: [String: Any], directory: String) throws -> [String: [[Double]]] {
    let requestPath = "\(directory)/request.json"
    try JSONSerialization.data(withJSONObject: request).write(to: URL(fileURLWithPath: requestPath))
    var script = URL(fileURLWithPath: #filePath)
    script.deleteLastPathComponent()
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", script.appendingPathComponent("check_exports.py").path, requestPath]
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    let errData = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw PythonFailure(message: "python3 check_exports.py failed (\(process.terminationStatus)): \(String(decoding: errData, as: UTF8.self))")
    }
    return try JSONSerialization.jsonObject(with: outData) as! [String: [[Double]]]
}

struct PythonFailure: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

@Suite("exports read by onnxruntime and safetensors")
struct CrossToolPythonTests {
    @Test("same predictions within 1e-5", .enabled(if: pythonToolsReady, "needs python3 with numpy, onnx, onnxruntime and safetensors"),
          arguments: [
        ("blog zscore 784-32-10 f32", [784, 32, 10], [Activation.relu, .softmax],
         [PreprocessingStep.zscore(mean: "preprocessing.mean", std: "preprocessing.std")], DType.float32, 255.0),
        ("scale+offset, every activation", [12, 9, 7, 5, 3], [.sigmoid, .tanh, .relu, .softmax],
         [.scale(factor: 1.0 / 255, offset: -0.5)], .float32, 255),
        ("f64 identity output", [8, 6, 2], [.relu, .identity], [], .float64, 1),
        ("f16 weights, scale then zscore", [10, 4, 3], [.tanh, .softmax],
         [.scale(factor: 0.5, offset: 0), .zscore(mean: "preprocessing.mean", std: "preprocessing.std")], .float16, 4),
    ] as [(String, [Int], [Activation], [PreprocessingStep], DType, Double)])
    func agree(_ name: String, _ sizes: [Int], _ activations: [Activation], _ steps: [PreprocessingStep], _ dtype: DType,
               _ inputScale: Double) throws {
        let dir = scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = mlp(sizes, activations, preprocessing: steps, dtype: dtype, seed: sizes.reduce(0, +))
        try ONNXExport.write(model, to: "\(dir)/m.onnx")
        try SafetensorsExport.write(model, to: "\(dir)/m.safetensors")
        let x = inputs(5, sizes[0], scale: inputScale).map { row in row.map { Double(Float($0)) } }
        let ours = try predictions(model, x)
        let theirs = try runPythonCheck(["input": x, "onnx": "\(dir)/m.onnx", "safetensors": "\(dir)/m.safetensors"], directory: dir)
        let onnx = try #require(theirs["onnx"]), safetensors = try #require(theirs["safetensors"])
        #expect(maxDifference(onnx, ours) <= 1e-5, "\(name): onnxruntime differs by \(maxDifference(onnx, ours))")
        #expect(maxDifference(safetensors, ours) <= 1e-5, "\(name): safetensors + NumPy differs by \(maxDifference(safetensors, ours))")
    }
}
