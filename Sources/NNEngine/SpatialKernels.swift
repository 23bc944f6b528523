internal import NNKernels
import NNCore

/// The loops of convolution and pooling layers, shared by the inference engine and the trainer.
///
/// Samples are height x width x channels, row-major (channels fastest). A convolution is
/// `im2col` followed by one GEMM: each output position becomes a row of its window's values in
/// (kernel row, kernel column, channel) order, so the rows times the `[kh * kw * in, filters]`
/// kernel matrix give the output directly in HWC order.
public enum SpatialKernels {
    /// Input height, width, channels; output height, width; window height, width; strides;
    /// padding before (top, left): what every loop below walks over.
    @inline(__always)
    static func dimensions(_ g: SpatialGeometry) -> (Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int) {
        let (top, left) = g.paddingBefore
        return (g.inputShape[0], g.inputShape[1], g.inputShape[2], g.outputShape[0], g.outputShape[1],
                g.window[0], g.window[1], g.strides[0], g.strides[1], top, left)
    }

    /// `g` as the C kernels take it (`nn_conv_skinny`, `nn_max_pool`).
    static func kernelGeometry(_ g: SpatialGeometry) -> nn_spatial {
        let (h, w, c, oh, ow, kh, kw, sh, sw, top, left) = dimensions(g)
        return nn_spatial(h: h, w: w, c: c, oh: oh, ow: ow, kh: kh, kw: kw, sh: sh, sw: sw, top: top, left: left)
    }

    /// Values in one im2col row: kernel height x kernel width x input channels.
    public static func patchSize(_ g: SpatialGeometry) -> Int { g.window[0] * g.window[1] * g.inputShape[2] }

    /// Output positions per sample.
    public static func positions(_ g: SpatialGeometry) -> Int { g.outputShape[0] * g.outputShape[1] }

    /// Walks the windows of `count` samples in im2col order: row after row (sample, output row,
    /// output column), each row kernel row after kernel row. `run(column, input, length)` is
    /// called for each stretch of `length` values that are consecutive in both the rows
    /// (from offset `column`) and the input (from offset `input`, nil where the stretch is
    /// padding). Inside the input (always, with 'valid' padding) a kernel row is one stretch of
    /// kw * c values. im2col copies along the walk and col2im adds back along the same walk, so
    /// the two stay each other's adjoint.
    @inline(__always)
    static func walkWindows(count: Int, geometry g: SpatialGeometry, _ run: (_ column: Int, _ input: Int?, _ length: Int) -> Void) {
        let (h, w, c, oh, ow, kh, kw, sh, sw, top, left) = dimensions(g)
        let sampleIn = h * w * c, rowLength = kh * kw * c
        var row = 0
        for n in 0..<count {
            let sample = n * sampleIn
            for oy in 0..<oh {
                for ox in 0..<ow {
                    var p = row
                    let x0 = ox * sw - left
                    let inside = x0 >= 0 && x0 + kw <= w
                    for u in 0..<kh {
                        let iy = oy * sh + u - top
                        if iy < 0 || iy >= h {
                            run(p, nil, kw * c)
                        } else if inside {
                            run(p, sample + (iy &* w &+ x0) &* c, kw &* c)
                        } else {
                            for v in 0..<kw {
                                let ix = x0 + v
                                run(p + v * c, ix < 0 || ix >= w ? nil : sample + (iy * w + ix) * c, c)
                            }
                        }
                        p += kw * c
                    }
                    row += rowLength
                }
            }
        }
    }

    /// Walks the pooling windows of `count` samples: for each, `visit(sample, output, rows,
    /// columns)` with the offsets of its sample's first input element and of its output cell
    /// (channels innermost) and its rows and columns clipped to the input. Padding is smaller
    /// than the window, so no window is empty. Max and average pooling and the average's
    /// gradient share it, so their windows cannot differ.
    @inline(__always)
    static func poolingWindows(count: Int, geometry g: SpatialGeometry, _ visit: (Int, Int, Range<Int>, Range<Int>) -> Void) {
        let (h, w, c, oh, ow, kh, kw, sh, sw, top, left) = dimensions(g)
        let sampleIn = h * w * c, sampleOut = oh * ow * c
        for n in 0..<count {
            for oy in 0..<oh {
                let rows = max(oy * sh - top, 0)..<min(oy * sh - top + kh, h)
                for ox in 0..<ow {
                    let columns = max(ox * sw - left, 0)..<min(ox * sw - left + kw, w)
                    visit(n * sampleIn, n * sampleOut + (oy * ow + ox) * c, rows, columns)
                }
            }
        }
    }

    /// Calls `visit` with the offset within its sample of each cell of a window, in row-major
    /// order (the order sums and first maxima are defined in).
    @inline(__always)
    static func windowCells(_ rows: Range<Int>, _ columns: Range<Int>, width w: Int, channels c: Int, _ visit: (Int) -> Void) {
        for iy in rows {
            for ix in columns { visit((iy &* w &+ ix) &* c) }
        }
    }

    /// What an average-pooling window's sum is divided by: the window's area (`countIncludePad`:
    /// padded cells count, as PyTorch's default; every window lies within the padded input, so
    /// that is `kh * kw`) or the number of its cells inside the input (Keras, TensorFlow).
    @inline(__always)
    static func averageDivisor<Scalar: BLASScalar>(_ g: SpatialGeometry, countIncludePad: Bool,
                                                   rows: Range<Int>, columns: Range<Int>) -> Scalar {
        Scalar(countIncludePad ? g.window[0] * g.window[1] : max(rows.count * columns.count, 1))
    }


    /// Writes `count` samples' windows as rows of `patchSize` values (`count * positions` rows);
    /// padded positions are zero.
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    public static func im2col<Scalar: BLASScalar>(_ input: UnsafePointer<Scalar>, count: Int, geometry g: SpatialGeometry,
                                                  into cols: UnsafeMutablePointer<Scalar>) {
        // Stretches are a few to a few dozen values: a plain loop, too short for memcpy to pay.
        walkWindows(count: count, geometry: g) { column, source, length in
            let p = cols + column
            guard let source else { p.update(repeating: 0, count: length); return }
            let s = input + source
            for t in 0..<length { p[t] = s[t] }
        }
    }

    /// `im2col` of samples quantized to bytes (an int8 convolution's): a padded position holds its
    /// sample's zero point, `zeroPoints[sample]` (the quantized 0.0).
    public static func im2col(bytes input: UnsafePointer<UInt8>, count: Int, geometry g: SpatialGeometry,
                              zeroPoints: UnsafePointer<Int32>, into cols: UnsafeMutablePointer<UInt8>) {
        var geometry = kernelGeometry(g)
        nn_im2col_u8(&geometry, input, count, zeroPoints, cols)
    }

    /// The adjoint of `im2col`: adds every row value back onto the input position it was read
    /// from (`input` must be zeroed first; padded positions are dropped).
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    public static func col2imAdding<Scalar: BLASScalar>(_ cols: UnsafePointer<Scalar>, count: Int, geometry g: SpatialGeometry,
                                                        into input: UnsafeMutablePointer<Scalar>) {
        walkWindows(count: count, geometry: g) { column, target, length in
            guard let target else { return }
            let p = cols + column, t = input + target
            for k in 0..<length { t[k] += p[k] }
        }
    }

    /// Max pooling of `count` samples; padded positions are ignored. With `argmax`, records for
    /// each output value the index (within its sample) of the input it came from: the first
    /// maximum in row-major window order, where the gradient goes. (A NaN in the window's first
    /// position stays the result, as NumPy's max propagates NaN.)
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    public static func maxPool<Scalar: BLASScalar>(_ input: UnsafePointer<Scalar>, count: Int, geometry g: SpatialGeometry,
                                                   into output: UnsafeMutablePointer<Scalar>, argmax: UnsafeMutablePointer<Int32>?,
                                                   threads: Int = min(BLAS.threadCount, 2)) {
        if argmax == nil, Scalar.self == Float.self {
            // The same windows and comparisons, vectorized over the channels (NNKernels/Pooling.c).
            var geometry = kernelGeometry(g)
            nn_max_pool(UnsafeRawPointer(input).assumingMemoryBound(to: Float.self), count, &geometry,
                        UnsafeMutableRawPointer(output).assumingMemoryBound(to: Float.self), Int32(threads))
            return
        }
        let w = g.inputShape[1], c = g.inputShape[2]
        poolingWindows(count: count, geometry: g) { sample, out, rows, columns in
            // Channels innermost: every window position updates c consecutive maxima.
            let best = output + out
            let first = sample + (rows.lowerBound * w + columns.lowerBound) * c
            for k in 0..<c { best[k] = input[first + k] }
            if let argmax {
                let bestIndex = argmax + out
                for k in 0..<c { bestIndex[k] = Int32(truncatingIfNeeded: first - sample + k) }
                windowCells(rows, columns, width: w, channels: c) { i in
                    for k in 0..<c {
                        let v = input[sample &+ i &+ k], better = v > best[k]
                        best[k] = better ? v : best[k]
                        bestIndex[k] = better ? Int32(truncatingIfNeeded: i &+ k) : bestIndex[k]
                    }
                }
            } else {
                windowCells(rows, columns, width: w, channels: c) { i in
                    for k in 0..<c {
                        let v = input[sample &+ i &+ k], b = best[k]
                        best[k] = v > b ? v : b
                    }
                }
            }
        }
    }

    /// The gradient of max pooling: each output gradient goes to the input its value came from
    /// (`input` is overwritten).
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    public static func maxPoolBackward<Scalar: BLASScalar>(_ delta: UnsafePointer<Scalar>, argmax: UnsafePointer<Int32>, count: Int,
                                                           geometry g: SpatialGeometry, into input: UnsafeMutablePointer<Scalar>) {
        let sampleIn = g.inputFeatures, sampleOut = g.outputFeatures
        input.update(repeating: 0, count: count * sampleIn)
        for n in 0..<count {
            let d = delta + n * sampleOut, a = argmax + n * sampleOut, target = input + n * sampleIn
            for o in 0..<sampleOut { target[Int(a[o])] += d[o] }
        }
    }
}

extension SpatialKernels {
    /// Average pooling of `count` samples. Each output is the sum of its window's cells inside
    /// the input divided by the window's area (`countIncludePad`: padded cells count, as
    /// PyTorch's default; every window lies within the padded input, so that is `kh * kw`) or
    /// by the number of cells inside the input (Keras, TensorFlow). Sums run in `Scalar`, in
    /// row-major window order.
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    public static func averagePool<Scalar: BLASScalar>(_ input: UnsafePointer<Scalar>, count: Int, geometry g: SpatialGeometry,
                                                       countIncludePad: Bool, into output: UnsafeMutablePointer<Scalar>) {
        let w = g.inputShape[1], c = g.inputShape[2]
        poolingWindows(count: count, geometry: g) { sample, out, rows, columns in
            let sum = output + out
            sum.update(repeating: 0, count: c)
            windowCells(rows, columns, width: w, channels: c) { i in
                for k in 0..<c { sum[k] += input[sample &+ i &+ k] }
            }
            let divisor: Scalar = averageDivisor(g, countIncludePad: countIncludePad, rows: rows, columns: columns)
            for k in 0..<c { sum[k] /= divisor }
        }
    }

    /// Global average (`average`) or maximum pooling: each channel of a [height, width,
    /// channels] sample reduced over all positions to one value. The maximum keeps NaN in the
    /// first position, as `maxPool` does; the mean sums in position order and divides once.
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    public static func globalPool<Scalar: BLASScalar>(_ input: UnsafePointer<Scalar>, count: Int, geometry g: SpatialGeometry,
                                                      average: Bool, into output: UnsafeMutablePointer<Scalar>) {
        let c = g.inputShape[2], positions = g.inputShape[0] * g.inputShape[1]
        for n in 0..<count {
            let sample = input + n * positions * c
            let out = output + n * c
            out.update(from: sample, count: c)
            if average {
                for p in 1..<max(positions, 1) {
                    let cell = sample + p &* c
                    for k in 0..<c { out[k] += cell[k] }
                }
                let divisor = Scalar(positions)
                for k in 0..<c { out[k] /= divisor }
            } else {
                for p in 1..<max(positions, 1) {
                    let cell = sample + p &* c
                    for k in 0..<c {
                        let v = cell[k], b = out[k]
                        out[k] = v > b ? v : b
                    }
                }
            }
        }
    }
}

extension SpatialKernels {
    /// The gradient of `averagePool`: each output gradient divided by its window's divisor (the
    /// same as the forward pass's) and added to each of the window's cells inside the input
    /// (`input` is overwritten).
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    public static func averagePoolBackward<Scalar: BLASScalar>(_ delta: UnsafePointer<Scalar>, count: Int, geometry g: SpatialGeometry,
                                                               countIncludePad: Bool, into input: UnsafeMutablePointer<Scalar>) {
        let w = g.inputShape[1], c = g.inputShape[2]
        input.update(repeating: 0, count: count * g.inputShape[0] * w * c)
        poolingWindows(count: count, geometry: g) { sample, out, rows, columns in
            let divisor: Scalar = averageDivisor(g, countIncludePad: countIncludePad, rows: rows, columns: columns)
            let share = delta + out
            windowCells(rows, columns, width: w, channels: c) { i in
                let cell = input + (sample &+ i)
                for k in 0..<c { cell[k] += share[k] / divisor }
            }
        }
    }

    /// Global max pooling (the values of `globalPool(average: false)`) that also records, for
    /// each output, the index within its sample of the first maximum in position order, for
    /// `maxPoolBackward`.
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    public static func globalMaxPool<Scalar: BLASScalar>(_ input: UnsafePointer<Scalar>, count: Int, geometry g: SpatialGeometry,
                                                         into output: UnsafeMutablePointer<Scalar>, argmax: UnsafeMutablePointer<Int32>) {
        let c = g.inputShape[2], positions = g.inputShape[0] * g.inputShape[1]
        for n in 0..<count {
            let sample = input + n * positions * c
            let out = output + n * c, index = argmax + n * c
            out.update(from: sample, count: c)
            for k in 0..<c { index[k] = Int32(truncatingIfNeeded: k) }
            for p in 1..<max(positions, 1) {
                let i = p &* c
                for k in 0..<c {
                    let v = sample[i &+ k], better = v > out[k]
                    out[k] = better ? v : out[k]
                    index[k] = better ? Int32(truncatingIfNeeded: i &+ k) : index[k]
                }
            }
        }
    }
}
