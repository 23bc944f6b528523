import FuzzSupport
import NNImage

// The picture and CSV readers. The first byte picks the path:
//   0  `ImageReader.decode` (PNG through libpng, JPEG through libjpeg-turbo, Netpbm; format by
//      magic) with a 1-megapixel bound; a picture read is then put through MNIST's preprocessing
//      and `fit`, and encoded as PNG and read back (it must be the same picture, rounded);
//   1  `KaggleCSV.parse` for a 2x2 input; the samples must match the rows.
// Every error must be an `ImageError` whose message starts with the name.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzImage(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data, size > 0 else { return 0 }
    let rest = fuzzBytes(data, size, droppingFirst: 1)
    switch data[0] % 2 {
    case 0:
        do {
            let image = try ImageReader(maxPixels: 1 << 20).decode(rest, name: "fuzz.img")
            precondition(image.pixels.allSatisfy { $0 >= 0 && $0 <= 255 }, "a gray value outside 0...255")
            let mnist = Preprocess.mnist(image)
            precondition(mnist.width == 28 && mnist.height == 28 && mnist.pixels.allSatisfy { $0 >= 0 && $0 <= 255.001 },
                         "MNIST's preprocessing gave a wrong size or value")
            let fitted = Preprocess.fit(image, width: 7, height: 5)
            precondition(fitted.width == 7 && fitted.height == 5, "fit gave a wrong size")
            let png = try PNGWriter.encode(image, name: "again.png")
            let back = try ImageReader().decode(png, name: "again.png")
            precondition(back.pixels == image.bytes.map(Float.init), "a picture changed in a PNG round trip")
        } catch {
            precondition("\(error)".hasPrefix("fuzz.img: "), "an error message does not start with the name: \(error)")
        }
    default:
        do {
            let set = try KaggleCSV.parse(rest, name: "fuzz.csv", inputShape: [2, 2])
            precondition(set.features.count == set.count * 4, "the features do not match the rows")
            precondition(set.labels == nil || set.labels!.count == set.count, "the labels do not match the rows")
        } catch {
            precondition("\(error)".hasPrefix("fuzz.csv:"), "an error message does not start with the name: \(error)")
        }
    }
    return 0
}

@main enum Main {
    static func main() { FuzzMain.run(fuzzImage) }
}
