import NNSystem
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Something bytes can be pulled from in caller-sized pieces: a file, a decompressor, memory.
///
/// Sources are classes because they own a position (and often a descriptor or zlib state) that
/// must not be copied.
public protocol ByteSource: AnyObject {
    /// The name errors mention, usually the file path.
    var name: String { get }

    /// Fills `buffer` from the current position and returns how many bytes it wrote.
    ///
    /// Fills the whole buffer unless the data ends first, so a short count means the end was
    /// reached and 0 means there was nothing left.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int
}

extension ByteSource {
    /// Reads everything that is left, refusing more than `maxBytes`.
    ///
    /// Memory grows with the data actually read, never with a size a header claims: `sizeHint`
    /// only picks the first allocation (it is clamped to `maxBytes`), so a right hint means one
    /// allocation and no copying.
    public func readAll(maxBytes: Int, sizeHint: Int? = nil) throws -> [UInt8] {
        precondition(maxBytes >= 0, "maxBytes must not be negative")
        var capacity = min(maxBytes, max(0, sizeHint ?? (1 << 16)))
        var result: [UInt8] = []
        var pending: UInt8? = nil
        while true {
            var ended = false
            let previous = result
            result = []
            result = try [UInt8](unsafeUninitializedCapacity: capacity) { buffer, count in
                count = 0
                previous.withUnsafeBufferPointer { old in
                    if let base = old.baseAddress {
                        buffer.baseAddress!.update(from: base, count: old.count)
                        count = old.count
                    }
                }
                if let byte = pending {
                    buffer[count] = byte
                    count += 1
                }
                let raw = UnsafeMutableRawBufferPointer(buffer)
                while count < capacity {
                    let n = try read(into: UnsafeMutableRawBufferPointer(rebasing: raw[count...]))
                    if n == 0 {
                        ended = true
                        break
                    }
                    count += n
                }
            }
            pending = nil
            if ended { return result }
            // The buffer is exactly full: one more byte tells the end from a need to grow.
            var probe: UInt8 = 0
            let n = try withUnsafeMutableBytes(of: &probe) { try read(into: $0) }
            if n == 0 { return result }
            if capacity >= maxBytes {
                throw CompressionError.tooLarge(name: name, limit: maxBytes, decompressed: self is InflateStream)
            }
            pending = probe
            capacity = min(maxBytes, max(capacity * 2, capacity + 1, 1 << 16))
        }
    }
}

/// Reads a file descriptor: a whole file, or a byte range of it (a zip member).
public final class FileByteSource: ByteSource {
    public let name: String
    /// The descriptor read from.
    public let descriptor: Int32
    private let closesDescriptor: Bool
    /// The next offset for `pread` when reading a range; `nil` reads sequentially.
    private var offset: Int?
    /// Bytes left in the range; `nil` reads to the end of the file.
    private var remaining: Int?
    /// Bytes `peek` read ahead that `read` has not handed out yet.
    private var lookahead: [UInt8] = []

    /// Opens `path` for reading; errors name `displayName` (the path when `nil`).
    public init(path: String, displayName: String? = nil) throws {
        let name = displayName ?? path
        var fd: Int32
        repeat {
            fd = open(path, O_RDONLY | O_CLOEXEC)
        } while fd < 0 && errno == EINTR
        guard fd >= 0 else {
            throw CompressionError.system(SystemError(path: name, operation: .open))
        }
        self.name = name
        self.descriptor = fd
        self.closesDescriptor = true
    }

    /// Reads from an open descriptor.
    ///
    /// With `offset`, reads use `pread` from there on and leave the descriptor's own position
    /// alone, so several sources can share one descriptor; `length` stops after that many bytes.
    public init(descriptor: Int32, name: String, closesDescriptor: Bool = false,
                offset: Int? = nil, length: Int? = nil) {
        precondition(offset.map { $0 >= 0 } ?? true, "offset must not be negative")
        precondition(length.map { $0 >= 0 } ?? true, "length must not be negative")
        self.name = name
        self.descriptor = descriptor
        self.closesDescriptor = closesDescriptor
        self.offset = offset
        self.remaining = length
    }

    deinit {
        if closesDescriptor { close(descriptor) }
    }

    /// The size of the underlying file when it is a regular file, else `nil` (a pipe, a terminal).
    public var fileSize: Int? {
        var info = stat()
        guard fstat(descriptor, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        return Int(info.st_size)
    }

    /// Reads `count` bytes at `offset` without moving the read position (regular files only).
    public func readBytes(atOffset position: Int, count: Int) throws -> [UInt8] {
        try [UInt8](unsafeUninitializedCapacity: count) { buffer, got in
            got = 0
            while got < count {
                let n = pread(descriptor, buffer.baseAddress! + got, count - got, off_t(position + got))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw CompressionError.system(SystemError(path: name, operation: .read))
                }
                if n == 0 { break }
                got += n
            }
        }
    }

    /// Returns the next `count` bytes (fewer at the end) without consuming them, so a format can
    /// be sniffed even on a pipe.
    public func peek(_ count: Int) throws -> [UInt8] {
        if lookahead.count < count {
            let more = try [UInt8](unsafeUninitializedCapacity: count - lookahead.count) { buffer, got in
                got = try readDirect(into: UnsafeMutableRawBufferPointer(buffer), untilFull: true)
            }
            lookahead += more
        }
        return Array(lookahead.prefix(count))
    }

    /// Reads what has arrived, at least one byte unless the data has ended (then 0): bytes
    /// `peek` kept, else a single `read(2)`, which on a pipe returns as soon as the writer has
    /// written something. A stream reader uses it to work on records as they come instead of
    /// waiting for a full buffer.
    public func readSome(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard buffer.count > 0 else { return 0 }
        // Only what peek kept: reading on could wait for bytes the writer has not sent.
        if !lookahead.isEmpty { return takeLookahead(into: buffer) }
        return try readDirect(into: buffer, untilFull: false)
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard buffer.count > 0 else { return 0 }
        let filled = takeLookahead(into: buffer)
        if filled == buffer.count { return filled }
        return filled + (try readDirect(into: UnsafeMutableRawBufferPointer(rebasing: buffer[filled...]), untilFull: true))
    }

    /// Moves the bytes `peek` read ahead into `buffer`, as many as fit; returns how many.
    private func takeLookahead(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        let n = min(lookahead.count, buffer.count)
        guard n > 0 else { return 0 }
        lookahead.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: n) }
        lookahead.removeFirst(n)
        return n
    }

    /// Reads from the descriptor: until `buffer` is full or the data ends (`untilFull`; pipes
    /// return short reads long before their end, hence the loop), or one successful call.
    private func readDirect(into buffer: UnsafeMutableRawBufferPointer, untilFull: Bool) throws -> Int {
        var want = buffer.count
        if let left = remaining { want = min(want, left) }
        var got = 0
        while got < want {
            let n: Int
            if let position = offset {
                n = pread(descriptor, buffer.baseAddress! + got, want - got, off_t(position))
            } else {
                n = readDescriptor(descriptor, buffer.baseAddress! + got, want - got)
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw CompressionError.system(SystemError(path: name, operation: .read))
            }
            if n == 0 { break }
            got += n
            if let position = offset { offset = position + n }
            if !untilFull { break }
        }
        if let left = remaining { remaining = left - got }
        return got
    }
}

/// `read(2)`; a free function because inside a source's `read(into:)` the name means the method.
private func readDescriptor(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
    read(fd, buffer, count)
}

/// Serves bytes from an array, for data already in memory.
public final class MemoryByteSource: ByteSource {
    public let name: String
    private let bytes: [UInt8]
    private var position = 0

    public init(_ bytes: [UInt8], name: String) {
        self.bytes = bytes
        self.name = name
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = min(buffer.count, bytes.count - position)
        guard n > 0 else { return 0 }
        bytes.withUnsafeBytes { src in
            buffer.baseAddress!.copyMemory(from: src.baseAddress! + position, byteCount: n)
        }
        position += n
        return n
    }
}

/// Serves bytes from memory the caller keeps alive (only used inside a `withUnsafe...` scope).
final class RawBufferSource: ByteSource {
    let name: String
    private let bytes: UnsafeRawBufferPointer
    private var position = 0

    init(_ bytes: UnsafeRawBufferPointer, name: String) {
        self.bytes = bytes
        self.name = name
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = min(buffer.count, bytes.count - position)
        guard n > 0 else { return 0 }
        buffer.baseAddress!.copyMemory(from: bytes.baseAddress! + position, byteCount: n)
        position += n
        return n
    }
}
