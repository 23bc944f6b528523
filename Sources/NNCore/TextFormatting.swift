/// `value` with exactly `digits` decimals ("87.03"), without Foundation's `String(format:)`.
public func formatDecimal(_ value: Double, digits: Int) -> String {
    guard value.isFinite else { return String(value) }
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let rounded = (abs(value) * scale).rounded()
    guard rounded < 9e15 else { return String(value) }
    let whole = Int(rounded) / Int(scale), fraction = Int(rounded) % Int(scale)
    var text = (value < 0 && rounded > 0 ? "-" : "") + String(whole)
    if digits > 0 {
        let f = String(fraction)
        text += "." + String(repeating: "0", count: digits - f.count) + f
    }
    return text
}
