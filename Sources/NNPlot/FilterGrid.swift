import NNCore

/// The kernels of a convolution layer as a grid of small images, one per (filter, input channel).
public enum FilterGrid {
    /// The colour of the largest positive weight.
    static let positive = RGB(red: 202, green: 0, blue: 32)
    /// The colour of the most negative weight.
    static let negative = RGB(red: 5, green: 113, blue: 176)
    /// Non-finite weights, which belong to neither side of the scale.
    static let nonFinite = RGB(red: 128, green: 128, blue: 128)

    /// Renders `kernels`, shaped [height, width, input channels, output filters] (HWIO, as Keras
    /// stores Conv2D kernels), as one cell per filter (columns, wrapped into several rows when
    /// there are many) and input channel (rows within each band of filters).
    ///
    /// Colours diverge from white at 0 to red for positive and blue for negative weights, on one
    /// scale symmetric about 0 and set by the largest |w| of the whole layer, so cells compare
    /// directly; a legend shows the scale's ends.
    ///
    /// - Throws: `PlotError` if the tensor is not rank 4, has an empty dimension, or is not floating-point.
    public static func svg(kernels: Tensor, title: String) throws -> String {
        guard kernels.shape.count == 4 else { throw PlotError.kernelsNotRank4(shape: kernels.shape) }
        guard kernels.dtype.isFloatingPoint else { throw PlotError.kernelsNotFloatingPoint(kernels.dtype) }
        guard kernels.count > 0 else { throw PlotError.kernelsEmpty(shape: kernels.shape) }
        let (kh, kw, channels, filters) = (kernels.shape[0], kernels.shape[1], kernels.shape[2], kernels.shape[3])
        let weights = kernels.doubles()
        let maxMagnitude = weights.lazy.filter(\.isFinite).map(abs).max() ?? 0

        // About 72-96 px per cell whatever the kernel size, but never below one pixel per weight.
        let pixel = Double(min(24, max(1, Int((84 / Double(max(kh, kw))).rounded()))))
        let cellWidth = Double(kw) * pixel, cellHeight = Double(kh) * pixel
        // At most 8 filters per band, with the bands evenly filled (10 filters: 2 x 5, not 8 + 2).
        let bands = (filters + 7) / 8
        let columns = (filters + bands - 1) / bands

        let labelSize = 11.0
        let channelLabelWidth = SVG.estimatedWidth(of: "channel \(channels - 1)", fontSize: labelSize)
        let filterLabelWidth = SVG.estimatedWidth(of: "filter \(filters - 1)", fontSize: labelSize)
        let columnPitch = max(cellWidth + 10, filterLabelWidth + 8).rounded(.up)
        let rowPitch = max(cellHeight + 6, labelSize + 4)
        let bandHeaderHeight = 18.0, bandGap = 10.0
        let bandHeight = bandHeaderHeight + Double(channels) * rowPitch
        let left = (12 + channelLabelWidth + 8).rounded(.up), top = 60.0
        let gridWidth = Double(columns) * columnPitch
        let gridBottom = top + Double(bands) * bandHeight + Double(bands - 1) * bandGap

        let heading = "\(kh)×\(kw) kernels, \(channels) input channel\(channels == 1 ? "" : "s"), \(filters) filter\(filters == 1 ? "" : "s")"
        let legendWidth = max(160, min(gridWidth - 10, 260))
        let width = max(left + gridWidth + 12, SVG.estimatedWidth(of: title, fontSize: 15) + 24,
                        SVG.estimatedWidth(of: heading, fontSize: 12) + 24, left + legendWidth + 80)
        var document = SVGDocument(width: width, height: gridBottom + 70)
        document.text(title, x: 12, y: 24, size: 15, bold: true)
        document.text(heading, x: 12, y: 44, fill: "#444")

        for band in 0..<bands {
            let bandTop = top + Double(band) * (bandHeight + bandGap)
            for channel in 0..<channels {
                let y = bandTop + bandHeaderHeight + Double(channel) * rowPitch
                document.text("channel \(channel)", x: left - 8, y: y + cellHeight / 2 + labelSize * 0.35,
                              anchor: .end, size: labelSize, fill: "#444")
            }
            for column in 0..<columns {
                let filter = band * columns + column
                guard filter < filters else { break }
                let x = (left + Double(column) * columnPitch + (columnPitch - cellWidth) / 2).rounded()
                document.text("filter \(filter)", x: x + cellWidth / 2, y: bandTop + bandHeaderHeight - 5,
                              anchor: .middle, size: labelSize, fill: "#444")
                for channel in 0..<channels {
                    let y = bandTop + bandHeaderHeight + Double(channel) * rowPitch
                    for row in 0..<kh {
                        for col in 0..<kw {
                            let w = weights[((row * kw + col) * channels + channel) * filters + filter]
                            document.rect(x: x + Double(col) * pixel, y: y + Double(row) * pixel, width: pixel, height: pixel,
                                          fill: color(w, maxMagnitude: maxMagnitude).hex, crisp: true)
                        }
                    }
                    // The frame shows where a cell of near-zero (white) weights ends.
                    document.rect(x: x, y: y, width: cellWidth, height: cellHeight, fill: "none", stroke: "#999", strokeWidth: 0.5)
                }
            }
        }

        // The legend: the colour scale in steps, with both ends exactly the extreme colours.
        let legendTop = gridBottom + 18, steps = 41
        let stepWidth = legendWidth / Double(steps)
        for i in 0..<steps {
            let t = -1 + 2 * Double(i) / Double(steps - 1)
            document.rect(x: left + Double(i) * stepWidth, y: legendTop, width: stepWidth + 0.5, height: 12,
                          fill: color(t * maxMagnitude, maxMagnitude: maxMagnitude).hex, crisp: true)
        }
        document.rect(x: left, y: legendTop, width: legendWidth, height: 12, fill: "none", stroke: "#999", strokeWidth: 0.5)
        let end = SVG.significant(maxMagnitude)
        document.text(maxMagnitude == 0 ? "0" : "-" + end, x: left, y: legendTop + 28, anchor: .start, size: labelSize)
        document.text("0", x: left + legendWidth / 2, y: legendTop + 28, anchor: .middle, size: labelSize)
        document.text(maxMagnitude == 0 ? "0" : "+" + end, x: left + legendWidth, y: legendTop + 28, anchor: .end, size: labelSize)
        document.text("weight", x: left + legendWidth + 10, y: legendTop + 10, size: labelSize, fill: "#444")
        return document.rendered()
    }

    /// White at 0, `positive` at +maxMagnitude, `negative` at -maxMagnitude, linear in between.
    static func color(_ weight: Double, maxMagnitude: Double) -> RGB {
        guard weight.isFinite else { return nonFinite }
        // An all-zero layer has no scale; every weight is then 0 and white.
        guard maxMagnitude > 0 else { return .white }
        let t = weight / maxMagnitude
        return t >= 0 ? RGB.white.blended(toward: positive, t) : RGB.white.blended(toward: negative, -t)
    }
}

extension FilterGrid {
    /// The kernels of the model's first conv2d layer drawn as a grid, in the cross-correlation
    /// form they are applied in (true-convolution kernels are flipped back), so each cell shows
    /// the pattern its filter responds to. `path` names the model in the title and in errors.
    public static func svg(firstConvolutionOf model: Model, path: String) throws -> String {
        guard let index = model.metadata.layers.firstIndex(where: { $0.kind == .conv2d }),
              let layer = Optional(model.metadata.layers[index]), let g = layer.spatial, let kernel = model.floatWeight(of: layer) else {
            throw PlotError.noConvolutionLayer(path: path)
        }
        var shown = kernel
        if g.convention == .convolution {
            shown = Tensor(SpatialGeometry.flippedKernel(kernel.doubles(), shape: kernel.shape), shape: kernel.shape)
        }
        let title = "\(path): layer \(index), \(g.outputShape[2]) filters \(ShapeMath.describe(g.window)) over \(g.inputShape[2]) channel\(g.inputShape[2] == 1 ? "" : "s")"
            + (g.convention == .convolution ? " (true convolution: shown flipped, as applied)" : "")
        return try svg(kernels: shown, title: title)
    }
}
