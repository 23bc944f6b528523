import NNCore

/// Smaller copies of a model's weights (`nnconv quantize`).
public enum Quantization {
    /// `model` with every dense and conv2d weight stored as bfloat16, rounded to nearest (ties to
    /// even): half the bytes of f32. Readers widen bf16 to f32 exactly, so the model computes with
    /// the rounded weights in f32. Biases, batch-norm parameters, preprocessing statistics and
    /// optimizer state keep their types (they are small, and the statistics are sensitive).
    /// Returns the new model (its provenance names `sourcePath`) and the names of the converted
    /// tensors.
    public static func bfloat16(_ model: Model, sourcePath: String) -> (model: Model, converted: [String]) {
        var result = model
        var converted: [String] = []
        for layer in model.metadata.layers where layer.kind.hasWeight {
            guard let name = layer.weight, let tensor = model.tensor(name), tensor.dtype != .bfloat16 else { continue }
            let bits = tensor.floats().map(bfloat16Bits)
            result.setTensor(name, bits.withUnsafeBytes { Tensor(dtype: .bfloat16, shape: tensor.shape, copying: $0) })
            converted.append(name)
        }
        result.metadata.provenance = Provenance(tool: "nnconv quantize \(ProjectVersion.string)", created: Clock.nowISO8601(),
                                                sourceFile: sourcePath, sourceFormat: "nnm")
        return (result, converted)
    }
}
