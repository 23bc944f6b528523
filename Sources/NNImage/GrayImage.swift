/// A single-channel picture: `width * height` values, row-major, 0 black to 255 white.
///
/// Readers convert every picture to this: RGB to luma with Rec. 601's weights
/// (0.299 R + 0.587 G + 0.114 B), transparent pixels composited on white (paper), 16-bit
/// samples divided by 257 so that 65535 is 255. Values are `Float`, so resampled pictures keep
/// their fractions.
public struct GrayImage: Equatable, Sendable {
    public let width: Int
    public let height: Int
    public var pixels: [Float]

    public init(width: Int, height: Int, pixels: [Float]) {
        precondition(width >= 0 && height >= 0 && pixels.count == width * height, "pixel count does not match the size")
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// A picture of one value.
    public init(width: Int, height: Int, value: Float) {
        self.init(width: width, height: height, pixels: Array(repeating: value, count: width * height))
    }

    public subscript(x: Int, y: Int) -> Float {
        get { pixels[y * width + x] }
        set { pixels[y * width + x] = newValue }
    }

    /// The pixels rounded and clamped to bytes, as a PNG stores them.
    public var bytes: [UInt8] {
        pixels.map { UInt8(max(0, min(255, $0.rounded()))) }
    }
}

/// Rec. 601 luma of an RGB triple, the weights JPEG's YCbCr and PIL's `convert("L")` use.
@inline(__always)
func luma(_ r: Float, _ g: Float, _ b: Float) -> Float {
    0.299 * r + 0.587 * g + 0.114 * b
}
