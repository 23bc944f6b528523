import NNPickle
import NNTorch
import Testing

/// Pickles that would run code in Python: each is refused at the global it names, with the
/// name, the opcode and the offset, before anything uses it.
struct HostilePickleTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let name: String
        let data: [UInt8]
        let message: String
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "os.system through GLOBAL and REDUCE", data: bytes("cos\nsystem\n(S'echo hi'\ntR."),
             message: "the pickle calls os.system (GLOBAL at byte 0): refused, nothing was run"),
        Case(name: "builtins.exec through STACK_GLOBAL",
             data: bytes([0x80, 4], [0x8C, 8], "builtins", [0x8C, 4], "exec", [0x93], [0x8C, 4], "1+1", [0x85], "R."),
             message: "the pickle calls builtins.exec (STACK_GLOBAL at byte 18): refused, nothing was run"),
        Case(name: "Python 2's __builtin__.eval is builtins.eval", data: bytes([0x80, 2], "c__builtin__\neval\nX", [3, 0, 0, 0], "1+1", [0x85], "R."),
             message: "the pickle calls builtins.eval (GLOBAL at byte 2): refused, nothing was run"),
        Case(name: "os.system through INST", data: bytes("(S'ls'\nios\nsystem\n."),
             message: "the pickle calls os.system (INST at byte 7): refused, nothing was run"),
        Case(name: "builtins.eval through OBJ", data: bytes("(cbuiltins\neval\nS'1'\no."),
             message: "the pickle calls builtins.eval (GLOBAL at byte 1): refused, nothing was run"),
        Case(name: "subprocess.Popen through NEWOBJ", data: bytes([0x80, 2], "csubprocess\nPopen\n(S'ls'\nt", [0x81], "."),
             message: "the pickle calls subprocess.Popen (GLOBAL at byte 2): refused, nothing was run"),
        Case(name: "a BUILD state that names a function", data: bytes([0x80, 2], "ccollections\nOrderedDict\n)R}S'x'\ncos\npopen\nsb."),
             message: "the pickle calls os.popen (GLOBAL at byte 35): refused, nothing was run"),
        Case(name: "a refused global deep inside a tensor record",
             data: bytes([0x80, 2], "ctorch._utils\n_rebuild_tensor_v2\n(cposix\nsystem\nt."),
             message: "the pickle calls posix.system (GLOBAL at byte 36): refused, nothing was run"),
        Case(name: "a module name with a newline (STACK_GLOBAL) stays one line",
             data: bytes([0x80, 4], [0x8C, 5], "os\nxx", [0x8C, 1], "y", [0x93], "."),
             message: "the pickle calls os\\u{a}xx.y (STACK_GLOBAL at byte 12): refused, nothing was run"),
    ]

    @Test("Hand-built hostile pickles are refused with their global named", arguments: cases)
    func handBuilt(_ c: Case) {
        #expect(loadError(c.data, policy: TorchAllowList.stateDict) == c.message)
        #expect(loadError(c.data, policy: TorchAllowList.wholeModel) == c.message)
    }

    @Test("CPython's pickles of objects whose __reduce__ runs code", arguments: [
        ("hostile-system-p0.pkl", "the pickle calls posix.system (GLOBAL at byte 0): refused, nothing was run"),
        ("hostile-system-p2.pkl", "the pickle calls posix.system (GLOBAL at byte 2): refused, nothing was run"),
        ("hostile-exec-p2.pkl", "the pickle calls builtins.exec (GLOBAL at byte 2): refused, nothing was run"),
        ("hostile-exec-p4.pkl", "the pickle calls builtins.exec (STACK_GLOBAL at byte 29): refused, nothing was run"),
        ("hostile-eval-p5.pkl", "the pickle calls builtins.eval (STACK_GLOBAL at byte 58): refused, nothing was run"),
    ])
    func fromCPython(_ file: String, _ message: String) throws {
        #expect(loadError(try Fixtures.bytes(file), policy: TorchAllowList.stateDict) == message)
    }

    @Test("Through NNTorch the same refusal keeps its message; a hostile file is no custom model")
    func throughTorch() throws {
        for mode in [TorchCheckpoint.Mode.stateDict, .wholeModel] {
            #expect(torchError { try TorchCheckpoint(pickle: try Fixtures.bytes("hostile-system-p2.pkl"),
                                                     storages: TorchStorageDictionary([:]), mode: mode) }
                == "the pickle calls posix.system (GLOBAL at byte 2): refused, nothing was run")
            #expect(torchError { try TorchCheckpoint(pickle: HostilePickleTests.cases[5].data, storages: TorchStorageDictionary([:]), mode: mode) }
                == "the pickle calls subprocess.Popen (GLOBAL at byte 2): refused, nothing was run")
        }
    }

    @Test("Extension codes and out-of-band buffers are refused: what they name is not in the file")
    func registriesAndBuffers() {
        #expect(loadError(bytes([0x80, 2, 0x82, 1], ".")) == "unsupported pickle: an extension code, which names a global through a registry that is not in the file (EXT1 at byte 2)")
        #expect(loadError(bytes([0x80, 2, 0x83, 1, 0], ".")) == "unsupported pickle: an extension code, which names a global through a registry that is not in the file (EXT2 at byte 2)")
        #expect(loadError(bytes([0x80, 2, 0x84, 1, 0, 0, 0], ".")) == "unsupported pickle: an extension code, which names a global through a registry that is not in the file (EXT4 at byte 2)")
        #expect(loadError(bytes([0x80, 5, 0x97], ".")) == "unsupported pickle: an out-of-band buffer, which is not in the file (NEXT_BUFFER at byte 2)")
        #expect(loadError(bytes([0x80, 5, 0x98], ".")) == "unsupported pickle: an out-of-band buffer, which is not in the file (READONLY_BUFFER at byte 2)")
        #expect(loadError(bytes([0x80, 6], "N.")) == "unsupported pickle: protocol 6 (this reader knows 0 to 5) (PROTO at byte 0)")
    }
}
