import NNCore

/// Errors from reading pictures and the other sample inputs (CSV, `.npy`, folders).
///
/// Every message is one line that starts with the file (and, where there is one, the line or
/// pixel), so a tool prints it as it is.
public enum ImageError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The file cannot be opened or read.
    case cannotRead(path: String, reason: String)
    /// The file is none of the picture formats by its first bytes.
    case unknownFormat(path: String)
    /// The declared size is over the bound (a decompression bomb), refused before decoding.
    case tooLarge(path: String, width: Int, height: Int, maxPixels: Int)
    /// A width or height of 0.
    case emptyImage(path: String, width: Int, height: Int)
    /// The decoder (libpng, libjpeg-turbo, the Netpbm reader) refused the data.
    case corrupt(path: String, format: String, reason: String)
    /// A picture kind this reader does not convert (CMYK JPEG).
    case unsupported(path: String, reason: String)
    /// A folder with no pictures in it.
    case noImages(path: String, skipped: Int)
    /// Class sub-folders that do not fit (none, empty, a class the model or training set lacks).
    case classFolders(path: String, reason: String)
    /// A CSV line that is not what the header (or the first line) says.
    case csv(path: String, line: Int, reason: String)
    /// A `.npy` whose shape or dtype is not that of images.
    case npy(path: String, reason: String)
    /// `--preprocess none`, or a model, that needs another size.
    case wrongSize(path: String, width: Int, height: Int, expected: String)
    /// Writing a picture failed.
    case cannotWrite(path: String, reason: String)

    public var description: String {
        switch self {
        case let .cannotRead(path, reason): return "\(path): cannot read: \(reason)"
        case let .unknownFormat(path):
            return "\(path): not a picture this tool reads (PNG, JPEG, PGM or PPM, recognised by their first bytes)"
        case let .tooLarge(path, width, height, maxPixels):
            return "\(path): the picture declares \(width)x\(height) pixels, more than the limit of \(maxPixels) pixels; refused before decoding"
        case let .emptyImage(path, width, height): return "\(path): the picture is \(width)x\(height): it has no pixels"
        case let .corrupt(path, format, reason): return "\(path): corrupt or truncated \(format): \(reason)"
        case let .unsupported(path, reason): return "\(path): unsupported picture: \(reason)"
        case let .noImages(path, skipped):
            return "\(path): the folder holds no pictures (.png, .jpg, .jpeg, .pgm, .ppm)" + (skipped > 0 ? "; \(skipped) other file\(skipped == 1 ? "" : "s") skipped" : "")
        case let .classFolders(path, reason): return "\(path): \(reason)"
        case let .csv(path, line, reason): return "\(path):\(line): \(reason)"
        case let .npy(path, reason): return "\(path): \(reason)"
        case let .wrongSize(path, width, height, expected):
            return "\(path): the picture is \(width)x\(height) but \(expected)"
        case let .cannotWrite(path, reason): return "\(path): cannot write: \(reason)"
        }
    }
}

extension ImageError: CategorizedError {
    public var category: ErrorCategory {
        switch self {
        case .cannotRead: return .missingInput
        case .cannotWrite: return .cannotCreate
        default: return .badInput
        }
    }
}
