import Foundation
import NNCore
import NNPickle
import NNTorch
import Testing

/// torch's legacy (pre-zip) format from one buffer: the fixture written the way `_legacy_save`
/// writes (make_pickles.py), and the same bytes damaged.
struct TorchLegacyTests {
    func offsets(_ name: String) throws -> [String: Int] {
        let all = try #require(try Fixtures.expected()["legacy offsets"] as? [String: [String: Int]])
        return try #require(all[name])
    }

    @Test("A legacy state dict decodes to the same tensors as NumPy computed")
    func stateDict() throws {
        let data = try Fixtures.bytes("state_dict_legacy.pt")
        #expect(data.withUnsafeBytes { TorchLegacyFile.isLegacy($0) })
        let tensors = try TorchLegacyFile.parse(bytes: data).stateDict()
        let expected = try Fixtures.expectedTensors("state_dict_legacy.pt")
        #expect(tensors.count == expected.count)
        for t in tensors { checkTensor(t.tensor, try #require(expected[t.name]), t.name) }
    }

    @Test("Truncated storage data, a wrong element count, an unlisted storage")
    func damaged() throws {
        let data = try Fixtures.bytes("state_dict_legacy.pt")
        let at = try offsets("state_dict_legacy.pt")
        let last = try #require(at["5"])
        #expect(torchError { try TorchLegacyFile.parse(bytes: Array(data.dropLast())) }
            == "malformed torch checkpoint: the data of storage '5' at byte \(last + 8) needs 3 bytes, 2 remain")
        #expect(torchError { try TorchLegacyFile.parse(bytes: Array(data[..<(last + 5)])) }
            == "malformed torch checkpoint: the element count of storage '5' at byte \(last) needs 8 bytes, 5 remain")
        var wrongCount = data
        let first = try #require(at["0"])
        wrongCount[first] = 7
        #expect(torchError { try TorchLegacyFile.parse(bytes: wrongCount) }
            == "malformed torch checkpoint: storage '0' at byte \(first) holds 7 elements, but the pickle declares 6 elements of FloatStorage (24 bytes)")
        var huge = data
        for i in 0..<8 { huge[first + i] = 0xFF }
        #expect(torchError { try TorchLegacyFile.parse(bytes: huge) }
            == "malformed torch checkpoint: storage '0' at byte \(first) holds 18446744073709551615 elements, but the pickle declares 6 elements of FloatStorage (24 bytes)")
    }

    @Test("Not the legacy format: another pickle first, another version, the tar format, a key list of strangers")
    func notLegacy() throws {
        let magic = bytes([0x80, 2, 0x8A, 10], TorchLegacyFile.magicNumber, ".")
        #expect(torchError { try TorchLegacyFile.parse(bytes: try Fixtures.bytes("state_dict/data.pkl")) }
            == "not a torch file in the legacy format: the magic number pickle: the pickle calls collections.OrderedDict (GLOBAL at byte 2): refused, nothing was run")
        #expect(torchError { try TorchLegacyFile.parse(bytes: bytes([0x80, 2], "K", [5], ".")) }
            == "not a torch file in the legacy format: it starts with an int, not torch's magic number")
        #expect(torchError { try TorchLegacyFile.parse(bytes: magic + bytes([0x80, 2], "M", [0xE8, 0x03], ".")) }
            == "legacy torch format version 1000; only 1001 exists")
        #expect(torchError { try TorchLegacyFile.parse(bytes: magic) }
            == "not a torch file in the legacy format: the format version pickle: truncated pickle: the data ends at byte 15 without a STOP opcode")
        var tar = [UInt8](repeating: 0, count: 512)
        tar.replaceSubrange(257..<262, with: Array("ustar".utf8))
        #expect(torchError { try TorchLegacyFile.parse(bytes: tar) }
            == "the file is torch's oldest format, a tar archive, which is not read; load and save it again with a newer torch")
        // The magic number, 1001, an empty sys_info, the main pickle {} and a key list naming '7'.
        let stranger = magic + bytes([0x80, 2], "M", [0xE9, 0x03], ".", [0x80, 2], "}.", [0x80, 2], "}.", [0x80, 2], "]X", [1, 0, 0, 0], "7a.")
        #expect(torchError { try TorchLegacyFile.parse(bytes: stranger) }
            == "malformed torch checkpoint: storage '7' is stored but no tensor refers to it")
    }
}
