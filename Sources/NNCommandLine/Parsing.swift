import ArgumentParser
import NNCore
import NNEngine

/// Parses "784,256,10".
public func parseIntegerList(_ text: String, option: String) throws -> [Int] {
    let parts = text.split(separator: ",", omittingEmptySubsequences: false)
    var values: [Int] = []
    for p in parts {
        guard let v = Int(p.trimmingCharacters()) else {
            throw ToolError("\(option) expects comma-separated integers, found '\(text)'", status: ExitStatus.usage)
        }
        values.append(v)
    }
    return values
}

/// Parses "relu,softmax" or "tanh,leaky_relu(alpha=0.1),log_softmax": activations by name (ELU
/// with alpha 1, exact GELU) or with their parameters (`Activation(argument:)`; leaky_relu needs
/// its slope). Which of them a tool can use is its own check (the trainer supports the basic five).
public func parseActivations(_ text: String) throws -> [Activation] {
    try text.split(separator: ",").map { name in
        guard let a = Activation(argument: name.trimmingCharacters()) else {
            let known = Activation.names.filter { Activation(name: $0) != nil }
            throw ToolError("--activations: unknown activation '\(name)' (expected \(known.joined(separator: ", ")), "
                            + "or leaky_relu(alpha=A), elu(alpha=A), relu(max_value=M), gelu(approximate=tanh))",
                            status: ExitStatus.usage)
        }
        return a
    }
}

/// Applies `--threads N`: how many threads matrix products may use (OpenBLAS's, and the
/// inference engine's one-sample helper when N >= 2). Nil leaves OpenBLAS's default, one per CPU.
public func applyThreadCount(_ n: Int?) throws {
    guard let n else { return }
    guard (1...64).contains(n) else {
        // 64: the most threads Debian's OpenBLAS is built for (MAX_THREADS).
        throw ToolError("--threads must be between 1 and 64, not \(n)", status: ExitStatus.usage)
    }
    BLAS.setThreadCount(n)
}

extension Substring {
    func trimmingCharacters() -> String {
        String(drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }
}


/// `--threads N`, shared by the tools that multiply matrices.
public struct ThreadOptions: ParsableArguments {
    @Option(help: "Threads for the matrix products (1-64; default: one per CPU; CNNs train on one).") public var threads: Int?

    public init() {}

    /// Checks the value and applies it (`applyThreadCount`).
    public func apply() throws { try applyThreadCount(threads) }
}
