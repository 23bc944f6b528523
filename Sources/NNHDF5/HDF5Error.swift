import NNSystem

/// Errors from reading and writing HDF5 files.
///
/// Every case names the file (as the caller spelled its path) and, where there is one, the object
/// inside it (`/model_weights/dense`, or `/model_weights (attribute 'layer_names')` for an
/// attribute). `description` is a single line meant for the user, for example
/// `model.h5: /W1: expected a floating-point dataset, found 'string'`.
public enum HDF5Error: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file could not be opened: it does not exist, is a directory, is not readable, or HDF5
    /// refused it (a truncated or damaged file, a lock held by another process).
    case cannotOpen(file: String, reason: String)
    /// The file could not be opened by the system: `errno` says why (missing, not readable, a
    /// directory).
    case inaccessible(file: String, errno: Errno, detail: String?)
    /// The file exists but has no HDF5 signature (`reason` says more, e.g. that it is empty).
    case notHDF5(file: String, reason: String?)
    /// Nothing exists at `object` (the first missing part of the requested path).
    case noSuchObject(file: String, object: String)
    /// The object exists but has no attribute with this name.
    case noSuchAttribute(file: String, object: String, attribute: String)
    /// The object is of another kind than the caller asked for, e.g. a dataset where a group was
    /// expected. `expected` and `found` are phrases such as "a group", "a dataset".
    case wrongKind(file: String, object: String, expected: String, found: String)
    /// The element type is not one the requested read supports. `expected` is a phrase such as
    /// "a floating-point dataset"; `found` is the element type's short name ("string", "int32").
    case typeMismatch(file: String, object: String, expected: String, found: String)
    /// Reading would need more memory or work than the `HDF5Limits` in force allow.
    case tooLarge(file: String, object: String, detail: String)
    /// The file holds something this library will not or cannot use: an external link, a dangling
    /// soft link, a rank above 32, groups nested deeper than the limit, a value out of range.
    case invalidContent(file: String, object: String, detail: String)
    /// The caller asked for something impossible: a shape that does not match the data, a name
    /// that already exists, a write to a read-only file.
    case invalidArgument(file: String, object: String, detail: String)
    /// An HDF5 library call failed; `detail` is taken from HDF5's error stack.
    case library(file: String, object: String, operation: String, detail: String)
    /// The file, or the object, was closed (e.g. used after `HDF5File.commit()`).
    case closed(file: String, object: String)
    /// Writing the new file, syncing it or renaming it into place failed.
    case writeFailed(file: String, reason: String)
    /// A system call of the atomic write failed (creating the temporary file, syncing, renaming);
    /// `errno` says why.
    case writeSystemCall(file: String, step: String, errno: Errno)

    /// The file path as the caller gave it.
    public var filePath: String {
        switch self {
        case let .cannotOpen(file, _), let .notHDF5(file, _), let .noSuchObject(file, _),
             let .noSuchAttribute(file, _, _), let .wrongKind(file, _, _, _),
             let .typeMismatch(file, _, _, _), let .tooLarge(file, _, _),
             let .invalidContent(file, _, _), let .invalidArgument(file, _, _),
             let .library(file, _, _, _), let .closed(file, _), let .writeFailed(file, _),
             let .inaccessible(file, _, _), let .writeSystemCall(file, _, _):
            return file
        }
    }

    /// The object inside the file the error is about, if any.
    public var objectPath: String? {
        switch self {
        case .cannotOpen, .notHDF5, .writeFailed, .inaccessible, .writeSystemCall:
            return nil
        case let .noSuchObject(_, object), let .noSuchAttribute(_, object, _),
             let .wrongKind(_, object, _, _), let .typeMismatch(_, object, _, _),
             let .tooLarge(_, object, _), let .invalidContent(_, object, _),
             let .invalidArgument(_, object, _), let .library(_, object, _, _),
             let .closed(_, object):
            return object.isEmpty ? nil : object
        }
    }

    public var description: String {
        let place = objectPath.map { "\(filePath): \($0)" } ?? filePath
        switch self {
        case let .cannotOpen(_, reason):
            return "\(place): cannot open: \(reason)"
        case let .inaccessible(_, errno, detail):
            return "\(place): cannot open: \(detail ?? errno.description)"
        case let .notHDF5(_, reason):
            return reason.map { "\(place): not an HDF5 file (\($0))" } ?? "\(place): not an HDF5 file"
        case .noSuchObject:
            return "\(place): no such object"
        case let .noSuchAttribute(_, _, attribute):
            return "\(place): no attribute '\(attribute)'"
        case let .wrongKind(_, _, expected, found):
            return "\(place): expected \(expected), found \(found)"
        case let .typeMismatch(_, _, expected, found):
            return "\(place): expected \(expected), found '\(found)'"
        case let .tooLarge(_, _, detail), let .invalidContent(_, _, detail),
             let .invalidArgument(_, _, detail):
            return "\(place): \(detail)"
        case let .library(_, _, operation, detail):
            return "\(place): \(operation): \(detail)"
        case .closed:
            return "\(place): the file has been closed"
        case let .writeFailed(_, reason):
            return "\(place): cannot write: \(reason); the previous file, if any, is unchanged"
        case let .writeSystemCall(_, step, errno):
            return "\(place): cannot write: \(step): \(errno); the previous file, if any, is unchanged"
        }
    }
}
