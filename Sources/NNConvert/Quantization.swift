import NNCore

/// Smaller copies of a model's weights (`nnconv quantize`).
public enum Quantization {
    /// `model` with every dense and conv2d weight stored as bfloat16, rounded to nearest (ties to
    /// even): half the bytes of f32. Readers widen bf16 to f32 exactly, so the model computes with
    /// the rounded weights in f32, or (the layer's `"compute": "bf16"`, set here) rounds its inputs
    /// to bf16 too where the CPU multiplies bf16 (`vdpbf16ps`). Biases, batch-norm parameters, preprocessing statistics and
    /// optimizer state keep their types (they are small, and the statistics are sensitive).
    /// Returns the new model (its provenance names `sourcePath`) and the names of the converted
    /// tensors. An int8 model's weights are rounded from their f32 values (its scales dropped).
    public static func bfloat16(_ model: Model, sourcePath: String) -> (model: Model, converted: [String]) {
        let model = model.dequantized()  // int8 weights become their f32 values first
        var result = model
        var converted: [String] = []
        for (index, layer) in model.metadata.layers.enumerated() where layer.kind.hasWeight {
            guard let name = layer.weight, let tensor = model.tensor(name) else { continue }
            // bf16 products for this layer (format 1.3 "compute"), also for weights stored bf16 already.
            result.metadata.layers[index].bfloat16Compute = true
            guard tensor.dtype != .bfloat16 else { continue }
            let bits = tensor.floats().map(bfloat16Bits)
            result.setTensor(name, bits.withUnsafeBytes { Tensor(dtype: .bfloat16, shape: tensor.shape, copying: $0) })
            converted.append(name)
        }
        result.metadata.provenance = Provenance(tool: "nnconv quantize \(ProjectVersion.string)", created: Clock.nowISO8601(),
                                                sourceFile: sourcePath, sourceFormat: "nnm")
        return (result, converted)
    }

    /// `model` with every dense and conv2d weight stored as `i8` with one f32 scale per output
    /// (format 1.3): symmetric, `scale[j] = max_p |w[p][j]| / L` (1 for an all-zero output),
    /// `q = round(w / scale)` in -L...L, where L = 2^(weightBits - 1) - 1: 127 for 8 bits, 63 for 7
    /// (half the resolution, but exact on AVX2's `vpmaddubsw`, `Int8Kernel.avx2Maddubs`, which
    /// runs 1.3x-1.7x faster than the pairs kernel on CPUs without VNNI). Biases and everything
    /// else keep their types. The engine quantizes activations per row at run time, or, for the
    /// layers `inputs` names (by index; `nnconv quantize --calibration`), with the calibrated
    /// scale and zero point stored in the layer (format 1.4). Weights already in i8 stay as they
    /// are when they lie in -L...L, else they are quantized again from their f32 values. Throws,
    /// naming the tensor, when a weight holds NaN or infinite values (no scale fits them).
    /// Returns the new model and the names of the converted tensors.
    public static func int8(_ model: Model, sourcePath: String, inputs: [Int: InputQuantization] = [:],
                            weightBits: Int = 8) throws(ModelError) -> (model: Model, converted: [String]) {
        precondition((2...8).contains(weightBits), "int8 weights have 2 to 8 bits")
        let level = Float((1 << (weightBits - 1)) - 1)
        var result = model
        var converted: [String] = []
        for (index, layer) in model.metadata.layers.enumerated() where layer.kind.hasWeight {
            if let name = layer.weight, let stored = model.tensor(name), let outputs = stored.shape.last, outputs > 0,
               layer.weightScale == nil || stored.floats().contains(where: { abs($0) > level }),
               let tensor = model.floatWeight(of: layer) {
                let w = tensor.floats()
                if let bad = w.firstIndex(where: { !$0.isFinite }) {
                    throw .invalidField(location: "tensor '\(name)'", expected: "finite values to quantize", found: "\(w[bad]) at element \(bad)")
                }
                var largest = [Float](repeating: 0, count: outputs)
                for i in 0..<w.count { largest[i % outputs] = max(largest[i % outputs], abs(w[i])) }
                let scales = largest.map { $0 > 0 ? $0 / level : 1 }
                let q = (0..<w.count).map { i in Int8(max(-level, min(level, (w[i] / scales[i % outputs]).rounded(.toNearestOrEven)))) }
                let scaleName = layer.weightScale ?? uniqueName(name + "_scale", in: result)
                result.setTensor(name, q.withUnsafeBytes { Tensor(dtype: .int8, shape: tensor.shape, copying: $0) })
                result.setTensor(scaleName, Tensor(scales, shape: [outputs]))
                result.metadata.layers[index].weightScale = scaleName
                converted.append(name)
            }
            if let input = inputs[index], result.metadata.layers[index].weightScale != nil {
                result.metadata.layers[index].inputQuantization = input
            }
        }
        result.metadata.provenance = Provenance(tool: "nnconv quantize \(ProjectVersion.string)", created: Clock.nowISO8601(),
                                                sourceFile: sourcePath, sourceFormat: "nnm")
        return (result, converted)
    }

    /// `base`, or `base` with a number appended when the model already has a tensor of that name.
    private static func uniqueName(_ base: String, in model: Model) -> String {
        var name = base, n = 1
        while model.tensor(name) != nil { name = "\(base).\(n)"; n += 1 }
        return name
    }
}
