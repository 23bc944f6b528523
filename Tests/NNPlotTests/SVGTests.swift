import NNCore
import Testing
@testable import NNPlot

@Suite struct SVGTests {
    @Test func escaping() {
        #expect(SVG.escape("<&>") == "&lt;&amp;&gt;")
        #expect(SVG.escape("a \"b\" 'c' é") == "a &quot;b&quot; 'c' é")
        // XML 1.0 forbids these controls; tab and newline are allowed.
        #expect(SVG.escape("x\u{0}y\u{1B}z\tw") == "x\u{FFFD}y\u{FFFD}z\tw")
    }

    @Test func numbers() {
        #expect(SVG.number(12) == "12")
        #expect(SVG.number(12.5) == "12.5")
        #expect(SVG.number(3.14159) == "3.14")
        #expect(SVG.number(-0.25) == "-0.25")
        #expect(SVG.number(-0.001) == "0")
        #expect(SVG.number(.nan) == "0")
        #expect(SVG.significant(0.4312) == "0.431")
        #expect(SVG.significant(0.000731) == "0.000731")
        #expect(SVG.significant(12.5) == "12.5")
        #expect(SVG.significant(1234) == "1234")
        #expect(SVG.significant(0) == "0")
    }

    @Test func colours() {
        #expect(RGB(red: 8, green: 48, blue: 107).hex == "#08306b")
        #expect(RGB.white.blended(toward: RGB(red: 0, green: 0, blue: 0), 0.5) == RGB(red: 128, green: 128, blue: 128))
        // Out-of-range fractions stay on the scale.
        #expect(RGB.white.blended(toward: RGB(red: 0, green: 0, blue: 0), 1.5) == RGB(red: 0, green: 0, blue: 0))
        #expect(SVG.truncated("Ankle boot", to: 16) == "Ankle boot")
        #expect(SVG.truncated("abcdefghij", to: 5) == "abcd…")
    }

    @Test func historyChart() {
        let history = [EpochRecord(epoch: 1, trainLoss: 1.0, testLoss: 1.2, trainAccuracy: 0.5, testAccuracy: 0.4),
                       EpochRecord(epoch: 2, trainLoss: 0.5, testLoss: .nan, trainAccuracy: 0.75, testAccuracy: 0.6)]
        let svg = HistoryChart.svg(history, title: "a < b")
        #expect(svg.hasPrefix("<svg "))
        let all = elements(svg)
        #expect(all.first { $0.name == "text" }?.text == "a &lt; b")
        // Train and test in both panels; validation has no values and no line.
        let lines = all.filter { $0.name == "polyline" }
        #expect(lines.map { $0.attributes["stroke"] } == ["#1f77b4", "#d62728", "#1f77b4", "#d62728"])
        // Epochs 1 and 2 span the plot, 70 to 700 px; the test loss's NaN is left out.
        #expect(lines[0].attributes["points"]?.split(separator: " ").map { $0.split(separator: ",")[0] } == ["70", "700"])
        #expect(lines[1].attributes["points"]?.split(separator: " ").count == 1)
        #expect(!svg.contains("nan") && !all.contains { $0.text == "validation" })
    }
}

@Suite struct HistoryChartLayout {
    /// Accuracies between 82.0 % and 82.1 %: five ticks once printed "82.0" twice.
    @Test func narrowAccuracyRangeHasDistinctTicks() {
        let history = (1...5).map { EpochRecord(epoch: $0, trainLoss: 0.5, testLoss: 0.5, trainAccuracy: 0.82 + Double($0) * 0.0002,
                                                 testAccuracy: 0.8201 + Double($0) * 0.0001) }
        let labels = texts(HistoryChart.svg(history, title: "t")).filter { $0.attributes["text-anchor"] == "end" }.map(\.text)
        #expect(labels.count >= 6)
        #expect(Set(labels).count == labels.count, "\(labels)")
        #expect(labels.contains("82.06"), "\(labels)")
    }

    @Test func ticksAreRoundAndDistinct() {
        // By hand: range 0.2 -> raw step 0.05 -> 0.05, two decimals.
        let (values, digits) = HistoryChart.ticks(0.1, 0.3)
        #expect(values.map { formatDecimal($0, digits: digits) } == ["0.10", "0.15", "0.20", "0.25", "0.30"])
        // A range of 9000 - 10: a quarter is 2247.5, so steps of 2000.
        #expect(HistoryChart.ticks(10, 9000).values == [2000, 4000, 6000, 8000])
        #expect(HistoryChart.ticks(82.0, 82.1).digits == 2)
        #expect(HistoryChart.ticks(0, 2.4).values == [0, 0.5, 1, 1.5, 2])
        for (lo, hi) in [(82.0, 82.001), (0.0, 1e-6), (10.0, 9000.0), (0.31, 0.32)] {
            let (values, digits) = HistoryChart.ticks(lo, hi)
            let labels = values.map { formatDecimal($0, digits: digits) }
            #expect(values.count >= 2 && Set(labels).count == labels.count, "\(lo)...\(hi): \(labels)")
            #expect(values.allSatisfy { $0 >= lo && $0 <= hi + 1e-9 })
        }
    }

    /// A title wider than the chart wraps; every line fits in the width and the panels move down.
    @Test func longTitleWraps() {
        let title = "cnn: conv:16:3x3,pool:2,conv:32:3x3:s=2:same, layers 128,10, momentum 0.9, lr 0.01, batch 64, He init, Fashion-MNIST, seed 002"
        let history = [EpochRecord(epoch: 1, trainLoss: 1.0, testLoss: 1.2, trainAccuracy: 0.5, testAccuracy: 0.4)]
        let svg = HistoryChart.svg(history, title: title)
        let all = elements(svg)
        let width = all.first!.number("width")
        let titleLines = all.filter { $0.name == "text" && $0.attributes["font-size"] == "15" }
        #expect(titleLines.count == 2)
        #expect(titleLines.map(\.text).joined(separator: " ") == title)
        for line in titleLines {
            #expect(SVG.estimatedWidth(of: line.text, fontSize: 15) <= width - 20, "\(line.text)")
        }
        // The upper panel's frame starts below the second title line.
        let frame = all.first { $0.name == "rect" && $0.attributes["stroke"] == "#888" }!
        #expect(frame.number("y") == 59)
        #expect(HistoryChart.wrap(String(repeating: "x", count: 100), width: 90, fontSize: 15).map(\.count) == [10, 10, 10, 10, 10, 10, 10, 10, 10, 10])
    }
}
