import Foundation
import NNCore

// Fixtures/layers/expected.json (written by Fixtures/generate_layers.py): small models using
// what format 1.2 added, their inputs and the outputs NumPy computed from the spec's definitions.

/// One model of the fixture file with its inputs and NumPy's outputs.
public struct LayerFixture: CustomStringConvertible, Sendable {
    public let name: String
    public let header: JSONValue
    public let tensors: [(name: String, shape: [Int], values: [Double])]
    public let input: [[Double]]
    public let expected: [[Double]]
    public var description: String { name }

    /// The model with its tensors stored as `dtype` (the values are f32 numbers, so exact in both).
    public func model(_ dtype: DType) throws -> Model {
        guard case var .object(root) = header else { throw FixtureError("\(name): header is not an object") }
        root["provenance"] = .object(JSONObject([("tool", "generate_layers.py"), ("created", "2026-01-01T00:00:00Z")]))
        let meta = try ModelMetadata(json: .object(root))
        return Model(metadata: meta, tensors: tensors.map { t in
            NamedTensor(t.name, dtype == .float32 ? Tensor(t.values.map(Float.init), shape: t.shape) : Tensor(t.values, shape: t.shape))
        })
    }

    /// Every case of Fixtures/layers/expected.json (empty when the file cannot be read).
    public static let all: [LayerFixture] = {
        let path = fixturesDirectory("layers") + "/expected.json"
        guard let data = FileManager.default.contents(atPath: path), let root = try? JSONValue.parse([UInt8](data)),
              let cases = root["cases"]?.arrayValue else { return [] }
        func matrix(_ v: JSONValue?) -> [[Double]] { (v?.arrayValue ?? []).map { ($0.arrayValue ?? []).compactMap(\.doubleValue) } }
        return cases.map { c in
            let tensors = (c["tensors"]?.objectValue.map(Array.init) ?? []).map { m in
                (name: m.key, shape: (m.value["shape"]?.arrayValue ?? []).compactMap(\.intValue),
                 values: (m.value["values"]?.arrayValue ?? []).compactMap(\.doubleValue))
            }
            return LayerFixture(name: c["name"]?.stringValue ?? "?", header: c["header"] ?? .null, tensors: tensors,
                                input: matrix(c["input"]), expected: matrix(c["expected"]))
        }
    }()
}

public struct FixtureError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}

