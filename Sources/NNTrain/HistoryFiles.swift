import NNCore

/// The per-epoch history as CSV and as an SVG chart, written beside a model.
public enum HistoryFiles {
    /// "model.nnm" -> "model.history.csv" / "model.history.svg".
    public static func paths(besideModel path: String) -> (csv: String, svg: String) {
        var base = path
        if let dot = base.lastIndex(of: "."), !base[dot...].contains("/") { base = String(base[..<dot]) }
        return (base + ".history.csv", base + ".history.svg")
    }

    public static func csv(_ history: [EpochRecord]) -> String {
        func cell(_ v: Double?) -> String { v.map { "\($0)" } ?? "" }
        var text = "epoch,train_loss,train_accuracy,test_loss,test_accuracy,validation_loss,validation_accuracy,seconds\n"
        for e in history {
            text += [String(e.epoch), cell(e.trainLoss), cell(e.trainAccuracy), cell(e.testLoss), cell(e.testAccuracy),
                     cell(e.validationLoss), cell(e.validationAccuracy), cell(e.seconds)].joined(separator: ",") + "\n"
        }
        return text
    }

    /// Two panels: losses (train, test, validation) and accuracies, against the epoch.
    public static func svg(_ history: [EpochRecord], title: String) -> String {
        let width = 720.0, panelHeight = 260.0, left = 70.0, right = 20.0, top = 40.0, gap = 60.0
        var out = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(top + 2 * panelHeight + gap + 50))" font-family="sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(width / 2)" y="22" text-anchor="middle" font-size="15">\(escape(title))</text>

            """
        let epochs = history.map { Double($0.epoch) }
        let xMin = epochs.min() ?? 0, xMax = max(epochs.max() ?? 1, xMin + 1)
        func panel(y0: Double, label: String, series: [(String, String, [Double?])], fixedRange: ClosedRange<Double>?) {
            let values = series.flatMap { $0.2.compactMap { $0 } }.filter(\.isFinite)
            var lo = fixedRange?.lowerBound ?? (values.min() ?? 0), hi = fixedRange?.upperBound ?? (values.max() ?? 1)
            if fixedRange == nil {
                let pad = max((hi - lo) * 0.08, 1e-6)
                lo = max(0, lo - pad)
                hi += pad
            }
            let plotWidth = width - left - right
            func px(_ x: Double) -> Double { left + (x - xMin) / (xMax - xMin) * plotWidth }
            func py(_ y: Double) -> Double { y0 + panelHeight - (y - lo) / (hi - lo) * panelHeight }
            out += "<rect x=\"\(left)\" y=\"\(y0)\" width=\"\(plotWidth)\" height=\"\(panelHeight)\" fill=\"none\" stroke=\"#888\"/>\n"
            for i in 0...4 {
                let v = lo + (hi - lo) * Double(i) / 4
                out += "<line x1=\"\(left)\" x2=\"\(left + plotWidth)\" y1=\"\(py(v))\" y2=\"\(py(v))\" stroke=\"#eee\"/>"
                out += "<text x=\"\(left - 6)\" y=\"\(py(v) + 4)\" text-anchor=\"end\">\(label.hasSuffix("%") ? formatDecimal(v * 100, digits: 1) : formatDecimal(v, digits: 3))</text>\n"
            }
            let step = max(1, Int((xMax - xMin) / 10))
            var e = Int(xMin)
            while Double(e) <= xMax {
                out += "<text x=\"\(px(Double(e)))\" y=\"\(y0 + panelHeight + 16)\" text-anchor=\"middle\">\(e)</text>"
                e += step
            }
            out += "<text x=\"18\" y=\"\(y0 + panelHeight / 2)\" transform=\"rotate(-90 18 \(y0 + panelHeight / 2))\" text-anchor=\"middle\">\(label)</text>\n"
            var legendX = left + 10
            for (name, color, points) in series where points.contains(where: { $0 != nil }) {
                let coordinates = zip(epochs, points).compactMap { x, y in y.flatMap { $0.isFinite ? "\(px(x)),\(py($0))" : nil } }
                out += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(coordinates.joined(separator: " "))\"/>\n"
                for c in coordinates {
                    let xy = c.split(separator: ",")
                    out += "<circle cx=\"\(xy[0])\" cy=\"\(xy[1])\" r=\"2.5\" fill=\"\(color)\"/>"
                }
                out += "<rect x=\"\(legendX)\" y=\"\(y0 + 8)\" width=\"12\" height=\"3\" fill=\"\(color)\"/><text x=\"\(legendX + 16)\" y=\"\(y0 + 13)\">\(name)</text>\n"
                legendX += 130
            }
        }
        panel(y0: top, label: "loss", series: [("train", "#1f77b4", history.map(\.trainLoss)), ("test", "#d62728", history.map(\.testLoss)),
                                               ("validation", "#2ca02c", history.map(\.validationLoss))], fixedRange: nil)
        panel(y0: top + panelHeight + gap, label: "accuracy %", series: [("train", "#1f77b4", history.map(\.trainAccuracy)),
                                                                        ("test", "#d62728", history.map(\.testAccuracy)),
                                                                        ("validation", "#2ca02c", history.map(\.validationAccuracy))],
              fixedRange: nil)
        out += "<text x=\"\(width / 2)\" y=\"\(top + 2 * panelHeight + gap + 40)\" text-anchor=\"middle\">epoch</text>\n</svg>\n"
        return out
    }

    /// Writes both files atomically.
    public static func write(_ history: [EpochRecord], besideModel path: String, title: String) throws {
        let (csvPath, svgPath) = paths(besideModel: path)
        try AtomicFileWriter.write(Array(csv(history).utf8), to: csvPath)
        try AtomicFileWriter.write(Array(svg(history, title: title).utf8), to: svgPath)
    }

    static func escape(_ s: String) -> String {
        s.replacing("&", with: "&amp;").replacing("<", with: "&lt;").replacing(">", with: "&gt;")
    }
}
