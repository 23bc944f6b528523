import Foundation
import Testing
@testable import NNImage

let fixtures: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path + "/Fixtures/photos"
}()

/// The readers against pictures Pillow (and hand-written bytes) made, with the gray values the
/// generator computed from the formulas (Fixtures/photos/kinds/kinds.json).
@Suite struct ReaderTests {
    static let expected: [String: [Double]] = {
        let data = try! Data(contentsOf: URL(fileURLWithPath: "\(fixtures)/kinds/kinds.json"))
        return try! JSONSerialization.jsonObject(with: data) as! [String: [Double]]
    }()

    @Test(arguments: ["gray8.png", "gray16.png", "rgb8.png", "rgb16.png", "rgba8.png", "gray_alpha.png", "palette.png",
                      "plain.pgm", "raw.ppm", "raw16.pgm", "gray.jpg"])
    func everyPixelKind(file: String) throws {
        let image = try ImageReader().read(path: "\(fixtures)/kinds/\(file)")
        #expect(image.width == 3 && image.height == 1)
        // 8-bit luma is computed in Float (1e-3); JPEG is lossy even at quality 100.
        let tolerance = file.hasSuffix(".jpg") ? 3.0 : 1e-3
        for (got, want) in zip(image.pixels, ReaderTests.expected[file]!) {
            #expect(abs(Double(got) - want) <= tolerance, "\(file): \(got) vs \(want)")
        }
    }

    @Test func pngRoundTrip() throws {
        let image = GrayImage(width: 3, height: 2, pixels: [0, 1, 2, 253, 254, 255])
        let bytes = try PNGWriter.encode(image, name: "t.png")
        #expect(try ImageReader().decode(bytes, name: "t.png") == image)
    }

    func message(_ body: () throws -> Void) -> String {
        do { try body(); return "no error" } catch { return "\(error)" }
    }

    @Test func bombsAreRefusedBeforeDecoding() {
        #expect(message { _ = try ImageReader().read(path: "\(fixtures)/bad/bomb.png", displayName: "bomb.png") }
                == "bomb.png: the picture declares 100000x100000 pixels, more than the limit of 50000000 pixels; refused before decoding")
        #expect(message { _ = try ImageReader().read(path: "\(fixtures)/bad/bomb.jpg", displayName: "bomb.jpg") }
                == "bomb.jpg: the picture declares 65000x65000 pixels, more than the limit of 50000000 pixels; refused before decoding")
        #expect(message { _ = try ImageReader(maxPixels: 99).decode(Array("P5 10 10 255\n".utf8) + [UInt8](repeating: 0, count: 100), name: "b.pgm") }
                == "b.pgm: the picture declares 10x10 pixels, more than the limit of 99 pixels; refused before decoding")
    }

    @Test func truncatedAndCorruptFiles() throws {
        let png = try [UInt8](Data(contentsOf: URL(fileURLWithPath: "\(fixtures)/pictures/img_000.png")))
        let jpeg = try [UInt8](Data(contentsOf: URL(fileURLWithPath: "\(fixtures)/pictures/img_001.jpg")))
        #expect(message { _ = try ImageReader().decode(Array(png.prefix(png.count / 2)), name: "cut.png") }
                == "cut.png: corrupt or truncated PNG: the file is truncated")
        #expect(message { _ = try ImageReader().decode(Array(png.prefix(20)), name: "head.png") }
                == "head.png: corrupt or truncated PNG: the file is truncated")
        var flipped = png
        for i in 100..<140 { flipped[i] ^= 0x5A }
        #expect(message { _ = try ImageReader().decode(flipped, name: "flip.png") }.hasPrefix("flip.png: corrupt or truncated PNG: "))
        #expect(message { _ = try ImageReader().decode(Array(jpeg.prefix(jpeg.count / 2)), name: "cut.jpg") }
                .hasPrefix("cut.jpg: corrupt or truncated JPEG: "))
        #expect(message { _ = try ImageReader().decode(Array(jpeg.prefix(3)), name: "head.jpg") }.hasPrefix("head.jpg: corrupt or truncated JPEG: "))
        var garbled = jpeg
        for i in 300..<garbled.count - 2 { garbled[i] = UInt8(truncatingIfNeeded: i * 37) }
        #expect(message { _ = try ImageReader().decode(garbled, name: "garbled.jpg") }.hasPrefix("garbled.jpg: corrupt or truncated JPEG: "))
        #expect(message { _ = try ImageReader().decode(Array("P2 2 1 255\n0 300\n".utf8), name: "hi.pgm") }
                == "hi.pgm: corrupt or truncated PGM: sample 300 of pixel (x 1, y 0) is above the maximum value 255")
        #expect(message { _ = try ImageReader().decode(Array("P6 2 1 255\n".utf8) + [1, 2, 3], name: "short.ppm") }
                == "short.ppm: corrupt or truncated PPM: the samples need 6 bytes but 3 follow the header")
        #expect(message { _ = try ImageReader().decode(Array("P5 0 4 255\n".utf8), name: "empty.pgm") }
                == "empty.pgm: the picture is 0x4: it has no pixels")
        #expect(message { _ = try ImageReader().decode(Array("GIF89a".utf8), name: "x.gif") }
                == "x.gif: not a picture this tool reads (PNG, JPEG, PGM or PPM, recognised by their first bytes)")
        #expect(message { _ = try ImageReader().read(path: "/nonexistent/x.png") }.hasPrefix("/nonexistent/x.png: cannot read: "))
    }
}

/// Kaggle CSV parsing: header detection, labels, and one line per bad row naming line and column.
@Suite struct CSVTests {
    func csv(_ text: String, shape: [Int] = [2, 2]) throws -> SampleSet {
        try KaggleCSV.parse(Array(text.utf8), name: "d/t.csv", inputShape: shape)
    }

    func message(_ text: String) -> String {
        do { _ = try csv(text); return "no error" } catch { return "\(error)" }
    }

    @Test func headersAndLabels() throws {
        let train = try csv("label,pixel0,pixel1,pixel2,pixel3\n7,0,1,2,255\r\n\n3,4,5,6,7\n")
        #expect(train.labels == [7, 3] && train.features == [0, 1, 2, 255, 4, 5, 6, 7])
        #expect(train.sources == ["t.csv:2", "t.csv:4"])
        let test = try csv("pixel0,pixel1,pixel2,pixel3\n0,1,2,3\n")
        #expect(test.labels == nil && test.features == [0, 1, 2, 3])
        let bare = try csv("9,0,1,2,3\n")
        #expect(bare.labels == [9] && bare.features == [0, 1, 2, 3] && bare.sources == ["t.csv:1"])
        #expect(try csv("0,1,2.5,3\n").features == [0, 1, 2.5, 3])
    }

    @Test func badRows() {
        #expect(message("label,pixel0,pixel1,pixel2,pixel3\n1,2,3\n") == "d/t.csv:2: 3 cells where the header has 5")
        #expect(message("1,2,3,4\n1,2,3\n") == "d/t.csv:2: 3 cells where the first line has 4")
        #expect(message("label,pixel0,pixel1,pixel2,pixel3\n1,2,x3,4,5\n") == "d/t.csv:2: column 3: 'x3' is not a number")
        #expect(message("label,pixel0,pixel1,pixel2,pixel3\n1,2,3,256,5\n") == "d/t.csv:2: column 4: the pixel value 256 is outside 0...255")
        #expect(message("label,pixel0,pixel1,pixel2,pixel3\n1,2,3,-1,5\n") == "d/t.csv:2: column 4: the pixel value -1 is outside 0...255")
        #expect(message("label,pixel0,pixel1,pixel2,pixel3\n1.5,2,3,4,5\n") == "d/t.csv:2: column 1: the label '1.5' is not a class number (0, 1, 2, ...)")
        #expect(message("label,pixel0,pixel1\n1,2,3\n") == "d/t.csv:1: the header names 2 pixel columns but the model takes 4 values (2x2)")
        #expect(message("1,2,3\n") == "d/t.csv:1: 3 cells, but the model takes 4 values: expected 4 pixels, or a label and 4 pixels")
        #expect(message("label,pixel0,pixel1,pixel2,pixel3\n") == "d/t.csv:1: no rows of pixels")
        #expect(message("1,2,3,nan\n") == "d/t.csv:1: column 4: 'nan' is not a number")
    }

    @Test func submission() {
        #expect(String(decoding: KaggleCSV.submission([7, 2, 1]), as: UTF8.self) == "ImageId,Label\n1,7\n2,2\n3,1\n")
    }
}
