/// Decoding of the arguments pickles store as text or as variable-length integers: decimal
/// integers (INT, LONG, PUT, GET), LONG1/LONG4 bytes, Python string escapes (STRING) and
/// raw-unicode-escape (UNICODE). Each returns nil for input it does not accept; the machine turns
/// that into an error naming the opcode.
enum PickleText {
    /// An integer from little-endian two's complement bytes (LONG1/LONG4): `.int` when it fits in
    /// Int64, else `.bigInt` in its fewest bytes. No bytes is 0, as in Python.
    static func integer(twosComplement raw: [UInt8]) -> PickleValue {
        var bytes = raw
        // Drop sign-extension bytes that carry no information, so that equal numbers compare equal.
        while bytes.count > 1 {
            let last = bytes[bytes.count - 1], previous = bytes[bytes.count - 2]
            guard (last == 0 && previous & 0x80 == 0) || (last == 0xFF && previous & 0x80 != 0) else { break }
            bytes.removeLast()
        }
        guard let top = bytes.last else { return .int(0) }
        guard bytes.count <= 8 else { return .bigInt(bytes) }
        var value: UInt64 = top & 0x80 != 0 ? ~0 : 0
        for byte in bytes.reversed() { value = value << 8 | UInt64(byte) }
        return .int(Int64(bitPattern: value))
    }

    /// A decimal integer with an optional sign (Python 2's LONG text may end in "L", which the
    /// caller strips). At most `maxDigits` digits, so the conversion stays cheap.
    static func decimalInteger(_ text: ArraySlice<UInt8>, maxDigits: Int) -> PickleValue? {
        var digits = text[...]
        var negative = false
        if let first = digits.first, first == UInt8(ascii: "-") || first == UInt8(ascii: "+") {
            negative = first == UInt8(ascii: "-")
            digits = digits.dropFirst()
        }
        guard !digits.isEmpty, digits.count <= maxDigits,
              digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        // The magnitude in base 256, little-endian, with a zero byte on top for the sign.
        var magnitude: [UInt8] = [0]
        for digit in digits {
            var carry = Int(digit - UInt8(ascii: "0"))
            for i in magnitude.indices {
                let v = Int(magnitude[i]) * 10 + carry
                magnitude[i] = UInt8(v & 0xFF)
                carry = v >> 8
            }
            if carry > 0 { magnitude.append(UInt8(carry)) }
        }
        magnitude.append(0)
        if negative {
            var carry = 1
            for i in magnitude.indices {
                let v = Int(~magnitude[i]) + carry
                magnitude[i] = UInt8(v & 0xFF)
                carry = v >> 8
            }
        }
        return integer(twosComplement: magnitude)
    }

    /// A non-negative decimal index (PUT, GET), or nil.
    static func decimalIndex(_ text: ArraySlice<UInt8>) -> Int? {
        guard case let .int(v)? = decimalInteger(text, maxDigits: 19), v >= 0 else { return nil }
        return Int(v)
    }

    /// Python's `codecs.escape_decode`, which the STRING opcode applies to its quoted argument.
    static func escapeDecode(_ text: ArraySlice<UInt8>) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(text.count)
        var i = text.startIndex
        while i < text.endIndex {
            let c = text[i]
            i += 1
            guard c == UInt8(ascii: "\\") else { out.append(c); continue }
            guard i < text.endIndex else { return nil }  // a trailing backslash
            let e = text[i]
            i += 1
            switch e {
            case UInt8(ascii: "\n"): break
            case UInt8(ascii: "\\"), UInt8(ascii: "'"), UInt8(ascii: "\""): out.append(e)
            case UInt8(ascii: "a"): out.append(0x07)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "v"): out.append(0x0B)
            case UInt8(ascii: "0")...UInt8(ascii: "7"):
                var value = Int(e - UInt8(ascii: "0"))
                var count = 1
                while count < 3, i < text.endIndex, (UInt8(ascii: "0")...UInt8(ascii: "7")).contains(text[i]) {
                    value = value * 8 + Int(text[i] - UInt8(ascii: "0"))
                    i += 1
                    count += 1
                }
                out.append(UInt8(value & 0xFF))
            case UInt8(ascii: "x"):
                guard text.endIndex - i >= 2, let high = hexDigit(text[i]), let low = hexDigit(text[i + 1]) else { return nil }
                out.append(UInt8(high << 4 | low))
                i += 2
            default:
                // Python keeps an unknown escape as it is.
                out.append(UInt8(ascii: "\\"))
                out.append(e)
            }
        }
        return out
    }

    /// Python's raw-unicode-escape: bytes are Latin-1 characters, except that `\uXXXX` and
    /// `\UXXXXXXXX` after an odd number of backslashes are code points.
    static func rawUnicodeEscapeDecode(_ text: ArraySlice<UInt8>) -> String? {
        var scalars = String.UnicodeScalarView()
        var i = text.startIndex
        var backslashes = 0
        while i < text.endIndex {
            let c = text[i]
            i += 1
            if c == UInt8(ascii: "\\") {
                backslashes += 1
                scalars.append(Unicode.Scalar(c))
                continue
            }
            let odd = backslashes % 2 == 1
            backslashes = 0
            guard odd, c == UInt8(ascii: "u") || c == UInt8(ascii: "U") else {
                scalars.append(Unicode.Scalar(c))
                continue
            }
            let width = c == UInt8(ascii: "u") ? 4 : 8
            guard text.endIndex - i >= width else { return nil }
            var value: UInt32 = 0
            for k in 0..<width {
                guard let d = hexDigit(text[i + k]) else { return nil }
                value = value << 4 | UInt32(d)
            }
            i += width
            guard let scalar = Unicode.Scalar(value) else { return nil }
            scalars.removeLast()  // the backslash that introduced the escape
            scalars.append(scalar)
        }
        return String(scalars)
    }

    /// A string from UTF-8 bytes, or nil when they are not valid UTF-8.
    static func utf8(_ bytes: UnsafeRawBufferPointer) -> String? {
        String(validating: bytes, as: UTF8.self)
    }

    private static func hexDigit(_ c: UInt8) -> Int? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return Int(c - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return Int(c - UInt8(ascii: "a")) + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return Int(c - UInt8(ascii: "A")) + 10
        default: return nil
        }
    }
}
