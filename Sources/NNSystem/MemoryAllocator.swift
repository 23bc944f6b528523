import Glibc
internal import CNNSystem

/// Settings of the C library's allocator (glibc malloc) for the whole process.
public enum MemoryAllocator {
    /// Caps glibc's malloc arenas at `count`, unless the environment sets `MALLOC_ARENA_MAX`
    /// (the user's choice wins). Call it once at start, before threads allocate.
    ///
    /// Why: glibc gives each thread that meets a locked arena a new one, up to eight per core,
    /// and each arena keeps the memory freed in it. A server's event loops and forward passes
    /// allocate on many threads; two arenas bound that. (nn-serve's soak, 10 minutes at 64
    /// connections, stayed at 36-41 MiB with this setting; BENCHMARKS.md.)
    /// - Returns: whether the setting was made (false: left to the environment, or refused).
    @discardableResult
    public static func limitArenas(to count: Int32) -> Bool {
        if getenv("MALLOC_ARENA_MAX") != nil { return false }
        return nn_limit_malloc_arenas(count) == 1
    }
}
