import NNCore
import Testing
@testable import NNPlot

@Suite struct ConfusionMatrixChartTests {
    /// The matrix cells, row by row: the only rectangles with the light grid stroke.
    func cells(_ svg: String) -> [Element] {
        elements(svg).filter { $0.name == "rect" && $0.attributes["stroke"] == "#d0d0d0" }
    }

    @Test func twoByTwoColoursCountsAndAccuracy() throws {
        let svg = try ConfusionMatrixChart.svg(matrix: [[3, 1], [0, 4]], classes: ["cat", "dog"], title: "pets")
        let all = texts(svg)
        // 7 of 8 on the diagonal.
        #expect(all.first?.text == "pets — accuracy 87.50 % (7 of 8)")

        let grid = cells(svg)
        try #require(grid.count == 4)
        // Row shares 3/4, 1/4, 0/4, 4/4 from white (255, 255, 255) to (8, 48, 107):
        // 0.75 -> (69.75, 99.75, 144) -> #466490; 0.25 -> (193.25, 203.25, 218) -> #c1cbda.
        #expect(grid.map(\.fill) == ["#466490", "#c1cbda", "#ffffff", "#08306b"])
        // Rows are true classes (down), columns predicted classes (across).
        #expect(grid[1].number("x") > grid[0].number("x") && grid[1].number("y") == grid[0].number("y"))
        #expect(grid[2].number("y") > grid[0].number("y") && grid[2].number("x") == grid[0].number("x"))

        let counts = grid.map { cell in all.filter { cell.contains($0) } }
        #expect(counts.map { $0.map(\.text) } == [["3"], ["1"], ["0"], ["4"]])
        // White text on the dark cells (brightness below 140), dark text on the light ones.
        #expect(counts.map { $0.first?.fill } == ["white", "#222", "#222", "white"])

        #expect(all.contains { $0.text == "75.0 %" } && all.contains { $0.text == "100.0 %" })
        #expect(all.contains { $0.text == "true class" } && all.contains { $0.text == "predicted class" })
        // Both axes carry the class names: a row label and a rotated column label each.
        #expect(all.filter { $0.text == "cat" }.count == 2)
        #expect(all.filter { $0.text == "dog" && $0.attributes["transform"]?.hasPrefix("rotate(-45 ") == true }.count == 1)
    }

    @Test func rowWithoutSamplesHasNoRecallAndStaysWhite() throws {
        let svg = try ConfusionMatrixChart.svg(matrix: [[0, 0], [2, 5]], classes: ["a", "b"], title: "")
        let all = texts(svg)
        #expect(all.first?.text == "accuracy 71.43 % (5 of 7)")
        // 2/7 -> (184.43, 195.86, 212.71), 5/7 -> (78.57, 107.14, 149.29).
        #expect(cells(svg).map(\.fill) == ["#ffffff", "#ffffff", "#b8c4d5", "#4f6b95"])
        #expect(all.contains { $0.text == "n/a" } && all.contains { $0.text == "71.4 %" })
        #expect(!svg.contains("nan"))
    }

    @Test func noSamplesAtAll() throws {
        let svg = try ConfusionMatrixChart.svg(matrix: [[0, 0], [0, 0]], classes: ["a", "b"], title: "empty")
        #expect(texts(svg).first?.text == "empty — no samples")
        #expect(cells(svg).allSatisfy { $0.fill == "#ffffff" })
    }

    @Test func classNamesAreEscapedAndTruncated() throws {
        let svg = try ConfusionMatrixChart.svg(matrix: [[1, 0], [0, 1]], classes: ["<&>", "a class name far too long to print"],
                                               title: "\"quoted\" & <b>")
        #expect(svg.contains(">&lt;&amp;&gt;</text>"))
        #expect(!svg.contains("<&>") && !svg.contains("<b>"))
        #expect(svg.contains("&quot;quoted&quot; &amp; &lt;b&gt;"))
        // 16 characters including the ellipsis.
        #expect(texts(svg).filter { $0.text == "a class name fa…" }.count == 2)
    }

    @Test func malformedMatricesAreRejected() {
        #expect(throws: PlotError.noClasses) { try ConfusionMatrixChart.svg(matrix: [], classes: [], title: "") }
        #expect(throws: PlotError.confusionMatrixShape(classes: 2, rowLengths: [2, 1])) {
            try ConfusionMatrixChart.svg(matrix: [[1, 2], [3]], classes: ["a", "b"], title: "")
        }
        #expect(throws: PlotError.confusionMatrixShape(classes: 3, rowLengths: [2, 2])) {
            try ConfusionMatrixChart.svg(matrix: [[1, 2], [3, 4]], classes: ["a", "b", "c"], title: "")
        }
        #expect(throws: PlotError.negativeCount(row: 1, column: 0, count: -3)) {
            try ConfusionMatrixChart.svg(matrix: [[1, 2], [-3, 4]], classes: ["a", "b"], title: "")
        }
        #expect(PlotError.confusionMatrixShape(classes: 2, rowLengths: [2, 1]).description
                == "a confusion matrix for 2 classes needs 2 rows of 2 counts, found rows of 2, 1 counts")
    }
}
