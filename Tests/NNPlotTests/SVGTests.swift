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
