import FuzzSupport
import NNCore
import NNPickle
import NNTorch

// The pickle machine and the torch decoding on top of it. The first byte picks the path:
//   0  the rest is a pickle read with the state-dict allow-list; when it loads, the storages it
//      declares are supplied (patterned bytes of the declared sizes, 1 MiB in all at most) and the
//      state dict and module tree are decoded;
//   1  as 0 with the whole-model allow-list;
//   2  the rest is a legacy torch file (`TorchLegacyFile.parse`), read as a state dict and as a
//      whole model.
//
// Checks beyond "no crash": every error message is one line; every decoded tensor's bytes lie in
// its storage (AddressSanitizer sees them read) and its element count matches its shape.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPickle(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data, size > 0 else { return 0 }
    let rest = fuzzBytes(data, size, droppingFirst: 1)
    switch data[0] % 3 {
    case 0: decodePickle(rest, mode: .stateDict)
    case 1: decodePickle(rest, mode: .wholeModel)
    default:
        for mode in [TorchCheckpoint.Mode.stateDict, .wholeModel] {
            do { decodeAll(try TorchLegacyFile.parse(bytes: rest, mode: mode)) } catch { checkMessage(error) }
        }
    }
    return 0
}

func decodePickle(_ bytes: [UInt8], mode: TorchCheckpoint.Mode) {
    do {
        let root = try PickleMachine.load(bytes, policy: mode.policy)
        let records = try TorchCheckpoint.storageRecords(in: root)
        var storages: [String: TorchStorageBytes] = [:]
        var total = 0
        for record in records {
            total += record.byteCount
            guard total <= 1 << 20 else { return }
            storages[record.key] = TorchStorageBytes(copying: (0..<record.byteCount).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) })
        }
        decodeAll(try TorchCheckpoint(root: root, storages: TorchStorageDictionary(storages)))
    } catch {
        checkMessage(error)
    }
}

func decodeAll(_ checkpoint: TorchCheckpoint) {
    do { for t in try checkpoint.stateDict() { touch(t.tensor) } } catch { checkMessage(error) }
    do { for t in try checkpoint.module().stateDict() { touch(t.tensor) } } catch { checkMessage(error) }
}

func touch(_ tensor: Tensor) {
    precondition(tensor.byteCount == ShapeMath.elementCount(tensor.shape) * tensor.dtype.size, "a tensor's byte count does not match its shape")
    var sum: UInt8 = 0
    for byte in tensor.bytes { sum &+= byte }
    withExtendedLifetime(sum) {}
    precondition(tensor.floats().count == tensor.count, "floats() has the wrong count")
}

func checkMessage(_ error: any Error) {
    let message = "\(error)"
    precondition(!message.isEmpty && !message.contains("\n"), "an error message is not one line: \(message)")
}

@main enum Main {
    static func main() { FuzzMain.run(fuzzPickle) }
}
