import NNCore
import NNData
import NNEngine

/// `nnconv quantize --calibration`: one quantization of the inputs of every dense and conv2d
/// layer (format 1.4), fitted to the values the model, in f32, gives that layer on sample images.
///
/// The range a layer's scale covers is the central `percentile` % of the finite values it
/// received, widened to include 0 (so that 0 stays exact): the extremes are left out because one
/// value far from the rest would otherwise set the scale for all (z-scored pixels reach 100 and
/// more where a pixel's standard deviation is tiny, while most lie within 3). Values outside the
/// range are clipped at run time. With `percentile` 100 the range is the minimum and maximum
/// (onnxruntime's MinMax calibration).
public enum ActivationCalibration {
    /// The default share of each layer's inputs inside its range: 99.99 %, leaving out the
    /// 0.005 % at each end.
    public static let defaultPercentile = 99.99

    /// Bins of the histogram the percentiles are read from, over each layer's [min, max]: the
    /// range's ends are found to within 1/16384 of that span.
    static let bins = 1 << 14

    /// The quantization of each dense and conv2d layer's inputs, by layer index, and the number of
    /// images. Runs `model` (read from `modelPath`, named in errors) over the IDX images at
    /// `imagesPath` once for the ranges and, below 100 %, once more for the histograms. Throws when
    /// the images do not fit the model or there are none.
    public static func run(model: Model, modelPath: String, imagesPath: String,
                           percentile: Double = defaultPercentile) throws -> (inputs: [Int: InputQuantization], images: Int) {
        precondition(percentile > 50 && percentile <= 100, "percentile out of range")
        // Unfolded, so that the engine's layers are the model's one for one.
        let engine = try InferenceEngine<Float>(model: model, foldingBatchNorm: false)
        let layers = model.metadata.layers.indices.filter { model.metadata.layers[$0].kind.hasWeight }
        var low = [Float](repeating: 0, count: model.metadata.layers.count), high = low
        let images = try forEachBatch(imagesPath, model: model, modelPath: modelPath, engine: engine) { layer, inputs in
            var (lo, hi) = (low[layer], high[layer])
            for v in inputs where v.isFinite {
                lo = min(lo, v)
                hi = max(hi, v)
            }
            (low[layer], high[layer]) = (lo, hi)
        }
        if percentile < 100 {
            var histograms = [[Int]](repeating: [], count: model.metadata.layers.count)
            for l in layers { histograms[l] = [Int](repeating: 0, count: bins) }
            _ = try forEachBatch(imagesPath, model: model, modelPath: modelPath, engine: engine) { layer, inputs in
                guard !histograms[layer].isEmpty, high[layer] > low[layer] else { return }
                let lo = low[layer], perBin = Float(bins) / (high[layer] - low[layer])
                histograms[layer].withUnsafeMutableBufferPointer { counts in
                    for v in inputs where v.isFinite { counts[min(bins - 1, max(0, Int((v - lo) * perBin)))] += 1 }
                }
            }
            for l in layers where high[l] > low[l] {
                let counts = histograms[l], total = counts.reduce(0, +)
                let tail = Int(Double(total) * (100 - percentile) / 200)
                let width = (high[l] - low[l]) / Float(bins)
                var below = 0, first = 0
                while first < bins - 1 && below + counts[first] <= tail { below += counts[first]; first += 1 }
                var above = 0, last = bins - 1
                while last > first && above + counts[last] <= tail { above += counts[last]; last -= 1 }
                (low[l], high[l]) = (low[l] + Float(first) * width, low[l] + Float(last + 1) * width)
            }
        }
        var inputs: [Int: InputQuantization] = [:]
        for l in layers { inputs[l] = InputQuantization(range: low[l], high[l]) }
        return (inputs, images)
    }

    /// Streams the IDX images at `imagesPath` through `engine`, calling `body` with each layer's
    /// inputs; returns the number of images.
    private static func forEachBatch(_ imagesPath: String, model: Model, modelPath: String, engine: InferenceEngine<Float>,
                                     _ body: (Int, UnsafeBufferPointer<Float>) -> Void) throws -> Int {
        let stream = try IDXImageStream.opening(imagesPath, batchSize: 1024, for: model.metadata.input, model: modelPath)
        guard stream.imageCount > 0 else { throw ToolError("\(imagesPath): holds no images to calibrate on", status: ExitStatus.dataError) }
        while let batch = try stream.nextBatch() {
            batch.features.withUnsafeBufferPointer { engine.observeInputs(raw: $0.baseAddress!, count: batch.count, body) }
        }
        return stream.imageCount
    }
}
