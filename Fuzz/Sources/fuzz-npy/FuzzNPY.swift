import FuzzSupport
import NNCompression
import NNCore
import NNNumPy
import NNZip

// The NumPy readers. The first byte picks the path:
//   0  `NumPyFile.decode(_:name:)` on the rest (a .npy image in memory);
//   1  the rest is written to a file and read by `NumPyFile.read(path:)`;
//   2  the rest is a zip archive, read by `NumPyArchive.read(path:)` (.npz: zip and npy damage);
//   3  the rest is a .npy stored as member 'a.npy' of a valid zip the harness builds (correct
//      CRC-32, sizes, directory), so mutations of the array reach the member reader;
//   4  as 3, with the member deflated.

let scratch = ScratchFile(name: "input.npz")

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNPY(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data, size > 0 else { return 0 }
    let rest = fuzzBytes(data, size, droppingFirst: 1)
    switch data[0] % 5 {
    case 0:
        use(try? NumPyFile.decode(rest, name: "fuzz.npy"))
    case 1:
        scratch.write(rest)
        use(try? NumPyFile.read(path: scratch.path, displayName: "fuzz.npy"))
    case 2:
        scratch.write(rest)
        readArchive()
    case 3:
        scratch.write(zipWithOneMember(rest, deflated: false))
        readArchive()
    default:
        scratch.write(zipWithOneMember(rest, deflated: true))
        readArchive()
    }
    return 0
}

func readArchive() {
    do {
        let archive = try NumPyArchive.read(path: scratch.path, displayName: "fuzz.npz")
        for member in archive.members { use(member.array) }
    } catch {
        precondition("\(error)".hasPrefix("fuzz.npz"), "an error message does not start with the path: \(error)")
    }
}

func use(_ array: NumPyArray?) {
    guard let array, let tensor = array.tensor else { return }
    precondition(tensor.shape == array.shape, "the tensor's shape differs from the array's")
    precondition(tensor.floats().count == tensor.count, "floats() has the wrong count")
    // What was read can be written back and reads the same.
    guard let encoded = try? NumPyFile.encode(.tensor(tensor)) else { return }
    guard let again = try? NumPyFile.decode(encoded, name: "again.npy"), let back = again.tensor else {
        fatalError("an array this reader read does not read back after encoding")
    }
    precondition(back.isBitIdentical(to: tensor), "an array changed in an encode/decode round trip")
}

/// A minimal valid zip (APPNOTE 4.3) holding `content` as 'a.npy'.
func zipWithOneMember(_ content: [UInt8], deflated: Bool) -> [UInt8] {
    let name = Array("a.npy".utf8)
    let stored = deflated ? ((try? Deflate.compress(content, format: .rawDeflate)) ?? content) : content
    let method: UInt16 = deflated ? 8 : 0
    let crc = CRC32.checksum(content)
    func fixed(_ out: inout [UInt8]) {
        out.appendLE(UInt16(20))              // version needed
        out.appendLE(UInt16(0))               // flags
        out.appendLE(method)
        out.appendLE(UInt32(0))               // time, date
        out.appendLE(crc)
        out.appendLE(UInt32(stored.count))
        out.appendLE(UInt32(content.count))
        out.appendLE(UInt16(name.count))
        out.appendLE(UInt16(0))               // extra length
    }
    var out: [UInt8] = []
    out.appendLE(UInt32(0x0403_4b50))
    fixed(&out)
    out += name
    out += stored
    let directoryOffset = out.count
    out.appendLE(UInt32(0x0201_4b50))
    out.appendLE(UInt16(20))                  // version made by
    fixed(&out)
    out.appendLE(UInt16(0))                   // comment length
    out.appendLE(UInt16(0))                   // disk
    out.appendLE(UInt16(0))                   // internal attributes
    out.appendLE(UInt32(0))                   // external attributes
    out.appendLE(UInt32(0))                   // local header offset
    out += name
    let directorySize = out.count - directoryOffset
    out.appendLE(UInt32(0x0605_4b50))
    out.appendLE(UInt16(0))
    out.appendLE(UInt16(0))
    out.appendLE(UInt16(1))
    out.appendLE(UInt16(1))
    out.appendLE(UInt32(directorySize))
    out.appendLE(UInt32(directoryOffset))
    out.appendLE(UInt16(0))
    return out
}

@main enum Main {
    static func main() { FuzzMain.run(fuzzNPY) }
}
