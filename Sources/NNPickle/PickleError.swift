/// Why a pickle was not read. Each message is one line that names the opcode and the byte offset
/// where it starts; the caller puts the file's path in front.
public enum PickleError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A global (GLOBAL, STACK_GLOBAL, INST) that the caller's policy does not allow. It is refused
    /// the moment it is read, before anything uses it.
    case refusedGlobal(module: String, name: String, opcode: String, offset: Int)
    /// An opcode's argument runs past the end of the data.
    case truncated(opcode: String, offset: Int, needed: UInt64, remaining: Int)
    /// A text argument (protocol 0) without its end of line.
    case unterminatedLine(opcode: String, offset: Int)
    /// The data ends before a STOP opcode.
    case missingStop(offset: Int)
    /// A byte that is no pickle opcode.
    case unknownOpcode(byte: UInt8, offset: Int)
    /// An opcode pops more values than there are (above the innermost MARK).
    case stackUnderflow(opcode: String, offset: Int)
    /// An opcode that collects the values above a MARK finds no MARK.
    case missingMark(opcode: String, offset: Int)
    /// GET of a memo entry that was never stored.
    case unknownMemoEntry(index: Int, opcode: String, offset: Int)
    /// One of `PickleLimits` was reached: `what` says which, `limit` its value.
    case limitExceeded(what: String, limit: Int, opcode: String, offset: Int)
    /// A pickle feature this reader does not support (EXT codes, out-of-band buffers, protocol > 5).
    case unsupported(detail: String, opcode: String, offset: Int)
    /// Anything else that makes the pickle invalid: a bad text argument, a negative length,
    /// APPEND to something that is not a list, a value that contains itself.
    case malformed(detail: String, opcode: String, offset: Int)

    /// Where the problem is: the offset of the opcode's first byte.
    public var offset: Int {
        switch self {
        case let .refusedGlobal(_, _, _, offset), let .truncated(_, offset, _, _), let .unterminatedLine(_, offset),
             let .missingStop(offset), let .unknownOpcode(_, offset), let .stackUnderflow(_, offset),
             let .missingMark(_, offset), let .unknownMemoEntry(_, _, offset), let .limitExceeded(_, _, _, offset),
             let .unsupported(_, _, offset), let .malformed(_, _, offset):
            return offset
            }
    }

    public var description: String {
        switch self {
        case let .refusedGlobal(module, name, opcode, offset):
            return "the pickle calls \(PickleError.oneLine(module)).\(PickleError.oneLine(name)) (\(opcode) at byte \(offset)): refused, nothing was run"
        case let .truncated(opcode, offset, needed, remaining):
            return "truncated pickle: \(opcode) at byte \(offset) needs \(needed) bytes, \(remaining) remain"
        case let .unterminatedLine(opcode, offset):
            return "truncated pickle: the text argument of \(opcode) at byte \(offset) has no end of line"
        case let .missingStop(offset):
            return "truncated pickle: the data ends at byte \(offset) without a STOP opcode"
        case let .unknownOpcode(byte, offset):
            let hex = String(byte, radix: 16, uppercase: false)
            return "not a pickle: unknown opcode 0x\(hex.count < 2 ? "0" + hex : hex) at byte \(offset)"
        case let .stackUnderflow(opcode, offset):
            return "malformed pickle: \(opcode) at byte \(offset) pops a value from an empty stack"
        case let .missingMark(opcode, offset):
            return "malformed pickle: \(opcode) at byte \(offset) needs a MARK and there is none"
        case let .unknownMemoEntry(index, opcode, offset):
            return "malformed pickle: \(opcode) at byte \(offset) reads memo entry \(index), which was never stored"
        case let .limitExceeded(what, limit, opcode, offset):
            return "pickle too large: more than \(limit) \(what) (\(opcode) at byte \(offset))"
        case let .unsupported(detail, opcode, offset):
            return "unsupported pickle: \(detail) (\(opcode) at byte \(offset))"
        case let .malformed(detail, opcode, offset):
            return "malformed pickle: \(detail) (\(opcode) at byte \(offset))"
            }
    }
}

extension PickleError {
    /// Text from the input with control characters escaped, so that a message stays one line.
    public static func oneLine(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            if scalar.value < 0x20 || scalar.value == 0x7F || scalar.value == 0x85 || scalar.value == 0x2028 || scalar.value == 0x2029 {
                out += "\\u{\(String(scalar.value, radix: 16))}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
