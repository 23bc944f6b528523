import FuzzSupport
import NNCompression
import NNCore
import NNFormat

// The `.nnm` reader: `NNMFormat.decode(bytes:path:verifyChecksums:)`.
//
// The first byte picks how the rest is used, so that mutations are not all stopped by the
// preamble CRC:
//   0  the rest is a file, decoded as it is;
//   1  the rest is a file whose header and preamble CRC-32s are recomputed first;
//   2  the rest is header JSON, a NUL byte, then the data section: the harness builds a valid
//      preamble and padding around them, so every mutation reaches the tensor table and model.
// Every file is decoded with and without tensor checksum verification. A model that decodes
// must be usable: its tensors convert and it validates again.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNNM(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data, size > 0 else { return 0 }
    let rest = fuzzBytes(data, size, droppingFirst: 1)
    switch data[0] % 3 {
    case 0: decodeBothWays(rest)
    case 1: decodeBothWays(withChecksumsFixed(rest))
    default: decodeBothWays(envelope(rest))
    }
    return 0
}

func decodeBothWays(_ bytes: [UInt8]) {
    for verify in [true, false] {
        do {
            let model = try NNMFormat.decode(bytes: bytes, path: "fuzz.nnm", verifyChecksums: verify)
            for t in model.tensors {
                precondition(t.tensor.floats().count == t.tensor.count, "tensor '\(t.name)' converts to the wrong count")
            }
            do {
                try model.validate()
            } catch {
                fatalError("a decoded model fails validation: \(error)")
            }
        } catch {
            precondition(error.description.hasPrefix("fuzz.nnm: "), "an error message does not start with the path: \(error)")
        }
    }
}

/// Recomputes the header CRC (when the declared header lies inside the file) and the preamble CRC.
func withChecksumsFixed(_ input: [UInt8]) -> [UInt8] {
    var bytes = input
    guard bytes.count >= 48 else { return bytes }
    let headerLength = bytes[16..<24].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    if headerLength <= UInt64(bytes.count - 48) {
        let end = 48 + Int(headerLength)
        bytes.storeLE(CRC32.checksum(Array(bytes[48..<end])), at: 40)
    }
    bytes.storeLE(CRC32.checksum(Array(bytes[0..<44])), at: 44)
    return bytes
}

/// A file with a valid preamble around `header` NUL `data`.
func envelope(_ input: [UInt8]) -> [UInt8] {
    let split = input.firstIndex(of: 0) ?? input.count
    let header = Array(input[..<split])
    let body = split < input.count ? Array(input[(split + 1)...]) : []
    let dataOffset = (48 + header.count + 63) / 64 * 64
    var out: [UInt8] = NNMFormat.magic
    out.appendLE(UInt16(1))
    out.appendLE(UInt16(0))
    out.appendLE(UInt32(0))
    out.appendLE(UInt64(header.count))
    out.appendLE(UInt64(dataOffset))
    out.appendLE(UInt64(body.count))
    out.appendLE(CRC32.checksum(header))
    out.appendLE(CRC32.checksum(out))
    out += header
    out += [UInt8](repeating: 0, count: dataOffset - out.count)
    out += body
    return out
}

@main enum Main {
    static func main() { FuzzMain.run(fuzzNNM) }
}
