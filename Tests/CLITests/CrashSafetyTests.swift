import Foundation
import NNCore
import NNFormat
import Testing

/// Kills the tools with SIGKILL at random moments while they overwrite a model, and fills the
/// disk under them: the file on disk must always be the complete old model or a complete new one.
@Suite(.serialized) struct CrashSafety {
    let dir = temporaryDirectory()

    enum Outcome { case old, new }

    /// Times one run of `timing` (the same work as `arguments`, another output), then runs
    /// `arguments` `trials` times, killing the process group after a random delay up to 1.2 times
    /// that, and classifies the file at `target` after each kill. All of it holds one program slot
    /// on a thread of its own, so the timing and the kills see the same machine.
    func killTrials(_ tool: String, _ arguments: [String], timing: [String], target: String, oldBytes: Data, trials: Int,
                    isNew: @escaping @Sendable (Model) -> Bool) async throws -> (outcomes: [Outcome], problems: [String]) {
        try await ProgramSlots.shared.holding {
            try await onOwnThread {
                let started = Date()
                let timed = try runWaiting(tool, timing)
                guard timed.status == 0 else { return ([], ["the timing run failed (\(timed.status)): \(timed.stderr)"]) }
                let window = Date().timeIntervalSince(started) * 1.2
                var generator = SystemRandomNumberGenerator()
                var outcomes: [Outcome] = [], problems: [String] = []
                for trial in 0..<trials {
                    FileManager.default.createFile(atPath: target, contents: oldBytes)
                    let pid = spawnInNewGroup(tool, arguments)
                    usleep(UInt32(Double.random(in: 0...window, using: &generator) * 1_000_000))
                    kill(-pid, SIGKILL)
                    var status: Int32 = 0
                    waitpid(pid, &status, 0)
                    let now = FileManager.default.contents(atPath: target)
                    if now == oldBytes {
                        outcomes.append(.old)
                    } else if let model = try? NNMFormat.read(path: target, verifyChecksums: true), isNew(model) {
                        outcomes.append(.new)
                    } else {
                        problems.append("trial \(trial): \(target) is neither the old model nor a complete new one (\(now?.count ?? -1) bytes)")
                    }
                }
                return (outcomes, problems)
            }
        }
    }

    @Test func killingNnconvNeverLeavesAHalfWrittenModel() async throws {
        let old = "\(dir)/old.nnm"
        try NNMFormat.write(formulaModel(), to: old)
        let oldBytes = FileManager.default.contents(atPath: old)!
        let target = "\(dir)/target.nnm"
        let source = "\(packageRoot)/Fixtures/interop/blog_rows_mnist_784_16_10_f32.h5"
        let trials = try await killTrials("nnconv", ["import", source, "-o", target], timing: ["import", source, "-o", "\(dir)/timing.nnm"],
                                          target: target, oldBytes: oldBytes, trials: 100) { $0.metadata.provenance.sourceFile == source }
        #expect(trials.problems.isEmpty, "\(trials.problems)")
        #expect(trials.outcomes.count == 100)
        print("nnconv kill trials: \(trials.outcomes.filter { $0 == .old }.count) old, \(trials.outcomes.filter { $0 == .new }.count) new")
    }

    @Test func killingNnTrainNeverLeavesAHalfWrittenModel() async throws {
        _ = try writeQuadrantIDX(in: dir, train: 400, test: 50)
        let old = "\(dir)/old.nnm"
        try NNMFormat.write(formulaModel(), to: old)
        let oldBytes = FileManager.default.contents(atPath: old)!
        let target = "\(dir)/trained.nnm"
        let arguments = ["--data", dir, "--layers", "16,64,4", "--epochs", "4", "--batch", "8", "--save", target]
        let trials = try await killTrials("nn-train", arguments, timing: arguments, target: target, oldBytes: oldBytes, trials: 100) {
            $0.metadata.provenance.tool.hasPrefix("nn-train") && $0.metadata.layers.count == 2
        }
        #expect(trials.problems.isEmpty, "\(trials.problems)")
        #expect(trials.outcomes.count == 100)
        print("nn-train kill trials: \(trials.outcomes.filter { $0 == .old }.count) old, \(trials.outcomes.filter { $0 == .new }.count) new (checkpoints)")
    }

    /// `ulimit -f` makes writes fail with EFBIG, as a full disk fails them with ENOSPC.
    func runLimited(_ kilobytes: Int, _ tool: String, _ arguments: [String]) async throws -> ProcessResult {
        let command = (["\(productsDirectory)/\(tool)"] + arguments).map { "'\($0)'" }.joined(separator: " ")
        return try await run("/bin/bash", ["-c", "ulimit -f \(kilobytes); exec \(command)"])
    }

    @Test func aFullDiskGivesAClearErrorAndKeepsTheOldModel() async throws {
        let model = "\(dir)/formula.nnm"
        try NNMFormat.write(formulaModel(), to: model)
        let h5 = "\(dir)/formula.h5"
        #expect(try await run("nnconv", ["export", model, "-o", h5]).status == 0)
        let target = "\(dir)/existing.nnm"
        FileManager.default.createFile(atPath: target, contents: Data("old model".utf8))
        let result = try await runLimited(20, "nnconv", ["import", h5, "-o", target])
        #expect(result.status == 74, "\(result.stderr)")
        #expect(result.stderr == "nnconv import: \(target): write failed: File too large; the previous file, if any, is unchanged\n")
        #expect(FileManager.default.contents(atPath: target) == Data("old model".utf8))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.contains(".tmp-") }
        #expect(leftovers.isEmpty, "\(leftovers)")

        let h5Target = "\(dir)/existing.h5"
        FileManager.default.createFile(atPath: h5Target, contents: Data("old h5".utf8))
        let export = try await runLimited(20, "nnconv", ["export", model, "-o", h5Target])
        #expect(export.status == 74, "\(export.stderr)")
        #expect(export.stderr.hasPrefix("nnconv export: \(h5Target): cannot write: "))
        #expect(FileManager.default.contents(atPath: h5Target) == Data("old h5".utf8))
    }
}
