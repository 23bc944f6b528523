import Testing

/// `cnn_pieces_*.h5` is for the CNN issue, which has no Swift code yet. Until then this pins down
/// what the fixture means, so the CNN code can be written against it: `conv` is seed 002's
/// conv2d, scipy's `convolve2d(mode='valid')`, a TRUE convolution (the kernel flipped in both
/// directions, unlike the cross-correlation deep-learning libraries call convolution), strided by
/// keeping every stride-th row and column of the full valid output; `pool` is 2x2 max pooling at
/// stride 2 on (h, w) or (h, w, c), dropping a last odd row or column. The reference loops below
/// are the specification; a CNN engine must reproduce the fixture the same way.
@Suite struct CNNPiecesFixture {
    static func convolveValid(_ image: Matrix, _ kernel: Matrix, stride: Int) -> Matrix {
        let oh = image.rows - kernel.rows + 1, ow = image.cols - kernel.cols + 1
        var out: [Double] = []
        var rows = 0
        for i in Swift.stride(from: 0, to: oh, by: stride) {
            rows += 1
            for j in Swift.stride(from: 0, to: ow, by: stride) {
                var sum = 0.0
                for u in 0..<kernel.rows {
                    for v in 0..<kernel.cols {
                        // out[i, j] = sum image[i + u, j + v] * kernel[kh - 1 - u, kw - 1 - v]
                        sum += image.values[(i + u) * image.cols + j + v]
                            * kernel.values[(kernel.rows - 1 - u) * kernel.cols + kernel.cols - 1 - v]
                    }
                }
                out.append(sum)
            }
        }
        return Matrix(rows: rows, cols: rows == 0 ? 0 : out.count / rows, values: out)
    }

    @Test(arguments: ["f64", "f32"]) func convolution(_ precision: String) throws {
        let fx = try Fixture("cnn_pieces_\(precision)")
        let tol = precision == "f64" ? Tolerance.f64 : Tolerance.f32
        var cases = 0
        while fx.has("conv/\(cases)") {
            let g = "conv/\(cases)/"
            let out = Self.convolveValid(try fx.matrix("\(g)image"), try fx.matrix("\(g)kernel"), stride: try fx.ints("\(g)stride")[0])
            let expected = try fx.matrix("\(g)output")
            #expect(out.rows == expected.rows && out.cols == expected.cols, "conv case \(cases): shape")
            expectClose(out.values, expected.values, tol, "cnn_pieces_\(precision) conv \(cases)")
            cases += 1
        }
        #expect(cases >= 5)
    }

    @Test(arguments: ["f64", "f32"]) func maxPooling(_ precision: String) throws {
        let fx = try Fixture("cnn_pieces_\(precision)")
        var cases = 0
        while fx.has("pool/\(cases)") {
            let g = "pool/\(cases)/"
            let shape = try fx.shape("\(g)input"), x = try fx.doubles("\(g)input")
            let (h, w, c) = (shape[0], shape[1], shape.count == 3 ? shape[2] : 1)
            let oh = (h - 2) / 2 + 1, ow = (w - 2) / 2 + 1
            var out: [Double] = []
            for i in 0..<oh {
                for j in 0..<ow {
                    for k in 0..<c {
                        var best = -Double.infinity
                        for u in 0..<2 { for v in 0..<2 { best = max(best, x[((2 * i + u) * w + 2 * j + v) * c + k]) } }
                        out.append(best)
                    }
                }
            }
            #expect(try fx.shape("\(g)output") == (shape.count == 3 ? [oh, ow, c] : [oh, ow]))
            expectIdentical(out, try fx.doubles("\(g)output"), "cnn_pieces_\(precision) pool \(cases)")
            cases += 1
        }
        #expect(cases >= 4)
    }
}
