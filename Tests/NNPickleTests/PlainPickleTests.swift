import NNPickle
import Testing

/// CPython's pickles of the same data in protocols 0 to 5 (`make_pickles.py`), and the opcodes
/// Python 3 no longer writes, built by hand.
struct PlainPickleTests {
    /// `PLAIN` of make_pickles.py, written out by hand.
    static let plain: PickleValue = .d([
        ("none", .none), ("true", .bool(true)), ("false", .bool(false)),
        ("small", .i(7)), ("neg", .i(-129)), ("u16", .i(40000)), ("i32", .i(-2_147_483_648)),
        ("i64", .i(4_611_686_018_427_387_904)), ("min64", .int(Int64.min)),
        // 2**100 and -2**70 as Python's int.to_bytes(signed=True) gives them.
        ("big", .bigInt([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 16])), ("negbig", .bigInt([0, 0, 0, 0, 0, 0, 0, 0, 192])),
        ("float", .float(1.5)), ("negzero", .float(-0.0)), ("inf", .float(.infinity)), ("tiny", .float(Double(bitPattern: 1))),
        ("str", .s("h\u{e9}llo\n\\ \u{20ac} \u{1F600}")), ("empty", .s("")),
        ("bytes", .bytes([0, 255, 97, 98])), ("bytearray", .bytes([120, 121])),
        ("tuples", .tuple([.tuple([]), .tuple([.i(1)]), .tuple([.i(1), .i(2)]), .tuple([.i(1), .i(2), .i(3)]),
                           .tuple([.i(1), .i(2), .i(3), .i(4), .i(5)])])),
        ("list", .list([.i(1), .list([.i(2), .list([.i(3)])]), .s("x")])),
        ("set", .set([.i(3)])), ("frozenset", .set([.i(4)])),
        ("nested", .d([("a", .d([("b", .list([.none]))]))])),
        ("shared", .list([.list([.i(9)]), .list([.i(9)])])),
        ("od", .d([("k", .i(1)), ("j", .i(2))])),
    ])

    @Test("CPython's pickle of the same data decodes alike in every protocol", arguments: 0...5)
    func everyProtocol(_ protocolVersion: Int) throws {
        let value = try PickleMachine.load(try Fixtures.bytes("plain-p\(protocolVersion).pkl"), policy: plainPolicy)
        #expect(value == Self.plain)
        // -0.0 == 0.0, so the sign separately.
        #expect(value["negzero"]?.doubleValue?.sign == .minus)
    }

    @Test("Without the container globals, plain data that needs them is refused by name")
    func containersNeedTheirGlobals() throws {
        #expect(loadError(try Fixtures.bytes("plain-p2.pkl"), policy: .nothing)
            == "the pickle calls _codecs.encode (GLOBAL at byte 339): refused, nothing was run")
        // Protocol 5 has opcodes for all of them.
        #expect(loadError(try Fixtures.bytes("plain-p5.pkl"), policy: .nothing)
            == "the pickle calls collections.OrderedDict (STACK_GLOBAL at byte 479): refused, nothing was run")
    }

    @Test("Python 2 strings: STRING with escapes, BINSTRING, SHORT_BINSTRING; bytes when not UTF-8")
    func python2Strings() throws {
        #expect(try PickleMachine.load(bytes("S'a\\'b\\n\\x41\\101\\\\'\n."), policy: .nothing) == .s("a'b\nAA\\"))
        #expect(try PickleMachine.load(bytes("S\"q\"\n."), policy: .nothing) == .s("q"))
        #expect(try PickleMachine.load(bytes("T", [3, 0, 0, 0], "abc."), policy: .nothing) == .s("abc"))
        #expect(try PickleMachine.load(bytes("U", [2, 0xFF, 0xFE], "."), policy: .nothing) == .bytes([0xFF, 0xFE]))
        #expect(loadError(bytes("S'abc\n.")) == "malformed pickle: the argument of STRING is not quoted (STRING at byte 0)")
        #expect(loadError(bytes("S'a\\x4'\n.")) == "malformed pickle: the argument 'a\\x5cx4' has a bad escape (STRING at byte 0)")
    }

    @Test("Protocol 0 text: INT booleans, LONG with L, FLOAT, UNICODE escapes, PERSID")
    func protocol0Text() throws {
        let value = try PickleMachine.load(bytes("(I01\nI00\nI-5\nL18446744073709551616L\nF-2.5e-3\nV\\u20ac\\\\x\nPabc\nt."), policy: .nothing)
        #expect(value == .tuple([.bool(true), .bool(false), .i(-5), .bigInt([0, 0, 0, 0, 0, 0, 0, 0, 1]), .float(-2.5e-3),
                                 .s("\u{20ac}\\\\x"), .persistent(.s("abc"))]))
        #expect(loadError(bytes("I12x\n.")) == "malformed pickle: the argument '12x' is not an integer (INT at byte 0)")
        #expect(loadError(bytes("Fnope\n.")) == "malformed pickle: the argument 'nope' is not a number (FLOAT at byte 0)")
        #expect(loadError(bytes("V\\u12\n.")) == "malformed pickle: the argument '\\x5cu12' has a bad \\u escape (UNICODE at byte 0)")
    }

    @Test("Binary integers: BININT is signed, BININT1/2 unsigned, LONG1/LONG4 two's complement, BINFLOAT big-endian")
    func binaryNumbers() throws {
        let value = try PickleMachine.load(bytes([0x80, 2], "(J", [0xFE, 0xFF, 0xFF, 0xFF], "K", [0xFF], "M", [0xFF, 0xFF],
                                                 [0x8A, 0], [0x8A, 2, 0x00, 0x80], [0x8B, 1, 0, 0, 0, 0xFF],
                                                 "G", [0x3F, 0xF8, 0, 0, 0, 0, 0, 0], "t."), policy: .nothing)
        #expect(value == .tuple([.i(-2), .i(255), .i(65535), .i(0), .i(-32768), .i(-1), .float(1.5)]))
    }

    @Test("Marks and stack: POP, POP_MARK, DUP, LIST, DICT, APPEND, FROZENSET, EMPTY_SET/ADDITEMS")
    func stackOpcodes() throws {
        let value = try PickleMachine.load(bytes("(K", [1], "(K", [2], "1K", [3], "0(K", [4], "2l(S'a'\nK", [5], "d]K", [6], "a",
                                                 [0x8F], "(K", [7], [0x90], "(K", [8], [0x91], "t."), policy: .nothing)
        #expect(value == .tuple([.i(1), .list([.i(4), .i(4)]), .d([("a", .i(5))]), .list([.i(6)]), .set([.i(7)]), .set([.i(8)])]))
        // A POP right after a MARK discards the MARK, as CPython does.
        #expect(try PickleMachine.load(bytes("K", [1], "(0."), policy: .nothing) == .i(1))
    }

    @Test("The memo shares containers: a list changed after PUT is changed where GET reads it")
    func memoSharing() throws {
        // x = []; memo[0] = x; pair = (x, x) ... then APPEND to x: both places see it.
        let value = try PickleMachine.load(bytes("]q", [0], "h", [0], [0x86], "h", [0], "K", [1], "a0."), policy: .nothing)
        #expect(value == .tuple([.list([.i(1)]), .list([.i(1)])]))
        // MEMOIZE numbers entries by the memo's size.
        #expect(try PickleMachine.load(bytes([0x80, 4], "K", [5], [0x94], "K", [6], [0x94], "0h", [0], "."), policy: .nothing) == .i(5))
    }

    @Test("Calls are records: REDUCE, NEWOBJ, NEWOBJ_EX, INST, OBJ and BUILD of allowed globals run nothing")
    func callsAreRecords() throws {
        let policy = PickleGlobalPolicy(allowing: ["m.C", "m.f"])
        let c = PickleValue.global(module: "m", name: "C")
        let f = PickleValue.global(module: "m", name: "f")
        #expect(try PickleMachine.load(bytes("cm\nf\n(K", [1], "tR."), policy: policy) == .call(f, args: [.i(1)]))
        #expect(try PickleMachine.load(bytes([0x80, 2], "cm\nC\n)", [0x81], "}S'a'\nK", [2], "sb."), policy: policy)
            == .object(.call(c, args: []), state: .d([("a", .i(2))])))
        #expect(try PickleMachine.load(bytes([0x80, 4], "cm\nC\n(K", [3], "t}", [0x92], "."), policy: policy) == .call(c, args: [.i(3)]))
        #expect(try PickleMachine.load(bytes("(K", [4], "im\nC\n."), policy: policy) == .call(c, args: [.i(4)]))
        #expect(try PickleMachine.load(bytes("(cm\nC\nK", [5], "o."), policy: policy) == .call(c, args: [.i(5)]))
        #expect(loadError(bytes([0x80, 4], "cm\nC\n)}S'k'\nK", [1], "s", [0x92], "."), policy: policy)
            == "unsupported pickle: keyword arguments to a class (NEWOBJ_EX at byte 17)")
        #expect(loadError(bytes("cm\nf\nK", [1], "R."), policy: policy)
            == "malformed pickle: REDUCE's arguments are an int, not a tuple (REDUCE at byte 7)")
    }

    @Test("Pickles in a stream: each load returns where the next begins; nothing past the buffer is read")
    func streams() throws {
        let stream = bytes([0x80, 2], "K", [1], ".", [0x80, 2], "K", [2], ".")
        try stream.withUnsafeBytes { raw in
            let first = try PickleMachine.load(raw, from: 0, policy: .nothing)
            #expect(first.value == .i(1) && first.end == 5)
            let second = try PickleMachine.load(raw, from: first.end, policy: .nothing)
            #expect(second.value == .i(2) && second.end == 10)
            // The same bytes with the second pickle's STOP outside the buffer given.
            let cut = UnsafeRawBufferPointer(rebasing: raw[0..<9])
            #expect(throws: PickleError.missingStop(offset: 9)) { try PickleMachine.load(cut, from: 5, policy: .nothing) }
        }
    }

    @Test("A value that contains itself is refused (CPython writes one for l = [l])")
    func cycle() throws {
        #expect(loadError(try Fixtures.bytes("cycle-p2.pkl")) == "malformed pickle: a container holds itself (a cycle) (STOP at byte 8)")
    }

    @Test("Dict helpers: the last value of a key wins; unique keys are checked where asked")
    func dictHelpers() throws {
        let value = try PickleMachine.load(bytes("(S'a'\nK", [1], "S'a'\nK", [2], "d."), policy: .nothing)
        #expect(value["a"] == .i(2))
        #expect(throws: PickleValueError.duplicateKey("a")) { _ = try value.uniqueStringKeyedEntries() }
        #expect(PickleValueError.duplicateKey("a").description == "duplicate key 'a'")
    }
}
