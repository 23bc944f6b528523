import NNCore
import NNEngine
import NNRandom

/// A fixed-size scratch matrix; its memory stays put, so BLAS can be handed raw pointers.
final class Scratch<Scalar: BLASScalar> {
    let pointer: UnsafeMutablePointer<Scalar>
    let capacity: Int
    init(_ capacity: Int) {
        self.capacity = max(capacity, 1)
        pointer = .allocate(capacity: self.capacity)
        pointer.initialize(repeating: 0, count: self.capacity)
    }
    deinit { pointer.deallocate() }
}

/// Mini-batch training: batched forward and backward passes on BLAS (samples as rows, no
/// per-sample loops), SGD or momentum, L2 and dropout as in the recipes. Dense layers are one
/// GEMM each way; convolutions are im2col plus one GEMM (`SpatialKernels`), their backward pass
/// two GEMMs and the scatter back (col2im); max pooling routes gradients to the recorded maxima,
/// average pooling spreads them over the window's cells.
///
/// Batch normalization (after a convolution per channel, after a dense layer per feature)
/// normalizes a training batch with the batch's own mean and biased variance and differentiates
/// through them; each training batch also moves the moving averages
/// (`TrainingRecipe.batchNormMomentum`). Outside training (evaluation) it normalizes with the
/// moving averages, as the saved model and the inference engine do.
///
/// The intermediate values of the last batch (`z`, `a`, deltas, gradients) stay readable so that
/// parity tests can compare them with the NumPy reference.
public final class Trainer<Scalar: BLASScalar> {
    public private(set) var network: Network<Scalar>
    public let recipe: TrainingRecipe
    /// Momentum velocities, shaped as the weights and biases (zero when momentum is 0).
    public private(set) var weightVelocities: [[Scalar]]
    public private(set) var biasVelocities: [[Scalar]]
    /// Optimizer steps taken.
    public private(set) var step = 0

    let maxBatch: Int
    /// The f32 products' kernel (f64 runs on OpenBLAS), and the threads they may use.
    let matrixKernel: MatrixKernel
    let threads: Int
    /// Per layer: pre-activations, activations (after dropout, when it applies), deltas.
    let z: [Scratch<Scalar>]
    let a: [Scratch<Scalar>]
    let delta: [Scratch<Scalar>]
    /// Per hidden layer: the dropout mask of the last batch (0/1, or 0/(1/keep) when inverted).
    let mask: [Scratch<Scalar>]
    /// Blog-mode dropout recomputes hidden pre-activations from the masked activations.
    let recomputedZ: [Scratch<Scalar>]
    /// Per convolution layer: the im2col rows of the last batch, reused for their gradient.
    let columns: [Scratch<Scalar>?]
    /// Per max pooling layer (windowed or global): where each output's maximum came from.
    let argmax: [UnsafeMutablePointer<Int32>?]
    /// Per batch normalization layer: the normalized inputs `(x - mean) / sqrt(variance + eps)`
    /// of the last batch, and `1 / sqrt(variance + eps)` per channel (the batch's in training,
    /// the moving one otherwise).
    let normalized: [Scratch<Scalar>?]
    let inverseStd: [Scratch<Scalar>?]
    let weightGradients: [Scratch<Scalar>]
    let biasGradients: [Scratch<Scalar>]
    var lastCount = 0
    var lastMasked = false
    /// Whether the last forward pass normalized with batch statistics.
    var lastTraining = false

    /// Prepares a trainer for batches of up to `maxBatch` samples (at least `recipe.batchSize`),
    /// its f32 products on `kernel` (by default the engine's choice: `NNM_KERNELS`, else the
    /// fastest this CPU runs).
    public init(network: Network<Scalar>, recipe: TrainingRecipe, maxBatch: Int? = nil,
                kernel: MatrixKernel = MatrixKernel.selected.kernel) {
        self.network = network
        self.recipe = recipe
        matrixKernel = kernel
        threads = min(BLAS.threadCount, 2)
        let batch = max(maxBatch ?? recipe.batchSize, recipe.batchSize)
        self.maxBatch = batch
        let widths = Array(network.layerSizes.dropFirst())
        z = widths.map { Scratch(batch * $0) }
        a = widths.map { Scratch(batch * $0) }
        delta = widths.map { Scratch(batch * $0) }
        mask = widths.dropLast().map { Scratch(batch * $0) }
        recomputedZ = widths.dropLast().map { Scratch(batch * $0) }
        columns = network.layers.map { layer in
            guard layer.kind == .conv2d, let g = layer.spatial else { return nil }
            return Scratch(batch * SpatialKernels.positions(g) * SpatialKernels.patchSize(g))
        }
        argmax = network.layers.map { layer in
            layer.kind == .maxPool2d || layer.kind == .globalMaxPool2d
                ? UnsafeMutablePointer<Int32>.allocate(capacity: batch * layer.outputSize) : nil
        }
        normalized = network.layers.map { $0.kind == .batchNorm ? Scratch(batch * $0.outputSize) : nil }
        inverseStd = network.layers.map { $0.kind == .batchNorm ? Scratch(Network<Scalar>.channels($0)) : nil }
        weightGradients = network.weights.map { Scratch($0.count) }
        biasGradients = network.biases.map { Scratch($0.count) }
        weightVelocities = network.weights.map { [Scalar](repeating: 0, count: $0.count) }
        biasVelocities = network.biases.map { [Scalar](repeating: 0, count: $0.count) }
    }

    deinit { for p in argmax { p?.deallocate() } }

    /// Restores optimizer state (for resuming).
    public func restore(weightVelocities: [[Scalar]], biasVelocities: [[Scalar]], step: Int) {
        precondition(weightVelocities.map(\.count) == network.weights.map(\.count), "velocity shapes")
        precondition(biasVelocities.map(\.count) == network.biases.map(\.count), "velocity shapes")
        self.weightVelocities = weightVelocities
        self.biasVelocities = biasVelocities
        self.step = step
    }

    var layerCount: Int { network.layerCount }

    /// C = alpha op(A) op(B) + beta C on the trainer's kernel.
    private func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Scalar, a: UnsafePointer<Scalar>, lda: Int,
                      b: UnsafePointer<Scalar>, ldb: Int, beta: Scalar, c: UnsafeMutablePointer<Scalar>, ldc: Int) {
        Scalar.gemm(on: matrixKernel, threads: threads, transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
                    a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
    }
    func width(_ l: Int) -> Int { network.layerSizes[l + 1] }

    // MARK: Forward

    /// Computes every layer for `count` samples (rows of `x`, already preprocessed). With
    /// `training` and a dropout recipe, masks are drawn from `random` in layer order; with
    /// `training`, batch normalization uses the batch's statistics and updates the moving
    /// averages, without it the moving averages.
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    public func forward(_ x: UnsafePointer<Scalar>, count: Int, training: Bool, random: inout NumPyRandomState) {
        precondition(count <= maxBatch, "batch larger than the trainer was prepared for")
        lastCount = count
        let dropout = training && recipe.usesDropout
        lastMasked = dropout
        lastTraining = training
        let keep = Scalar(recipe.dropoutKeep ?? 1)
        for l in 0..<layerCount {
            let input = l == 0 ? x : UnsafePointer(a[l - 1].pointer)
            let layer = network.layers[l]
            switch layer.kind {
            case .dense: affine(l, input: input, count: count, into: z[l].pointer)
            case .conv2d: convolve(l, input: input, count: count, into: z[l].pointer)
            case .maxPool2d: SpatialKernels.maxPool(input, count: count, geometry: layer.spatial!, into: z[l].pointer, argmax: argmax[l])
            case .flatten: z[l].pointer.update(from: input, count: count * width(l))
            case .batchNorm: normalize(l, input: input, count: count, training: training)
            case .avgPool2d:
                SpatialKernels.averagePool(input, count: count, geometry: layer.spatial!, countIncludePad: layer.countIncludePad, into: z[l].pointer)
            case .globalAvgPool2d: SpatialKernels.globalPool(input, count: count, geometry: layer.spatial!, average: true, into: z[l].pointer)
            case .globalMaxPool2d: SpatialKernels.globalMaxPool(input, count: count, geometry: layer.spatial!, into: z[l].pointer, argmax: argmax[l]!)
            }
            let n = count * width(l)
            Activations.activate(z[l].pointer, into: a[l].pointer, rows: count, columns: width(l), activation: network.activations[l])
            if dropout && l < layerCount - 1 && recipe.dropoutMode == .inverted {
                drawMask(l, count: count, random: &random, value: 1 / keep)
                let m = mask[l].pointer, al = a[l].pointer
                for i in 0..<n { al[i] *= m[i] }
            }
        }
        if dropout && recipe.dropoutMode == .blog {
            // The capstone: the output above stays as computed without dropout; hidden
            // activations are masked afterwards and later pre-activations recomputed from them.
            for l in 0..<(layerCount - 1) {
                drawMask(l, count: count, random: &random, value: 1)
                let n = count * width(l), m = mask[l].pointer, al = a[l].pointer
                for i in 0..<n { al[i] *= m[i] }
            }
            for l in 1..<max(layerCount - 1, 1) {
                affine(l, input: a[l - 1].pointer, count: count, into: recomputedZ[l].pointer)
            }
        }
    }

    /// z = input @ W[l] + b[l].
    private func affine(_ l: Int, input: UnsafePointer<Scalar>, count: Int, into out: UnsafeMutablePointer<Scalar>) {
        let k = network.layerSizes[l], n = width(l)
        network.weights[l].withUnsafeBufferPointer { w in
            gemm(transposeA: false, transposeB: false, m: count, n: n, k: k, alpha: 1, a: input, lda: k,
                 b: w.baseAddress!, ldb: n, beta: 0, c: out, ldc: n)
        }
        network.biases[l].withUnsafeBufferPointer { b in
            Activations.biasAndActivate(out, rows: count, columns: n, bias: b.baseAddress!, activation: .identity)
        }
    }

    /// z = im2col(input) @ W[l] + b[l], the rows kept in `columns[l]` for the backward pass.
    private func convolve(_ l: Int, input: UnsafePointer<Scalar>, count: Int, into out: UnsafeMutablePointer<Scalar>) {
        let g = network.layers[l].spatial!, rows = count * SpatialKernels.positions(g), patch = SpatialKernels.patchSize(g)
        let filters = g.outputShape[2], cols = columns[l]!.pointer
        SpatialKernels.im2col(input, count: count, geometry: g, into: cols)
        network.weights[l].withUnsafeBufferPointer { w in
            gemm(transposeA: false, transposeB: false, m: rows, n: filters, k: patch, alpha: 1, a: cols, lda: patch,
                 b: w.baseAddress!, ldb: filters, beta: 0, c: out, ldc: filters)
        }
        network.biases[l].withUnsafeBufferPointer { b in
            Activations.biasAndActivate(out, rows: rows, columns: filters, bias: b.baseAddress!, activation: .identity)
        }
    }

    /// Batch normalization of layer `l` into `z[l]`: `gamma * (x - mean) / sqrt(variance + eps)
    /// + beta` per channel, with the batch's mean and biased variance (accumulated in f64) and
    /// the moving averages updated (`training`), or with the moving averages. Keeps the
    /// normalized values and the inverse deviations for the backward pass.
    private func normalize(_ l: Int, input: UnsafePointer<Scalar>, count: Int, training: Bool) {
        let layer = network.layers[l], c = Network<Scalar>.channels(layer), rows = count * layer.inputSize / c
        let epsilon = layer.batchNorm!.epsilon
        let out = z[l].pointer, xhat = normalized[l]!.pointer, inv = inverseStd[l]!.pointer
        var mean = [Scalar](repeating: 0, count: c)
        if training {
            var sum = [Double](repeating: 0, count: c), squares = [Double](repeating: 0, count: c)
            for r in 0..<rows {
                let x = input + r &* c
                for k in 0..<c { sum[k] += Double(x[k]) }
            }
            for k in 0..<c { sum[k] /= Double(rows) }
            // Two passes: the squared deviations from the mean, not E[x^2] - mean^2, which
            // cancels badly when the mean is large against the deviation.
            for r in 0..<rows {
                let x = input + r &* c
                for k in 0..<c {
                    let d = Double(x[k]) - sum[k]
                    squares[k] += d * d
                }
            }
            let m = Scalar(recipe.batchNormMomentum)
            for k in 0..<c {
                let variance = squares[k] / Double(rows)
                mean[k] = Scalar(sum[k])
                inv[k] = Scalar(1 / (variance + epsilon).squareRoot())
                network.movingMeans[l][k] = m * network.movingMeans[l][k] + (1 - m) * mean[k]
                network.movingVariances[l][k] = m * network.movingVariances[l][k] + (1 - m) * Scalar(variance)
            }
        } else {
            for k in 0..<c {
                mean[k] = network.movingMeans[l][k]
                inv[k] = Scalar(1 / (Double(network.movingVariances[l][k]) + epsilon).squareRoot())
            }
        }
        network.weights[l].withUnsafeBufferPointer { gamma in
            network.biases[l].withUnsafeBufferPointer { beta in
                for r in 0..<rows {
                    let x = input + r &* c, h = xhat + r &* c, y = out + r &* c
                    for k in 0..<c {
                        let v = (x[k] - mean[k]) * inv[k]
                        h[k] = v
                        y[k] = gamma[k] * v + beta[k]
                    }
                }
            }
        }
    }

    private func drawMask(_ l: Int, count: Int, random: inout NumPyRandomState, value: Scalar) {
        let n = count * width(l)
        let draws = random.binomial(n: 1, p: recipe.dropoutKeep ?? 1, count: n)
        let m = mask[l].pointer
        for i in 0..<n { m[i] = draws[i] == 0 ? 0 : value }
    }

    // MARK: Loss and backward

    /// What a batch is trained towards: integer labels (one-hot for several outputs, the label
    /// itself for a single output) or real-valued targets, row-major count x outputs.
    public enum Targets {
        case labels(UnsafeBufferPointer<Int32>)
        case values(UnsafePointer<Scalar>)
    }

    @inline(__always) func target(_ targets: Targets, _ r: Int, _ j: Int, _ classes: Int) -> Scalar {
        switch targets {
        case let .labels(labels): return classes == 1 ? Scalar(labels[r]) : (Int(labels[r]) == j ? 1 : 0)
        case let .values(values): return values[r * classes + j]
        }
    }

    /// The loss of the last forward pass against integer labels.
    public func loss(labels: UnsafeBufferPointer<Int32>) -> Double {
        loss(.labels(labels))
    }

    /// The loss of the last forward pass: cross-entropy `-mean(sum(y * log(a + 1e-15)))`, the
    /// negative log-likelihood `-mean(sum(y * a))` of log-probabilities, or the quadratic
    /// `1/(2m) * sum((a - y)^2)`.
    public func loss(_ targets: Targets) -> Double {
        let count = lastCount, classes = width(layerCount - 1), out = a[layerCount - 1].pointer
        var total = 0.0
        switch recipe.loss {
        case .crossEntropy:
            for r in 0..<count {
                for j in 0..<classes {
                    let y = target(targets, r, j, classes)
                    if y != 0 { total -= Double(y) * Double(Scalar.logarithm(out[r * classes + j] + Scalar(1e-15))) }
                }
            }
            return total / Double(count)
        case .nll:
            for r in 0..<count {
                for j in 0..<classes {
                    let y = target(targets, r, j, classes)
                    if y != 0 { total -= Double(y) * Double(out[r * classes + j]) }
                }
            }
            return total / Double(count)
        case .quadratic:
            for r in 0..<count {
                for j in 0..<classes {
                    let d = Double(out[r * classes + j]) - Double(target(targets, r, j, classes))
                    total += d * d
                }
            }
            return total / Double(2 * count)
        }
    }

    /// Computes all gradients of the last forward pass (input `x`, the same batch) into the
    /// gradient buffers: averaged over the batch, with the L2 term on weights.
    public func backward(_ x: UnsafePointer<Scalar>, labels: UnsafeBufferPointer<Int32>) {
        backward(x, .labels(labels))
    }

    /// Computes all gradients of the last forward pass against `targets`.
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    public func backward(_ x: UnsafePointer<Scalar>, _ targets: Targets) {
        backward(x, targets, updating: false)
    }

    /// The backward pass; with `updating`, each layer's parameters are also updated as soon as
    /// its gradient is known (what `trainStep` does): a dense layer's weight update is fused into
    /// its gradient product (`W = beta * W - lr / m * X^T delta`, beta carrying the L2 term, or the
    /// same into the momentum velocity), which saves writing and re-reading a gradient as large
    /// as the weights on every step. The layer's delta for the layer below is computed first,
    /// from the weights before the update, so the result is the same step up to rounding.
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    func backward(_ x: UnsafePointer<Scalar>, _ targets: Targets, updating: Bool) {
        let lr = Scalar(recipe.learningRate), mu = Scalar(recipe.momentum)
        let count = lastCount, last = layerCount - 1, classes = width(last)
        let out = a[last].pointer, d = delta[last].pointer
        if recipe.loss == .nll {
            // The output is log-probabilities: softmax(z) - y is exp(a) - y.
            for r in 0..<count {
                for j in 0..<classes {
                    d[r * classes + j] = Scalar.exponential(out[r * classes + j]) - target(targets, r, j, classes)
                }
            }
        } else {
            for r in 0..<count {
                for j in 0..<classes {
                    d[r * classes + j] = out[r * classes + j] - target(targets, r, j, classes)
                }
            }
        }
        if recipe.loss == .quadratic {
            multiplyByDerivative(d, layer: last, count: count, fromZ: false, z: z[last].pointer)
        }
        let blogDropout = lastMasked && recipe.dropoutMode == .blog
        let scale = 1 / Scalar(count)
        for l in stride(from: last, through: 0, by: -1) {
            let layer = network.layers[l]
            let input = l == 0 ? x : UnsafePointer(a[l - 1].pointer)
            let dl = UnsafePointer(delta[l].pointer)
            let previous: UnsafeMutablePointer<Scalar>? = l > 0 ? delta[l - 1].pointer : nil
            switch layer.kind {
            case .dense:
                let fanIn = layer.inputSize, fanOut = layer.outputSize
                if let previous {
                    network.weights[l].withUnsafeBufferPointer { w in
                        gemm(transposeA: false, transposeB: true, m: count, n: fanIn, k: fanOut, alpha: 1,
                             a: dl, lda: fanOut, b: w.baseAddress!, ldb: fanOut, beta: 0, c: previous, ldc: fanIn)
                    }
                }
                biasGradient(l, delta: dl, rows: count, columns: fanOut, scale: scale)
                if updating {
                    updateDenseWeights(l, input: input, delta: dl, count: count, lr: lr, mu: mu)
                } else {
                    gemm(transposeA: true, transposeB: false, m: fanIn, n: fanOut, k: count, alpha: scale,
                         a: input, lda: fanIn, b: dl, ldb: fanOut, beta: 0, c: weightGradients[l].pointer, ldc: fanOut)
                }
            case .conv2d:
                let g = layer.spatial!, rows = count * SpatialKernels.positions(g), patch = SpatialKernels.patchSize(g)
                let filters = g.outputShape[2], cols = columns[l]!.pointer
                gemm(transposeA: true, transposeB: false, m: patch, n: filters, k: rows, alpha: scale,
                     a: cols, lda: patch, b: dl, ldb: filters, beta: 0, c: weightGradients[l].pointer, ldc: filters)
                biasGradient(l, delta: dl, rows: rows, columns: filters, scale: scale)
                if let previous {
                    // The rows are no longer needed: they take the gradient of the rows, which
                    // col2im adds back onto the input positions.
                    network.weights[l].withUnsafeBufferPointer { w in
                        gemm(transposeA: false, transposeB: true, m: rows, n: patch, k: filters, alpha: 1,
                             a: dl, lda: filters, b: w.baseAddress!, ldb: filters, beta: 0, c: cols, ldc: patch)
                    }
                    previous.update(repeating: 0, count: count * layer.inputSize)
                    SpatialKernels.col2imAdding(cols, count: count, geometry: g, into: previous)
                }
            case .maxPool2d:
                if let previous {
                    SpatialKernels.maxPoolBackward(dl, argmax: argmax[l]!, count: count, geometry: layer.spatial!, into: previous)
                }
            case .flatten:
                previous?.update(from: dl, count: count * layer.inputSize)
            case .batchNorm:
                normalizationBackward(l, delta: dl, count: count, scale: scale, into: previous)
            case .avgPool2d:
                if let previous {
                    SpatialKernels.averagePoolBackward(dl, count: count, geometry: layer.spatial!, countIncludePad: layer.countIncludePad, into: previous)
                }
            case .globalAvgPool2d:
                if let previous {
                    let c = layer.outputSize, positions = layer.inputSize / c, divisor = Scalar(positions)
                    for n in 0..<count {
                        let d = dl + n &* c, target = previous + n &* layer.inputSize
                        for p in 0..<positions {
                            for k in 0..<c { target[p &* c &+ k] = d[k] / divisor }
                        }
                    }
                }
            case .globalMaxPool2d:
                if let previous {
                    SpatialKernels.maxPoolBackward(dl, argmax: argmax[l]!, count: count, geometry: layer.spatial!, into: previous)
                }
            }
            // (Batch normalization's gamma has no L2 penalty: `layer.weight` is nil for it.)
            if recipe.l2 > 0, layer.weight != nil, !(updating && layer.kind == .dense) {
                let factor = Scalar(2 * recipe.l2), g = weightGradients[l].pointer
                network.weights[l].withUnsafeBufferPointer { w in
                    for i in 0..<w.count { g[i] += factor * w[i] }
                }
            }
            if let previous {
                let fanIn = layer.inputSize
                if blogDropout {
                    // The capstone differentiates at the recomputed pre-activations (the first
                    // hidden layer's are the originals) and does not gate deltas with the masks.
                    let zPrev = l - 1 == 0 ? z[0].pointer : recomputedZ[l - 1].pointer
                    multiplyByDerivative(previous, layer: l - 1, count: count, fromZ: true, z: zPrev)
                } else if lastMasked {
                    multiplyByDerivative(previous, layer: l - 1, count: count, fromZ: true, z: z[l - 1].pointer)
                    let m = mask[l - 1].pointer
                    for i in 0..<(count * fanIn) { previous[i] *= m[i] }
                } else {
                    multiplyByDerivative(previous, layer: l - 1, count: count, fromZ: false, z: z[l - 1].pointer)
                }
            }
            if updating, network.hasParameters(l) {
                if layer.kind != .dense {
                    apply(gradient: weightGradients[l].pointer, to: &network.weights[l], velocity: &weightVelocities[l], lr: lr, mu: mu)
                }
                apply(gradient: biasGradients[l].pointer, to: &network.biases[l], velocity: &biasVelocities[l], lr: lr, mu: mu)
            }
        }
    }

    /// A dense layer's weight step straight from its gradient product: plain SGD
    /// `W = (1 - 2 lr lambda) W - (lr / m) X^T delta`; momentum `v = mu v - 2 lr lambda W -
    /// (lr / m) X^T delta`, then `W += v`.
    private func updateDenseWeights(_ l: Int, input: UnsafePointer<Scalar>, delta dl: UnsafePointer<Scalar>, count: Int,
                                    lr: Scalar, mu: Scalar) {
        let fanIn = network.layers[l].inputSize, fanOut = network.layers[l].outputSize
        let alpha = -lr / Scalar(count), decay = 2 * lr * Scalar(recipe.l2)
        network.weights[l].withUnsafeMutableBufferPointer { w in
            if recipe.momentum > 0 {
                weightVelocities[l].withUnsafeMutableBufferPointer { v in
                    var beta = mu
                    if recipe.l2 > 0 {
                        for i in 0..<v.count { v[i] = mu * v[i] - decay * w[i] }
                        beta = 1
                    }
                    gemm(transposeA: true, transposeB: false, m: fanIn, n: fanOut, k: count, alpha: alpha,
                         a: input, lda: fanIn, b: dl, ldb: fanOut, beta: beta, c: v.baseAddress!, ldc: fanOut)
                    for i in 0..<w.count { w[i] += v[i] }
                }
            } else {
                gemm(transposeA: true, transposeB: false, m: fanIn, n: fanOut, k: count, alpha: alpha,
                     a: input, lda: fanIn, b: dl, ldb: fanOut, beta: 1 - decay, c: w.baseAddress!, ldc: fanOut)
            }
        }
    }

    /// Batch normalization's gradients from `delta` = dL/dy (L the batch's summed loss): gamma's
    /// `scale * sum(delta * xhat)`, beta's `scale * sum(delta)` per channel, and for the layer
    /// below, after a training pass (the batch's statistics depend on every input),
    /// `dL/dx = gamma / sqrt(var + eps) * (delta - mean(delta) - xhat * mean(delta * xhat))` with
    /// the means over the channel's rows; after an inference pass the statistics are constants
    /// and it is `gamma / sqrt(var + eps) * delta`.
    private func normalizationBackward(_ l: Int, delta dl: UnsafePointer<Scalar>, count: Int, scale: Scalar,
                                       into previous: UnsafeMutablePointer<Scalar>?) {
        let layer = network.layers[l], c = Network<Scalar>.channels(layer), rows = count * layer.inputSize / c
        let xhat = normalized[l]!.pointer, inv = inverseStd[l]!.pointer
        var sumDelta = [Double](repeating: 0, count: c), sumProduct = [Double](repeating: 0, count: c)
        for r in 0..<rows {
            let d = dl + r &* c, h = xhat + r &* c
            for k in 0..<c {
                sumDelta[k] += Double(d[k])
                sumProduct[k] += Double(d[k]) * Double(h[k])
            }
        }
        let gw = weightGradients[l].pointer, gb = biasGradients[l].pointer
        for k in 0..<c {
            gw[k] = Scalar(sumProduct[k]) * scale
            gb[k] = Scalar(sumDelta[k]) * scale
        }
        guard let previous else { return }
        let coefficient = network.weights[l].indices.map { network.weights[l][$0] * inv[$0] }
        if !lastTraining {
            for r in 0..<rows {
                let d = dl + r &* c, p = previous + r &* c
                for k in 0..<c { p[k] = coefficient[k] * d[k] }
            }
            return
        }
        let meanDelta = sumDelta.map { Scalar($0 / Double(rows)) }, meanProduct = sumProduct.map { Scalar($0 / Double(rows)) }
        for r in 0..<rows {
            let d = dl + r &* c, h = xhat + r &* c, p = previous + r &* c
            for k in 0..<c { p[k] = coefficient[k] * (d[k] - meanDelta[k] - h[k] * meanProduct[k]) }
        }
    }

    /// The bias gradient: column sums of the delta rows, times `scale`.
    private func biasGradient(_ l: Int, delta dl: UnsafePointer<Scalar>, rows: Int, columns: Int, scale: Scalar) {
        let gb = biasGradients[l].pointer
        for j in 0..<columns { gb[j] = 0 }
        for r in 0..<rows {
            let row = dl + r * columns
            for j in 0..<columns { gb[j] += row[j] }
        }
        for j in 0..<columns { gb[j] *= scale }
    }

    /// d *= f'(z) for layer `layer`'s activation; from the stored activations when they are
    /// exactly f(z) (no dropout applied to them), else from z.
    private func multiplyByDerivative(_ d: UnsafeMutablePointer<Scalar>, layer: Int, count: Int, fromZ: Bool,
                                      z zp: UnsafeMutablePointer<Scalar>) {
        let n = count * width(layer)
        let ap = a[layer].pointer
        switch network.activations[layer] {
        case .identity:
            break
        case .relu:
            // d = 0 where !(z > 0), unchanged elsewhere; both loads are unconditional so this
            // is a vector select instead of an unpredictable branch per element.
            let zero: Scalar = 0
            for i in 0..<n {
                let di = d[i], zi = zp[i]
                d[i] = zi > zero ? di : zero
            }
        case .sigmoid:
            if fromZ {
                for i in 0..<n {
                    let s = 1 / (1 + Scalar.exponential(-zp[i]))
                    d[i] *= s * (1 - s)
                }
            } else {
                for i in 0..<n { d[i] *= ap[i] * (1 - ap[i]) }
            }
        case .tanh:
            if fromZ {
                for i in 0..<n {
                    let t = Scalar.hyperbolicTangent(zp[i])
                    d[i] *= 1 - t * t
                }
            } else {
                for i in 0..<n { d[i] *= 1 - ap[i] * ap[i] }
            }
        case .softmax, .logSoftmax:
            break  // only as the output of cross-entropy or NLL, whose delta is already a - y or exp(a) - y
        default:
            // Format 1.2's activations, differentiated at z (`Activations.derivative`).
            Activations.multiplyByDerivative(d, z: zp, count: n, activation: network.activations[layer])
        }
    }

    /// Applies the gradients: `W -= lr * g`, or with momentum `v = mu * v - lr * g; W += v`.
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    public func update() {
        let lr = Scalar(recipe.learningRate), mu = Scalar(recipe.momentum)
        for l in 0..<layerCount {
            apply(gradient: weightGradients[l].pointer, to: &network.weights[l], velocity: &weightVelocities[l], lr: lr, mu: mu)
            apply(gradient: biasGradients[l].pointer, to: &network.biases[l], velocity: &biasVelocities[l], lr: lr, mu: mu)
        }
        step += 1
    }

    private func apply(gradient g: UnsafeMutablePointer<Scalar>, to parameters: inout [Scalar], velocity: inout [Scalar],
                       lr: Scalar, mu: Scalar) {
        let n = parameters.count
        parameters.withUnsafeMutableBufferPointer { p in
            if recipe.momentum > 0 {
                velocity.withUnsafeMutableBufferPointer { v in
                    for i in 0..<n {
                        v[i] = mu * v[i] - lr * g[i]
                        p[i] += v[i]
                    }
                }
            } else {
                for i in 0..<n { p[i] -= lr * g[i] }
            }
        }
    }

    /// One optimizer step on a batch; returns the batch loss (before the update).
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    @discardableResult
    public func trainStep(_ x: UnsafePointer<Scalar>, labels: UnsafeBufferPointer<Int32>, random: inout NumPyRandomState) -> Double {
        trainStep(x, .labels(labels), count: labels.count, random: &random)
    }

    /// One optimizer step on `count` samples towards `targets`; returns the loss before the update.
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    @discardableResult
    public func trainStep(_ x: UnsafePointer<Scalar>, _ targets: Targets, count: Int, random: inout NumPyRandomState) -> Double {
        forward(x, count: count, training: true, random: &random)
        let batchLoss = loss(targets)
        backward(x, targets, updating: true)
        step += 1
        return batchLoss
    }

    // MARK: Reading intermediate values

    /// The pre-activations of layer `l` for the last batch (row-major, count x width).
    public func preActivations(_ l: Int) -> [Scalar] { Array(UnsafeBufferPointer(start: z[l].pointer, count: lastCount * width(l))) }
    /// The activations of layer `l` for the last batch (after dropout where it applies).
    public func activations(_ l: Int) -> [Scalar] { Array(UnsafeBufferPointer(start: a[l].pointer, count: lastCount * width(l))) }
    /// The gradient of the batch's summed loss with respect to layer `l`'s pre-activations
    /// (the output layer's is `a - y`), after `backward`; not computed for layer 0's input.
    public func deltas(_ l: Int) -> [Scalar] { Array(UnsafeBufferPointer(start: delta[l].pointer, count: lastCount * width(l))) }
    /// The weight gradient of layer `l` (`[in, out]`), after `backward`.
    public func weightGradient(_ l: Int) -> [Scalar] { Array(UnsafeBufferPointer(start: weightGradients[l].pointer, count: network.weights[l].count)) }
    /// The bias gradient of layer `l`, after `backward`.
    public func biasGradient(_ l: Int) -> [Scalar] { Array(UnsafeBufferPointer(start: biasGradients[l].pointer, count: network.biases[l].count)) }
    /// The dropout mask of hidden layer `l` for the last batch.
    public func dropoutMask(_ l: Int) -> [Scalar] { Array(UnsafeBufferPointer(start: mask[l].pointer, count: lastCount * width(l))) }

    /// Replaces the parameters (for finite-difference checks and tests).
    public func setNetwork(_ network: Network<Scalar>) {
        precondition(network.layerSizes == self.network.layerSizes, "layer sizes differ")
        self.network = network
    }

    // MARK: Evaluation

    /// Loss and accuracy over `count` samples without dropout, in batches of `maxBatch`.
    /// A single output predicts class 1 when it exceeds 0.5.
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    public func evaluate(_ x: UnsafePointer<Scalar>, labels: UnsafeBufferPointer<Int32>) -> (loss: Double, accuracy: Double) {
        var random = NumPyRandomState(seed: 0)  // unused: no dropout outside training
        let features = network.layerSizes[0], classes = width(layerCount - 1)
        var lossSum = 0.0, correct = 0, start = 0
        while start < labels.count {
            let n = min(maxBatch, labels.count - start)
            let batchLabels = UnsafeBufferPointer(rebasing: labels[start..<(start + n)])
            forward(x + start * features, count: n, training: false, random: &random)
            lossSum += loss(labels: batchLabels) * Double(n)
            let out = a[layerCount - 1].pointer
            for r in 0..<n {
                let predicted: Int
                if classes == 1 {
                    predicted = out[r] > 0.5 ? 1 : 0
                } else {
                    var best = 0
                    for j in 1..<classes where out[r * classes + j] > out[r * classes + best] { best = j }
                    predicted = best
                }
                if predicted == Int(batchLabels[r]) { correct += 1 }
            }
            start += n
        }
        return (lossSum / Double(max(labels.count, 1)), Double(correct) / Double(max(labels.count, 1)))
    }
}
