import NNCore
import Testing
@testable import NNPlot

@Suite struct FilterGridTests {
    /// Kernel pixels in drawing order (filter, channel, row, column): the crisp rectangles of one
    /// pixel's size, which the legend's narrow steps are not.
    func pixels(_ svg: String, size: Double) -> [Element] {
        elements(svg).filter { $0.name == "rect" && $0.attributes["shape-rendering"] == "crispEdges" && $0.number("width") == size }
    }

    /// A value of an HWIO kernel tensor laid out as Keras stores it.
    func hwio(_ kh: Int, _ kw: Int, _ cin: Int, _ cout: Int, _ value: (_ y: Int, _ x: Int, _ c: Int, _ f: Int) -> Double) -> Tensor {
        var values = [Double](repeating: 0, count: kh * kw * cin * cout)
        for y in 0..<kh { for x in 0..<kw { for c in 0..<cin { for f in 0..<cout {
            values[((y * kw + x) * cin + c) * cout + f] = value(y, x, c, f)
        }}}}
        return Tensor(values, shape: [kh, kw, cin, cout])
    }

    @Test func coloursDivergeFromWhiteOnTheLayersScale() throws {
        // Filter 0 holds the layer's extremes ±0.5; filter 1 only 0.125, which must not be
        // stretched to full red (one scale for the layer, not one per filter).
        let filter0 = [0.5, 0, -0.5, 0.125, -0.1, 0, 0, 0, 0]
        let kernels = hwio(3, 3, 1, 2) { y, x, _, f in f == 0 ? filter0[y * 3 + x] : (y == 0 && x == 0 ? 0.125 : 0) }
        let svg = try FilterGrid.svg(kernels: kernels, title: "conv")
        let drawn = pixels(svg, size: 24)
        try #require(drawn.count == 18)
        // +max -> (202, 0, 32); -max -> (5, 113, 176); 0 -> white;
        // 0.125 / 0.5 = 0.25 of the way to red: (241.75, 191.25, 199.25);
        // 0.1 / 0.5 = 0.2 of the way to blue: (205, 226.6, 239.2).
        #expect(drawn[0..<9].map(\.fill) == ["#ca0020", "#ffffff", "#0571b0", "#f2bfc7", "#cde3ef",
                                              "#ffffff", "#ffffff", "#ffffff", "#ffffff"])
        #expect(drawn[9..<18].map(\.fill) == ["#f2bfc7"] + Array(repeating: "#ffffff", count: 8))
        // Pixels keep the kernel's geometry: row-major, 24 px apart.
        #expect(drawn[1].number("x") - drawn[0].number("x") == 24 && drawn[1].number("y") == drawn[0].number("y"))
        #expect(drawn[3].number("y") - drawn[0].number("y") == 24 && drawn[3].number("x") == drawn[0].number("x"))
        #expect(drawn[9].number("x") > drawn[2].number("x"))

        let labels = texts(svg).map(\.text)
        #expect(labels.contains("filter 0") && labels.contains("filter 1") && labels.contains("channel 0"))
        #expect(labels.contains("3×3 kernels, 1 input channel, 2 filters"))
        #expect(labels.contains("-0.500") && labels.contains("0") && labels.contains("+0.500"))
        // The legend runs from the exact -max colour through white to the exact +max colour.
        let legend = elements(svg).filter { $0.name == "rect" && $0.attributes["shape-rendering"] == "crispEdges" && $0.number("width") < 24 }
        #expect(legend.count == 41)
        #expect(legend.first?.fill == "#0571b0" && legend[20].fill == "#ffffff" && legend.last?.fill == "#ca0020")
    }

    @Test func halfPrecisionKernels() throws {
        // f16 holds 2 exactly and -0.4 as -0.39990234375: 0.19995 of the way to blue still rounds to #cde3ef.
        let values: [Float16] = [2, -0.4]
        let kernels = values.withUnsafeBytes { Tensor(dtype: .float16, shape: [1, 1, 1, 2], copying: $0) }
        let svg = try FilterGrid.svg(kernels: kernels, title: "f16")
        #expect(pixels(svg, size: 24).map(\.fill) == ["#ca0020", "#cde3ef"])
    }

    @Test func channelsAreRowsAndManyFiltersWrap() throws {
        // 5x5 kernels: 84 / 5 rounds to 17 px per weight, an 85 px cell.
        let kernels = hwio(5, 5, 3, 10) { y, x, c, f in Double(y - x + c - f) }
        let svg = try FilterGrid.svg(kernels: kernels, title: "rgb")
        #expect(pixels(svg, size: 17).count == 5 * 5 * 3 * 10)
        let all = texts(svg)
        func label(_ text: String) -> [Element] { all.filter { $0.text == text } }
        // Ten filters wrap into two bands of five, each band with one row per input channel.
        #expect(label("filter 4").first!.number("y") == label("filter 0").first!.number("y"))
        #expect(label("filter 5").first!.number("y") > label("filter 4").first!.number("y"))
        #expect(label("filter 5").first!.number("x") == label("filter 0").first!.number("x"))
        #expect(label("channel 2").count == 2 && label("channel 3").isEmpty)
    }

    @Test func allZeroLayerIsWhite() throws {
        let svg = try FilterGrid.svg(kernels: hwio(3, 3, 1, 1) { _, _, _, _ in 0 }, title: "zero")
        #expect(pixels(svg, size: 24).allSatisfy { $0.fill == "#ffffff" })
        #expect(!svg.contains("nan"))
    }

    @Test func nonFiniteWeightsAreGreyAndDoNotSetTheScale() throws {
        let svg = try FilterGrid.svg(kernels: Tensor([Double.nan, 1, -Double.infinity], shape: [1, 1, 1, 3]), title: "bad")
        #expect(pixels(svg, size: 24).map(\.fill) == ["#808080", "#ca0020", "#808080"])
    }

    @Test func wrongShapesAndTypesAreRejected() throws {
        #expect(throws: PlotError.kernelsNotRank4(shape: [3, 3, 8])) {
            try FilterGrid.svg(kernels: Tensor([Float](repeating: 0, count: 72), shape: [3, 3, 8]), title: "")
        }
        #expect(throws: PlotError.kernelsEmpty(shape: [3, 3, 1, 0])) {
            try FilterGrid.svg(kernels: Tensor([Float](), shape: [3, 3, 1, 0]), title: "")
        }
        let bytes: [UInt8] = [1, 2, 3, 4]
        #expect(throws: PlotError.kernelsNotFloatingPoint(.uint8)) {
            try FilterGrid.svg(kernels: bytes.withUnsafeBytes { Tensor(dtype: .uint8, shape: [2, 2, 1, 1], copying: $0) }, title: "")
        }
        #expect(PlotError.kernelsNotRank4(shape: [3, 3, 8]).description
                == "convolution kernels must have 4 dimensions [height, width, input channels, filters], found shape 3x3x8")
        #expect(PlotError.kernelsNotRank4(shape: []).category == .badInput)
    }
}
