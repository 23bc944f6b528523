import NNPickle
import Testing

/// Each bound of `PickleLimits`, and the malformed inputs that must end in a one-line error with
/// the offset: truncation, unknown opcodes, a missing STOP, stack underflow, huge length fields.
struct PickleLimitTests {
    func limits(memo: Int = 1 << 20, stack: Int = 1 << 20, marks: Int = 1024, nesting: Int = 200,
                values: Int = 1 << 23) -> PickleLimits {
        PickleLimits(maxMemoEntries: memo, maxStackDepth: stack, maxMarkDepth: marks, maxNestingDepth: nesting,
                     maxValues: values, maxLongBytes: 64)
    }

    @Test("The defaults are the documented ones")
    func defaults() {
        #expect(PickleLimits.default == limits())
        #expect(PickleLimits.default.maxLongBytes == 64)
    }

    @Test("Memo entries: counted per distinct index; storing again under an index is free")
    func memoEntries() {
        let small = limits(memo: 2)
        #expect(loadError(bytes("]q", [0], "q", [1], "q", [0], "."), limits: small) == nil)
        #expect(loadError(bytes("]q", [0], "q", [1], "q", [2], "."), limits: small)
            == "pickle too large: more than 2 memo entries (BINPUT at byte 5)")
        // A huge index is one entry of a dictionary, not an array that size.
        #expect(loadError(bytes("Np9999999999\n.")) == nil)
        #expect(loadError(bytes("Nr", [0xFF, 0xFF, 0xFF, 0xFF], ".")) == nil)
    }

    @Test("A GET beyond the memo is an error, never an allocation")
    func memoIndexBeyondTheMemo() {
        #expect(loadError(bytes([0x80, 2], "j", [0xFF, 0xFF, 0xFF, 0x7F], "."))
            == "malformed pickle: LONG_BINGET at byte 2 reads memo entry 2147483647, which was never stored")
        #expect(loadError(bytes("Nq", [0], "h", [1], "."))
            == "malformed pickle: BINGET at byte 3 reads memo entry 1, which was never stored")
        #expect(loadError(bytes("g99999999999999999999\n."))
            == "malformed pickle: the argument '99999999999999999999' is not a memo index (GET at byte 0)")
        #expect(loadError(bytes("p-1\n.")) == "malformed pickle: the argument '-1' is not a memo index (PUT at byte 0)")
        #expect(loadError(bytes("q", [0], ".")) == "malformed pickle: BINPUT at byte 0 pops a value from an empty stack")
    }

    @Test("Stack depth and mark depth")
    func stackAndMarks() {
        #expect(loadError(bytes("NNNN."), limits: limits(stack: 3)) == "pickle too large: more than 3 values on the stack (NONE at byte 3)")
        #expect(loadError(bytes("((("), limits: limits(marks: 2)) == "pickle too large: more than 2 levels of MARK nesting (MARK at byte 2)")
        // The default mark bound, reached by a run of MARKs.
        #expect(loadError(bytes([UInt8](repeating: 0x28, count: 2000)))
            == "pickle too large: more than 1024 levels of MARK nesting (MARK at byte 1024)")
    }

    @Test("Nesting depth: checked without recursion, however deep the input nests")
    func nesting() {
        // () wrapped in 300 TUPLE1s: 301 levels.
        let deep = bytes([0x80, 2], ")", [UInt8](repeating: 0x85, count: 300), ".")
        #expect(loadError(deep) == "pickle too large: more than 200 levels of nesting (STOP at byte 303)")
        #expect(loadError(bytes([0x80, 2], ")", [UInt8](repeating: 0x85, count: 199), ".")) == nil)
        // A million levels: no stack overflow, the same one line.
        let million = bytes([0x80, 2], ")", [UInt8](repeating: 0x85, count: 1_000_000), ".")
        #expect(loadError(million) == "pickle too large: more than 200 levels of nesting (STOP at byte 1000003)")
    }

    @Test("Values created, and values in the result counting shared ones where they appear")
    func values() {
        #expect(loadError(bytes("(NNNNNNl."), limits: limits(values: 5)) == "pickle too large: more than 5 values (NONE at byte 6)")
        // x = (); then 40 times x = (x, x): 2^41 - 1 values as a walk sees them, from 90 opcodes.
        var doubling = bytes([0x80, 2], ")q", [0], "0")
        for _ in 0..<40 { doubling += bytes("h", [0], "h", [0], [0x86], "q", [0], "0") }
        doubling += bytes("h", [0], ".")
        #expect(loadError(doubling)
            == "pickle too large: more than 8388608 values (counting shared ones where they appear) (STOP at byte \(doubling.count - 1))")
    }

    @Test("Integers: at most 64 bytes (LONG1, LONG4) or 154 digits (INT, LONG)")
    func longIntegers() {
        #expect(loadError(bytes([0x80, 2, 0x8A, 65], [UInt8](repeating: 1, count: 65), "."))
            == "pickle too large: more than 64 bytes in an integer (LONG1 at byte 2)")
        #expect(loadError(bytes([0x80, 2, 0x8B, 0xFF, 0xFF, 0xFF, 0x7F], "."))
            == "pickle too large: more than 64 bytes in an integer (LONG4 at byte 2)")
        #expect(loadError(bytes([0x80, 2, 0x8B, 0xFF, 0xFF, 0xFF, 0xFF], "."))
            == "malformed pickle: a negative length (-1) (LONG4 at byte 2)")
        #expect(loadError(bytes("I", String(repeating: "9", count: 200), "\n."))
            == "pickle too large: more than 154 digits in an integer (INT at byte 0)")
        // 64 bytes and 154 digits are fine.
        #expect(loadError(bytes([0x80, 2, 0x8A, 64], [UInt8](repeating: 1, count: 64), ".")) == nil)
        #expect(loadError(bytes("L", String(repeating: "9", count: 154), "L\n.")) == nil)
    }

    @Test("Length fields are checked against the bytes that remain before anything is allocated")
    func hugeLengths() {
        #expect(loadError(bytes([0x80, 4, 0x8D], [0, 0, 0, 0, 0, 0, 0, 0x80], "."))
            == "truncated pickle: BINUNICODE8 at byte 2 needs 9223372036854775808 bytes, 1 remain")
        #expect(loadError(bytes([0x80, 4, 0x8E], [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF], "."))
            == "truncated pickle: BINBYTES8 at byte 2 needs 18446744073709551615 bytes, 1 remain")
        #expect(loadError(bytes([0x80, 3], "B", [0xFF, 0xFF, 0xFF, 0xFF], "."))
            == "truncated pickle: BINBYTES at byte 2 needs 4294967295 bytes, 1 remain")
        #expect(loadError(bytes("X", [5, 0, 0, 0], "ab.")) == "truncated pickle: BINUNICODE at byte 0 needs 5 bytes, 3 remain")
        #expect(loadError(bytes("T", [0xFF, 0xFF, 0xFF, 0xFF], ".")) == "malformed pickle: a negative length (-1) (BINSTRING at byte 0)")
        #expect(loadError(bytes([0x80, 5, 0x96], [0, 0, 0, 0, 0, 0, 0, 1], "."))
            == "truncated pickle: BYTEARRAY8 at byte 2 needs 72057594037927936 bytes, 1 remain")
        #expect(loadError(bytes([0x80, 4, 0x95], [0xFF, 0, 0, 0, 0, 0, 0, 0], "N."))
            == "truncated pickle: FRAME at byte 2 needs 255 bytes, 2 remain")
    }

    @Test("Truncation, unknown opcodes, a missing STOP, stack underflow, missing MARKs, bad UTF-8")
    func malformed() {
        #expect(loadError([]) == "truncated pickle: the data ends at byte 0 without a STOP opcode")
        #expect(loadError(bytes([0x80, 2], "N")) == "truncated pickle: the data ends at byte 3 without a STOP opcode")
        #expect(loadError(bytes([0x80, 2], "J", [1, 2])) == "truncated pickle: BININT at byte 2 needs 4 bytes, 2 remain")
        #expect(loadError(bytes([0x80])) == "truncated pickle: PROTO at byte 0 needs 1 bytes, 0 remain")
        #expect(loadError(bytes([0x80, 2, 0xFF], ".")) == "not a pickle: unknown opcode 0xff at byte 2")
        #expect(loadError(bytes([0x0A])) == "not a pickle: unknown opcode 0x0a at byte 0")
        #expect(loadError(bytes([0x80, 2, 0x86], ".")) == "malformed pickle: TUPLE2 at byte 2 pops a value from an empty stack")
        #expect(loadError(bytes(".")) == "malformed pickle: STOP at byte 0 pops a value from an empty stack")
        // Pops never reach below the innermost MARK.
        #expect(loadError(bytes("N(", [0x85], ".")) == "malformed pickle: TUPLE1 at byte 2 pops a value from an empty stack")
        #expect(loadError(bytes("Nt.")) == "malformed pickle: TUPLE at byte 1 needs a MARK and there is none")
        #expect(loadError(bytes("I12")) == "truncated pickle: the text argument of INT at byte 0 has no end of line")
        #expect(loadError(bytes("cos\nsys")) == "truncated pickle: the text argument of GLOBAL at byte 0 has no end of line")
        #expect(loadError(bytes([0x8C, 2, 0xC3, 0x28], ".")) == "malformed pickle: a string that is not valid UTF-8 (SHORT_BINUNICODE at byte 0)")
        #expect(loadError(bytes("K", [1], "K", [2], "a.")) == "malformed pickle: APPEND adds to an int, not a list (APPEND at byte 4)")
        #expect(loadError(bytes("](K", [1], "u.")) == "malformed pickle: SETITEMS of an odd number of values (1) (SETITEMS at byte 4)")
        #expect(loadError(bytes("](K", [1], "K", [2], "u.")) == "malformed pickle: SETITEMS adds to a list, not a dict (SETITEMS at byte 6)")
        #expect(loadError(bytes("(K", [1], "d.")) == "malformed pickle: DICT of an odd number of values (1) (DICT at byte 3)")
        #expect(loadError(bytes([0x80, 4], "K", [1], "K", [2], [0x93], "."))
            == "malformed pickle: STACK_GLOBAL needs two strings, found an int and an int (STACK_GLOBAL at byte 6)")
        #expect(loadError(bytes("(o.")) == "malformed pickle: OBJ without a class (OBJ at byte 1)")
    }

    @Test("Every error message is one line and names its offset")
    func oneLine() {
        let error = PickleError.malformed(detail: "x", opcode: "STOP", offset: 7)
        #expect(error.offset == 7)
        #expect(!error.description.contains("\n"))
    }
}
