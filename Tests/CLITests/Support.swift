import Foundation
import NNCore
import NNFormat

/// The package root, found from this file's path.
let packageRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
}()

/// The directory holding the built executables: the one the test bundle runs from.
let productsDirectory: String = {
    let exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    var dir = exe.deletingLastPathComponent()
    // swift-testing on Linux runs `<name>PackageTests.xctest` from the products directory.
    while !FileManager.default.fileExists(atPath: dir.appendingPathComponent("nn-infer").path), dir.path != "/" {
        dir.deleteLastPathComponent()
    }
    return dir.path
}()

struct ProcessResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs a program and collects its output, waiting on a thread of its own while it holds one of
/// the `ProgramSlots`.
///
/// The tests run on Swift's cooperative pool, which has one thread per CPU: a test that blocked one
/// of them for the minutes some commands take would starve every other suite (the server tests'
/// requests among them) on a two-CPU machine.
func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) async throws -> ProcessResult {
    try await ProgramSlots.shared.holding {
        try await onOwnThread { try runWaiting(executable, arguments, environment: environment) }
    }
}

/// Runs `body`, which blocks, on a new thread, and waits for it without holding a thread of the pool.
func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}

/// How many programs the tests run at once: one per CPU. Async tests all start together, so
/// without a bound every command-line test would start its programs at the same moment, and
/// what a test times (the kill trials' window) would measure the crowd.
actor ProgramSlots {
    static let shared = ProgramSlots(count: max(2, ProcessInfo.processInfo.activeProcessorCount))

    private var free: Int
    private var waiting: [CheckedContinuation<Void, Never>] = []

    init(count: Int) { free = count }

    /// Runs `body` once a slot is free, and frees it after.
    func holding<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        if free > 0 {
            free -= 1
        } else {
            await withCheckedContinuation { waiting.append($0) }
        }
        defer {
            if waiting.isEmpty { free += 1 } else { waiting.removeFirst().resume() }
        }
        return try await body()
    }
}

/// Runs a program and collects its output, blocking the calling thread: for what must be known
/// before the tests start (a trait's condition), where nothing else is running yet.
func runWaiting(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws -> ProcessResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable.hasPrefix("/") ? executable : "\(productsDirectory)/\(executable)")
    process.arguments = arguments
    if let environment { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    // Read both pipes before waiting so a large output cannot block the child.
    final class Box: @unchecked Sendable { var data = Data() }
    let errBox = Box()
    let group = DispatchGroup()
    group.enter()
    DispatchQueue.global().async {
        errBox.data = err.fileHandleForReading.readDataToEndOfFile()
        group.leave()
    }
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    group.wait()
    let errData = errBox.data
    process.waitUntilExit()
    return ProcessResult(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                         stderr: String(decoding: errData, as: UTF8.self))
}

func python(_ arguments: [String]) async throws -> ProcessResult {
    try await run("/usr/bin/env", ["python3"] + arguments)
}

func temporaryDirectory() -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("nnm-cli-\(UUID().uuidString)")
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir.path
}

let fashionTestImages = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
let fashionTestLabels = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz"
let mnistTestImages = "\(packageRoot)/../shared/data/mnist/t10k-images-idx3-ubyte.gz"
let mnistTestLabels = "\(packageRoot)/../shared/data/mnist/t10k-labels-idx1-ubyte.gz"

/// A deterministic 784-32-10 model with z-score preprocessing, built from integer formulas so a
/// NumPy reader can check it independently.
func formulaModel() -> Model {
    func values(_ n: Int, _ f: (Int) -> Int, _ divisor: Float) -> [Float] { (0..<n).map { Float(f($0)) / divisor } }
    let w0 = values(784 * 32, { ($0 * 7919) % 97 - 48 }, 400)
    let b0 = values(32, { $0 % 5 - 2 }, 10)
    let w1 = values(32 * 10, { ($0 * 104_729) % 89 - 44 }, 100)
    let b1 = values(10, { $0 % 3 }, 10)
    let mean = values(784, { $0 % 200 }, 2)
    let std = values(784, { $0 % 13 == 0 ? 0 : 20 + $0 % 50 }, 1)
    let meta = ModelMetadata(
        input: InputSpec(shape: [28, 28]),
        layers: [Layer.dense(index: 0, inputSize: 784, outputSize: 32, activation: .relu),
                 Layer.dense(index: 1, inputSize: 32, outputSize: 10, activation: .softmax)],
        preprocessing: [.zscore(mean: "preprocessing.mean", std: "preprocessing.std")],
        classes: ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
        provenance: Provenance(tool: "tests", created: "2026-11-24T00:00:00Z"))
    return Model(metadata: meta, tensors: [
        NamedTensor("layers.0.weight", Tensor(w0, shape: [784, 32])), NamedTensor("layers.0.bias", Tensor(b0, shape: [32])),
        NamedTensor("layers.1.weight", Tensor(w1, shape: [32, 10])), NamedTensor("layers.1.bias", Tensor(b1, shape: [10])),
        NamedTensor("preprocessing.mean", Tensor(mean, shape: [784])), NamedTensor("preprocessing.std", Tensor(std, shape: [784])),
    ])
}

/// Starts a program in a process group of its own (so a test can kill it and any child it
/// spawned at once) and returns its pid.
func spawnInNewGroup(_ executable: String, _ arguments: [String]) -> pid_t {
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
    posix_spawnattr_setpgroup(&attributes, 0)
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    let path = "\(productsDirectory)/\(executable)"
    var argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
    defer {
        argv.forEach { free($0) }
        posix_spawnattr_destroy(&attributes)
        posix_spawn_file_actions_destroy(&actions)
    }
    var pid = pid_t()
    let status = posix_spawn(&pid, path, &actions, &attributes, &argv, environ)
    precondition(status == 0, "posix_spawn failed: \(status)")
    return pid
}
