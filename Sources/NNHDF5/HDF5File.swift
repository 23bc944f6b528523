internal import CHDF5
import NNSystem
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

private func openDescriptor(_ path: String, _ flags: Int32) -> Int32 {
    open(path, flags)
}

private func closeDescriptor(_ descriptor: Int32) {
    _ = close(descriptor)
}

/// An open HDF5 file; it is also the file's root group (`/`), so file attributes are the root
/// group's attributes, as in h5py.
///
/// Reading:
///
///     let file = try HDF5File.open(path: "model.h5")
///     let names = try file.group("model_weights").stringArrayAttribute("layer_names")
///     let kernel = try file.dataset("model_weights/dense/dense/kernel:0").readFloats()
///
/// Writing is atomic: readers of `path` see the old file or the complete new one, never a part.
///
///     try HDF5File.createAtomically(path: "out.h5") { file in
///         try file.createDataset("W", floats: weights, shape: [784, 256])
///         try file.setAttribute("format", .string("nnm"))
///     }
public final class HDF5File: HDF5Group {
    /// For files from `create(path:)`: the atomic write the data goes to until `commit()`.
    private let writer: AtomicFileWriter?
    private var committed = false

    private init(state: FileState, rootID: hid_t, writer: AtomicFileWriter?) {
        self.writer = writer
        super.init(state: state, id: rootID, path: "/")
    }

    deinit {
        if writer != nil && !committed { discard() }
    }

    /// Whether the file accepts writes (files from `create(path:)` until committed).
    public var isWritable: Bool { state.writable && state.fileOpen }

    /// Opens an existing file for reading.
    ///
    /// Throws `HDF5Error.cannotOpen` for a missing, unreadable or damaged file and
    /// `HDF5Error.notHDF5` for a file that is not HDF5 at all (including an empty file).
    public static func open(path: String, limits: HDF5Limits = .default) throws -> HDF5File {
        prepareHDF5()
        if path.utf8.contains(0) {
            throw HDF5Error.cannotOpen(file: path, reason: "the path contains a NUL byte")
        }
        // The system's view first, as a typed errno: missing, unreadable, a directory, empty.
        let probe: ReadOnlyFile
        do {
            probe = try ReadOnlyFile(path: path)
        } catch {
            throw HDF5Error.inaccessible(file: path, errno: error.errno, detail: error.errno == .isDirectory ? "it is a directory" : error.detail)
        }
        if probe.size == 0 { throw HDF5Error.notHDF5(file: path, reason: "the file is empty") }

        let access = nn_create_file_access(H5F_CLOSE_WEAK)
        guard access >= 0 else {
            throw HDF5Error.cannotOpen(file: path, reason: takeHDF5ErrorMessage())
        }
        defer { _ = H5Pclose(access) }
        let fileID = H5Fopen(path, nn_H5F_ACC_RDONLY(), access)
        guard fileID >= 0 else {
            let message = takeHDF5ErrorMessage()
            let signature = nn_is_hdf5(path)
            _ = H5Eclear2(nn_H5E_DEFAULT())
            if signature == 0 { throw HDF5Error.notHDF5(file: path, reason: nil) }
            throw HDF5Error.cannotOpen(file: path, reason: message)
        }
        return try wrap(fileID: fileID, displayPath: path, limits: limits, writable: false, writer: nil)
    }

    /// Creates a new, empty file that will replace `path` when `commit()` is called.
    ///
    /// The data goes to a temporary file in the same directory. `commit()` flushes and closes it,
    /// fsyncs it, renames it over `path` and fsyncs the directory. If the returned value goes away
    /// without `commit()` (or `close()` is called), the temporary file is removed and `path` is
    /// untouched. Prefer `createAtomically(path:limits:_:)`, which does all of this.
    public static func create(path: String, limits: HDF5Limits = .default) throws -> HDF5File {
        prepareHDF5()
        if path.utf8.contains(0) {
            throw HDF5Error.writeFailed(file: path, reason: "the path contains a NUL byte")
        }
        guard !path.hasSuffix("/") else {
            throw HDF5Error.writeFailed(file: path, reason: "the path names a directory, not a file")
        }
        let writer: AtomicFileWriter
        do {
            writer = try AtomicFileWriter(path: path)
        } catch {
            throw HDF5Error.writeSystemCall(file: path, step: "cannot create a temporary file in \(AtomicFileWriter.directory(of: path))",
                                            errno: error.errno)
        }
        // libhdf5 writes the temporary file by name; the writer syncs and renames it on commit.
        writer.releaseDescriptor()
        let temporaryPath = writer.temporaryPath

        let access = nn_create_file_access(H5F_CLOSE_STRONG)
        guard access >= 0 else { throw HDF5Error.writeFailed(file: path, reason: takeHDF5ErrorMessage()) }
        defer { _ = H5Pclose(access) }
        let fileID = H5Fcreate(temporaryPath, nn_H5F_ACC_TRUNC(), nn_H5P_DEFAULT(), access)
        guard fileID >= 0 else { throw HDF5Error.writeFailed(file: path, reason: takeHDF5ErrorMessage()) }
        return try wrap(fileID: fileID, displayPath: path, limits: limits, writable: true, writer: writer)
    }

    /// Creates the file at `path` atomically: runs `body` on a new file written to a temporary
    /// path, then commits it (flush, close, fsync, rename, fsync of the directory). If `body` or
    /// the commit throws, the temporary file is removed and `path` is left as it was.
    ///
    /// Objects obtained inside `body` are closed by the commit; using them afterwards throws
    /// `HDF5Error.closed`.
    @discardableResult
    public static func createAtomically<T>(path: String, limits: HDF5Limits = .default,
                                           _ body: (HDF5File) throws -> T) throws -> T {
        let file = try create(path: path, limits: limits)
        do {
            let result = try body(file)
            try file.commit()
            return result
        } catch {
            file.close()
            throw error
        }
    }

    private static func wrap(fileID: hid_t, displayPath: String, limits: HDF5Limits, writable: Bool,
                             writer: AtomicFileWriter?) throws -> HDF5File {
        let linkAccess = nn_create_safe_link_access(16)
        guard linkAccess >= 0 else {
            let message = takeHDF5ErrorMessage()
            _ = H5Fclose(fileID)
            throw HDF5Error.cannotOpen(file: displayPath, reason: message)
        }
        // From here on the state owns both identifiers.
        let state = FileState(displayPath: displayPath, fileID: fileID, linkAccess: linkAccess,
                              limits: limits, writable: writable)
        let root = H5Gopen2(fileID, "/", nn_H5P_DEFAULT())
        guard root >= 0 else {
            throw HDF5Error.cannotOpen(file: displayPath, reason: takeHDF5ErrorMessage())
        }
        return HDF5File(state: state, rootID: root, writer: writer)
    }

    /// Makes a file from `create(path:)` durable and moves it into place at `path`. Every object
    /// of the file is closed afterwards. Calling it again does nothing.
    public func commit() throws {
        guard let writer else {
            throw HDF5Error.invalidArgument(file: filePath, object: "",
                                            detail: "only files made with HDF5File.create(path:) can be committed")
        }
        if committed { return }
        guard state.fileOpen else { throw HDF5Error.closed(file: filePath, object: "") }
        prepareHDF5()
        if H5Fflush(state.fileID, H5F_SCOPE_GLOBAL) < 0 {
            let message = takeHDF5ErrorMessage()
            discard()
            throw HDF5Error.writeFailed(file: filePath, reason: message)
        }
        // The file was created with a strong close degree: this closes every object in it too.
        let closeStatus = H5Fclose(state.fileID)
        state.fileOpen = false
        state.objectsValid = false
        isClosed = true
        if closeStatus < 0 {
            let message = takeHDF5ErrorMessage()
            writer.discard()
            throw HDF5Error.writeFailed(file: filePath, reason: message)
        }
        do {
            try writer.commit()
        } catch {
            writer.discard()
            throw HDF5Error.writeSystemCall(file: filePath, step: "committing the file", errno: error.errno)
        }
        committed = true
    }

    /// Closes the file. A file opened for reading stays open underneath until the groups and
    /// datasets obtained from it are gone too; they keep working. A file from `create(path:)` that
    /// was not committed is discarded: its objects are closed and the temporary file removed.
    public func close() {
        if writer != nil {
            if !committed { discard() }
            return
        }
        guard !isClosed else { return }
        prepareHDF5()
        if state.objectsValid { _ = H5Oclose(id) }
        isClosed = true
        if state.fileOpen {
            _ = H5Fclose(state.fileID)
            state.fileOpen = false
        }
    }

    /// Closes everything and removes the temporary file of an uncommitted `create(path:)`.
    private func discard() {
        guard let writer, !committed else { return }
        prepareHDF5()
        if state.fileOpen {
            _ = H5Fclose(state.fileID)
            state.fileOpen = false
        }
        state.objectsValid = false
        isClosed = true
        writer.discard()
    }
}
