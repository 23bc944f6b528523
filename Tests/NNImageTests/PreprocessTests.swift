import Testing
@testable import NNImage

/// MNIST's procedure and its steps on tiny pictures, every expected value worked out by hand
/// in the comments.
@Suite struct PreprocessTests {
    /// A `width` x `height` picture of `background` with `value` in the rectangle.
    func picture(_ width: Int, _ height: Int, background: Float, value: Float,
                 rect: (x: Int, y: Int, w: Int, h: Int)) -> GrayImage {
        var image = GrayImage(width: width, height: height, value: background)
        for y in rect.y..<(rect.y + rect.h) { for x in rect.x..<(rect.x + rect.w) { image[x, y] = value } }
        return image
    }

    @Test func invertsLightBackgroundsOnly() {
        // Border of 8 white pixels (mean 255 > 127.5) around a black centre: inverted.
        let dark = picture(3, 3, background: 255, value: 0, rect: (1, 1, 1, 1))
        #expect(Preprocess.inkOnBlack(dark).pixels == [0, 0, 0, 0, 255, 0, 0, 0, 0])
        // Border mean (0*4 + 200*4) / 8 = 100 <= 127.5: kept.
        let mixed = GrayImage(width: 3, height: 3, pixels: [0, 200, 0, 200, 9, 200, 0, 200, 0])
        #expect(Preprocess.inkOnBlack(mixed) == mixed)
    }

    @Test func levelsMapBorderMedianToZeroAndPeakTo255() {
        // Border (8 pixels): 20 x 7 and 30 -> sorted median (index 4) is 20; peak 120.
        // (v - 20) * 255 / 100: 120 -> 255, 70 -> 127.5, 20 -> 0, 30 -> 25.5.
        var image = GrayImage(width: 3, height: 3, value: 20)
        image[1, 1] = 120
        image[0, 0] = 30
        let stretched = Preprocess.levels(image).pixels
        for (got, want) in zip(stretched, [25.5, 0, 0, 0, 255, 0, 0, 0, 0] as [Float]) { #expect(abs(got - want) < 1e-3) }
        image[1, 1] = 70
        #expect(abs(Preprocess.levels(image)[1, 1] - 255) < 1e-3)  // 70 is now the peak
    }

    @Test func areaFilterAveragesCoveredFractions() {
        // 4 -> 2: each output covers two whole inputs.
        let four = GrayImage(width: 4, height: 1, pixels: [0, 255, 255, 0])
        #expect(Preprocess.resampleArea(four, width: 2, height: 1).pixels == [127.5, 127.5])
        // 3 -> 2: footprint 1.5; out0 = (0 * 1 + 90 * 0.5) / 1.5 = 30, out1 = (90 * 0.5 + 180 * 1) / 1.5 = 150.
        let three = GrayImage(width: 1, height: 3, pixels: [0, 90, 180])
        let two = Preprocess.resampleArea(three, width: 1, height: 2).pixels
        #expect(abs(two[0] - 30) < 1e-4 && abs(two[1] - 150) < 1e-4)
        // 1 -> 3 (enlarging): every output lies inside the one input.
        #expect(Preprocess.resampleArea(GrayImage(width: 1, height: 1, pixels: [7]), width: 3, height: 1).pixels == [7, 7, 7])
    }

    @Test func centreOfMassUsesPixelCentres() {
        // Pixels 0 and 1 of weights 3 and 1: (3 * 0.5 + 1 * 1.5) / 4 = 0.75.
        let c = Preprocess.centreOfMass(GrayImage(width: 2, height: 1, pixels: [3, 1]))!
        #expect(c.x == 0.75 && c.y == 0.5)
        #expect(Preprocess.centreOfMass(GrayImage(width: 2, height: 2, value: 0)) == nil)
    }

    @Test func mnistOfAnUprightBlock() {
        // Black 10x20 block at x 10..<20, y 5..<25 on a white 40x40 page. Inverted: a white
        // block on black; levels change nothing (border median 0, peak 255); cropped to 10x20;
        // the longer side is already 20, so the scale is 1. Its centre of mass is (5, 10), to
        // land on pixel (14, 14), i.e. 14.5: shifted by 14.5 - 5 = 9.5 -> 10 (rounded away
        // from zero) and 14.5 - 10 = 4.5 -> 5. So x 10..<20, y 5..<25 of the 28x28 field are 255.
        let page = picture(40, 40, background: 255, value: 0, rect: (10, 5, 10, 20))
        let out = Preprocess.mnist(page)
        #expect(out.width == 28 && out.height == 28)
        #expect(out == picture(28, 28, background: 0, value: 255, rect: (10, 5, 10, 20)))
    }

    @Test func mnistScalesTheLongerSideTo20() {
        // A 2x4 ink block: scale 20 / 4 = 5 -> 10x20 of 255; centre (5, 10) -> same place as above.
        let page = picture(50, 30, background: 0, value: 200, rect: (30, 3, 2, 4))
        #expect(Preprocess.mnist(page) == picture(28, 28, background: 0, value: 255, rect: (10, 5, 10, 20)))
    }

    @Test func mnistCentresByMassNotByBox() {
        // Ink 255 and 102 side by side (both above the threshold 32) on black: scaled by 20 / 2 = 10
        // to 20x10, left half 255, right half 102. Centre x = (255 * 50 + 102 * 150) / (255 * 10 + 102 * 10)
        // = 28050 / 3570 = 7.857 (sums of x + 0.5 over 0..<10 and 10..<20 are 50 and 150); y = 5.
        // Shift round(14.5 - 7.857) = 7 and round(14.5 - 5) = round(9.5) = 10; a centred box would be at 4.
        var page = GrayImage(width: 6, height: 5, value: 0)
        page[2, 2] = 255
        page[3, 2] = 102
        let out = Preprocess.mnist(page)
        let inside: [Float] = [out[7, 10], out[16, 10], out[17, 10], out[26, 19]]
        #expect(inside == [255, 255, 102, 102])
        let outside: [Float] = [out[6, 10], out[27, 10], out[7, 9], out[7, 20]]
        #expect(outside == [0, 0, 0, 0])
        let total: Float = out.pixels.reduce(0, +)
        #expect(total == Float(100 * 255 + 100 * 102))
    }

    @Test func blankPictureBecomesBlack() {
        #expect(Preprocess.mnist(GrayImage(width: 5, height: 5, value: 240)) == GrayImage(width: 28, height: 28, value: 0))
    }

    @Test func fitScalesAndPadsWithoutCropping() {
        // Scale min(2/4, 2/2) = 0.5 -> 2x1, placed at x 0, y (2 - 1) / 2 = 0, padded below.
        let image = GrayImage(width: 4, height: 2, pixels: [0, 0, 255, 255, 0, 0, 255, 255])
        // Border mean = (0+0+255+255)*2 / 8 = 127.5; 2x1 of (0+0+0+0)/4 = 0 and 255; row 1 is padding.
        #expect(Preprocess.fit(image, width: 2, height: 2).pixels == [0, 255, 127.5, 127.5])
    }

    @Test func pictureSizesOfModelInputs() {
        #expect(Preprocess.pictureSize(ofInput: [784])! == (28, 28))
        #expect(Preprocess.pictureSize(ofInput: [28, 28])! == (28, 28))
        #expect(Preprocess.pictureSize(ofInput: [20, 30, 1])! == (30, 20))
        #expect(Preprocess.pictureSize(ofInput: [1, 20, 30])! == (30, 20))
        #expect(Preprocess.pictureSize(ofInput: [32, 32, 3]) == nil)
        #expect(Preprocess.pictureSize(ofInput: [10]) == nil)
    }
}
