import NNSystem
internal import CPNG

#if canImport(Glibc)
import Glibc
#endif

/// Writes gray pictures as 8-bit PNG files through libpng.
public enum PNGWriter {
    /// The PNG bytes of `image`, its values rounded and clamped to 0...255.
    public static func encode(_ image: GrayImage, name: String) throws(ImageError) -> [UInt8] {
        var info = nn_png_info()
        var out: UnsafeMutablePointer<UInt8>?
        var size = 0
        let status = image.bytes.withUnsafeBufferPointer {
            nn_png_encode_gray8($0.baseAddress, UInt32(image.width), UInt32(image.height), &out, &size, &info)
        }
        guard status == 0, let out else {
            let reason = withUnsafeBytes(of: &info.message) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            throw .cannotWrite(path: name, reason: reason)
        }
        defer { free(out) }
        return Array(UnsafeBufferPointer(start: out, count: size))
    }

    /// Writes `image` to `path` atomically (a temporary file renamed into place).
    public static func write(_ image: GrayImage, to path: String) throws {
        try AtomicFileWriter.write(try encode(image, name: path), to: path)
    }
}
