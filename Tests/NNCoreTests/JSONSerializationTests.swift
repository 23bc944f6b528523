import NNCore
import Testing

/// `JSONValue.serialized` and `write(into:)` against text written by hand (RFC 8259's escapes,
/// Swift's shortest round-trip doubles), and against the parser.
@Suite struct JSONSerializationTests {
    @Test func stringsAreEscapedByteForByte() {
        let cases: [(String, String)] = [
            ("plain", #""plain""#),
            ("quote \" and backslash \\", #""quote \" and backslash \\""#),
            ("line\nreturn\rtab\t", #""line\nreturn\rtab\t""#),
            ("\u{0}\u{1}\u{1f} and \u{7f}", #""\u0000\u0001\u001f and "# + "\u{7f}\""),
            ("é, 数字, 👟", "\"é, 数字, 👟\""),
            ("", #""""#),
        ]
        for (value, expected) in cases {
            #expect(JSONValue.string(value).serialized() == expected)
            var bytes: [UInt8] = Array("x".utf8)
            JSONValue.string(value).write(into: &bytes)
            #expect(bytes == Array(("x" + expected).utf8))
        }
    }

    @Test func numbersAsBefore() {
        let cases: [(JSONValue, String)] = [
            (.integer(0), "0"), (.integer(-7), "-7"), (.integer(Int64.max), "9223372036854775807"),
            (.integer(Int64.min), "-9223372036854775808"),
            (.number(1), "1.0"), (.number(-3), "-3.0"), (.number(0.1), "0.1"), (.number(0.866777241230011), "0.866777241230011"),
            (.number(1e15), "1000000000000000.0"), (.number(1e16), "1e+16"), (.number(-2.5e-7), "-2.5e-07"), (.number(.nan), "null"), (.number(-.infinity), "null"),
            (.bool(true), "true"), (.null, "null"),
        ]
        for (value, expected) in cases { #expect(value.serialized() == expected) }
    }

    @Test func nestedCompactAndIndented() throws {
        let value: JSONValue = .object(JSONObject([
            ("index", 3), ("name", "Ankle \"boot\""),
            ("top", .array([.object(JSONObject([("class", 9), ("probability", 0.5)])), .object(JSONObject())])),
            ("shape", [28, 28]), ("empty", .array([])),
        ]))
        let compact = #"{"index":3,"name":"Ankle \"boot\"","top":[{"class":9,"probability":0.5},{}],"shape":[28,28],"empty":[]}"#
        #expect(value.serialized() == compact)
        #expect(value.serialized(indent: 2) == """
            {
              "index": 3,
              "name": "Ankle \\"boot\\"",
              "top": [
                {
                  "class": 9,
                  "probability": 0.5
                },
                {}
              ],
              "shape": [28, 28],
              "empty": []
            }
            """)
        #expect(try JSONValue.parse(compact) == value)
    }
}
