import Foundation
import NNCore
import NNPickle
import NNTorch
import Testing

/// Fixtures written by `Resources/make_pickles.py` (CPython's pickler, NumPy for expected values).
enum Fixtures {
    static let directory: String = {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Resources").path
    }()

    static func bytes(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: directory + "/" + name)))
    }

    /// `expected.json`.
    static func expected() throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: directory + "/expected.json"))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    /// The expected tensors of one fixture: name -> (shape, values as doubles).
    static func expectedTensors(_ name: String) throws -> [String: (shape: [Int], values: [Double])] {
        let entry = try #require(try expected()[name] as? [String: [String: Any]])
        var out: [String: (shape: [Int], values: [Double])] = [:]
        for (key, value) in entry {
            out[key] = (try #require(value["shape"] as? [Int]), try #require(value["values"] as? [Double]))
        }
        return out
    }

    /// A zip-layout fixture directory (`data.pkl`, `data/<key>`) as a checkpoint.
    static func checkpoint(_ name: String, mode: TorchCheckpoint.Mode = .stateDict) throws -> TorchCheckpoint {
        try TorchCheckpoint(pickle: try bytes(name + "/data.pkl"), storages: DirectoryStorages(directory: directory + "/" + name),
                            mode: mode)
    }
}

/// The storages of a zip-layout fixture directory, read from its `data/<key>` files.
struct DirectoryStorages: TorchStorageProvider {
    let directory: String

    func byteCount(ofStorage key: String) throws -> Int {
        try bytes(ofStorage: key).byteCount
    }

    func bytes(ofStorage key: String) throws -> TorchStorageBytes {
        TorchStorageBytes(copying: try Fixtures.bytes(String(directory.dropFirst(Fixtures.directory.count + 1)) + "/data/" + key))
    }
}

/// Bytes from ASCII text plus raw bytes: `bytes("cos\nsystem\n", [0x85], ".")`.
func bytes(_ parts: Any...) -> [UInt8] {
    var out: [UInt8] = []
    for part in parts {
        switch part {
        case let text as String: out += Array(text.utf8)
        case let raw as [UInt8]: out += raw
        case let raw as [Int]: out += raw.map { UInt8($0) }
        case let byte as UInt8: out.append(byte)
        case let number as Int: out.append(UInt8(number))
        default: Issue.record("unexpected part \(part)")
        }
    }
    return out
}

/// The plain-data globals: the container constructors CPython writes for sets, bytes and OrderedDicts.
let plainPolicy = PickleGlobalPolicy(allowing: ["collections.OrderedDict", "builtins.set", "builtins.frozenset",
                                                "builtins.bytearray", "_codecs.encode"])

/// The one-line message of the error loading `data` raises, or nil if it loads.
func loadError(_ data: [UInt8], policy: PickleGlobalPolicy = plainPolicy, limits: PickleLimits = .default) -> String? {
    do {
        _ = try PickleMachine.load(data, policy: policy, limits: limits)
        return nil
    } catch {
        return error.description
    }
}

/// The message of a torch error, or nil when `body` succeeds.
func torchError<T>(_ body: () throws -> T) -> String? {
    do {
        _ = try body()
        return nil
    } catch {
        return "\(error)"
    }
}

/// A tensor's elements as doubles and its shape, for comparison with NumPy's.
func checkTensor(_ tensor: Tensor, _ expected: (shape: [Int], values: [Double]), _ name: String) {
    #expect(tensor.shape == expected.shape, "\(name) shape")
    // JSON text is exact, but Foundation's parser may miss the nearest double by an ulp, so values
    // of f16/f32/bf16 tensors are compared after rounding to Float.
    if tensor.dtype == .float64 || !tensor.dtype.isFloatingPoint {
        #expect(tensor.doubles() == expected.values, "\(name) values")
    } else {
        #expect(tensor.floats() == expected.values.map { Float($0) }, "\(name) values")
    }
}

extension PickleValue {
    /// `.int` from an Int literal.
    static func i(_ value: Int64) -> PickleValue { .int(value) }
    static func s(_ value: String) -> PickleValue { .string(value) }
    static func d(_ pairs: [(String, PickleValue)]) -> PickleValue {
        .dict(pairs.map { PickleDictEntry(key: .string($0.0), value: $0.1) })
    }
}
