/// Writes a pickle, one opcode at a time: the small subset of protocol 2 that a PyTorch state
/// dict needs (globals, tuples, calls, persistent ids, integers, strings, booleans, dicts).
///
/// The writer does not check that the opcodes form a valid program; its callers build fixed
/// shapes (see `TorchStateDictWriter`), and `PickleMachine` reads what they write back in the
/// tests.
public struct PickleWriter: Sendable {
    /// The pickle so far.
    public private(set) var bytes: [UInt8]

    /// Starts a pickle of `protocolVersion` (2 to 5; PROTO first).
    public init(protocolVersion: UInt8 = 2) {
        precondition((2...5).contains(protocolVersion), "the writer emits protocol 2 opcodes")
        bytes = [PickleOpcode.proto.rawValue, protocolVersion]
    }

    public mutating func op(_ code: PickleOpcode) { bytes.append(code.rawValue) }

    /// GLOBAL `module name`: pushes the object that unpickling looks up.
    public mutating func global(_ module: String, _ name: String) {
        precondition(!module.contains("\n") && !name.contains("\n"), "GLOBAL names are one line each")
        op(.global)
        bytes += Array(module.utf8) + [0x0A] + Array(name.utf8) + [0x0A]
    }

    /// The shortest integer opcode for `value`: BININT1, BININT2, BININT or LONG1.
    public mutating func int(_ value: Int) {
        switch value {
        case 0...0xFF:
            op(.binInt1)
            bytes.append(UInt8(value))
        case 0x100...0xFFFF:
            op(.binInt2)
            bytes += [UInt8(value & 0xFF), UInt8(value >> 8)]
        case Int(Int32.min)...Int(Int32.max):
            op(.binInt)
            withUnsafeBytes(of: Int32(value).littleEndian) { bytes += $0 }
        default:
            // Little-endian two's complement, as few bytes as keep the sign.
            var le: [UInt8] = []
            withUnsafeBytes(of: Int64(value).littleEndian) { le = Array($0) }
            while le.count > 1, (le[le.count - 1] == 0 && le[le.count - 2] & 0x80 == 0) || (le[le.count - 1] == 0xFF && le[le.count - 2] & 0x80 != 0) {
                le.removeLast()
            }
            op(.long1)
            bytes.append(UInt8(le.count))
            bytes += le
        }
    }

    /// BINUNICODE: a str.
    public mutating func string(_ value: String) {
        let utf8 = Array(value.utf8)
        op(.binUnicode)
        withUnsafeBytes(of: UInt32(utf8.count).littleEndian) { bytes += $0 }
        bytes += utf8
    }

    public mutating func bool(_ value: Bool) { op(value ? .newTrue : .newFalse) }

    /// A tuple of what `body` pushes (MARK ... TUPLE, or EMPTY_TUPLE when it pushes nothing).
    public mutating func tuple(_ body: (inout PickleWriter) -> Void) {
        let before = bytes.count
        op(.mark)
        body(&self)
        if bytes.count == before + 1 {
            bytes.removeLast()
            op(.emptyTuple)
        } else {
            op(.tuple)
        }
    }

    /// A tuple of integers.
    public mutating func intTuple(_ values: [Int]) { tuple { w in for v in values { w.int(v) } } }

    /// STOP: ends the pickle and returns it.
    public mutating func finish() -> [UInt8] {
        op(.stop)
        return bytes
    }
}
