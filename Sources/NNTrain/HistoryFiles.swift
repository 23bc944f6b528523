import NNCore
import NNPlot
import NNSystem

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
        HistoryChart.svg(history, title: title)
    }

    /// Writes both files atomically.
    public static func write(_ history: [EpochRecord], besideModel path: String, title: String) throws {
        let (csvPath, svgPath) = paths(besideModel: path)
        try AtomicFileWriter.write(Array(csv(history).utf8), to: csvPath)
        try AtomicFileWriter.write(Array(svg(history, title: title).utf8), to: svgPath)
    }
}
