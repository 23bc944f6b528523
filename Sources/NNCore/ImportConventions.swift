/// What an import needs to know that a file may not record. These two live here, below the
/// converter, because the command-line option groups that every tool shares name them.

/// How a blog-style file stores its matrices.
public enum WeightLayout: String, CaseIterable, Sendable {
    /// Samples as rows: `W (in, out)`, `b (1, out)`, `Z = X @ W + b` (seeds 000 and 002).
    case rows
    /// Samples as columns: `W (out, in)`, `b (out, 1)`, `Z = W @ X + b` (seeds 001 and 003, Nielsen).
    case columns
}

/// The total bytes an import may read from tensor data (decompressed), unless the user raises
/// it (`ImportOptions.maxTensorBytes`, `nnconv import --max-tensor-bytes`): a file that declares
/// more is refused before anything is read.
public let defaultMaxTensorBytes = 8 << 30
