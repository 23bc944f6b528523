import NNCore
import NNPickle
import NNTorch
import Testing

/// State dicts in torch's zip layout (`data.pkl` and `data/<key>` as files), pickled by CPython
/// with torch's reductions (make_pickles.py), and tensor records built by hand.
struct TorchCheckpointTests {
    @Test("A state dict: contiguous, transposed, shared, offset, broadcast, scalar, half and bool tensors match NumPy")
    func stateDict() throws {
        let checkpoint = try Fixtures.checkpoint("state_dict")
        let tensors = try checkpoint.stateDict()
        let expected = try Fixtures.expectedTensors("state_dict")
        #expect(tensors.map(\.name) == ["fc1.weight", "fc1.bias", "grid.t", "grid.whole", "grid.row1", "grid.corner",
                                        "bias.expanded", "bn.num_batches_tracked", "half", "mask"])
        for t in tensors { checkTensor(t.tensor, try #require(expected[t.name]), t.name) }
        let byName = Dictionary(uniqueKeysWithValues: tensors.map { ($0.name, $0.tensor) })
        #expect(byName["fc1.weight"]?.dtype == .float32)
        #expect(byName["bn.num_batches_tracked"]?.dtype == .int64)
        #expect(byName["bn.num_batches_tracked"]?.integers() == [123_456_789_012])
        #expect(byName["half"]?.dtype == .float16)
        #expect(byName["mask"]?.dtype == .uint8)
        // Contiguous views of one storage share its bytes; the transposed view is a copy.
        let whole = try #require(byName["grid.whole"]), row1 = try #require(byName["grid.row1"]), t = try #require(byName["grid.t"])
        #expect(whole.storage === row1.storage)
        #expect(row1.byteOffset == whole.byteOffset + 16)
        #expect(t.storage !== whole.storage)
        #expect(checkpoint.storageRecords.map(\.key) == ["0", "1", "2", "3", "4", "5"])
        #expect(checkpoint.storageRecords[3] == TorchStorageRecord(key: "3", typeName: "LongStorage", dtype: .int64, elementCount: 1, byteCount: 8))
    }

    @Test("The state dict inside a checkpoint dict is read by its path")
    func checkpointPath() throws {
        let checkpoint = try Fixtures.checkpoint("checkpoint")
        #expect(torchError { try checkpoint.stateDict() }
            == "not a state dict: entry 'model' is a dict, not a tensor; pass its key as the path to read the state dict inside it")
        let tensors = try checkpoint.stateDict(at: ["model"])
        #expect(tensors.map(\.name) == ["w"] && tensors[0].tensor.floats() == [0.25, -1.0])
        #expect(torchError { try checkpoint.stateDict(at: ["optimizer"]) } == "not a state dict: the pickle has no entry 'optimizer'")
        #expect(checkpoint.root["epoch"] == .int(3))
    }

    @Test("A storage whose size disagrees with its declared numel is refused before any is read")
    func numelMismatch() throws {
        #expect(torchError { try Fixtures.checkpoint("numel_mismatch") }
            == "storage '0' holds 20 bytes, but the pickle declares 6 elements of FloatStorage (24 bytes)")
    }

    @Test("A view that runs past its storage is refused")
    func outOfRange() throws {
        #expect(torchError { try Fixtures.checkpoint("out_of_range").stateDict() }
            == "tensor 'w': malformed torch checkpoint: a 2x3 view with stride 3,1 at offset 1 is out of bounds of storage '0' (24 bytes)")
    }

    @Test("Big-endian checkpoints and unknown byteorder records are refused")
    func byteOrder() throws {
        let pickle = try Fixtures.bytes("state_dict/data.pkl")
        let storages = DirectoryStorages(directory: Fixtures.directory + "/state_dict")
        #expect(torchError { try TorchCheckpoint(pickle: pickle, storages: storages, byteOrder: "big") }
            == "the checkpoint was written on a big-endian machine (byteorder 'big'); only little-endian data is read")
        #expect(torchError { try TorchCheckpoint(pickle: pickle, storages: storages, byteOrder: "middle\n") }
            == "malformed torch checkpoint: a byteorder record of 'middle\\u{a}', neither 'little' nor 'big'")
        #expect(torchError { try TorchCheckpoint(pickle: pickle, storages: storages, byteOrder: "little") } == nil)
    }

    // MARK: - Hand-built records

    func storageID(_ type: String, _ key: String, _ numel: Int64, view: PickleValue? = nil) -> PickleValue {
        var fields: [PickleValue] = [.s("storage"), .global(module: "torch", name: type), .s(key), .s("cpu"), .i(numel)]
        if let view { fields.append(view) }
        return .persistent(.tuple(fields))
    }

    func record(_ storage: PickleValue, offset: Int64 = 0, size: [Int64], stride: [Int64],
                dtype: String? = nil) -> PickleValue {
        let function = dtype == nil ? "_rebuild_tensor_v2" : "_rebuild_tensor_v3"
        var args: [PickleValue] = [storage, .i(offset), .tuple(size.map { .i($0) }), .tuple(stride.map { .i($0) }), .bool(false), .dict([])]
        if let dtype { args.append(.global(module: "torch", name: dtype)) }
        return .call(.global(module: "torch._utils", name: function), args: args)
    }

    func floats(_ values: [Float]) -> TorchStorageBytes {
        TorchStorageBytes(copying: values.withUnsafeBytes { Array($0) })
    }

    func stateDict(_ entries: [(String, PickleValue)], _ storages: [String: TorchStorageBytes]) throws -> [NamedTensor] {
        try TorchCheckpoint(root: .d(entries), storages: TorchStorageDictionary(storages)).stateDict()
    }

    @Test("Parameters, an empty tensor, a legacy storage view, an untyped storage with v3's dtype")
    func records() throws {
        let four = floats([1, 2, 3, 4, 5, 6])
        let parameter = PickleValue.call(.global(module: "torch._utils", name: "_rebuild_parameter"),
                                         args: [record(storageID("FloatStorage", "0", 6), size: [2], stride: [1]), .bool(true), .dict([])])
        let tensors = try stateDict([
            ("p", parameter),
            ("empty", record(storageID("FloatStorage", "0", 6), offset: 6, size: [0, 3], stride: [3, 1])),
            // view_metadata ('v', 2, 3): the tensor sees elements 2..<5; its offset 1 is element 3.
            ("view", record(storageID("FloatStorage", "0", 6, view: .tuple([.s("v"), .i(2), .i(3)])), offset: 1, size: [2], stride: [1])),
            ("v3", record(storageID("UntypedStorage", "1", 8), offset: 1, size: [1], stride: [1], dtype: "float32")),
        ], ["0": four, "1": floats([7, 8])])
        #expect(tensors.map { $0.tensor.shape } == [[2], [0, 3], [2], [1]])
        #expect(tensors.map { $0.tensor.floats() } == [[1, 2], [], [4, 5], [8]])
    }

    @Test("Contiguous tensors use the provider's bytes in place when aligned, and copy them when not")
    func zeroCopy() throws {
        let memory = TensorStorage(copying: [Float](arrayLiteral: 0, 1, 2, 3, 4).withUnsafeBytes { UnsafeRawBufferPointer($0) })
        let aligned = TorchStorageBytes(storage: memory, byteOffset: 4, byteCount: 16)
        let misaligned = TorchStorageBytes(storage: memory, byteOffset: 1, byteCount: 16)
        let a = try stateDict([("a", record(storageID("FloatStorage", "0", 4), offset: 1, size: [3], stride: [1]))], ["0": aligned])[0].tensor
        #expect(a.storage === memory && a.byteOffset == 8 && a.floats() == [2, 3, 4])
        let b = try stateDict([("b", record(storageID("ByteStorage", "0", 16), size: [4], stride: [1]))], ["0": misaligned])[0].tensor
        #expect(b.storage === memory)  // bytes need no alignment
        let c = try stateDict([("c", record(storageID("UntypedStorage", "0", 16), size: [2], stride: [1], dtype: "int32"))],
                              ["0": misaligned])[0].tensor
        // Bytes 1..<9 of the floats 0, 1 as two int32s (struct.unpack('<2i', ...) gives 0, 4161536).
        #expect(c.storage !== memory && c.integers() == [0, 4_161_536])
    }

    struct Case: CustomTestStringConvertible, Sendable {
        let name: String
        let entries: [(String, PickleValue)]
        let storages: [String: TorchStorageBytes]
        let message: String
        var testDescription: String { name }
    }

    static var cases: [Case] {
        let t = TorchCheckpointTests()
        let two = t.floats([1, 2])
        let id = t.storageID("FloatStorage", "0", 2)
        return [
            Case(name: "a storage the provider lacks", entries: [("w", t.record(t.storageID("FloatStorage", "9", 2), size: [2], stride: [1]))],
                 storages: [:], message: "storage '9' cannot be read: the file has no storage '9'"),
            Case(name: "v2 over an untyped storage", entries: [("w", t.record(t.storageID("UntypedStorage", "0", 8), size: [2], stride: [1]))],
                 storages: ["0": two], message: "tensor 'w': malformed torch checkpoint: _rebuild_tensor_v2 over an UntypedStorage, which gives no dtype"),
            Case(name: "a dtype without an element type", entries: [("w", t.record(t.storageID("UntypedStorage", "0", 8), size: [4], stride: [1], dtype: "uint16"))],
                 storages: ["0": two], message: "tensor 'w': torch.uint16 tensors are not supported (no matching element type)"),
            Case(name: "a duplicate key", entries: [("w", t.record(id, size: [2], stride: [1])), ("w", t.record(id, size: [1], stride: [1]))],
                 storages: ["0": two], message: "not a state dict: duplicate key 'w'"),
            Case(name: "an entry that is no tensor", entries: [("w", .i(3))], storages: [:],
                 message: "tensor 'w': malformed torch checkpoint: expected a tensor, found an int"),
            Case(name: "size and stride of different ranks", entries: [("w", t.record(id, size: [2], stride: [1, 1]))], storages: ["0": two],
                 message: "tensor 'w': malformed torch checkpoint: a size of 1 dimensions with a stride of 2"),
            Case(name: "a negative stride", entries: [("w", t.record(id, size: [2], stride: [-1]))], storages: ["0": two],
                 message: "tensor 'w': malformed torch checkpoint: a negative tensor stride (-1)"),
            Case(name: "one storage declared two ways",
                 entries: [("a", t.record(id, size: [2], stride: [1])), ("b", t.record(t.storageID("FloatStorage", "0", 3), size: [1], stride: [1]))],
                 storages: ["0": two],
                 message: "malformed torch checkpoint: storage '0' is declared as 2 elements of FloatStorage (8 bytes) and as 3 elements of FloatStorage (12 bytes)"),
            Case(name: "an offset at Int64.max", entries: [("w", t.record(id, offset: Int64.max, size: [2], stride: [1]))], storages: ["0": two],
                 message: "tensor 'w': malformed torch checkpoint: a 2 view with stride 1 at offset 9223372036854775807 is out of bounds of storage '0' (8 bytes)"),
            Case(name: "strides whose extent overflows", entries: [("w", t.record(id, size: [3, 2], stride: [Int64.max / 2, 1]))], storages: ["0": two],
                 message: "tensor 'w': malformed torch checkpoint: a 3x2 view with stride 4611686018427387903,1 at offset 0 is out of bounds of storage '0' (8 bytes)"),
            Case(name: "a broadcast beyond the gather limit", entries: [("w", t.record(id, size: [16384, 16384], stride: [0, 0]))], storages: ["0": two],
                 message: "tensor 'w': a 16384x16384 view that repeats the 8 bytes of storage '0' would need 1073741824 bytes (the limit is 268435456)"),
            Case(name: "a storage view outside its storage", entries: [("w", t.record(t.storageID("FloatStorage", "0", 2, view: .tuple([.s("v"), .i(1), .i(2)])), size: [1], stride: [1]))],
                 storages: ["0": two], message: "malformed torch checkpoint: storage '0' has a view outside its 2 elements"),
            Case(name: "a persistent id of another kind", entries: [("w", t.record(.persistent(.tuple([.s("tensor"), .i(1)])), size: [1], stride: [1]))],
                 storages: [:], message: "malformed torch checkpoint: a persistent id of kind 'tensor'"),
            Case(name: "a storage type that is no storage class",
                 entries: [("w", t.record(.persistent(.tuple([.s("storage"), .global(module: "torch", name: "float32"), .s("0"), .s("cpu"), .i(2)])), size: [1], stride: [1]))],
                 storages: [:], message: "malformed torch checkpoint: a storage type that is the global torch.float32, not a torch storage class"),
            Case(name: "a storage key that is a path", entries: [("w", t.record(t.storageID("FloatStorage", "../../tmp/x", 2), size: [2], stride: [1]))],
                 storages: [:], message: "malformed torch checkpoint: storage key '../../tmp/x' is not a plain name (torch writes decimal numbers)"),
        ]
    }

    @Test("Malformed tensor records each give their one line", arguments: cases)
    func malformed(_ c: Case) {
        #expect(torchError { try stateDict(c.entries, c.storages) } == c.message)
    }
}
