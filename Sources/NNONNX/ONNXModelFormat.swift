import NNConvert
import NNCore

/// ONNX models as a format of the registry: MLP and CNN graphs in (see `ONNXImporter`), MLPs and CNNs out (see `ONNXExport`).
public struct ONNXModelFormat: ModelFileFormat {
    public init() {}
    public var displayName: String { "ONNX (.onnx)" }
    public var exportSuffixes: [String] { [".onnx"] }

    /// ONNX has no magic: the name says so, or the bytes start like a ModelProto (field 1,
    /// `ir_version`, a small varint).
    public func recognize(_ probe: FileProbe) -> FormatEvidence? {
        if probe.hasSuffix([".onnx"]) { return .name }
        return probe.head.count >= 2 && probe.head[0] == 0x08 && (1...20).contains(probe.head[1]) ? .plausibleContent : nil
    }

    public func importModel(path: String, options: ImportOptions) throws -> ImportResult {
        try ONNXImporter.importModel(path: path, options: options)
    }

    public func inspect(path: String) throws -> Inspection { try Self.inspectONNX(path: path) }

    public func export(_ model: ValidatedModel, to path: String, options: ExportOptions) throws -> ExportResult {
        let notes = try ONNXExport.write(model.model, to: path)
        let meta = model.model.metadata
        let spatial = ONNXExport.takesImages(meta)
        let shape = meta.input.shape.count == 3 ? meta.input.shape : meta.input.shape + [1]
        let input = spatial && shape.count == 3 ? "[batch, \(shape[2]), \(shape[0]), \(shape[1])] (NCHW)" : "[batch, \(meta.input.features)]"
        return ExportResult(summary: "ONNX opset \(ONNXExport.opset): input '\(ONNXExport.inputName)' \(input), output '\(ONNXExport.outputName)' [batch, \(meta.outputSize)]",
                            notes: notes)
    }

    /// The graph of an ONNX file: inputs, nodes, initializers, outputs; and the model it converts to.
    static func inspectONNX(path: String) throws -> Inspection {
        let proto = try ONNXFile.read(path: path)
        let graph = proto.graph
        var root = InspectionNode(name: graph.name.isEmpty ? "graph" : graph.name, kind: "group")
        func values(_ name: String, _ infos: [Onnx_ValueInfoProto]) -> InspectionNode {
            var group = InspectionNode(name: name, kind: "group")
            for info in infos {
                var node = InspectionNode(name: info.name, kind: "value")
                if case let .tensorType(t)? = info.type.value {
                    let dims = t.shape.dim.map { d -> String in
                        switch d.value {
                        case let .dimValue(v)?: return String(v)
                        case let .dimParam(p)?: return p
                        case nil: return "?"
                        }
                    }
                    node.attributes = [("type", "\(ONNXFile.typeName(t.elemType)) [\(dims.joined(separator: ", "))]")]
                }
                group.children.append(node)
            }
            return group
        }
        root.children.append(values("inputs", graph.input))
        var nodes = InspectionNode(name: "nodes", kind: "group")
        for (i, n) in graph.node.enumerated() {
            var node = InspectionNode(name: "\(i) \(n.domain.isEmpty ? "" : n.domain + ".")\(n.opType)\(n.name.isEmpty ? "" : " '\(n.name)'")", kind: "node")
            node.attributes = [("inputs", n.input.joined(separator: ", ")), ("outputs", n.output.joined(separator: ", "))]
            for a in n.attribute {
                let value: String
                switch a.type {
                case .int: value = String(a.i)
                case .float: value = "\(a.f)"
                case .ints: value = "\(a.ints)"
                case .floats: value = "\(a.floats)"
                case .string: value = String(decoding: a.s, as: UTF8.self)
                case .tensor: value = "tensor \(ONNXFile.typeName(a.t.dataType)) \(a.t.dims)"
                default: value = "(\(a.type))"
                }
                node.attributes.append((a.name, value))
            }
            nodes.children.append(node)
        }
        root.children.append(nodes)
        var initializers = InspectionNode(name: "initializers", kind: "group")
        for t in graph.initializer {
            initializers.children.append(InspectionNode(name: t.name, kind: "tensor", dtype: ONNXFile.typeName(t.dataType),
                                                        shape: t.dims.map { Int(clamping: $0) }))
        }
        root.children.append(initializers)
        root.children.append(values("outputs", graph.output))

        let opsets = proto.opsetImport.map { "\($0.domain.isEmpty ? "ai.onnx" : $0.domain) \($0.version)" }.joined(separator: ", ")
        var summary = ["IR version \(proto.irVersion), opsets \(opsets.isEmpty ? "none" : opsets)"
                        + (proto.producerName.isEmpty ? "" : ", producer \(proto.producerName) \(proto.producerVersion)")
                        + ", \(graph.node.count) nodes, \(graph.initializer.count) initializers"]
        do {
            let result = try ONNXImporter.importModel(proto, path: path, options: ImportOptions(), declaredOnly: true)
            // The provenance would be this inspection's own; the rest describes the file.
            summary += Inspection.describe(result.model.metadata).filter { !$0.hasPrefix("provenance:") }
        } catch {
            summary.append("does not convert: \(error)")
        }
        return Inspection(path: path, format: "ONNX model", tree: root, summary: summary)
    }
}
