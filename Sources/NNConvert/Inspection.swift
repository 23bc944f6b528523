import NNCore
import NNFormat
import NNHDF5

/// A node of the tree `nnconv inspect` prints: a group, dataset, tensor or archive member.
public struct InspectionNode: Sendable {
    public var name: String
    /// "group", "dataset", "tensor", "member", "file".
    public var kind: String
    public var dtype: String?
    public var shape: [Int]?
    public var attributes: [(name: String, value: String)] = []
    public var children: [InspectionNode] = []

    public init(name: String, kind: String, dtype: String? = nil, shape: [Int]? = nil) {
        self.name = name
        self.kind = kind
        self.dtype = dtype
        self.shape = shape
    }

    /// Elements in this node and below (the parameter count of numeric arrays). A file may
    /// declare shapes such as `[2^40, 2^40, 0]` (no elements) or several arrays of 2^62 elements,
    /// so the count is zero-aware and the sum saturates at Int.max instead of overflowing.
    public var parameterCount: Int {
        children.reduce(shape.map(ShapeMath.elementCount) ?? 0) { total, child in
            let (sum, overflow) = total.addingReportingOverflow(child.parameterCount)
            return overflow ? Int.max : sum
        }
    }

    /// Indented text, one line per node and attribute.
    public func render(indent: String = "", isRoot: Bool = true) -> [String] {
        var head = isRoot ? name : "\(indent)\(name)"
        if let dtype, let shape {
            head += "  \(dtype) \(ShapeMath.describe(shape)) (\(ShapeMath.elementCount(shape)) values)"
        } else if !children.isEmpty {
            head += kind == "group" && name != "/" ? "/" : ""
            let n = parameterCount
            if n > 0 { head += "  (\(n) values)" }
        }
        var lines = [head]
        let inner = isRoot ? "  " : indent + "  "
        for a in attributes { lines.append("\(inner)@\(a.name) = \(a.value)") }
        for c in children { lines += c.render(indent: inner, isRoot: false) }
        return lines
    }

    public var json: JSONValue {
        var o = JSONObject([("name", .string(name)), ("kind", .string(kind))])
        if let dtype { o["dtype"] = .string(dtype) }
        if let shape { o["shape"] = .array(shape.map { .integer(Int64($0)) }) }
        if !attributes.isEmpty { o["attributes"] = .object(JSONObject(attributes.map { ($0.name, JSONValue.string($0.value)) })) }
        if !children.isEmpty { o["children"] = .array(children.map(\.json)) }
        return .object(o)
    }
}

/// What `nnconv inspect` reports about a file.
public struct Inspection: Sendable {
    public var path: String
    public var format: String
    public var tree: InspectionNode
    /// Summary lines about the model (architecture, preprocessing, training), when known.
    public var summary: [String]

    /// An inspection made by another module of this package (ONNX).
    package init(path: String, format: String, tree: InspectionNode, summary: [String]) {
        self.path = path
        self.format = format
        self.tree = tree
        self.summary = summary
    }

    public func render() -> [String] {
        ["\(path): \(format)"] + summary.map { "  \($0)" } + tree.render()
    }

    public var json: JSONValue {
        .object(JSONObject([("path", .string(path)), ("format", .string(format)),
                            ("summary", .array(summary.map { .string($0) })), ("tree", tree.json)]))
    }
}

extension Inspection {
    static func inspectNNM(_ path: String) throws -> Inspection {
        let header = try NNMFormat.readHeader(path: path)
        var tree = InspectionNode(name: "tensors", kind: "group")
        for e in header.tensors {
            var node = InspectionNode(name: e.name, kind: "tensor", dtype: e.dtype.rawValue, shape: e.shape)
            node.attributes = [("offset", String(header.dataOffset + e.offset)), ("crc32", String(e.crc32, radix: 16))]
            tree.children.append(node)
        }
        let summary = ["format version \(header.majorVersion).\(header.minorVersion), \(header.fileSize) bytes, header \(header.dataOffset) bytes"]
            + describe(header.metadata)
        return Inspection(path: path, format: ".nnm model", tree: tree, summary: summary)
    }

    /// The model-level lines: input, layers, preprocessing, classes, training, provenance.
    public static func describe(_ meta: ModelMetadata) -> [String] {
        var lines = ["input: \(ShapeMath.describe(meta.input.shape)) (\(meta.input.features) features)"]
        for (i, l) in meta.layers.enumerated() {
            var line = "layer \(i): \(l.summary)"
            if let weight = l.weight {
                line += ", weight '\(weight)'" + (l.weightScale.map { " (i8, scales '\($0)')" } ?? "") + (l.bfloat16Compute ? " (bf16 products)" : "")
                line += l.bias.map { ", bias '\($0)'" } ?? ", no bias"
                if let q = l.inputQuantization { line += ", inputs as u8 with scale \(q.scale) and zero point \(q.zeroPoint) (calibrated)" }
            }
            lines.append(line)
        }
        lines.append("preprocessing: \(meta.preprocessing.isEmpty ? "none" : meta.preprocessing.describe())")
        if !meta.classes.isEmpty { lines.append("classes: \(meta.classes.joined(separator: ", "))") }
        if let t = meta.training {
            var line = "training: \(t.loss), \(t.optimizer) \(JSONValue.object(t.hyperparameters).serialized()), \(t.epochs) epochs, \(t.step) steps"
            if let last = t.history.last, let accuracy = last.testAccuracy { line += ", final test accuracy \(formatDecimal(accuracy * 100, digits: 2)) %" }
            lines.append(line)
        }
        var p = "provenance: \(meta.provenance.tool), \(meta.provenance.created)"
        if let s = meta.provenance.sourceFile { p += ", from \(s)" }
        if let f = meta.provenance.sourceFormat { p += " (\(f))" }
        lines.append(p)
        return lines
    }

    static func hdf5Tree(_ group: HDF5Group, name: String) throws -> InspectionNode {
        var node = InspectionNode(name: name, kind: "group")
        node.attributes = try attributes(of: group)
        for member in try group.members() {
            switch member.kind {
            case .group:
                node.children.append(try hdf5Tree(try group.group(member.name), name: member.name))
            case .dataset:
                let d = try group.dataset(member.name)
                var child = InspectionNode(name: member.name, kind: "dataset", dtype: d.elementType.name, shape: d.shape)
                child.attributes = try attributes(of: d)
                node.children.append(child)
            default:
                node.children.append(InspectionNode(name: member.name, kind: "\(member.kind)"))
            }
        }
        return node
    }

    static func attributes(of object: HDF5Object) throws -> [(name: String, value: String)] {
        try object.attributeNames().map { name in
            let text: String
            switch try? object.attribute(name) {
            case let .string(s)?: text = abbreviate(s)
            case let .strings(s)?: text = abbreviate("[" + s.map { "'\($0)'" }.joined(separator: ", ") + "]")
            case let .integer(i)?: text = String(i)
            case let .integers(i)?: text = abbreviate("\(i)")
            case let .double(d)?: text = "\(d)"
            case let .doubles(d)?: text = abbreviate("\(d)")
            case nil: text = "(\((try? object.attributeInfo(name).elementType.description) ?? "unreadable"))"
            }
            return (name, text)
        }
    }

    package static func abbreviate(_ s: String, limit: Int = 100) -> String {
        let flat = s.replacing("\n", with: " ")
        return flat.count <= limit ? flat : String(flat.prefix(limit)) + "... (\(flat.count) characters)"
    }
}

