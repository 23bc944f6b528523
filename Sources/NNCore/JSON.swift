/// A JSON document as a value tree.
///
/// The format's header is JSON; this type parses it with hard limits on size and nesting (the
/// input may come from anyone), keeps object members in file order, and serializes
/// deterministically, so that rewriting a file reproduces it byte for byte and fields this
/// version does not know survive a rewrite.
public enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    /// Numbers keep their source text for integers so that 64-bit values survive exactly.
    case number(Double)
    case integer(Int64)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    public subscript(key: String) -> JSONValue? {
        if case let .object(o) = self { return o[key] }
        return nil
    }

    public var stringValue: String? { if case let .string(s) = self { return s } else { return nil } }
    public var boolValue: Bool? { if case let .bool(b) = self { return b } else { return nil } }
    public var arrayValue: [JSONValue]? { if case let .array(a) = self { return a } else { return nil } }
    public var objectValue: JSONObject? { if case let .object(o) = self { return o } else { return nil } }

    /// The value as a Double, for both integer and fractional numbers.
    public var doubleValue: Double? {
        switch self {
        case let .number(d): return d
        case let .integer(i): return Double(i)
        default: return nil
        }
    }

    /// The value as an Int, when it is an integer (or a double with an exact integer value).
    public var intValue: Int? {
        switch self {
        case let .integer(i): return Int(exactly: i)
        case let .number(d):
            guard d.isFinite, d.rounded() == d, abs(d) < 9.0e15 else { return nil }
            return Int(d)
        default: return nil
        }
    }

    /// A short name for the kind of value, for error messages.
    public var kindName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number, .integer: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}

/// A JSON object whose members keep their order.
public struct JSONObject: Equatable, Sendable, Sequence {
    public private(set) var members: [(key: String, value: JSONValue)] = []

    public init() {}
    public init(_ members: [(String, JSONValue)]) {
        for (k, v) in members { self[k] = v }
    }

    public subscript(key: String) -> JSONValue? {
        get { members.first(where: { $0.key == key })?.value }
        set {
            if let i = members.firstIndex(where: { $0.key == key }) {
                if let newValue { members[i].value = newValue } else { members.remove(at: i) }
            } else if let newValue {
                members.append((key, newValue))
            }
        }
    }

    /// Appends a member whose key the caller knows is new (the parser, which checks keys with a
    /// set): constant time, where the subscript searches the members.
    mutating func appendNew(_ key: String, _ value: JSONValue) {
        members.append((key, value))
    }

    public var keys: [String] { members.map(\.key) }
    public var isEmpty: Bool { members.isEmpty }

    public func makeIterator() -> IndexingIterator<[(key: String, value: JSONValue)]> {
        members.makeIterator()
    }

    public static func == (a: JSONObject, b: JSONObject) -> Bool {
        a.members.count == b.members.count
            && zip(a.members, b.members).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    }
}

/// Why a JSON text was rejected; `offset` is the byte position in the text.
public struct JSONParseError: Error, Equatable, CustomStringConvertible, Sendable {
    public var offset: Int
    public var message: String
    public var description: String { "invalid JSON at byte \(offset): \(message)" }
}

extension JSONValue {
    /// Deepest nesting of arrays and objects a parsed document may have.
    public static let maximumDepth = 64

    /// Parses UTF-8 JSON text (RFC 8259). Duplicate object keys are rejected: two readers
    /// that pick different duplicates would see different models.
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(JSONParseError) -> JSONValue {
        var scanner = JSONScanner(bytes)
        let value = try scanner.readValue()
        try scanner.readEnd()
        return value
    }

    /// Parses UTF-8 JSON text.
    public static func parse(_ bytes: [UInt8]) throws(JSONParseError) -> JSONValue {
        do {
            return try bytes.withUnsafeBytes { raw in try parse(raw) }
        } catch let error as JSONParseError {
            throw error
        } catch {
            throw JSONParseError(offset: 0, message: "\(error)")
        }
    }

    /// Parses JSON text given as a string.
    public static func parse(_ text: String) throws(JSONParseError) -> JSONValue {
        try parse(Array(text.utf8))
    }
}

/// A pull reader of JSON text, for callers that read a large document straight into their own
/// types instead of building a `JSONValue` tree (the safetensors header of 100,000 tensors).
///
/// It keeps the limits and checks of `JSONValue.parse` (nesting depth, duplicate member names,
/// UTF-8, RFC 8259 syntax), which is built on it.
public struct JSONScanner {
    let bytes: UnsafeRawBufferPointer
    /// The byte offset of the next unread character.
    public private(set) var position = 0
    /// Arrays and objects open around the current position.
    var depth = 0

    /// A scanner over UTF-8 text; `bytes` must outlive it.
    public init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    func fail(_ message: String) -> JSONParseError {
        JSONParseError(offset: position, message: message)
    }

    mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x09, 0x0A, 0x0D: position += 1
            default: return
            }
        }
    }

    /// Checks that only whitespace follows.
    public mutating func readEnd() throws(JSONParseError) {
        skipWhitespace()
        if position != bytes.count { throw fail("unexpected text after the document") }
    }

    /// Reads one value of any kind as a tree.
    public mutating func readValue() throws(JSONParseError) -> JSONValue {
        guard depth < JSONValue.maximumDepth else { throw fail("nesting deeper than \(JSONValue.maximumDepth) levels") }
        skipWhitespace()
        guard position < bytes.count else { throw fail("unexpected end of text") }
        switch bytes[position] {
        case UInt8(ascii: "{"):
            var object = JSONObject()
            var members = try beginObject()
            while let key = try nextMember(&members) { object.appendNew(key, try readValue()) }
            return .object(object)
        case UInt8(ascii: "["):
            var array: [JSONValue] = []
            var elements = try beginArray()
            while try nextElement(&elements) { array.append(try readValue()) }
            return .array(array)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default: throw fail("unexpected character '\(Character(Unicode.Scalar(bytes[position])))'")
        }
    }

    mutating func expectLiteral(_ literal: StaticString) throws(JSONParseError) {
        let n = literal.utf8CodeUnitCount
        guard position + n <= bytes.count else { throw fail("unexpected end of text") }
        for i in 0..<n where bytes[position + i] != literal.utf8Start[i] {
            throw fail("invalid literal")
        }
        position += n
    }

    /// Where a scanner is inside an object: the names seen so far, for the duplicate check.
    public struct ObjectState {
        var started = false
        // Small objects (a tensor's dtype, shape and offsets) check duplicates by a linear search;
        // a set is built only once an object grows, so a header of 100,000 small entries does not
        // allocate 100,000 sets.
        var keys: [String] = []
        var seen: Set<String>?
    }

    /// Where a scanner is inside an array.
    public struct ArrayState {
        var started = false
    }

    mutating func open(_ bracket: UInt8, _ what: String) throws(JSONParseError) {
        guard depth < JSONValue.maximumDepth else { throw fail("nesting deeper than \(JSONValue.maximumDepth) levels") }
        skipWhitespace()
        guard position < bytes.count, bytes[position] == bracket else { throw fail("expected \(what)") }
        position += 1
        depth += 1
    }

    /// Reads the `{` of an object; then call `nextMember` until it returns nil.
    public mutating func beginObject() throws(JSONParseError) -> ObjectState {
        try open(UInt8(ascii: "{"), "an object")
        return ObjectState()
    }

    /// The next member's name, with the scanner standing at its value, which the caller must read
    /// before the next call; nil after the closing `}`. A duplicate name is an error.
    public mutating func nextMember(_ state: inout ObjectState) throws(JSONParseError) -> String? {
        skipWhitespace()
        guard position < bytes.count else { throw fail(state.started ? "unexpected end of text in an object" : "expected a member name in quotes") }
        if state.started {
            if bytes[position] == UInt8(ascii: "}") { position += 1; depth -= 1; return nil }
            guard bytes[position] == UInt8(ascii: ",") else { throw fail("expected ',' or '}'") }
            position += 1
            skipWhitespace()
        } else if bytes[position] == UInt8(ascii: "}") {
            position += 1
            depth -= 1
            return nil
        }
        state.started = true
        guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else {
            throw fail("expected a member name in quotes")
        }
        let key = try parseString()
        let duplicate: Bool
        if state.seen != nil {
            duplicate = !state.seen!.insert(key).inserted
        } else {
            duplicate = state.keys.contains(key)
            state.keys.append(key)
            if state.keys.count > 16 { state.seen = Set(state.keys); state.keys = [] }
        }
        guard !duplicate else { throw fail("duplicate member name \"\(key)\"") }
        skipWhitespace()
        guard position < bytes.count, bytes[position] == UInt8(ascii: ":") else { throw fail("expected ':'") }
        position += 1
        return key
    }

    /// Reads the `[` of an array; then call `nextElement` until it returns false.
    public mutating func beginArray() throws(JSONParseError) -> ArrayState {
        try open(UInt8(ascii: "["), "an array")
        return ArrayState()
    }

    /// Whether another element follows (the caller must then read it); false after the `]`.
    public mutating func nextElement(_ state: inout ArrayState) throws(JSONParseError) -> Bool {
        skipWhitespace()
        guard position < bytes.count else { throw fail(state.started ? "unexpected end of text in an array" : "unexpected end of text") }
        if bytes[position] == UInt8(ascii: "]") {
            position += 1
            depth -= 1
            return false
        }
        if state.started {
            guard bytes[position] == UInt8(ascii: ",") else { throw fail("expected ',' or ']'") }
            position += 1
        }
        state.started = true
        return true
    }

    /// Reads a string.
    public mutating func readString() throws(JSONParseError) -> String {
        skipWhitespace()
        guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else { throw fail("expected a string") }
        return try parseString()
    }

    mutating func parseHex4() throws(JSONParseError) -> UInt32 {
        guard position + 4 <= bytes.count else { throw fail("unexpected end of text in a \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[position]
            let d: UInt32
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(c - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(c - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(c - UInt8(ascii: "A") + 10)
            default: throw fail("invalid \\u escape")
            }
            v = v << 4 | d
            position += 1
        }
        return v
    }

    mutating func parseString() throws(JSONParseError) -> String {
        position += 1  // opening quote
        // The common case, a string without escapes, is validated and copied in one step.
        // ASCII needs no validation, which is the costly part for many short names.
        var end = position
        var bits: UInt8 = 0
        while end < bytes.count {
            let c = bytes[end]
            if c == UInt8(ascii: "\"") {
                let run = UnsafeRawBufferPointer(rebasing: bytes[position..<end])
                if bits < 0x80 {
                    position = end + 1
                    return String(decoding: run, as: UTF8.self)
                }
                if let text = String(validating: run, as: UTF8.self) {
                    position = end + 1
                    return text
                }
                break
            }
            if c < 0x20 || c == UInt8(ascii: "\\") { break }
            bits |= c
            end += 1
        }
        var scalars = String.UnicodeScalarView()
        var runStart = position
        func flushRun(_ end: Int) throws(JSONParseError) {
            guard end > runStart else { return }
            let run = UnsafeRawBufferPointer(rebasing: bytes[runStart..<end])
            guard let text = String(validating: run, as: UTF8.self) else {
                throw JSONParseError(offset: runStart, message: "string is not valid UTF-8")
            }
            scalars.append(contentsOf: text.unicodeScalars)
        }
        while position < bytes.count {
            let c = bytes[position]
            if c == UInt8(ascii: "\"") {
                try flushRun(position)
                position += 1
                return String(scalars)
            }
            if c < 0x20 { throw fail("control character in a string") }
            if c == UInt8(ascii: "\\") {
                try flushRun(position)
                position += 1
                guard position < bytes.count else { break }
                let e = bytes[position]
                position += 1
                switch e {
                case UInt8(ascii: "\""): scalars.append("\"")
                case UInt8(ascii: "\\"): scalars.append("\\")
                case UInt8(ascii: "/"): scalars.append("/")
                case UInt8(ascii: "b"): scalars.append("\u{08}")
                case UInt8(ascii: "f"): scalars.append("\u{0C}")
                case UInt8(ascii: "n"): scalars.append("\n")
                case UInt8(ascii: "r"): scalars.append("\r")
                case UInt8(ascii: "t"): scalars.append("\t")
                case UInt8(ascii: "u"):
                    var code = try parseHex4()
                    if (0xD800..<0xDC00).contains(code) {
                        guard position + 2 <= bytes.count, bytes[position] == UInt8(ascii: "\\"),
                              bytes[position + 1] == UInt8(ascii: "u") else { throw fail("unpaired surrogate") }
                        position += 2
                        let low = try parseHex4()
                        guard (0xDC00..<0xE000).contains(low) else { throw fail("unpaired surrogate") }
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let scalar = Unicode.Scalar(code) else { throw fail("unpaired surrogate") }
                    scalars.append(scalar)
                default: throw fail("invalid escape")
                }
                runStart = position
                continue
            }
            position += 1
        }
        throw fail("unterminated string")
    }

    mutating func parseNumber() throws(JSONParseError) -> JSONValue {
        let start = position
        var isInteger = true
        if bytes[position] == UInt8(ascii: "-") { position += 1 }
        func digits() -> Int {
            let s = position
            while position < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[position]) { position += 1 }
            return position - s
        }
        let intStart = position
        let intDigits = digits()
        guard intDigits > 0 else { throw fail("invalid number") }
        if intDigits > 1, bytes[intStart] == UInt8(ascii: "0") { throw fail("leading zero in a number") }
        if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
            isInteger = false
            position += 1
            guard digits() > 0 else { throw fail("invalid number") }
        }
        if position < bytes.count, bytes[position] == UInt8(ascii: "e") || bytes[position] == UInt8(ascii: "E") {
            isInteger = false
            position += 1
            if position < bytes.count, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") { position += 1 }
            guard digits() > 0 else { throw fail("invalid number") }
        }
        guard position - start <= 400 else { throw fail("number too long") }
        // Integers of up to 18 digits (every shape and offset) are accumulated directly.
        if isInteger, intDigits <= 18 {
            var value: Int64 = 0
            for i in intStart..<position { value = value * 10 + Int64(bytes[i] - UInt8(ascii: "0")) }
            return .integer(bytes[start] == UInt8(ascii: "-") ? -value : value)
        }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
        if isInteger, let i = Int64(text) { return .integer(i) }
        guard let d = Double(text), d.isFinite else { throw JSONParseError(offset: start, message: "number out of range") }
        return .number(d)
    }
}

extension JSONValue {
    /// Serializes compactly; `indent` > 0 pretty-prints. Non-finite doubles become null
    /// (JSON has no NaN); the format never stores them in the header.
    public func serialized(indent: Int = 0) -> String {
        var out: [UInt8] = []
        write(into: &out, indent: indent)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends what `serialized(indent:)` returns, as UTF-8, to `out`. Writers of many values
    /// (a JSON line per prediction) append to one buffer, with no String per value: appending
    /// to a String checks capacity, ASCII-ness and breadcrumbs on every piece.
    public func write(into out: inout [UInt8], indent: Int = 0) {
        write(into: &out, indent: indent, level: 0)
    }

    private func write(into out: inout [UInt8], indent: Int, level: Int) {
        func newline(_ l: Int) {
            if indent > 0 {
                out.append(UInt8(ascii: "\n"))
                out.append(contentsOf: repeatElement(UInt8(ascii: " "), count: indent * l))
            }
        }
        switch self {
        case .null: out.append(contentsOf: "null".utf8)
        case let .bool(b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case let .integer(i): out.append(contentsOf: String(i).utf8)
        case let .number(d):
            if !d.isFinite { out.append(contentsOf: "null".utf8) }
            else if d == d.rounded(), abs(d) < 1e15 {
                out.append(contentsOf: String(Int64(d)).utf8)
                out.append(contentsOf: ".0".utf8)
            } else { out.append(contentsOf: d.description.utf8) }
        case let .string(s): JSONValue.writeString(s, into: &out)
        case let .array(a):
            if a.isEmpty { out.append(contentsOf: "[]".utf8); return }
            // Arrays of scalars stay on one line: histories and shapes read better that way.
            let flat = a.allSatisfy { if case .array = $0 { return false }; if case .object = $0 { return false }; return true }
            out.append(UInt8(ascii: "["))
            for (i, v) in a.enumerated() {
                if i > 0 { out.append(contentsOf: (flat && indent > 0 ? ", " : ",").utf8) }
                if !flat { newline(level + 1) }
                v.write(into: &out, indent: indent, level: level + 1)
            }
            if !flat { newline(level) }
            out.append(UInt8(ascii: "]"))
        case let .object(o):
            if o.isEmpty { out.append(contentsOf: "{}".utf8); return }
            out.append(UInt8(ascii: "{"))
            for (i, m) in o.members.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                newline(level + 1)
                JSONValue.writeString(m.key, into: &out)
                out.append(contentsOf: (indent > 0 ? ": " : ":").utf8)
                m.value.write(into: &out, indent: indent, level: level + 1)
            }
            newline(level)
            out.append(UInt8(ascii: "}"))
        }
    }

    /// `s` quoted, with `"`, `\\` and control characters escaped. Byte by byte: every byte of a
    /// multi-byte UTF-8 sequence is at least 0x80, so only ASCII bytes are ever escaped.
    private static func writeString(_ s: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        var s = s
        s.withUTF8 { bytes in
            var plain = 0  // bytes[plain..<i] need no escape and are appended together
            for (i, byte) in bytes.enumerated() where byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
                out.append(contentsOf: bytes[plain..<i])
                plain = i + 1
                switch byte {
                case UInt8(ascii: "\""): out.append(contentsOf: "\\\"".utf8)
                case UInt8(ascii: "\\"): out.append(contentsOf: "\\\\".utf8)
                case UInt8(ascii: "\n"): out.append(contentsOf: "\\n".utf8)
                case UInt8(ascii: "\r"): out.append(contentsOf: "\\r".utf8)
                case UInt8(ascii: "\t"): out.append(contentsOf: "\\t".utf8)
                default:
                    let hex = Array("0123456789abcdef".utf8)
                    out.append(contentsOf: "\\u00".utf8)
                    out.append(hex[Int(byte >> 4)])
                    out.append(hex[Int(byte & 15)])
                }
            }
            out.append(contentsOf: bytes[plain...])
        }
        out.append(UInt8(ascii: "\""))
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .integer(Int64(value)) }
    public init(floatLiteral value: Double) { self = .number(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) { self = .object(JSONObject(elements)) }
    public init(nilLiteral: ()) { self = .null }
}
