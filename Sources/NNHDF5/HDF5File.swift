internal import CHDF5
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
import NNSystem
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
    /// For files from `create(path:)`: where the data goes until `commit()`.
    private let temporaryPath: String?
    private var committed = false
    private var discarded = false

    private init(state: FileState, rootID: hid_t, temporaryPath: String?) {
        self.temporaryPath = temporaryPath
        super.init(state: state, id: rootID, path: "/")
    }

    deinit {
        if temporaryPath != nil && !committed { discard() }
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
        var status = stat()
        guard stat(path, &status) == 0 else {
            throw HDF5Error.cannotOpen(file: path, reason: String(cString: strerror(errno)))
        }
        if (status.st_mode & S_IFMT) == S_IFDIR {
            throw HDF5Error.cannotOpen(file: path, reason: "it is a directory")
        }
        if (status.st_mode & S_IFMT) == S_IFREG && status.st_size == 0 {
            throw HDF5Error.notHDF5(file: path, reason: "the file is empty")
        }
        let probe = openDescriptor(path, O_RDONLY)
        guard probe >= 0 else {
            throw HDF5Error.cannotOpen(file: path, reason: String(cString: strerror(errno)))
        }
        closeDescriptor(probe)

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
        return try wrap(fileID: fileID, displayPath: path, limits: limits, writable: false, temporaryPath: nil)
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
        let directory: String
        let base: String
        if let slash = path.lastIndex(of: "/") {
            let head = path[..<slash]
            directory = head.isEmpty ? "/" : String(head)
            base = String(path[path.index(after: slash)...])
        } else {
            directory = "."
            base = path
        }
        guard !base.isEmpty else {
            throw HDF5Error.writeFailed(file: path, reason: "the path names a directory, not a file")
        }
        var template = Array("\(directory)/.\(base).tmp-XXXXXX".utf8CString)
        let descriptor = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard descriptor >= 0 else {
            throw HDF5Error.writeFailed(file: path, reason: "cannot create a temporary file in \(directory): \(String(cString: strerror(errno)))")
        }
        let temporaryPath = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        // mkstemp creates 0600; a model file is an ordinary document.
        _ = fchmod(descriptor, 0o644)
        closeDescriptor(descriptor)

        let access = nn_create_file_access(H5F_CLOSE_STRONG)
        guard access >= 0 else {
            let message = takeHDF5ErrorMessage()
            unlink(temporaryPath)
            throw HDF5Error.writeFailed(file: path, reason: message)
        }
        defer { _ = H5Pclose(access) }
        let fileID = H5Fcreate(temporaryPath, nn_H5F_ACC_TRUNC(), nn_H5P_DEFAULT(), access)
        guard fileID >= 0 else {
            let message = takeHDF5ErrorMessage()
            unlink(temporaryPath)
            throw HDF5Error.writeFailed(file: path, reason: message)
        }
        do {
            return try wrap(fileID: fileID, displayPath: path, limits: limits, writable: true,
                            temporaryPath: temporaryPath)
        } catch {
            unlink(temporaryPath)
            throw error
        }
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
                             temporaryPath: String?) throws -> HDF5File {
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
        return HDF5File(state: state, rootID: root, temporaryPath: temporaryPath)
    }

    /// Makes a file from `create(path:)` durable and moves it into place at `path`. Every object
    /// of the file is closed afterwards. Calling it again does nothing.
    public func commit() throws {
        guard let temporaryPath else {
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
            removeTemporaryFile()
            throw HDF5Error.writeFailed(file: filePath, reason: message)
        }
        let descriptor = openDescriptor(temporaryPath, O_RDONLY)
        if descriptor < 0 || fsync(descriptor) != 0 {
            let message = String(cString: strerror(errno))
            if descriptor >= 0 { closeDescriptor(descriptor) }
            removeTemporaryFile()
            throw HDF5Error.writeFailed(file: filePath, reason: message)
        }
        closeDescriptor(descriptor)
        if rename(temporaryPath, filePath) != 0 {
            let message = String(cString: strerror(errno))
            removeTemporaryFile()
            throw HDF5Error.writeFailed(file: filePath, reason: message)
        }
        committed = true
        let directory: String
        if let slash = filePath.lastIndex(of: "/") {
            directory = slash == filePath.startIndex ? "/" : String(filePath[..<slash])
        } else {
            directory = "."
        }
        let directoryDescriptor = openDescriptor(directory, O_RDONLY | O_DIRECTORY)
        if directoryDescriptor >= 0 {
            _ = fsync(directoryDescriptor)
            closeDescriptor(directoryDescriptor)
        }
    }

    /// Closes the file. A file opened for reading stays open underneath until the groups and
    /// datasets obtained from it are gone too; they keep working. A file from `create(path:)` that
    /// was not committed is discarded: its objects are closed and the temporary file removed.
    public func close() {
        if temporaryPath != nil {
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
        guard temporaryPath != nil, !committed, !discarded else { return }
        prepareHDF5()
        if state.fileOpen {
            _ = H5Fclose(state.fileID)
            state.fileOpen = false
        }
        state.objectsValid = false
        isClosed = true
        removeTemporaryFile()
    }

    /// Removes the temporary file, once.
    private func removeTemporaryFile() {
        guard let temporaryPath, !discarded else { return }
        discarded = true
        unlink(temporaryPath)
    }
}
