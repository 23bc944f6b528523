import NNSystem
internal import CPNG
internal import CTurboJPEG

/// Reads pictures (PNG through libpng, JPEG through libjpeg-turbo, Netpbm PGM/PPM directly) as
/// `GrayImage`s.
///
/// The format is told by the first bytes, not the name. Every reader checks the declared size
/// against `maxPixels` before it decodes a pixel, so a small file that declares a huge picture
/// (a decompression bomb) costs nothing.
public struct ImageReader: Sendable {
    /// The default bound on width x height: 50 megapixels (an 8660x5773 photo; 200 MB of
    /// 32-bit floats once decoded).
    public static let defaultMaxPixels = 50_000_000
    /// The largest file read into memory to be decoded.
    public static let maxFileBytes = 512 << 20
    /// File name suffixes of the pictures a folder is searched for.
    public static let suffixes = [".png", ".jpg", ".jpeg", ".pgm", ".ppm"]

    public var maxPixels: Int

    public init(maxPixels: Int = ImageReader.defaultMaxPixels) {
        self.maxPixels = maxPixels
    }

    /// Whether `name` ends in one of `suffixes` (any case).
    public static func isPictureName(_ name: String) -> Bool {
        let lower = name.lowercased()
        return suffixes.contains { lower.hasSuffix($0) }
    }

    /// Reads the picture at `path`; messages name `displayName` (the path when nil).
    public func read(path: String, displayName: String? = nil) throws(ImageError) -> GrayImage {
        let name = displayName ?? path
        let bytes: [UInt8]
        do {
            let file = try ReadOnlyFile(path: path)
            guard file.size <= ImageReader.maxFileBytes else {
                throw ImageError.unsupported(path: name, reason: "the file is \(file.size) bytes, more than the limit of \(ImageReader.maxFileBytes)")
            }
            bytes = try file.read(at: 0, count: file.size)
        } catch let error as ImageError {
            throw error
        } catch {
            throw .cannotRead(path: name, reason: "\(error)")
        }
        return try decode(bytes, name: name)
    }

    /// Decodes a picture held in memory; messages start with `name`.
    public func decode(_ bytes: [UInt8], name: String) throws(ImageError) -> GrayImage {
        if bytes.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return try decodePNG(bytes, name: name) }
        if bytes.starts(with: [0xFF, 0xD8]) { return try decodeJPEG(bytes, name: name) }
        if bytes.count >= 2, bytes[0] == UInt8(ascii: "P"), [UInt8(ascii: "2"), UInt8(ascii: "3"), UInt8(ascii: "5"), UInt8(ascii: "6")].contains(bytes[1]) {
            return try NetpbmReader.decode(bytes, name: name, maxPixels: maxPixels)
        }
        throw .unknownFormat(path: name)
    }

    /// Refuses an empty picture or one over the bound, before anything is decoded.
    func checkSize(width: Int, height: Int, name: String) throws(ImageError) {
        guard width > 0, height > 0 else { throw .emptyImage(path: name, width: width, height: height) }
        let (pixels, overflow) = width.multipliedReportingOverflow(by: height)
        guard !overflow, pixels <= maxPixels else { throw .tooLarge(path: name, width: width, height: height, maxPixels: maxPixels) }
    }

    private func decodePNG(_ bytes: [UInt8], name: String) throws(ImageError) -> GrayImage {
        var info = nn_png_info()
        let header = bytes.withUnsafeBufferPointer { nn_png_decode($0.baseAddress, $0.count, nil, &info) }
        guard header == 0 else { throw .corrupt(path: name, format: "PNG", reason: message(&info)) }
        let width = Int(info.width), height = Int(info.height), channels = Int(info.channels)
        try checkSize(width: width, height: height, name: name)
        var samples = [UInt16](repeating: 0, count: width * height * channels)
        let status = bytes.withUnsafeBufferPointer { data in
            samples.withUnsafeMutableBufferPointer { nn_png_decode(data.baseAddress, data.count, $0.baseAddress, &info) }
        }
        guard status == 0 else { throw .corrupt(path: name, format: "PNG", reason: message(&info)) }
        let maxValue: Float = info.bit_depth == 16 ? 65535 : 255
        return GrayImage(width: width, height: height,
                         pixels: toGray(samples, channels: channels, maxValue: maxValue))
    }

    private func decodeJPEG(_ bytes: [UInt8], name: String) throws(ImageError) -> GrayImage {
        guard let handle = tjInitDecompress() else { throw .corrupt(path: name, format: "JPEG", reason: "libjpeg-turbo could not start") }
        defer { tjDestroy(handle) }
        var width: Int32 = 0, height: Int32 = 0, subsampling: Int32 = 0, colorspace: Int32 = 0
        let header = bytes.withUnsafeBufferPointer {
            tjDecompressHeader3(handle, $0.baseAddress, UInt($0.count), &width, &height, &subsampling, &colorspace)
        }
        guard header == 0 else { throw .corrupt(path: name, format: "JPEG", reason: String(cString: tjGetErrorStr2(handle))) }
        // TurboJPEG 2.1 accepts a file that ends before its frame header and reports 0x0.
        guard width > 0, height > 0 else { throw .corrupt(path: name, format: "JPEG", reason: "no frame header (the file is truncated)") }
        if colorspace == Int32(TJCS_CMYK.rawValue) || colorspace == Int32(TJCS_YCCK.rawValue) {
            throw .unsupported(path: name, reason: "a CMYK JPEG; save it as RGB or gray")
        }
        try checkSize(width: Int(width), height: Int(height), name: name)
        var gray = [UInt8](repeating: 0, count: Int(width) * Int(height))
        // Decoding to gray keeps the luma channel Y of YCbCr, which is Rec. 601 luma. A warning
        // (a truncated file, whose missing rows libjpeg would paint gray) stops decoding.
        let status = bytes.withUnsafeBufferPointer { data in
            gray.withUnsafeMutableBufferPointer {
                tjDecompress2(handle, data.baseAddress, UInt(data.count), $0.baseAddress, width, 0, height,
                              Int32(TJPF_GRAY.rawValue), TJFLAG_STOPONWARNING | TJFLAG_ACCURATEDCT)
            }
        }
        guard status == 0 else { throw .corrupt(path: name, format: "JPEG", reason: String(cString: tjGetErrorStr2(handle))) }
        return GrayImage(width: Int(width), height: Int(height), pixels: gray.map(Float.init))
    }

    private func message(_ info: inout nn_png_info) -> String {
        withUnsafeBytes(of: &info.message) { raw in
            let text = raw.prefix { $0 != 0 }
            return text.isEmpty ? "libpng failed" : String(decoding: text, as: UTF8.self)
        }
    }
}

/// Gray from interleaved samples of 1 (gray), 2 (gray, alpha), 3 (RGB) or 4 (RGBA) channels,
/// scaled so that `maxValue` is 255; alpha is composited on white.
func toGray<T: BinaryInteger>(_ samples: [T], channels: Int, maxValue: Float) -> [Float] {
    let count = samples.count / channels
    let scale = 255 / maxValue
    return [Float](unsafeUninitializedCapacity: count) { out, initialized in
        for i in 0..<count {
            let base = i * channels
            let value: Float
            let alpha: Float
            switch channels {
            case 1: value = Float(samples[base]); alpha = maxValue
            case 2: value = Float(samples[base]); alpha = Float(samples[base + 1])
            case 3: value = luma(Float(samples[base]), Float(samples[base + 1]), Float(samples[base + 2])); alpha = maxValue
            default:
                value = luma(Float(samples[base]), Float(samples[base + 1]), Float(samples[base + 2]))
                alpha = Float(samples[base + 3])
            }
            let a = alpha / maxValue
            out[i] = (value * a + maxValue * (1 - a)) * scale
        }
        initialized = count
    }
}
