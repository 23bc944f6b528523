import NNCore
import NNCompression
import NNZip

/// The arrays of a NumPy `.npz` archive (what `np.savez` and `np.savez_compressed` write): a zip
/// whose members are `.npy` files named after the arrays.
///
/// Every member must be a valid `.npy` array; `np.load` would hand back anything else as raw
/// bytes, but a weight file with such a member is damaged, so reading fails and names it.
/// Zip-level damage throws `ZipError`, array-level problems `NumPyFileError`.
public struct NumPyArchive: Sendable {
    /// One array with the member it came from.
    public struct Member: Sendable {
        /// The array's name: the member name without its ".npy" suffix, as `np.load` keys it.
        public let name: String
        /// The zip member's name, e.g. "W1.npy".
        public let memberName: String
        /// The array itself.
        public let array: NumPyArray
    }

    /// The key under which the converter stores its JSON metadata string.
    public static let metadataKey = "nnm_metadata"

    /// The name messages start with.
    public let path: String
    /// The arrays in the order the archive stores them.
    public let members: [Member]

    /// The array names in stored order.
    public var names: [String] { members.map(\.name) }

    /// The array called `name`, if any.
    public subscript(name: String) -> NumPyArray? {
        members.first { $0.name == name }?.array
    }

    /// Reads every array of an `.npz`.
    ///
    /// Stored members are read with `pread` straight into each tensor's storage and deflated
    /// ones are inflated straight into it, with CRC-32s checked on the way; nothing is read
    /// before the sizes that bound it have been checked against `limits`.
    ///
    /// - Parameter displayName: the name messages start with; `path` when nil.
    public static func read(path: String, displayName: String? = nil,
                            limits: NumPyLimits = .default) throws -> NumPyArchive {
        let index = try index(path: path, displayName: displayName, limits: limits)
        let members = try index.entries.map { entry in
            Member(name: entry.name, memberName: entry.memberName, array: try index.array(entry))
        }
        return NumPyArchive(path: index.path, members: members)
    }

    /// Lists the arrays of an `.npz` from their `.npy` headers alone: a deflated member is
    /// inflated only as far as its header, so a member that declares gigabytes costs nothing
    /// until `Index.array(named:)` reads it.
    public static func index(path: String, displayName: String? = nil,
                             limits: NumPyLimits = .default) throws -> Index {
        let zip = try ZipArchive(path: path, displayName: displayName, limits: limits.zip)
        var total = 0
        for entry in zip.entries {
            let (sum, overflow) = total.addingReportingOverflow(entry.uncompressedSize)
            total = overflow ? Int.max : sum
        }
        if total > limits.maxTotalBytes {
            throw NumPyFileError.archiveTooLarge(file: zip.path, bytes: total, limit: limits.maxTotalBytes)
        }
        var entries: [Index.Entry] = []
        var byName: [String: String] = [:]
        for entry in zip.entries {
            let name = entry.name.hasSuffix(".npy") ? String(entry.name.dropLast(4)) : entry.name
            if let first = byName[name] {
                throw NumPyFileError.duplicateArray(file: zip.path, name: name, firstMember: first, secondMember: entry.name)
            }
            byName[name] = entry.name
            let reader = try zip.openMember(entry)
            let declaration = try NPYDecoder.declaration(source: reader, length: entry.uncompressedSize,
                                                         location: NumPyLocation(file: zip.path, member: entry.name), limits: limits)
            entries.append(Index.Entry(name: name, memberName: entry.name, declaration: declaration, zipEntry: entry))
        }
        return Index(zip: zip, entries: entries, limits: limits)
    }

    /// The arrays of an `.npz` as their headers declare them; data is read on request.
    public final class Index {
        /// One array: its names and its declaration.
        public struct Entry: Sendable {
            public let name: String
            public let memberName: String
            public let declaration: NumPyDeclaration
            let zipEntry: ZipEntry
        }

        public let entries: [Entry]
        public var path: String { zip.path }
        private let zip: ZipArchive
        private let limits: NumPyLimits

        init(zip: ZipArchive, entries: [Entry], limits: NumPyLimits) {
            self.zip = zip
            self.entries = entries
            self.limits = limits
        }

        /// The entry called `name`, if any.
        public subscript(name: String) -> Entry? { entries.first { $0.name == name } }

        /// Reads one array completely (CRC-32 checked).
        public func array(named name: String) throws -> NumPyArray? {
            guard let entry = self[name] else { return nil }
            return try array(entry)
        }

        /// Reads one entry's array completely (CRC-32 checked).
        public func array(_ entry: Entry) throws -> NumPyArray {
            let reader = try zip.openMember(entry.zipEntry)
            let array = try NPYDecoder.decode(source: reader, length: entry.zipEntry.uncompressedSize,
                                              location: NumPyLocation(file: zip.path, member: entry.memberName), limits: limits)
            try reader.finish()
            return array
        }
    }

    /// Writes an `.npz` atomically, one `name.npy` member per array in the given order.
    ///
    /// Uncompressed (`compressed: false`) matches `np.savez`; compressed uses deflate like
    /// `np.savez_compressed`. Either way `np.load` reads it without `allow_pickle`.
    public static func write(_ arrays: [(name: String, value: NumPyValue)], to path: String,
                             compressed: Bool = false, level: Int = -1) throws {
        let zip = try ZipWriter(path: path)
        for (name, value) in arrays {
            try NumPyFile.withParts(of: value, name: name, file: path) { parts in
                try zip.addMember(name: name + ".npy", parts: parts,
                                  method: compressed ? .deflate : .stored, level: level)
            }
        }
        try zip.finish()
    }

    /// Writes tensors, and optionally a metadata string stored as a 0-d unicode array under
    /// `metadataKey` (so `str(np.load(f)['nnm_metadata'])` returns it), atomically.
    public static func write(tensors: [NamedTensor], metadata: String? = nil, to path: String,
                             compressed: Bool = false, level: Int = -1) throws {
        var arrays: [(name: String, value: NumPyValue)] = tensors.map { ($0.name, .tensor($0.tensor)) }
        if let metadata { arrays.append((metadataKey, .string(metadata))) }
        try write(arrays, to: path, compressed: compressed, level: level)
    }
}
