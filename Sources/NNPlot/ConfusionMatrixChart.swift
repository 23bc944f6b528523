import NNCore

/// A confusion matrix as a heat map.
public enum ConfusionMatrixChart {
    /// The colour of a cell holding all of its row's samples.
    static let full = RGB(red: 8, green: 48, blue: 107)
    /// Class names longer than this are cut, so that the labels stay apart.
    static let maxLabelCharacters = 16

    /// Renders `matrix[trueClass][predictedClass]` with rows for the true classes and columns for
    /// the predicted ones.
    ///
    /// Each cell is shaded from white to dark blue by its share of the row (the samples of that
    /// true class), so rare and common classes read alike, and shows its count when the cell is
    /// large enough. The title line adds the overall accuracy (trace over total), and the column
    /// on the right the recall of each class; a class without samples has no recall ("n/a").
    ///
    /// - Throws: `PlotError` if there are no classes, the matrix is not `classes.count` square,
    ///   or a count is negative.
    public static func svg(matrix: [[Int]], classes: [String], title: String) throws -> String {
        let n = classes.count
        guard n > 0 else { throw PlotError.noClasses }
        guard matrix.count == n, matrix.allSatisfy({ $0.count == n }) else {
            throw PlotError.confusionMatrixShape(classes: n, rowLengths: matrix.map(\.count))
        }
        for (i, row) in matrix.enumerated() {
            if let j = row.firstIndex(where: { $0 < 0 }) { throw PlotError.negativeCount(row: i, column: j, count: row[j]) }
        }

        let rowTotals = matrix.map { $0.reduce(0, +) }
        let total = rowTotals.reduce(0, +)
        let correct = (0..<n).reduce(0) { $0 + matrix[$1][$1] }
        var heading = title.isEmpty ? "" : title + " — "
        heading += total > 0
            ? "accuracy \(formatDecimal(Double(correct) / Double(total) * 100, digits: 2)) % (\(correct) of \(total))"
            : "no samples"

        let labels = classes.enumerated().map { i, name in SVG.truncated(name.isEmpty ? String(i) : name, to: maxLabelCharacters) }
        let cell = min(56, max(14, (560 / Double(n)).rounded(.down)))
        // Neighbouring column names, rotated by 45°, lie only cell / √2 apart.
        let labelSize = min(12, cell * 0.7)
        let labelWidth = labels.map { SVG.estimatedWidth(of: $0, fontSize: labelSize) }.max() ?? 0
        let countDigits = String(matrix.flatMap { $0 }.max() ?? 0).count
        // Counts shrink to fit their cell and are left out once they would be unreadable.
        let countSize = min(13, (cell - 6) / (0.62 * Double(countDigits)))
        let showCounts = countSize >= 7

        let left = (12 + 20 + labelWidth + 8).rounded(.up)       // axis title, class names, gap
        let top = 64.0
        let matrixSize = Double(n) * cell
        // Predicted-class names hang at -45° below their columns.
        let columnLabelDepth = labelWidth * 0.71 + labelSize
        let recallX = left + matrixSize + 10
        let legendX = recallX + SVG.estimatedWidth(of: "100.0 %", fontSize: labelSize) + 24
        let width = max(legendX + 70, SVG.estimatedWidth(of: heading, fontSize: 15) + 24)
        let height = top + matrixSize + 8 + columnLabelDepth + 36
        var document = SVGDocument(width: width, height: height)
        document.text(heading, x: 12, y: 26, size: 15, bold: true)

        for i in 0..<n {
            let y = top + Double(i) * cell
            document.text(labels[i], x: left - 8, y: y + cell / 2 + labelSize * 0.35, anchor: .end, size: labelSize)
            for j in 0..<n {
                let x = left + Double(j) * cell
                let fraction = rowTotals[i] > 0 ? Double(matrix[i][j]) / Double(rowTotals[i]) : 0
                let fill = color(fraction)
                document.rect(x: x, y: y, width: cell, height: cell, fill: fill.hex, stroke: "#d0d0d0", strokeWidth: 0.5)
                if showCounts {
                    document.text(String(matrix[i][j]), x: x + cell / 2, y: y + cell / 2 + countSize * 0.35, anchor: .middle,
                                  size: countSize, fill: fill.wantsLightText ? "white" : "#222")
                }
            }
            let recall = rowTotals[i] > 0 ? formatDecimal(Double(matrix[i][i]) / Double(rowTotals[i]) * 100, digits: 1) + " %" : "n/a"
            document.text(recall, x: recallX, y: y + cell / 2 + labelSize * 0.35, size: labelSize)
        }
        // The diagonal holds the correct predictions; a frame around it guides the eye.
        document.rect(x: left, y: top, width: matrixSize, height: matrixSize, fill: "none", stroke: "#666", strokeWidth: 1)
        document.text("recall", x: recallX, y: top - 8, size: labelSize, bold: true)

        let columnLabelTop = top + matrixSize + 8
        for j in 0..<n {
            let x = left + (Double(j) + 0.5) * cell + labelSize * 0.35
            document.text(labels[j], x: x, y: columnLabelTop, anchor: .end, size: labelSize, rotation: -45)
        }
        document.text("true class", x: 18, y: top + matrixSize / 2, anchor: .middle, size: 13, bold: true, rotation: -90)
        document.text("predicted class", x: left + matrixSize / 2, y: columnLabelTop + columnLabelDepth + 22,
                      anchor: .middle, size: 13, bold: true)

        // The colour scale: share of the row, 0 % at the bottom to 100 % at the top.
        let legendHeight = min(matrixSize, 200.0), steps = 20
        for k in 0..<steps {
            let fraction = 1 - Double(k) / Double(steps - 1)
            document.rect(x: legendX, y: top + Double(k) * legendHeight / Double(steps), width: 14,
                          height: legendHeight / Double(steps) + 0.5, fill: color(fraction).hex, crisp: true)
        }
        document.rect(x: legendX, y: top, width: 14, height: legendHeight, fill: "none", stroke: "#999", strokeWidth: 0.5)
        document.text("100 %", x: legendX + 18, y: top + 9, size: 10)
        document.text("0 %", x: legendX + 18, y: top + legendHeight, size: 10)
        document.text("of row", x: legendX, y: top - 8, size: 10, fill: "#444")
        return document.rendered()
    }

    /// White for a share of 0, `full` for 1, linear in between.
    static func color(_ fraction: Double) -> RGB {
        RGB.white.blended(toward: full, fraction)
    }
}
