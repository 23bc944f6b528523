internal import CHDF5

/// Identifies an object independently of the links that lead to it.
struct ObjectKey: Hashable {
    var fileNumber: UInt
    var low: UInt64
    var high: UInt64

    init(_ info: nn_object_info) {
        fileNumber = info.fileno
        var key = info.key
        (low, high) = withUnsafeBytes(of: &key) { raw in
            (raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self),
             raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        }
    }
}

/// A group: a directory of named links to groups and datasets.
///
/// Paths may be relative to the group (`"dense/kernel:0"`) or absolute (`"/model_weights"`).
/// External links are never followed, and paths are limited to `HDF5Limits.maxPathDepth`
/// components.
public class HDF5Group: HDF5Object {
    /// Where a path leads.
    enum Resolution {
        /// `relative` is the name to pass to HDF5 from this group, `fullPath` the absolute path.
        case found(relative: String, fullPath: String, kind: HDF5MemberKind)
        /// `firstMissing` is the absolute path of the first component that does not exist.
        case missing(firstMissing: String)
    }

    /// Follows `path` one component at a time, so that a missing or wrong intermediate is reported
    /// by name and an external link is never traversed.
    func resolve(_ path: String) throws -> Resolution {
        let id = try liveID()
        if path.utf8.contains(0) {
            throw HDF5Error.invalidArgument(file: filePath, object: path, detail: "the path contains a NUL byte")
        }
        let absolute = path.hasPrefix("/")
        let components = path.split(separator: "/")
        if components.count > limits.maxPathDepth {
            throw HDF5Error.invalidArgument(
                file: filePath, object: String(path.prefix(200)),
                detail: "the path has \(components.count) components, more than the limit of \(limits.maxPathDepth)")
        }
        let basePath = absolute ? "/" : self.path
        if components.isEmpty {
            return .found(relative: absolute ? "/" : ".", fullPath: basePath, kind: .group)
        }
        for index in components.indices {
            let prefix = components[...index]
            let relative = (absolute ? "/" : "") + prefix.joined(separator: "/")
            let fullPath = joinObjectPath(basePath, Array(prefix))
            let exists = H5Lexists(id, relative, state.linkAccess)
            guard exists >= 0 else { throw libraryError("cannot look up the object", object: fullPath) }
            if exists == 0 { return .missing(firstMissing: fullPath) }
            let (kind, _) = try lookUp(location: id, name: relative, fullPath: fullPath)
            if index == components.index(before: components.endIndex) {
                return .found(relative: relative, fullPath: fullPath, kind: kind)
            }
            if kind != .group { throw unusable(fullPath, kind: kind, expected: "a group") }
        }
        return .missing(firstMissing: joinObjectPath(basePath, components))
    }

    /// The error for an object of the wrong kind.
    func unusable(_ fullPath: String, kind: HDF5MemberKind, expected: String) -> HDF5Error {
        switch kind {
        case .externalLink:
            return .invalidContent(file: filePath, object: fullPath,
                                   detail: "is an external link to another file; external links are not followed")
        case .danglingLink:
            return .invalidContent(file: filePath, object: fullPath, detail: "is a soft link to an object that does not exist")
        default:
            return .wrongKind(file: filePath, object: fullPath, expected: expected, found: kind.description)
        }
    }

    /// What the link `name` (relative to `location`) leads to, and the object's identity.
    func lookUp(location: hid_t, name: String, fullPath: String) throws -> (HDF5MemberKind, ObjectKey?) {
        let linkType = Int32(nn_link_type(location, name, state.linkAccess))
        switch linkType {
        case H5L_TYPE_EXTERNAL.rawValue:
            return (.externalLink, nil)
        case H5L_TYPE_HARD.rawValue, H5L_TYPE_SOFT.rawValue:
            var info = nn_object_info()
            guard nn_get_object_info_by_name(location, name, state.linkAccess, &info) >= 0 else {
                if linkType == H5L_TYPE_SOFT.rawValue {
                    _ = H5Eclear2(nn_H5E_DEFAULT())
                    return (.danglingLink, nil)
                }
                throw libraryError("cannot look up the object", object: fullPath)
            }
            let kind: HDF5MemberKind
            switch info.type {
            case H5O_TYPE_GROUP.rawValue: kind = .group
            case H5O_TYPE_DATASET.rawValue: kind = .dataset
            case H5O_TYPE_NAMED_DATATYPE.rawValue: kind = .namedDatatype
            default: kind = .other
            }
            return (kind, ObjectKey(info))
        case H5L_TYPE_ERROR.rawValue:
            throw libraryError("cannot look up the object", object: fullPath)
        default:
            return (.other, nil)
        }
    }

    /// Lists the group `groupName` (relative to this group; "." for itself).
    func listMembers(groupName: String, groupPath: String) throws -> [HDF5Member] {
        let id = try liveID()
        var info = H5G_info_t()
        guard H5Gget_info_by_name(id, groupName, &info, state.linkAccess) >= 0 else {
            throw libraryError("cannot list the group", object: groupPath)
        }
        let names = try indexedNames(count: info.nlinks, object: groupPath, counted: "the group has \(info.nlinks) members",
                                     naming: "a member name", listing: "cannot list the group") { index, buffer, size in
            H5Lget_name_by_idx(id, groupName, H5_INDEX_NAME, H5_ITER_INC, hsize_t(index), buffer, size, state.linkAccess)
        }
        var members: [HDF5Member] = []
        members.reserveCapacity(names.count)
        for name in names {
            if name.isEmpty || name.contains("/") || name == "." {
                members.append(HDF5Member(name: name, kind: .other))
                continue
            }
            let relative = groupName == "." ? name : groupName + "/" + name
            let (kind, _) = try lookUp(location: id, name: relative,
                                       fullPath: joinObjectPath(groupPath, [Substring(name)]))
            members.append(HDF5Member(name: name, kind: kind))
        }
        return members
    }

    // MARK: Navigation

    /// The members of this group, sorted by name (byte order), each with its kind. At most
    /// `HDF5Limits.maxMembers`.
    public func members() throws -> [HDF5Member] {
        try listMembers(groupName: ".", groupPath: path)
    }

    /// What `path` leads to, or `nil` if it (or a group on the way) does not exist.
    public func kind(of path: String) throws -> HDF5MemberKind? {
        switch try resolve(path) {
        case let .found(_, _, kind): return kind
        case .missing: return nil
        }
    }

    /// Whether anything exists at `path`.
    public func contains(_ path: String) throws -> Bool {
        try kind(of: path) != nil
    }

    /// Opens the group at `path`.
    public func group(_ path: String) throws -> HDF5Group {
        let (child, fullPath) = try openObject(path, kind: .group, type: H5I_GROUP, noun: "group")
        return HDF5Group(state: state, id: child, path: fullPath)
    }

    /// Opens the dataset at `path`.
    public func dataset(_ path: String) throws -> HDF5Dataset {
        let (child, fullPath) = try openObject(path, kind: .dataset, type: H5I_DATASET, noun: "dataset")
        do {
            return try HDF5Dataset(state: state, datasetID: child, path: fullPath)
        } catch {
            _ = H5Oclose(child)
            throw error
        }
    }

    /// Opens the object at `path`, which must be of `kind` (and, once open, of HDF5 identifier
    /// type `type`); the caller owns the identifier returned.
    private func openObject(_ path: String, kind: HDF5MemberKind, type: H5I_type_t, noun: String) throws -> (hid_t, String) {
        switch try resolve(path) {
        case let .missing(firstMissing):
            throw HDF5Error.noSuchObject(file: filePath, object: firstMissing)
        case let .found(relative, fullPath, found):
            guard found == kind else { throw unusable(fullPath, kind: found, expected: "a \(noun)") }
            let child = H5Oopen(id, relative, state.linkAccess)
            guard child >= 0 else { throw libraryError("cannot open the \(noun)", object: fullPath) }
            guard H5Iget_type(child) == type else {
                _ = H5Oclose(child)
                throw HDF5Error.wrongKind(file: filePath, object: fullPath, expected: "a \(noun)", found: "another kind of object")
            }
            return (child, fullPath)
        }
    }

    /// The absolute paths of all datasets below this group, depth first in name order (the
    /// order of h5py's `visititems`). Each object is reported once, under the first path found
    /// (hard links may form cycles); external and dangling links are skipped. Throws if groups nest
    /// deeper than `HDF5Limits.maxPathDepth` or the walk meets more than
    /// `HDF5Limits.maxWalkObjects` links.
    public func datasetPaths() throws -> [String] {
        let id = try liveID()
        var selfInfo = nn_object_info()
        guard nn_get_object_info(id, &selfInfo) >= 0 else { throw libraryError("cannot list the group") }
        var visited: Set<ObjectKey> = [ObjectKey(selfInfo)]
        var seen = 0
        var result: [String] = []

        /// A group being listed: its members, the next one to look at, where it is.
        struct Frame {
            var members: [HDF5Member]
            var next = 0
            let relative: String
            let fullPath: String
        }
        func frame(relative: String, fullPath: String) throws -> Frame {
            let members = try listMembers(groupName: relative, groupPath: fullPath)
            seen += members.count
            if seen > limits.maxWalkObjects {
                throw HDF5Error.tooLarge(file: filePath, object: path,
                                         detail: "more than \(limits.maxWalkObjects) objects below this group")
            }
            return Frame(members: members, relative: relative, fullPath: fullPath)
        }

        // An explicit stack, not recursion: nesting depth is bounded by the limit, not the stack.
        var stack = [try frame(relative: ".", fullPath: path)]
        while let top = stack.indices.last {
            guard stack[top].next < stack[top].members.count else {
                stack.removeLast()
                continue
            }
            let member = stack[top].members[stack[top].next]
            stack[top].next += 1
            guard member.kind == .group || member.kind == .dataset else { continue }
            let parent = stack[top]
            let relative = parent.relative == "." ? member.name : parent.relative + "/" + member.name
            let fullPath = joinObjectPath(parent.fullPath, [Substring(member.name)])
            let (_, key) = try lookUp(location: id, name: relative, fullPath: fullPath)
            if let key {
                if visited.contains(key) { continue }
                visited.insert(key)
            }
            if member.kind == .dataset {
                result.append(fullPath)
            } else {
                if stack.count + 1 > limits.maxPathDepth {
                    throw HDF5Error.invalidContent(
                        file: filePath, object: fullPath,
                        detail: "groups are nested deeper than the limit of \(limits.maxPathDepth) levels")
                }
                stack.append(try frame(relative: relative, fullPath: fullPath))
            }
        }
        return result
    }

    // MARK: Creating

    /// Throws unless nothing exists at `path` yet (missing intermediate groups are fine: they are
    /// created); returns the absolute path.
    func prepareCreation(_ path: String) throws -> String {
        try requireWritable(path)
        let components = path.split(separator: "/")
        if components.isEmpty {
            throw HDF5Error.invalidArgument(file: filePath, object: path, detail: "the name is empty")
        }
        switch try resolve(path) {
        case let .found(_, fullPath, _):
            throw HDF5Error.invalidArgument(file: filePath, object: fullPath, detail: "an object with this name already exists")
        case .missing:
            return joinObjectPath(path.hasPrefix("/") ? "/" : self.path, components)
        }
    }

    /// Creates a group at `path`, with any missing groups on the way.
    public func createGroup(_ path: String) throws -> HDF5Group {
        let fullPath = try prepareCreation(path)
        let linkCreation = nn_create_link_creation_with_parents()
        guard linkCreation >= 0 else { throw libraryError("cannot create the group", object: fullPath) }
        defer { _ = H5Pclose(linkCreation) }
        let child = H5Gcreate2(id, path, linkCreation, nn_H5P_DEFAULT(), nn_H5P_DEFAULT())
        guard child >= 0 else { throw libraryError("cannot create the group", object: fullPath) }
        return HDF5Group(state: state, id: child, path: fullPath)
    }

    /// Creates a float32 dataset at `path` (with any missing groups on the way) holding `values`
    /// in C (row-major) order; `shape == []` makes a scalar. Stored little-endian, bit for bit.
    @discardableResult
    public func createDataset(_ path: String, floats values: [Float], shape: [Int]) throws -> HDF5Dataset {
        try createDataset(path, values, shape: shape, fileType: nn_H5T_IEEE_F32LE(), memoryType: nn_H5T_NATIVE_FLOAT())
    }

    /// Creates a float64 dataset at `path` holding `values` in C order; `shape == []` makes a scalar.
    @discardableResult
    public func createDataset(_ path: String, doubles values: [Double], shape: [Int]) throws -> HDF5Dataset {
        try createDataset(path, values, shape: shape, fileType: nn_H5T_IEEE_F64LE(), memoryType: nn_H5T_NATIVE_DOUBLE())
    }

    /// Creates an int64 dataset at `path` holding `values` in C order; `shape == []` makes a scalar.
    @discardableResult
    public func createDataset(_ path: String, integers values: [Int64], shape: [Int]) throws -> HDF5Dataset {
        try createDataset(path, values, shape: shape, fileType: nn_H5T_STD_I64LE(), memoryType: nn_H5T_NATIVE_INT64())
    }

    private func createDataset<T>(_ path: String, _ values: [T], shape: [Int], fileType: hid_t, memoryType: hid_t) throws -> HDF5Dataset {
        try values.withUnsafeBytes { raw in
            try createDataset(path, fileType: fileType, memoryType: memoryType, shape: shape, count: values.count, buffer: raw.baseAddress)
        }
    }

    /// Creates a string dataset at `path`: variable-length UTF-8 (h5py's `str`) or fixed-length
    /// byte strings. `shape` defaults to 1-D; `[]` makes a scalar (one string).
    @discardableResult
    public func createDataset(_ path: String, strings values: [String], shape: [Int]? = nil,
                              storage: HDF5StringStorage = .variableLengthUTF8) throws -> HDF5Dataset {
        let fullPath = joinObjectPath(path.hasPrefix("/") ? "/" : self.path, path.split(separator: "/"))
        let type = try makeStringType(values, storage: storage, file: filePath, object: fullPath)
        defer { _ = H5Tclose(type.id) }
        return try withStringBuffer(values, storage: storage, length: type.length) { buffer in
            try createDataset(path, fileType: type.id, memoryType: type.id, shape: shape ?? [values.count],
                              count: values.count, buffer: buffer)
        }
    }

    private func createDataset(_ path: String, fileType: hid_t, memoryType: hid_t, shape: [Int], count: Int,
                               buffer: UnsafeRawPointer?) throws -> HDF5Dataset {
        let fullPath = try prepareCreation(path)
        var expected = 1
        for dimension in shape {
            let (product, overflow) = expected.multipliedReportingOverflow(by: dimension)
            if overflow || dimension < 0 {
                throw HDF5Error.invalidArgument(file: filePath, object: fullPath, detail: "shape \(shape) is not valid")
            }
            expected = product
        }
        guard expected == count else {
            throw HDF5Error.invalidArgument(file: filePath, object: fullPath,
                                            detail: "shape \(shape) holds \(expected) elements, but \(count) values were given")
        }
        let space = try makeDataspace(shape: shape, scalar: shape.isEmpty, file: filePath, object: fullPath)
        defer { _ = H5Sclose(space) }
        let linkCreation = nn_create_link_creation_with_parents()
        guard linkCreation >= 0 else { throw libraryError("cannot create the dataset", object: fullPath) }
        defer { _ = H5Pclose(linkCreation) }
        let dataset = H5Dcreate2(id, path, fileType, space, linkCreation, nn_H5P_DEFAULT(), nn_H5P_DEFAULT())
        guard dataset >= 0 else { throw libraryError("cannot create the dataset", object: fullPath) }
        if count > 0, let buffer {
            guard H5Dwrite(dataset, memoryType, nn_H5S_ALL(), nn_H5S_ALL(), nn_H5P_DEFAULT(), buffer) >= 0 else {
                let error = libraryError("cannot write the dataset", object: fullPath)
                _ = H5Dclose(dataset)
                throw error
            }
        }
        do {
            return try HDF5Dataset(state: state, datasetID: dataset, path: fullPath)
        } catch {
            _ = H5Dclose(dataset)
            throw error
        }
    }
}
