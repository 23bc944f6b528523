/// Remembers the first error a reader threw and throws it again on every later call.
///
/// For readers of a stream: after an error their position in the data is unknown, so reading
/// on could only produce misaligned records. Keep one as a `var` beside the reader's state.
public struct FirstFailure {
    /// The error that stopped the reader, if one did.
    public private(set) var error: (any Error)?

    public init() {}

    /// Runs `body` unless an earlier call failed; keeps the error `body` throws.
    public mutating func run<T>(_ body: () throws -> T) throws -> T {
        if let error { throw error }
        do {
            return try body()
        } catch {
            self.error = error
            throw error
        }
    }
}
