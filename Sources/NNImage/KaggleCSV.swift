import NNCore
import NNSystem

/// Kaggle's "Digit Recognizer" CSV files: `train.csv` (`label,pixel0,...,pixel783`),
/// `test.csv` (`pixel0,...`), and the submission format (`ImageId,Label`).
public enum KaggleCSV {
    /// The largest CSV file read (Kaggle's train.csv is 76 MB).
    public static let maxFileBytes = 1 << 30

    /// Reads a CSV of pixel rows for a model whose input has `inputShape`.
    ///
    /// The header is detected: a first line whose first cell is not a number names the
    /// columns, and a column named `label` holds the true classes. Without a header, a line of
    /// features + 1 cells starts with the label and a line of features cells is all pixels.
    /// Every line must have the header's (or the first line's) number of cells; every pixel
    /// must be a number in 0...255 and every label a whole number of 0 or more. Empty lines
    /// are skipped. Sources are "name.csv:LINE" (1-based, the header counted).
    public static func read(path: String, inputShape: [Int]) throws -> SampleSet {
        let bytes: [UInt8]
        do {
            let file = try ReadOnlyFile(path: path)
            guard file.size <= maxFileBytes else {
                throw ImageError.csv(path: path, line: 1, reason: "the file is \(file.size) bytes, more than the limit of \(maxFileBytes)")
            }
            bytes = try file.read(at: 0, count: file.size)
        } catch let error as ImageError {
            throw error
        } catch {
            throw ImageError.cannotRead(path: path, reason: "\(error)")
        }
        return try parse(bytes, name: path, inputShape: inputShape)
    }

    /// Parses CSV bytes (see `read`); messages start with `name`.
    public static func parse(_ bytes: [UInt8], name: String, inputShape: [Int]) throws -> SampleSet {
        let features = inputShape.reduce(1, *)
        let shortName = name.split(separator: "/").last.map(String.init) ?? name
        var sources: [String] = []
        var values: [Float] = []
        var labels: [Int] = []
        var labelColumn: Int?
        var columns: Int?
        var hasHeader = false
        var lineNumber = 0
        var start = 0
        var cells: [Range<Int>] = []
        while start < bytes.count {
            var end = start
            while end < bytes.count, bytes[end] != 0x0A { end += 1 }
            lineNumber += 1
            var lineEnd = end
            if lineEnd > start, bytes[lineEnd - 1] == 0x0D { lineEnd -= 1 }
            defer { start = end + 1 }
            if lineEnd == start { continue }
            cells.removeAll(keepingCapacity: true)
            var cellStart = start
            for i in start...lineEnd where i == lineEnd || bytes[i] == UInt8(ascii: ",") {
                cells.append(cellStart..<i)
                cellStart = i + 1
            }
            func text(_ range: Range<Int>) -> String {
                String(decoding: bytes[range].prefix(40), as: UTF8.self)
            }
            if columns == nil {
                columns = cells.count
                let first = trimmed(cells[0], bytes)
                if number(bytes, first) == nil {
                    // A header: find the label column by name.
                    let names = cells.map { text(trimmed($0, bytes)).lowercased().trimmingQuotes }
                    labelColumn = names.firstIndex(of: "label")
                    hasHeader = true
                    let pixels = cells.count - (labelColumn == nil ? 0 : 1)
                    guard pixels == features else {
                        throw ImageError.csv(path: name, line: lineNumber,
                                             reason: "the header names \(pixels) pixel column\(pixels == 1 ? "" : "s") but the model takes \(features) values (\(ShapeMath.describe(inputShape)))")
                    }
                    continue
                }
                if cells.count == features + 1 { labelColumn = 0 }
                else if cells.count != features {
                    throw ImageError.csv(path: name, line: lineNumber,
                                         reason: "\(cells.count) cells, but the model takes \(features) values: expected \(features) pixels, or a label and \(features) pixels")
                }
            }
            guard cells.count == columns else {
                throw ImageError.csv(path: name, line: lineNumber, reason: "\(cells.count) cells where the \(hasHeader ? "header" : "first line") has \(columns!)")
            }
            for (column, cell) in cells.enumerated() {
                let range = trimmed(cell, bytes)
                guard let v = number(bytes, range) else {
                    throw ImageError.csv(path: name, line: lineNumber, reason: "column \(column + 1): '\(text(range))' is not a number")
                }
                if column == labelColumn {
                    guard v >= 0, v == v.rounded(), v < 1e9 else {
                        throw ImageError.csv(path: name, line: lineNumber, reason: "column \(column + 1): the label '\(text(range))' is not a class number (0, 1, 2, ...)")
                    }
                    labels.append(Int(v))
                } else {
                    guard (0...255).contains(v) else {
                        throw ImageError.csv(path: name, line: lineNumber, reason: "column \(column + 1): the pixel value \(text(range)) is outside 0...255")
                    }
                    values.append(Float(v))
                }
            }
            sources.append("\(shortName):\(lineNumber)")
        }
        guard !sources.isEmpty else { throw ImageError.csv(path: name, line: max(1, lineNumber), reason: "no rows of pixels") }
        return SampleSet(sources: sources, shape: inputShape, features: values, labels: labelColumn == nil ? nil : labels)
    }

    /// Kaggle's submission file: `ImageId,Label`, image ids counted from 1.
    public static func submission(_ predictions: [Int]) -> [UInt8] {
        var text = "ImageId,Label\n"
        for (i, label) in predictions.enumerated() { text += "\(i + 1),\(label)\n" }
        return Array(text.utf8)
    }

    private static func trimmed(_ range: Range<Int>, _ bytes: [UInt8]) -> Range<Int> {
        var lower = range.lowerBound, upper = range.upperBound
        while lower < upper, bytes[lower] == 0x20 || bytes[lower] == 0x09 { lower += 1 }
        while upper > lower, bytes[upper - 1] == 0x20 || bytes[upper - 1] == 0x09 { upper -= 1 }
        return lower..<upper
    }

    /// A decimal number: whole numbers parsed directly (the common case), anything else through
    /// `Double`; nil when the cell is not a finite number.
    private static func number(_ bytes: [UInt8], _ range: Range<Int>) -> Double? {
        guard !range.isEmpty, range.count < 64 else { return nil }
        var value = 0
        var whole = true
        for i in range {
            let b = bytes[i]
            guard (0x30...0x39).contains(b) else { whole = false; break }
            value = value * 10 + Int(b - 0x30)
        }
        if whole && range.count < 18 { return Double(value) }
        guard let v = Double(String(decoding: bytes[range], as: UTF8.self)), v.isFinite else { return nil }
        return v
    }
}

extension String {
    fileprivate var trimmingQuotes: String {
        count >= 2 && hasPrefix("\"") && hasSuffix("\"") ? String(dropFirst().dropLast()) : self
    }
}
