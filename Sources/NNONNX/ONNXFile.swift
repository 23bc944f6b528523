#if canImport(FoundationEssentials)
import FoundationEssentials  // `Data`, the type of the generated `raw_data` field
#else
import Foundation
#endif
import NNCompression
import NNCore
import NNConvert
import SwiftProtobuf

/// Reading ONNX files and converting between ONNX tensors and ours.
public enum ONNXFile {
    /// Protobuf messages cannot be larger than 2 GiB; ONNX keeps bigger weights in external files.
    public static let maximumBytes = Int(Int32.max)
    /// The ai.onnx opsets this reader accepts. 7 is the first whose Gemm broadcasts a bias of
    /// shape [out]; up to 28 (onnx 1.23) the operators we read changed only by gaining types.
    public static let supportedOpsets = 7...28
    /// The IR versions read: 3 (ONNX 1.0) to 14, what onnx 1.23 writes (torch 2.15's exporter
    /// writes 10, its TorchScript exporter 8); a newer one may change the container.
    public static let supportedIRVersions = 3...14

    /// Reads and decodes the ModelProto at `path`.
    static func read(path: String) throws -> Onnx_ModelProto {
        let bytes = try readFileBytes(path: path, maxBytes: maximumBytes)
        if bytes.isEmpty { throw InteropError.unknownFormat(path: path, detail: "the file is empty") }
        return try decode(bytes, path: path)
    }

    /// Decodes a ModelProto, turning protobuf errors into one line naming the file.
    static func decode(_ bytes: [UInt8], path: String) throws -> Onnx_ModelProto {
        let model: Onnx_ModelProto
        do {
            model = try Onnx_ModelProto(serializedBytes: bytes)
        } catch let error as BinaryDecodingError {
            let reason: String
            switch error {
            case .truncated: reason = "the protobuf data is truncated (the file ends inside a field)"
            case .malformedProtobuf: reason = "the protobuf data is malformed"
            case .invalidUTF8: reason = "a string field is not valid UTF-8"
            case .messageDepthLimit: reason = "messages are nested too deeply"
            default: reason = "protobuf decoding failed (\(error))"
            }
            throw InteropError.unknownFormat(path: path, detail: "not a valid ONNX model: \(reason)")
        } catch {
            throw InteropError.unknownFormat(path: path, detail: "not a valid ONNX model: \(error)")
        }
        // Any byte string that happens to parse would do so without a graph or an IR version.
        guard model.irVersion > 0, model.hasGraph else {
            throw InteropError.unknownFormat(path: path, detail: "not an ONNX model: no \(model.irVersion > 0 ? "graph" : "ir_version")")
        }
        return model
    }

    /// The version of the default (ai.onnx) operator set the model imports, if any.
    static func defaultOpset(_ model: Onnx_ModelProto) -> Int64? {
        model.opsetImport.first(where: { $0.domain.isEmpty || $0.domain == "ai.onnx" })?.version
    }

    /// ONNX `TensorProto.DataType` numbers.
    enum ElementType: Int32 {
        case float = 1, uint8 = 2, int8 = 3, int16 = 5, int32 = 6, int64 = 7, float16 = 10, double = 11, bfloat16 = 16

        var dtype: DType {
            switch self {
            case .float: return .float32
            case .uint8: return .uint8
            case .int8: return .int8
            case .int16: return .int16
            case .int32: return .int32
            case .int64: return .int64
            case .float16: return .float16
            case .double: return .float64
            case .bfloat16: return .bfloat16
            }
        }
    }

    /// A name for an ONNX element type number, for messages.
    static func typeName(_ type: Int32) -> String {
        Onnx_TensorProto.DataType(rawValue: Int(type)).map { "\($0)".uppercased() } ?? "type \(type)"
    }

    /// What a tensor declares: its element type, shape and size in bytes (checked arithmetic).
    static func declaration(_ p: Onnx_TensorProto, path: String, what: String) throws -> (type: ElementType, shape: [Int], byteCount: Int) {
        guard let type = ElementType(rawValue: p.dataType) else {
            throw InteropError.badDType(path: path, name: what, found: typeName(p.dataType))
        }
        let shape = p.dims.map { Int(clamping: $0) }
        guard shape.count <= 8, shape.allSatisfy({ $0 >= 0 }), let byteCount = ShapeMath.byteCount(shape, elementSize: type.dtype.size) else {
            throw InteropError.badShape(path: path, name: what, detail: "invalid dims \(p.dims)")
        }
        return (type, shape, byteCount)
    }

    /// An initializer or constant as a tensor of the same element type. External data is read
    /// from `external` (already located: see `ONNXExternalData.locate`); with `declaredOnly`
    /// it is not read and the tensor is zeros of the declared shape (for inspection).
    static func tensor(_ p: Onnx_TensorProto, path: String, what: String,
                       external: (reader: ONNXExternalData, location: ONNXExternalData.Location)? = nil,
                       declaredOnly: Bool = false) throws -> Tensor {
        let (type, shape, byteCount) = try declaration(p, path: path, what: what)
        let dtype = type.dtype
        if p.dataLocation == .external {
            guard let external else {
                throw InteropError.badConfig(path: path, detail: "\(what) keeps its data in an external file that was not located")
            }
            if declaredOnly { return [UInt8](repeating: 0, count: byteCount).withUnsafeBytes { Tensor(dtype: dtype, shape: shape, copying: $0) } }
            let bytes = try external.reader.read(external.location, what: what)
            return bytes.withUnsafeBytes { Tensor(dtype: dtype, shape: shape, copying: $0) }
        }
        let count = byteCount / dtype.size
        if !p.rawData.isEmpty {
            guard p.rawData.count == byteCount else {
                throw InteropError.badShape(path: path, name: what, detail: "raw_data has \(p.rawData.count) bytes, but dims \(ShapeMath.describe(shape)) of \(typeName(p.dataType)) need \(byteCount)")
            }
            // raw_data is little-endian whatever the writer's machine was, as our tensors are.
            return p.rawData.withUnsafeBytes { Tensor(dtype: dtype, shape: shape, copying: $0) }
        }
        func checked(_ n: Int, _ field: String) throws {
            guard n == count else {
                throw InteropError.badShape(path: path, name: what, detail: "\(field) has \(n) values, but dims \(ShapeMath.describe(shape)) need \(count)")
            }
        }
        /// Typed data fields hold the values themselves, in the tensor's own type.
        func exact<T>(_ values: [T], _ field: String, _ dtype: DType) throws -> Tensor {
            try checked(values.count, field)
            return values.withUnsafeBytes { Tensor(dtype: dtype, shape: shape, copying: $0) }
        }
        switch type {
        case .float: return try exact(p.floatData, "float_data", .float32)
        case .double: return try exact(p.doubleData, "double_data", .float64)
        case .int64: return try exact(p.int64Data, "int64_data", .int64)
        case .int32: return try exact(p.int32Data, "int32_data", .int32)
        case .float16, .bfloat16, .int16:
            // These travel in int32_data, one 16-bit pattern per value.
            try checked(p.int32Data.count, "int32_data")
            let halves = p.int32Data.map { UInt16(truncatingIfNeeded: $0) }
            return halves.withUnsafeBytes { Tensor(dtype: dtype, shape: shape, copying: $0) }
        case .uint8, .int8:
            try checked(p.int32Data.count, "int32_data")
            let bytes = p.int32Data.map { UInt8(truncatingIfNeeded: $0) }
            return bytes.withUnsafeBytes { Tensor(dtype: dtype, shape: shape, copying: $0) }
        }
    }

    /// A float32 initializer holding `values` in raw_data.
    static func initializer(_ name: String, _ values: [Float], shape: [Int]) -> Onnx_TensorProto {
        var p = Onnx_TensorProto()
        p.name = name
        p.dataType = ElementType.float.rawValue
        p.dims = shape.map(Int64.init)
        p.rawData = values.withUnsafeBytes { Data($0) }
        return p
    }
}

/// A float tensor's values multiplied by `factor`, kept in its dtype (f16 and bf16 round).
func scaled(_ t: Tensor, by factor: Double) -> Tensor {
    let values = t.doubles().map { $0 * factor }
    return converted(values, like: t)
}

/// `values` stored in `t`'s float dtype and shape.
func converted(_ values: [Double], like t: Tensor) -> Tensor {
    switch t.dtype {
    case .float64: return Tensor(values, shape: t.shape)
    case .float16:
        let bits = values.map { Float16(Float($0)).bitPattern }
        return bits.withUnsafeBytes { Tensor(dtype: .float16, shape: t.shape, copying: $0) }
    case .bfloat16:
        let bits = values.map { bfloat16Bits(Float($0)) }
        return bits.withUnsafeBytes { Tensor(dtype: .bfloat16, shape: t.shape, copying: $0) }
    default: return Tensor(values.map { Float($0) }, shape: t.shape)
    }
}
