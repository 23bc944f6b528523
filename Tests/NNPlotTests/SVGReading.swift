import Foundation

/// One element of a rendered picture, read back so tests can check colours, text and geometry.
struct Element {
    var name: String
    var attributes: [String: String]
    /// The character data of a `<text>` element, still escaped.
    var text: String

    func number(_ key: String) -> Double { Double(attributes[key] ?? "") ?? .nan }
    var fill: String? { attributes["fill"] }

    /// Whether a text's anchor point lies within this rectangle.
    func contains(_ text: Element) -> Bool {
        let x = text.number("x"), y = text.number("y")
        return x >= number("x") && x <= number("x") + number("width") && y >= number("y") && y <= number("y") + number("height")
    }
}

/// The elements of an SVG as NNPlot writes it: one element per line, attribute values in double
/// quotes that never contain a quote or '>' (both are escaped).
func elements(_ svg: String) -> [Element] {
    svg.split(separator: "\n").compactMap { line -> Element? in
        guard line.hasPrefix("<"), !line.hasPrefix("</"), let close = line.firstIndex(of: ">") else { return nil }
        let tag = line[line.index(after: line.startIndex)..<close]
        let name = String(tag.prefix { $0 != " " && $0 != "/" })
        let parts = tag.dropFirst(name.count).split(separator: "\"", omittingEmptySubsequences: false)
        var attributes: [String: String] = [:]
        var i = 0
        while i + 1 < parts.count {
            let key = parts[i].filter { $0 != " " && $0 != "=" }
            attributes[String(key)] = String(parts[i + 1])
            i += 2
        }
        var text = ""
        if let end = line.range(of: "</") { text = String(line[line.index(after: close)..<end.lowerBound]) }
        return Element(name: name, attributes: attributes, text: text)
    }
}

func texts(_ svg: String) -> [Element] { elements(svg).filter { $0.name == "text" } }
