/// Reads pickles (protocols 0 to 5) as data, executing nothing.
///
/// Python's unpickler imports every global a pickle names and calls whatever REDUCE, NEWOBJ,
/// INST, OBJ and BUILD ask for, which is how a pickle runs code. This machine runs the same
/// opcodes on a stack but never imports or calls: a global is a name checked against the
/// caller's `PickleGlobalPolicy` the moment it is read, and a call is a record in the result
/// (`PickleValue.call`, `.object`). Everything an input can make grow is bounded by `PickleLimits`.
public enum PickleMachine {
    /// The value of the pickle in `bytes`, which must end with its STOP (bytes after it are ignored).
    public static func load(_ bytes: [UInt8], policy: PickleGlobalPolicy,
                            limits: PickleLimits = .default) throws(PickleError) -> PickleValue {
        let result = bytes.withUnsafeBytes { raw in
            Result { () throws(PickleError) in try load(raw, from: 0, policy: policy, limits: limits).value }
        }
        return try result.get()
    }

    /// The value of the pickle in `bytes` (bytes after its STOP are ignored).
    public static func load(_ bytes: UnsafeRawBufferPointer, policy: PickleGlobalPolicy,
                            limits: PickleLimits = .default) throws(PickleError) -> PickleValue {
        try load(bytes, from: 0, policy: policy, limits: limits).value
    }

    /// The value of the pickle that starts at `start`, and the offset just past its STOP: for
    /// streams of pickles such as torch's legacy format. Error offsets count from the start of `bytes`.
    public static func load(_ bytes: UnsafeRawBufferPointer, from start: Int, policy: PickleGlobalPolicy,
                            limits: PickleLimits = .default) throws(PickleError) -> (value: PickleValue, end: Int) {
        var run = PickleRun(data: bytes, position: min(max(start, 0), bytes.count), policy: policy, limits: limits)
        let root = try run.execute()
        do {
            let value = try run.arena.value(of: root, maxDepth: limits.maxNestingDepth, maxValues: limits.maxValues)
            return (value, run.position)
        } catch {
            switch error {
            case .cycle: throw run.malformed("a container holds itself (a cycle)")
            case .tooDeep: throw run.limit("levels of nesting", limits.maxNestingDepth)
            case .tooManyValues: throw run.limit("values (counting shared ones where they appear)", limits.maxValues)
            }
        }
    }
}

/// One execution of the machine over one pickle.
struct PickleRun {
    typealias Node = PickleArena.Node

    let data: UnsafeRawBufferPointer
    var position: Int
    let policy: PickleGlobalPolicy
    let limits: PickleLimits
    var arena = PickleArena()
    var stack: [Int] = []
    /// Stack heights at each open MARK.
    var marks: [Int] = []
    var memo: [Int: Int] = [:]
    /// Set by PROTO; below 3, Python 2 module names are renamed as Python does.
    var protocolVersion = 0
    /// The opcode being run and where it starts, for errors.
    var opcode = PickleOpcode.stop
    var opcodeOffset = 0

    init(data: UnsafeRawBufferPointer, position: Int, policy: PickleGlobalPolicy, limits: PickleLimits) {
        self.data = data
        self.position = position
        self.policy = policy
        self.limits = limits
    }

    /// Runs opcodes up to STOP; returns the node STOP pops.
    mutating func execute() throws(PickleError) -> Int {
        while true {
            guard position < data.count else { throw .missingStop(offset: position) }
            opcodeOffset = position
            let byte = data[position]
            position += 1
            guard let op = PickleOpcode(rawValue: byte) else { throw .unknownOpcode(byte: byte, offset: opcodeOffset) }
            opcode = op
            if op == .stop { return try pop() }
            try step(op)
        }
    }

    // MARK: - Errors

    func malformed(_ detail: String) -> PickleError {
        .malformed(detail: detail, opcode: opcode.name, offset: opcodeOffset)
    }

    func limit(_ what: String, _ value: Int) -> PickleError {
        .limitExceeded(what: what, limit: value, opcode: opcode.name, offset: opcodeOffset)
    }

    // MARK: - Reading arguments

    mutating func read(_ count: UInt64) throws(PickleError) -> UnsafeRawBufferPointer {
        let remaining = data.count - position
        guard count <= UInt64(remaining) else {
            throw .truncated(opcode: opcode.name, offset: opcodeOffset, needed: count, remaining: remaining)
        }
        let start = position
        position += Int(count)
        return UnsafeRawBufferPointer(rebasing: data[start..<position])
    }

    /// A little-endian unsigned integer of `width` bytes.
    mutating func unsigned(_ width: Int) throws(PickleError) -> UInt64 {
        let raw = try read(UInt64(width))
        var value: UInt64 = 0
        for byte in raw.reversed() { value = value << 8 | UInt64(byte) }
        return value
    }

    mutating func int32() throws(PickleError) -> Int32 {
        Int32(truncatingIfNeeded: try unsigned(4))
    }

    /// The bytes up to the next newline (a protocol-0 text argument), without it.
    mutating func line() throws(PickleError) -> ArraySlice<UInt8> {
        guard let end = data[position...].firstIndex(of: UInt8(ascii: "\n")) else {
            throw .unterminatedLine(opcode: opcode.name, offset: opcodeOffset)
        }
        let text = Array(data[position..<end])[...]
        position = end + 1
        return text
    }

    /// A length field's bytes, as a node: `.string` (UTF-8 required) or `.bytes`.
    mutating func blob(_ count: UInt64, utf8: Bool) throws(PickleError) -> Node {
        let raw = try read(count)
        guard utf8 else { return .scalar(.bytes(Array(raw))) }
        guard let text = PickleText.utf8(raw) else { throw malformed("a string that is not valid UTF-8") }
        return .scalar(.string(text))
    }

    /// A Python 2 string (STRING, BINSTRING): text when it is UTF-8, as torch reads them, else bytes.
    func py2String(_ bytes: [UInt8]) -> Node {
        if let text = bytes.withUnsafeBytes({ PickleText.utf8($0) }) { return .scalar(.string(text)) }
        return .scalar(.bytes(bytes))
    }

    mutating func integerText(_ text: ArraySlice<UInt8>) throws(PickleError) -> Node {
        let maxDigits = limits.maxLongBytes * 12 / 5 + 1
        if text.count > maxDigits + 1 { throw limit("digits in an integer", maxDigits) }
        guard let value = PickleText.decimalInteger(text, maxDigits: maxDigits) else {
            throw malformed("the argument \(Self.quoted(text)) is not an integer")
        }
        return .scalar(value)
    }

    mutating func indexText() throws(PickleError) -> Int {
        let text = try line()
        guard let index = PickleText.decimalIndex(text) else { throw malformed("the argument \(Self.quoted(text)) is not a memo index") }
        return index
    }

    /// Printable ASCII as is, other bytes as \xNN, at most 40 of them: for quoting input in a one-line error.
    static func quoted(_ bytes: ArraySlice<UInt8>) -> String {
        var text = ""
        for byte in bytes.prefix(40) {
            if byte >= 0x20 && byte < 0x7F && byte != UInt8(ascii: "\\") {
                text.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                let hex = String(byte, radix: 16)
                text += "\\x" + (hex.count < 2 ? "0" : "") + hex
            }
        }
        return "'" + text + (bytes.count > 40 ? "...'" : "'")
    }

    // MARK: - The stack

    mutating func add(_ node: Node) throws(PickleError) -> Int {
        guard arena.nodes.count < limits.maxValues else { throw limit("values", limits.maxValues) }
        arena.nodes.append(node)
        return arena.nodes.count - 1
    }

    mutating func push(_ id: Int) throws(PickleError) {
        guard stack.count < limits.maxStackDepth else { throw limit("values on the stack", limits.maxStackDepth) }
        stack.append(id)
    }

    mutating func pushNew(_ node: Node) throws(PickleError) {
        try push(try add(node))
    }

    /// The values above the innermost MARK belong to it; pops never reach below it.
    var frameBase: Int { marks.last ?? 0 }

    mutating func pop() throws(PickleError) -> Int {
        guard stack.count > frameBase else { throw .stackUnderflow(opcode: opcode.name, offset: opcodeOffset) }
        return stack.removeLast()
    }

    func top() throws(PickleError) -> Int {
        guard stack.count > frameBase, let id = stack.last else { throw .stackUnderflow(opcode: opcode.name, offset: opcodeOffset) }
        return id
    }

    /// The values above the innermost MARK, removing them and the MARK.
    mutating func popMark() throws(PickleError) -> [Int] {
        guard let mark = marks.popLast() else { throw .missingMark(opcode: opcode.name, offset: opcodeOffset) }
        let items = Array(stack[mark...])
        stack.removeSubrange(mark...)
        return items
    }

    // MARK: - Globals

    /// Checks a global against the policy (after Python's protocol-2 renaming) before anything
    /// else happens, and makes its node.
    mutating func global(module: String, name: String) throws(PickleError) -> Int {
        var module = module
        if protocolVersion < 3 {
            switch module {
            case "__builtin__", "exceptions": module = "builtins"
            case "copy_reg": module = "copyreg"
            default: break
            }
        }
        guard policy.allows(module: module, name: name) else {
            throw .refusedGlobal(module: module, name: name, opcode: opcode.name, offset: opcodeOffset)
        }
        return try add(.scalar(.global(module: module, name: name)))
    }

    /// GLOBAL's and INST's two text lines.
    mutating func globalLines() throws(PickleError) -> Int {
        let moduleText = try line()
        let nameText = try line()
        guard let module = moduleText.withUnsafeBytes({ PickleText.utf8($0) }),
              let name = nameText.withUnsafeBytes({ PickleText.utf8($0) }) else {
            throw malformed("a global's name is not valid UTF-8")
        }
        return try global(module: module, name: name)
    }

    // MARK: - Containers

    /// The elements of a tuple node (REDUCE's and NEWOBJ's arguments).
    func tupleItems(_ id: Int, _ what: String) throws(PickleError) -> [Int] {
        guard case let .tuple(items) = arena.nodes[id] else {
            throw malformed("\(what) are \(arena.nodes[id].kind), not a tuple")
        }
        return items
    }

    /// Adds `items` to the list, dict or set node `target`, changing it in place so that every
    /// holder of the node sees the change.
    mutating func extend(_ target: Int, with items: [Int]) throws(PickleError) {
        let node = arena.nodes[target]
        arena.nodes[target] = .scalar(.none)  // so the array below is uniquely referenced
        switch (opcode, node) {
        case (.append, .list(var ids)), (.appends, .list(var ids)):
            ids += items
            arena.nodes[target] = .list(ids)
        case (.setItem, .dict(var ids)), (.setItems, .dict(var ids)):
            ids += items
            arena.nodes[target] = .dict(ids)
        case (.addItems, .set(var ids)):
            ids += items
            arena.nodes[target] = .set(ids)
        default:
            arena.nodes[target] = node
            let wanted = opcode == .addItems ? "a set" : (opcode == .append || opcode == .appends) ? "a list" : "a dict"
            throw malformed("\(opcode.name) adds to \(node.kind), not \(wanted)")
        }
    }

    /// What REDUCE or NEWOBJ makes of `callee(*args)`. Calls of plain containers become those
    /// containers, when the policy allowed their globals (else the pickle never got this far);
    /// everything else is a record of the call.
    func construct(_ callee: Int, _ args: [Int]) throws(PickleError) -> Node {
        guard case let .scalar(.global(module, name)) = arena.nodes[callee] else { return .call(callee, args) }
        let argNodes = args.map { arena.nodes[$0] }
        switch ("\(module).\(name)", argNodes.count) {
        case ("collections.OrderedDict", 0):
            return .dict([])
        case ("collections.OrderedDict", 1):
            // Python 2 pickled an OrderedDict with its items as a list of [key, value] pairs.
            guard case let .list(pairs) = argNodes[0] else { break }
            var ids: [Int] = []
            for pair in pairs {
                switch arena.nodes[pair] {
                case let .list(kv) where kv.count == 2, let .tuple(kv) where kv.count == 2: ids += kv
                default: return .call(callee, args)
                }
            }
            return .dict(ids)
        case ("builtins.set", 0), ("builtins.frozenset", 0):
            return .set([])
        case ("builtins.set", 1), ("builtins.frozenset", 1):
            if case let .list(items) = argNodes[0] { return .set(items) }
            if case let .tuple(items) = argNodes[0] { return .set(items) }
        case ("builtins.bytearray", 0):
            return .scalar(.bytes([]))
        case ("builtins.bytearray", 1):
            if case .scalar(.bytes) = argNodes[0] { return argNodes[0] }
        case ("_codecs.encode", 2):
            // Protocol 2 writes bytes as _codecs.encode(text, "latin1"): each character one byte.
            guard case let .scalar(.string(text)) = argNodes[0], case let .scalar(.string(codec)) = argNodes[1],
                  codec == "latin1" || codec == "latin-1" else { break }
            var bytes: [UInt8] = []
            for scalar in text.unicodeScalars {
                guard scalar.value <= 0xFF else { throw malformed("_codecs.encode of a character above U+00FF as latin1") }
                bytes.append(UInt8(scalar.value))
            }
            return .scalar(.bytes(bytes))
        default:
            break
        }
        return .call(callee, args)
    }

    // MARK: - Opcodes

    mutating func step(_ op: PickleOpcode) throws(PickleError) {
        switch op {
        case .proto:
            let version = Int(try unsigned(1))
            guard version <= 5 else { throw .unsupported(detail: "protocol \(version) (this reader knows 0 to 5)", opcode: op.name, offset: opcodeOffset) }
            protocolVersion = version
        case .frame:
            // Frames only group opcodes for buffered reading; the length must still fit the data.
            let length = try unsigned(8)
            let remaining = data.count - position
            guard length <= UInt64(remaining) else {
                throw .truncated(opcode: op.name, offset: opcodeOffset, needed: length, remaining: remaining)
            }
        case .stop:
            break  // handled by `execute`
        case .mark:
            guard marks.count < limits.maxMarkDepth else { throw limit("levels of MARK nesting", limits.maxMarkDepth) }
            marks.append(stack.count)
        case .pop:
            // As in CPython: a POP right after a MARK discards the MARK.
            if let mark = marks.last, stack.count == mark { marks.removeLast() } else { _ = try pop() }
        case .popMark:
            _ = try popMark()
        case .dup:
            try push(try top())

        case .none: try pushNew(.scalar(.none))
        case .newTrue: try pushNew(.scalar(.bool(true)))
        case .newFalse: try pushNew(.scalar(.bool(false)))
        case .int:
            let text = try line()
            // Protocol 0 wrote booleans as INT "00" and "01".
            if text.elementsEqual("00".utf8) { try pushNew(.scalar(.bool(false))) }
            else if text.elementsEqual("01".utf8) { try pushNew(.scalar(.bool(true))) }
            else { try pushNew(try integerText(text)) }
        case .long:
            var text = try line()
            if text.last == UInt8(ascii: "L") { text = text.dropLast() }
            try pushNew(try integerText(text))
        case .binInt: try pushNew(.scalar(.int(Int64(try int32()))))
        case .binInt1: try pushNew(.scalar(.int(Int64(try unsigned(1)))))
        case .binInt2: try pushNew(.scalar(.int(Int64(try unsigned(2)))))
        case .long1, .long4:
            let count: UInt64
            if op == .long1 {
                count = try unsigned(1)
            } else {
                let signed = try int32()
                guard signed >= 0 else { throw malformed("a negative length (\(signed))") }
                count = UInt64(signed)
            }
            guard count <= UInt64(limits.maxLongBytes) else { throw limit("bytes in an integer", limits.maxLongBytes) }
            try pushNew(.scalar(PickleText.integer(twosComplement: Array(try read(count)))))
        case .float:
            let text = try line()
            guard let value = Double(String(decoding: text, as: UTF8.self)) else {
                throw malformed("the argument \(Self.quoted(text)) is not a number")
            }
            try pushNew(.scalar(.float(value)))
        case .binFloat:
            // The one big-endian field in pickles.
            let raw = try read(8)
            var bits: UInt64 = 0
            for byte in raw { bits = bits << 8 | UInt64(byte) }
            try pushNew(.scalar(.float(Double(bitPattern: bits))))

        case .shortBinUnicode: try pushNew(try blob(try unsigned(1), utf8: true))
        case .binUnicode: try pushNew(try blob(try unsigned(4), utf8: true))
        case .binUnicode8: try pushNew(try blob(try unsigned(8), utf8: true))
        case .unicode:
            let text = try line()
            guard let value = PickleText.rawUnicodeEscapeDecode(text) else {
                throw malformed("the argument \(Self.quoted(text)) has a bad \\u escape")
            }
            try pushNew(.scalar(.string(value)))
        case .shortBinString:
            try pushNew(py2String(Array(try read(try unsigned(1)))))
        case .binString:
            let count = try int32()
            guard count >= 0 else { throw malformed("a negative length (\(count))") }
            try pushNew(py2String(Array(try read(UInt64(count)))))
        case .string:
            let text = try line()
            guard text.count >= 2, let quote = text.first, quote == text.last,
                  quote == UInt8(ascii: "'") || quote == UInt8(ascii: "\"") else {
                throw malformed("the argument of STRING is not quoted")
            }
            guard let bytes = PickleText.escapeDecode(text.dropFirst().dropLast()) else {
                throw malformed("the argument \(Self.quoted(text.dropFirst().dropLast())) has a bad escape")
            }
            try pushNew(py2String(bytes))
        case .shortBinBytes: try pushNew(try blob(try unsigned(1), utf8: false))
        case .binBytes: try pushNew(try blob(try unsigned(4), utf8: false))
        case .binBytes8, .byteArray8: try pushNew(try blob(try unsigned(8), utf8: false))

        case .emptyTuple: try pushNew(.tuple([]))
        case .tuple: try pushNew(.tuple(try popMark()))
        case .tuple1, .tuple2, .tuple3:
            let count = op == .tuple1 ? 1 : op == .tuple2 ? 2 : 3
            var items: [Int] = []
            for _ in 0..<count { items.append(try pop()) }
            try pushNew(.tuple(items.reversed()))
        case .emptyList: try pushNew(.list([]))
        case .list: try pushNew(.list(try popMark()))
        case .append:
            let item = try pop()
            try extend(try top(), with: [item])
        case .appends:
            let items = try popMark()
            try extend(try top(), with: items)
        case .emptyDict: try pushNew(.dict([]))
        case .dict:
            let items = try popMark()
            guard items.count % 2 == 0 else { throw malformed("DICT of an odd number of values (\(items.count))") }
            try pushNew(.dict(items))
        case .setItem:
            let value = try pop()
            let key = try pop()
            try extend(try top(), with: [key, value])
        case .setItems:
            let items = try popMark()
            guard items.count % 2 == 0 else { throw malformed("SETITEMS of an odd number of values (\(items.count))") }
            try extend(try top(), with: items)
        case .emptySet: try pushNew(.set([]))
        case .addItems:
            let items = try popMark()
            try extend(try top(), with: items)
        case .frozenSet: try pushNew(.set(try popMark()))

        case .put: try store(at: try indexText())
        case .binPut: try store(at: Int(try unsigned(1)))
        case .longBinPut: try store(at: Int(try unsigned(4)))
        case .memoize: try store(at: memo.count)
        case .get: try fetch(try indexText())
        case .binGet: try fetch(Int(try unsigned(1)))
        case .longBinGet: try fetch(Int(try unsigned(4)))

        case .global:
            try push(try globalLines())
        case .stackGlobal:
            let nameID = try pop()
            let moduleID = try pop()
            guard case let .scalar(.string(module)) = arena.nodes[moduleID],
                  case let .scalar(.string(name)) = arena.nodes[nameID] else {
                throw malformed("STACK_GLOBAL needs two strings, found \(arena.nodes[moduleID].kind) and \(arena.nodes[nameID].kind)")
            }
            try push(try global(module: module, name: name))
        case .inst:
            // The class is checked before its arguments are looked at.
            let cls = try globalLines()
            let args = try popMark()
            try pushNew(.call(cls, args))
        case .obj:
            let items = try popMark()
            guard let cls = items.first else { throw malformed("OBJ without a class") }
            try pushNew(.call(cls, Array(items.dropFirst())))
        case .reduce:
            let args = try tupleItems(try pop(), "REDUCE's arguments")
            let callee = try pop()
            try pushNew(try construct(callee, args))
        case .newObj:
            let args = try tupleItems(try pop(), "NEWOBJ's arguments")
            let cls = try pop()
            try pushNew(try construct(cls, args))
        case .newObjEx:
            let kwargs = try pop()
            let args = try tupleItems(try pop(), "NEWOBJ_EX's arguments")
            let cls = try pop()
            guard case let .dict(pairs) = arena.nodes[kwargs], pairs.isEmpty else {
                throw .unsupported(detail: "keyword arguments to a class", opcode: op.name, offset: opcodeOffset)
            }
            try pushNew(try construct(cls, args))
        case .build:
            let state = try pop()
            let target = try top()
            // The object keeps its node (the memo and containers hold it); its old content moves.
            let base = try add(arena.nodes[target])
            arena.nodes[target] = .object(base, state)
        case .persID:
            let text = try line()
            guard let id = text.withUnsafeBytes({ PickleText.utf8($0) }) else { throw malformed("a persistent id that is not valid UTF-8") }
            try pushNew(.persistent(try add(.scalar(.string(id)))))
        case .binPersID:
            try pushNew(.persistent(try pop()))

        case .ext1, .ext2, .ext4:
            throw .unsupported(detail: "an extension code, which names a global through a registry that is not in the file",
                               opcode: op.name, offset: opcodeOffset)
        case .nextBuffer, .readonlyBuffer:
            throw .unsupported(detail: "an out-of-band buffer, which is not in the file", opcode: op.name, offset: opcodeOffset)
        }
    }

    mutating func store(at index: Int) throws(PickleError) {
        let id = try top()
        if memo[index] == nil, memo.count >= limits.maxMemoEntries { throw limit("memo entries", limits.maxMemoEntries) }
        memo[index] = id
    }

    mutating func fetch(_ index: Int) throws(PickleError) {
        guard let id = memo[index] else { throw .unknownMemoEntry(index: index, opcode: opcode.name, offset: opcodeOffset) }
        try push(id)
    }
}
