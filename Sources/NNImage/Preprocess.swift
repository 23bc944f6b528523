import NNCore

/// How a picture becomes a model's input.
public enum PreprocessMode: String, CaseIterable, Sendable {
    /// LeCun's MNIST procedure (`Preprocess.mnist`).
    case mnist
    /// Scaled to fit the input, keeping the aspect ratio, and padded (`Preprocess.fit`).
    case fit
    /// Used as it is; the picture must have the input's size.
    case none
}

/// The preprocessing of pictures, as pure functions of `GrayImage`s.
public enum Preprocess {
    /// A value above this (after inversion and levels) is ink, for the bounding box.
    /// (32, an eighth of the range: on `Fixtures/photos` thresholds of 24 to 48 classify alike;
    /// 16 lets blur and JPEG noise widen the box, 96 cuts into the strokes.)
    public static let inkThreshold: Float = 32

    /// MNIST's procedure (LeCun, Cortes and Burges, "The MNIST database", yann.lecun.com/exdb/mnist:
    /// "size normalized to fit in a 20x20 pixel box while preserving their aspect ratio ...
    /// anti-aliasing ... centered in a 28x28 image by computing the center of mass of the
    /// pixels"), step by step:
    ///
    /// 1. Ink on black: when the border pixels are light on average (above 127.5), the picture
    ///    is inverted, so dark ink on white paper becomes white on black as in MNIST.
    /// 2. Levels: the border's median becomes 0 and the brightest pixel 255 (paper that is
    ///    not pure white, or a photo's dim ink, spans the whole range).
    /// 3. Crop to the bounding box of the ink (values above `inkThreshold`).
    /// 4. Scale so that the longer side is `box` pixels and the other keeps the aspect ratio
    ///    (at least 1), with an area (box) filter: each new pixel is the mean of the old pixels
    ///    it covers, weighted by the covered fraction, which is the anti-aliasing.
    /// 5. Place it in a `size` x `size` black field so that its centre of mass (the
    ///    intensity-weighted mean of the pixel centres) lands on the field's centre, shifted by
    ///    whole pixels (rounded) and kept inside the field.
    ///
    /// A picture with no ink (all one value) becomes an all-black field.
    public static func mnist(_ image: GrayImage, size: Int = 28, box: Int = 20) -> GrayImage {
        let ink = levels(inkOnBlack(image))
        guard let bounds = inkBounds(ink) else { return GrayImage(width: size, height: size, value: 0) }
        let cropped = crop(ink, x: bounds.x, y: bounds.y, width: bounds.width, height: bounds.height)
        let longer = Double(max(cropped.width, cropped.height))
        let width = max(1, Int((Double(cropped.width) * Double(box) / longer).rounded()))
        let height = max(1, Int((Double(cropped.height) * Double(box) / longer).rounded()))
        let scaled = resampleArea(cropped, width: width, height: height)
        let centre = centreOfMass(scaled) ?? (Double(width) / 2, Double(height) / 2)
        // Pixel centres are at index + 0.5; MNIST's own digits have their centre of mass on
        // pixel (14, 14), i.e. at 14.5 (measured over the test set: 14.51 and 14.49, spread
        // 0.29, which is the spread of rounding to whole pixels).
        let target = Double(size / 2) + 0.5
        let x = min(max(0, Int((target - centre.x).rounded())), size - width)
        let y = min(max(0, Int((target - centre.y).rounded())), size - height)
        return place(scaled, inWidth: size, height: size, x: x, y: y, background: 0)
    }

    /// Scaled to fit `width` x `height` keeping the aspect ratio (area filter), centred by its
    /// size and padded with the mean of its border. No inversion, no levels, no cropping: the
    /// plain resize a picture gets without MNIST's procedure.
    public static func fit(_ image: GrayImage, width: Int, height: Int) -> GrayImage {
        let factor = min(Double(width) / Double(image.width), Double(height) / Double(image.height))
        let w = min(width, max(1, Int((Double(image.width) * factor).rounded())))
        let h = min(height, max(1, Int((Double(image.height) * factor).rounded())))
        let scaled = resampleArea(image, width: w, height: h)
        let border = borderPixels(image)
        let background = border.reduce(0, +) / Float(border.count)
        return place(scaled, inWidth: width, height: height, x: (width - w) / 2, y: (height - h) / 2, background: background)
    }

    /// The picture as it is when the mean of its border pixels is 127.5 or less, else inverted
    /// (255 - value).
    public static func inkOnBlack(_ image: GrayImage) -> GrayImage {
        let border = borderPixels(image)
        let mean = border.reduce(0, +) / Float(border.count)
        guard mean > 127.5 else { return image }
        return GrayImage(width: image.width, height: image.height, pixels: image.pixels.map { 255 - $0 })
    }

    /// Values stretched linearly so that the border's median becomes 0 and the largest value
    /// 255, clamped to 0...255; unchanged when nothing is brighter than the border.
    public static func levels(_ image: GrayImage) -> GrayImage {
        let border = borderPixels(image).sorted()
        let floor = border[border.count / 2]
        let peak = image.pixels.max() ?? 0
        guard peak > floor else { return GrayImage(width: image.width, height: image.height, value: 0) }
        let gain = 255 / (peak - floor)
        return GrayImage(width: image.width, height: image.height,
                         pixels: image.pixels.map { max(0, min(255, ($0 - floor) * gain)) })
    }

    /// The smallest rectangle holding every value above `inkThreshold`; nil when there is none.
    public static func inkBounds(_ image: GrayImage) -> (x: Int, y: Int, width: Int, height: Int)? {
        var minX = Int.max, minY = Int.max, maxX = -1, maxY = -1
        for y in 0..<image.height {
            for x in 0..<image.width where image[x, y] > inkThreshold {
                minX = min(minX, x); maxX = max(maxX, x)
                minY = min(minY, y); maxY = max(maxY, y)
            }
        }
        guard maxX >= 0 else { return nil }
        return (minX, minY, maxX - minX + 1, maxY - minY + 1)
    }

    /// The intensity-weighted mean of the pixel centres (pixel (x, y) covers [x, x+1) x [y, y+1),
    /// so its centre is (x + 0.5, y + 0.5)); nil for an all-zero picture.
    public static func centreOfMass(_ image: GrayImage) -> (x: Double, y: Double)? {
        var total = 0.0, sx = 0.0, sy = 0.0
        for y in 0..<image.height {
            for x in 0..<image.width {
                let v = Double(image[x, y])
                total += v
                sx += v * (Double(x) + 0.5)
                sy += v * (Double(y) + 0.5)
            }
        }
        guard total > 0 else { return nil }
        return (sx / total, sy / total)
    }

    /// Resampled to `width` x `height` with an area (box) filter, one axis after the other:
    /// an output pixel covers `image.width / width` input pixels, and is their mean weighted by
    /// how much of each it covers.
    public static func resampleArea(_ image: GrayImage, width: Int, height: Int) -> GrayImage {
        let across = areaWeights(from: image.width, to: width)
        var rows = [Float](repeating: 0, count: width * image.height)
        for y in 0..<image.height {
            for (x, taps) in across.enumerated() {
                var sum: Float = 0
                for (source, weight) in taps { sum += image.pixels[y * image.width + source] * weight }
                rows[y * width + x] = sum
            }
        }
        let down = areaWeights(from: image.height, to: height)
        var out = [Float](repeating: 0, count: width * height)
        for (y, taps) in down.enumerated() {
            for (source, weight) in taps {
                for x in 0..<width { out[y * width + x] += rows[source * width + x] * weight }
            }
        }
        return GrayImage(width: width, height: height, pixels: out)
    }

    /// For each of `m` output pixels, the input pixels of `n` it covers and their weights (the
    /// covered fraction of each, divided by the footprint `n / m`, so they add up to 1).
    static func areaWeights(from n: Int, to m: Int) -> [[(Int, Float)]] {
        let step = Double(n) / Double(m)
        return (0..<m).map { i in
            let start = Double(i) * step, end = Double(i + 1) * step
            var taps: [(Int, Float)] = []
            var j = Int(start.rounded(.down))
            while j < n, Double(j) < end {
                let overlap = min(end, Double(j + 1)) - max(start, Double(j))
                if overlap > 1e-12 { taps.append((j, Float(overlap / step))) }
                j += 1
            }
            return taps
        }
    }

    static func borderPixels(_ image: GrayImage) -> [Float] {
        var values: [Float] = []
        for x in 0..<image.width {
            values.append(image[x, 0])
            if image.height > 1 { values.append(image[x, image.height - 1]) }
        }
        if image.height > 2 {
            for y in 1..<(image.height - 1) {
                values.append(image[0, y])
                if image.width > 1 { values.append(image[image.width - 1, y]) }
            }
        }
        return values
    }

    static func crop(_ image: GrayImage, x: Int, y: Int, width: Int, height: Int) -> GrayImage {
        var out: [Float] = []
        out.reserveCapacity(width * height)
        for row in y..<(y + height) { out += image.pixels[(row * image.width + x)..<(row * image.width + x + width)] }
        return GrayImage(width: width, height: height, pixels: out)
    }

    static func place(_ image: GrayImage, inWidth width: Int, height: Int, x: Int, y: Int, background: Float) -> GrayImage {
        var out = GrayImage(width: width, height: height, value: background)
        for row in 0..<image.height where (0..<height).contains(y + row) {
            for column in 0..<image.width where (0..<width).contains(x + column) {
                out[x + column, y + row] = image[column, row]
            }
        }
        return out
    }

    /// The mode a picture gets when none is asked for: `mnist` for a 28x28 input, else `fit`.
    public static func defaultMode(width: Int, height: Int) -> PreprocessMode {
        width == 28 && height == 28 ? .mnist : .fit
    }

    /// `image` made the input of a model that takes `inputShape` (one channel), with `mode`
    /// (nil: `defaultMode`): the picture the model sees, and the mode used. Messages name `name`.
    public static func modelInput(_ image: GrayImage, inputShape: [Int], mode: PreprocessMode?,
                                  name: String) throws(ImageError) -> (picture: GrayImage, mode: PreprocessMode) {
        guard let size = pictureSize(ofInput: inputShape) else {
            throw .unsupported(path: name, reason: "the model takes \(ShapeMath.describe(inputShape)), not a one-channel picture")
        }
        let mode = mode ?? defaultMode(width: size.width, height: size.height)
        switch mode {
        case .mnist:
            // MNIST's 20-in-28 proportions, on the shorter side of a non-square input.
            let side = min(size.width, size.height)
            let square = Preprocess.mnist(image, size: side, box: max(1, Int((Double(side) * 20 / 28).rounded())))
            return (side == size.width && side == size.height ? square : fit(square, width: size.width, height: size.height), mode)
        case .fit: return (fit(image, width: size.width, height: size.height), mode)
        case .none:
            guard image.width == size.width, image.height == size.height else {
                throw .wrongSize(path: name, width: image.width, height: image.height,
                                 expected: "--preprocess none needs \(size.width)x\(size.height), the model's input")
            }
            return (image, mode)
        }
    }

    /// The width and height of a picture a model with input `shape` takes, when it takes one
    /// channel: [h, w], [h, w, 1], [1, h, w], or [n] with n a square (an MLP on flattened
    /// pictures, taken as square). Nil otherwise.
    public static func pictureSize(ofInput shape: [Int]) -> (width: Int, height: Int)? {
        switch shape.count {
        case 1:
            let side = Int(Double(shape[0]).squareRoot().rounded())
            return side > 0 && side * side == shape[0] ? (side, side) : nil
        case 2: return (shape[1], shape[0])
        case 3:
            if shape[2] == 1 { return (shape[1], shape[0]) }
            if shape[0] == 1 { return (shape[2], shape[1]) }
            return nil
        default: return nil
        }
    }
}
