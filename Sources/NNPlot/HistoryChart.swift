import NNCore

/// A training history as a chart: losses in the upper panel, accuracies in the lower one.
public enum HistoryChart {
    private static let series: [(name: String, color: String)] = [("train", "#1f77b4"), ("test", "#d62728"), ("validation", "#2ca02c")]

    /// Two panels against the epoch: losses (train, test, validation) and accuracies in percent.
    /// Missing and non-finite values are left out; a series with no values has no line or legend entry.
    public static func svg(_ history: [EpochRecord], title: String) -> String {
        let width = 720.0, panelHeight = 260.0, left = 70.0, right = 20.0, gap = 60.0
        // A long title wraps onto as many lines as it needs, and the panels move down.
        let titleSize = 15.0, titleLineHeight = 19.0
        let titleLines = wrap(title, width: width - 20, fontSize: titleSize)
        let top = 40.0 + Double(titleLines.count - 1) * titleLineHeight
        var document = SVGDocument(width: width, height: top + 2 * panelHeight + gap + 50)
        for (i, line) in titleLines.enumerated() {
            document.text(line, x: width / 2, y: 22 + Double(i) * titleLineHeight, anchor: .middle, size: titleSize)
        }

        let epochs = history.map { Double($0.epoch) }
        let xMin = epochs.min() ?? 0, xMax = max(epochs.max() ?? 1, xMin + 1)
        let plotWidth = width - left - right

        func panel(y0: Double, label: String, percent: Bool, values: [[Double?]]) {
            let finite = values.flatMap { $0.compactMap { $0 } }.filter(\.isFinite)
            var lo = finite.min() ?? 0, hi = finite.max() ?? 1
            // Padding keeps the extreme points off the frame; a flat series still gets a range.
            let pad = hi > lo ? (hi - lo) * 0.08 : max(abs(hi) * 0.05, 1e-3)
            lo = max(0, lo - pad)
            hi += pad
            func px(_ x: Double) -> Double { left + (x - xMin) / (xMax - xMin) * plotWidth }
            func py(_ y: Double) -> Double { y0 + panelHeight - (y - lo) / (hi - lo) * panelHeight }

            document.rect(x: left, y: y0, width: plotWidth, height: panelHeight, fill: "none", stroke: "#888")
            // Ticks at round values, with as many decimals as their step needs: distinct labels
            // however narrow the range (an accuracy between 82.0 and 82.1 % included).
            let unit = percent ? 100.0 : 1.0
            let (ticks, digits) = Self.ticks(lo * unit, hi * unit)
            for t in ticks {
                let v = t / unit
                document.line(x1: left, y1: py(v), x2: left + plotWidth, y2: py(v), stroke: "#eee")
                document.text(formatDecimal(t, digits: digits), x: left - 6, y: py(v) + 4, anchor: .end)
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

    /// Round tick values from `lo` to `hi` (4 to 11: steps of 1, 2 or 5 times a power of
    /// ten) and the decimals their labels need so that no two labels are the same.
    static func ticks(_ lo: Double, _ hi: Double) -> (values: [Double], digits: Int) {
        guard lo.isFinite, hi.isFinite, hi > lo else { return ([lo.isFinite ? lo : 0], 3) }
        let raw = (hi - lo) / 4
        // The power of ten at or below raw, and how many decimals it has.
        var exponent = 0
        while pow10(exponent) > raw, exponent > -15 { exponent -= 1 }
        while pow10(exponent + 1) <= raw, exponent < 15 { exponent += 1 }
        let power = pow10(exponent)
        // The largest round step at or below a quarter of the range: 4 to 11 ticks.
        let multiple = [5.0, 2, 1].first { $0 * power <= raw * (1 + 1e-9) } ?? 1
        let step = multiple * power
        let digits = max(0, -exponent)
        var values: [Double] = []
        var k = (lo / step).rounded(.up)
        while k * step <= hi + step * 1e-9, values.count < 20 {
            values.append(k * step)
            k += 1
        }
        return (values, min(digits, 12))
    }

    private static func pow10(_ n: Int) -> Double {
        var x = 1.0
        for _ in 0..<abs(n) { x *= 10 }
        return n < 0 ? 1 / x : x
    }

    /// `text` broken at spaces into lines that fit `width` (estimated), a word longer than a
    /// line cut into pieces that do.
    static func wrap(_ text: String, width: Double, fontSize: Double) -> [String] {
        let perLine = max(8, Int(width / (fontSize * 0.6)))
        var lines: [String] = [], current = ""
        for word in text.split(separator: " ", omittingEmptySubsequences: true).map(String.init) {
            var word = word
            while word.count > perLine {
                if !current.isEmpty { lines.append(current); current = "" }
                lines.append(String(word.prefix(perLine)))
                word = String(word.dropFirst(perLine))
            }
            if current.isEmpty {
                current = word
            } else if current.count + 1 + word.count <= perLine {
                current += " " + word
            } else {
                lines.append(current)
                current = word
            }
        }
        if !current.isEmpty || lines.isEmpty { lines.append(current) }
        return lines
    }
}
