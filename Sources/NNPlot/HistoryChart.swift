import NNCore

/// A training history as a chart: losses in the upper panel, accuracies in the lower one.
public enum HistoryChart {
    private static let series: [(name: String, color: String)] = [("train", "#1f77b4"), ("test", "#d62728"), ("validation", "#2ca02c")]

    /// Two panels against the epoch: losses (train, test, validation) and accuracies in percent.
    /// Missing and non-finite values are left out; a series with no values has no line or legend entry.
    public static func svg(_ history: [EpochRecord], title: String) -> String {
        let width = 720.0, panelHeight = 260.0, left = 70.0, right = 20.0, top = 40.0, gap = 60.0
        var document = SVGDocument(width: width, height: top + 2 * panelHeight + gap + 50)
        document.text(title, x: width / 2, y: 22, anchor: .middle, size: 15)

        let epochs = history.map { Double($0.epoch) }
        let xMin = epochs.min() ?? 0, xMax = max(epochs.max() ?? 1, xMin + 1)
        let plotWidth = width - left - right

        func panel(y0: Double, label: String, percent: Bool, values: [[Double?]]) {
            let finite = values.flatMap { $0.compactMap { $0 } }.filter(\.isFinite)
            var lo = finite.min() ?? 0, hi = finite.max() ?? 1
            // Padding keeps the extreme points off the frame; a flat series still gets a range.
            let pad = max((hi - lo) * 0.08, 1e-6)
            lo = max(0, lo - pad)
            hi += pad
            func px(_ x: Double) -> Double { left + (x - xMin) / (xMax - xMin) * plotWidth }
            func py(_ y: Double) -> Double { y0 + panelHeight - (y - lo) / (hi - lo) * panelHeight }

            document.rect(x: left, y: y0, width: plotWidth, height: panelHeight, fill: "none", stroke: "#888")
            for i in 0...4 {
                let v = lo + (hi - lo) * Double(i) / 4
                document.line(x1: left, y1: py(v), x2: left + plotWidth, y2: py(v), stroke: "#eee")
                document.text(percent ? formatDecimal(v * 100, digits: 1) : formatDecimal(v, digits: 3),
                              x: left - 6, y: py(v) + 4, anchor: .end)
            }
            let step = max(1, Int((xMax - xMin) / 10))
            var epoch = Int(xMin)
            while Double(epoch) <= xMax {
                document.text(String(epoch), x: px(Double(epoch)), y: y0 + panelHeight + 16, anchor: .middle)
                epoch += step
            }
            document.text(label, x: 18, y: y0 + panelHeight / 2, anchor: .middle, rotation: -90)

            var legendX = left + 10
            for (s, points) in zip(series, values) where points.contains(where: { $0 != nil }) {
                let coordinates = zip(epochs, points).compactMap { x, y -> (x: Double, y: Double)? in
                    guard let y, y.isFinite else { return nil }
                    return (px(x), py(y))
                }
                document.polyline(coordinates, stroke: s.color, strokeWidth: 2)
                for c in coordinates { document.circle(cx: c.x, cy: c.y, r: 2.5, fill: s.color) }
                document.rect(x: legendX, y: y0 + 8, width: 12, height: 3, fill: s.color)
                document.text(s.name, x: legendX + 16, y: y0 + 13)
                legendX += 130
            }
        }

        panel(y0: top, label: "loss", percent: false,
              values: [history.map(\.trainLoss), history.map(\.testLoss), history.map(\.validationLoss)])
        panel(y0: top + panelHeight + gap, label: "accuracy %", percent: true,
              values: [history.map(\.trainAccuracy), history.map(\.testAccuracy), history.map(\.validationAccuracy)])
        document.text("epoch", x: width / 2, y: top + 2 * panelHeight + gap + 40, anchor: .middle)
        return document.rendered()
    }
}
