/// Netpbm gray and colour maps (PGM P2/P5, PPM P3/P6), read directly: plain and raw, maxval up
/// to 65535 (raw samples above 255 are two bytes, most significant first), comments.
enum NetpbmReader {
    static func decode(_ bytes: [UInt8], name: String, maxPixels: Int) throws(ImageError) -> GrayImage {
        let kind = bytes[1]
        let plain = kind == UInt8(ascii: "2") || kind == UInt8(ascii: "3")
        let channels = kind == UInt8(ascii: "3") || kind == UInt8(ascii: "6") ? 3 : 1
        let format = channels == 3 ? "PPM" : "PGM"
        var position = 2

        func fail(_ reason: String) -> ImageError { .corrupt(path: name, format: format, reason: reason) }
        func isSpace(_ b: UInt8) -> Bool { b == 0x20 || (0x09...0x0D).contains(b) }
        // Skips white space and comments, then reads one decimal number.
        func number(_ what: String) throws(ImageError) -> Int {
            while position < bytes.count {
                if isSpace(bytes[position]) { position += 1 }
                else if bytes[position] == UInt8(ascii: "#") {
                    while position < bytes.count, bytes[position] != 0x0A, bytes[position] != 0x0D { position += 1 }
                } else { break }
            }
            var value = 0, digits = 0
            while position < bytes.count, (0x30...0x39).contains(bytes[position]) {
                value = value * 10 + Int(bytes[position] - 0x30)
                digits += 1
                position += 1
                if value > 1 << 40 { throw fail("the \(what) is too large") }
            }
            guard digits > 0 else {
                throw fail(position >= bytes.count ? "the file ends before the \(what)" : "the \(what) is not a number")
            }
            return value
        }

        let width = try number("width"), height = try number("height"), maxValue = try number("maximum value")
        guard (1...65535).contains(maxValue) else { throw fail("the maximum value \(maxValue) is not in 1...65535") }
        try ImageReader(maxPixels: maxPixels).checkSize(width: width, height: height, name: name)
        let count = width * height * channels
        var samples = [UInt16](repeating: 0, count: count)
        if plain {
            for i in 0..<count {
                let v = try number("sample \(i / channels) (x \(i / channels % width), y \(i / channels / width))")
                guard v <= maxValue else { throw fail("sample \(v) of pixel (x \(i / channels % width), y \(i / channels / width)) is above the maximum value \(maxValue)") }
                samples[i] = UInt16(v)
            }
        } else {
            // Exactly one white-space byte separates the header from the samples.
            guard position < bytes.count, isSpace(bytes[position]) else { throw fail("no white space after the header") }
            position += 1
            let size = maxValue > 255 ? 2 : 1
            let needed = count * size
            guard bytes.count - position >= needed else {
                throw fail("the samples need \(needed) bytes but \(bytes.count - position) follow the header")
            }
            for i in 0..<count {
                let v = size == 2 ? Int(bytes[position + 2 * i]) << 8 | Int(bytes[position + 2 * i + 1]) : Int(bytes[position + i])
                guard v <= maxValue else { throw fail("sample \(v) of pixel (x \(i / channels % width), y \(i / channels / width)) is above the maximum value \(maxValue)") }
                samples[i] = UInt16(v)
            }
        }
        return GrayImage(width: width, height: height, pixels: toGray(samples, channels: channels, maxValue: Float(maxValue)))
    }
}
