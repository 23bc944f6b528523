import NNCore
import NNData

/// Parses "1/255", "0.00392156862745098" or "255" style scale factors.
public func parseScale(_ text: String) throws -> Double {
    let parts = text.split(separator: "/")
    if parts.count == 2, let a = Double(parts[0].trimmingCharacters()), let b = Double(parts[1].trimmingCharacters()), b != 0 {
        return a / b
    }
    if parts.count == 1, let v = Double(text), v.isFinite { return v }
    throw ToolError("--scale expects a number or a fraction such as 1/255, found '\(text)'", status: ExitStatus.usage)
}

/// Parses "28x28" or "784".
public func parseShape(_ text: String, option: String) throws -> [Int] {
    let dims = text.split(separator: "x").map { Int($0) }
    guard !dims.isEmpty, dims.allSatisfy({ ($0 ?? 0) > 0 }) else {
        throw ToolError("\(option) expects dimensions such as 28x28, found '\(text)'", status: ExitStatus.usage)
    }
    return dims.map { $0! }
}

/// The blog's `normalize()` statistics of an IDX image file: per-feature mean and std.
public func zscoreStatistics(imagesPath: String) throws -> (mean: [Double], std: [Double]) {
    let images = try IDXImages(path: imagesPath)
    return images.features.withUnsafeBufferPointer { featureStatistics($0, count: images.count, featureCount: images.featureCount) }
}

/// "model.h5" -> "model.nnm".
public func replacingExtension(of path: String, with ext: String) -> String {
    let slash = path.lastIndex(of: "/")
    if let dot = path.lastIndex(of: "."), slash.map({ dot > $0 }) ?? true, dot != path.startIndex {
        return String(path[..<dot]) + "." + ext
    }
    return path + "." + ext
}
