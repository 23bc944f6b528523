import NNCore

/// The markup rules every picture shares: escaping, number formatting, text size estimates.
enum SVG {
    /// `text` safe as XML character data or inside a double-quoted attribute.
    ///
    /// Class names and titles come from model files, so they may hold markup characters or
    /// control characters; XML 1.0 forbids most C0 controls outright and a renderer would then
    /// refuse the whole picture, so those become U+FFFD.
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "\t", "\n", "\r": out.unicodeScalars.append(scalar)
            case _ where scalar.value < 0x20 || scalar.value == 0xFFFE || scalar.value == 0xFFFF:
                out += "\u{FFFD}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// A coordinate or length: at most two decimals, no trailing zeros ("12", "12.5", "-0.25").
    ///
    /// A NaN or infinite attribute makes renderers drop the element or the whole file, so
    /// non-finite values are written as 0; callers filter such values before they get here.
    static func number(_ value: Double) -> String {
        guard value.isFinite else { return "0" }
        var text = formatDecimal(value, digits: 2)
        while text.hasSuffix("0") && text.contains(".") { text.removeLast() }
        if text.hasSuffix(".") { text.removeLast() }
        return text == "-0" ? "0" : text
    }

    /// `value` with about `significantDigits` significant digits, for legends and tick labels
    /// whose magnitude is not known in advance (0.000731 as well as 12.5).
    static func significant(_ value: Double, _ significantDigits: Int = 3) -> String {
        guard value.isFinite, value != 0 else { return value.isFinite ? "0" : String(value) }
        var magnitude = abs(value), exponent = 0
        while magnitude >= 10 { magnitude /= 10; exponent += 1 }
        while magnitude < 1 { magnitude *= 10; exponent -= 1 }
        let decimals = max(0, significantDigits - 1 - exponent)
        // Beyond this, fixed notation stops being readable and formatDecimal loses precision.
        guard decimals <= 8, exponent < 15 else { return String(value) }
        return formatDecimal(value, digits: decimals)
    }

    /// A generous guess of rendered text width: no font metrics are available, and a label
    /// that ends up a little short of its space looks better than one that overlaps.
    static func estimatedWidth(of text: String, fontSize: Double) -> Double {
        Double(text.count) * fontSize * 0.6
    }

    /// `text` cut to `maxCharacters` (counting the ellipsis) so long class names keep labels apart.
    static func truncated(_ text: String, to maxCharacters: Int) -> String {
        guard text.count > maxCharacters, maxCharacters > 1 else { return text }
        return String(text.prefix(maxCharacters - 1)) + "…"
    }
}

/// An sRGB colour.
struct RGB: Equatable {
    var red: UInt8, green: UInt8, blue: UInt8

    static let white = RGB(red: 255, green: 255, blue: 255)

    /// "#rrggbb".
    var hex: String {
        let digits = Array("0123456789abcdef")
        return "#" + String([red, green, blue].flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] })
    }

    /// The colour `fraction` of the way from `self` to `other`, per channel in sRGB, rounded;
    /// `fraction` is clamped to 0...1 so a rounding error cannot leave the colour scale.
    func blended(toward other: RGB, _ fraction: Double) -> RGB {
        let t = fraction.isNaN ? 0 : min(1, max(0, fraction))
        func channel(_ a: UInt8, _ b: UInt8) -> UInt8 { UInt8((Double(a) + (Double(b) - Double(a)) * t).rounded()) }
        return RGB(red: channel(red, other.red), green: channel(green, other.green), blue: channel(blue, other.blue))
    }

    /// Whether white text reads better than black on this colour (perceived brightness, ITU-R 601 weights).
    var wantsLightText: Bool {
        0.299 * Double(red) + 0.587 * Double(green) + 0.114 * Double(blue) < 140
    }
}

/// One SVG document built element by element; all numbers and text pass through `SVG`.
struct SVGDocument {
    enum Anchor: String { case start, middle, end }

    let width: Double
    let height: Double
    private let fontSize: Double
    private var elements: [String] = []

    /// A white canvas; `fontSize` is the default for text elements.
    init(width: Double, height: Double, fontSize: Double = 12) {
        self.width = width.rounded(.up)
        self.height = height.rounded(.up)
        self.fontSize = fontSize
        elements.append("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>")
    }

    /// `crisp` turns off anti-aliasing so that abutting rectangles (kernel pixels, matrix cells)
    /// show no hairline seams between them.
    mutating func rect(x: Double, y: Double, width: Double, height: Double, fill: String,
                       stroke: String? = nil, strokeWidth: Double = 1, crisp: Bool = false) {
        var e = "<rect x=\"\(SVG.number(x))\" y=\"\(SVG.number(y))\" width=\"\(SVG.number(width))\" height=\"\(SVG.number(height))\" fill=\"\(fill)\""
        if let stroke { e += " stroke=\"\(stroke)\" stroke-width=\"\(SVG.number(strokeWidth))\"" }
        if crisp { e += " shape-rendering=\"crispEdges\"" }
        elements.append(e + "/>")
    }

    mutating func line(x1: Double, y1: Double, x2: Double, y2: Double, stroke: String, strokeWidth: Double = 1) {
        elements.append("<line x1=\"\(SVG.number(x1))\" y1=\"\(SVG.number(y1))\" x2=\"\(SVG.number(x2))\" y2=\"\(SVG.number(y2))\" stroke=\"\(stroke)\" stroke-width=\"\(SVG.number(strokeWidth))\"/>")
    }

    /// `rotation` is in degrees about the anchor point (negative turns the text counter-clockwise).
    mutating func text(_ content: String, x: Double, y: Double, anchor: Anchor = .start, size: Double? = nil,
                       fill: String? = nil, bold: Bool = false, rotation: Double? = nil) {
        var e = "<text x=\"\(SVG.number(x))\" y=\"\(SVG.number(y))\""
        if anchor != .start { e += " text-anchor=\"\(anchor.rawValue)\"" }
        if let size, size != fontSize { e += " font-size=\"\(SVG.number(size))\"" }
        if let fill { e += " fill=\"\(fill)\"" }
        if bold { e += " font-weight=\"bold\"" }
        if let rotation { e += " transform=\"rotate(\(SVG.number(rotation)) \(SVG.number(x)) \(SVG.number(y)))\"" }
        elements.append(e + ">\(SVG.escape(content))</text>")
    }

    mutating func polyline(_ points: [(x: Double, y: Double)], stroke: String, strokeWidth: Double = 1) {
        let coordinates = points.map { "\(SVG.number($0.x)),\(SVG.number($0.y))" }.joined(separator: " ")
        elements.append("<polyline fill=\"none\" stroke=\"\(stroke)\" stroke-width=\"\(SVG.number(strokeWidth))\" points=\"\(coordinates)\"/>")
    }

    mutating func circle(cx: Double, cy: Double, r: Double, fill: String) {
        elements.append("<circle cx=\"\(SVG.number(cx))\" cy=\"\(SVG.number(cy))\" r=\"\(SVG.number(r))\" fill=\"\(fill)\"/>")
    }

    /// The complete document, one element per line.
    func rendered() -> String {
        let w = SVG.number(width), h = SVG.number(height)
        var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(w)\" height=\"\(h)\" viewBox=\"0 0 \(w) \(h)\" font-family=\"sans-serif\" font-size=\"\(SVG.number(fontSize))\">\n"
        for e in elements { out += e + "\n" }
        return out + "</svg>\n"
    }
}
