/// How an IDX file's dimensions divide into images (feature vectors).
///
/// Rank 3 or more, `(n, d1, d2, ...)`: `n` images of `d1*d2*...` features, so `(10000, 28, 28)` is
/// 10,000 images of 784 features. Rank 2, `(h, w)`: one image of `h*w` features (a single
/// 28x28 picture). Rank 1, `(k)`: one image of `k` features (one flattened picture).
public struct IDXImageLayout: Sendable, Equatable {
    /// The number of images.
    public let imageCount: Int
    /// The shape of one image: the dimensions after the first for rank 3 and up.
    public let imageShape: [Int]
    /// The number of values in one image.
    public let featureCount: Int

    /// The layout of a file with dimensions `dims` (already validated, so products fit).
    public init(dims: [Int]) {
        if dims.count >= 3 {
            imageCount = dims[0]
            imageShape = Array(dims.dropFirst())
        } else {
            imageCount = 1
            imageShape = dims
        }
        featureCount = imageShape.reduce(1, *)
    }
}

/// A set of images as `Float` features, row-major: image `i` is
/// `features[i * featureCount ..< (i + 1) * featureCount]`.
///
/// The dimensions map to images as `IDXImageLayout` describes. Any element type is accepted.
public struct IDXImages: Sendable {
    /// The path or display name of the file the images came from.
    public let path: String
    /// The number of images.
    public let count: Int
    /// The shape of one image, e.g. `[28, 28]`.
    public let imageShape: [Int]
    /// The number of values in one image, e.g. 784.
    public let featureCount: Int
    /// All images' values, `count * featureCount` of them.
    public let features: [Float]

    /// Converts a file's elements, multiplying each by `scale` (1/255 maps u8 pixels to 0...1).
    public init(_ file: IDXFile, scale: Float = 1) {
        let layout = IDXImageLayout(dims: file.dims)
        path = file.path
        count = layout.imageCount
        imageShape = layout.imageShape
        featureCount = layout.featureCount
        features = file.floats(scale: scale)
    }

    /// Reads an IDX file (plain or gzip) as images; see `IDXFile.init(path:maxBytes:displayName:)`.
    public init(path: String, scale: Float = 1, maxBytes: Int = IDXFile.defaultMaxBytes,
                displayName: String? = nil) throws {
        self.init(try IDXFile(path: path, maxBytes: maxBytes, displayName: displayName), scale: scale)
    }

    /// The features of image `index`.
    public func image(_ index: Int) -> ArraySlice<Float> {
        precondition(index >= 0 && index < count, "image index \(index) out of range 0..<\(count)")
        return features[(index * featureCount)..<((index + 1) * featureCount)]
    }
}

/// Class labels from a rank-1 integer IDX file (u8 in MNIST).
///
/// The values are returned as stored; checking them against a model's number of classes is the
/// caller's business, since only the caller knows it.
public struct IDXLabels: Sendable {
    /// The path or display name of the file the labels came from.
    public let path: String
    /// One label per image.
    public let values: [Int]

    /// The number of labels.
    public var count: Int { values.count }

    /// Takes the labels from a file.
    ///
    /// - Throws: `IDXError.notLabels` unless the file is rank 1 with an integer element type.
    public init(_ file: IDXFile) throws {
        guard file.dims.count == 1, file.elementType.isInteger else {
            throw IDXError.notLabels(path: file.path, dims: file.dims, type: file.elementType)
        }
        path = file.path
        values = try file.ints()
    }

    /// Reads a label file (plain or gzip); see `IDXFile.init(path:maxBytes:displayName:)`.
    public init(path: String, maxBytes: Int = IDXFile.defaultMaxBytes, displayName: String? = nil) throws {
        try self.init(try IDXFile(path: path, maxBytes: maxBytes, displayName: displayName))
    }
}
