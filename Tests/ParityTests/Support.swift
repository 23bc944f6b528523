import Foundation
import NNCore
import NNEngine
import NNHDF5
import NNRandom
import NNTrain
import Testing

// Every expected value in these tests comes from Fixtures/parity/*.h5, written by
// Fixtures/generate_parity.py (plain NumPy following the seed documents). Nothing is recomputed
// here except what the Swift code under test computes.

/// The package root, found from this file's path.
let packageRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
}()

/// Fixtures/parity, or the directory in the environment variable PARITY_FIXTURES (to run the
/// tests against a regenerated or deliberately altered copy).
let parityDirectory = ProcessInfo.processInfo.environment["PARITY_FIXTURES"] ?? packageRoot + "/Fixtures/parity"

// MARK: Tolerances

/// How close a Swift value must be to the fixture's.
///
/// The error of one element is `|actual - expected| / max(|expected|, floor)`, with
/// `floor = floorFraction * max|expected|` over the whole array being compared. The floor is there
/// because some elements are sums of terms of mixed signs that nearly cancel (gradient entries,
/// pre-activations near 0): their rounding error is a few ulps of the terms, not of the result,
/// so two correct implementations that add in a different order (OpenBLAS kernels, pairwise versus
/// sequential sums) can differ there by far more than an ulp of the result.
///
/// The floors are chosen from the fixtures themselves: recomputing every forward value and
/// gradient of the single-step fixtures in higher precision (long double for f64, f64 for f32)
/// from the stored inputs, NumPy's own result is within 3.6e-14 (f64, floor 1e-3) and 2.7e-6
/// (f32, floor 3e-2) of the exact one in this metric. Any correct implementation is then within
/// twice that of NumPy, well inside 1e-12 and 1e-5. (With a 1e-2 floor NumPy's own f32 error
/// reaches 7e-6 on seed 003's dW1, too close to 1e-5 for two independent float32 computations.)
struct Tolerance: Sendable {
    var relative: Double
    var floorFraction: Double

    /// f64 forward values, loss, gradients and parameters after one update.
    static let f64 = Tolerance(relative: 1e-12, floorFraction: 1e-3)
    /// f32 forward values, loss, gradients and parameters after one update.
    static let f32 = Tolerance(relative: 1e-5, floorFraction: 3e-2)
    /// f64 parameters after K mini-batch steps.
    static let f64Steps = Tolerance(relative: 1e-10, floorFraction: 1e-3)
    /// f32 parameters after K mini-batch steps (float32 rounding compounds over the steps).
    static let f32Steps = Tolerance(relative: 1e-4, floorFraction: 3e-2)
    /// The end-to-end Fashion-MNIST run (f64, 3 epochs of 16 steps).
    static let e2e = Tolerance(relative: 1e-9, floorFraction: 1e-3)

    static func forward<S: BLASScalar>(_: S.Type) -> Tolerance { S.self == Double.self ? .f64 : .f32 }
    static func steps<S: BLASScalar>(_: S.Type) -> Tolerance { S.self == Double.self ? .f64Steps : .f32Steps }
}

/// The largest element error as `Tolerance` defines it (infinity when the counts differ).
func maxRelativeError(_ actual: [Double], _ expected: [Double], floorFraction: Double) -> Double {
    guard actual.count == expected.count else { return .infinity }
    let scale = expected.reduce(0) { max($0, abs($1)) }
    let floor = max(scale * floorFraction, Double.leastNormalMagnitude)
    var worst = 0.0
    for (a, e) in zip(actual, expected) {
        let err = abs(a - e) / max(abs(e), floor)
        worst = err.isNaN ? .infinity : max(worst, err)
    }
    return worst
}

/// Compares, records the measured error in the log, and expects it within `tolerance`.
@discardableResult
func expectClose<S: BinaryFloatingPoint>(_ actual: [S], _ expected: [Double], _ tolerance: Tolerance, _ what: String,
                                         sourceLocation: SourceLocation = #_sourceLocation) -> Double {
    #expect(actual.count == expected.count, "\(what): \(actual.count) values, the fixture has \(expected.count)",
            sourceLocation: sourceLocation)
    let values = actual.map { Double($0) }
    let err = maxRelativeError(values, expected, floorFraction: tolerance.floorFraction)
    ErrorLog.record(what, err, withoutFloor: maxRelativeError(values, expected, floorFraction: 0))
    #expect(err <= tolerance.relative, "\(what): max relative error \(err) > \(tolerance.relative)",
            sourceLocation: sourceLocation)
    return err
}

/// Expects `actual` to equal the fixture's values exactly (random draws, permutations, masks,
/// labels, predicted classes), reporting how many differ and the first difference.
func expectIdentical<T: Equatable>(_ actual: [T], _ expected: [T], _ what: String,
                                   sourceLocation: SourceLocation = #_sourceLocation) {
    guard actual.count == expected.count else {
        Issue.record("\(what): \(actual.count) values, the fixture has \(expected.count)", sourceLocation: sourceLocation)
        return
    }
    let differing = zip(actual, expected).enumerated().filter { $0.element.0 != $0.element.1 }.map(\.offset)
    print("parity-identical \(what): \(actual.count - differing.count) of \(actual.count) identical")
    #expect(differing.isEmpty, "\(what): \(differing.count) of \(actual.count) values differ, the first at index \(differing.first ?? 0): \(differing.first.map { "\(actual[$0]) instead of \(expected[$0])" } ?? "")",
            sourceLocation: sourceLocation)
}

/// Prints every measured maximum error, so a test run documents how close the parity is.
enum ErrorLog {
    static func record(_ what: String, _ err: Double, withoutFloor: Double) {
        print("parity-error \(what): \(err) (without the floor: \(withoutFloor))")
    }
}

// MARK: Reading fixtures

/// A row-major matrix of doubles.
struct Matrix: Equatable {
    var rows: Int
    var cols: Int
    var values: [Double]

    var transposed: Matrix {
        var out = [Double](repeating: 0, count: values.count)
        for r in 0..<rows {
            for c in 0..<cols { out[c * rows + r] = values[r * cols + c] }
        }
        return Matrix(rows: cols, cols: rows, values: out)
    }

    func rowSlice(_ range: Range<Int>) -> [Double] { Array(values[(range.lowerBound * cols)..<(range.upperBound * cols)]) }
    func gatherRows(_ indices: [Int]) -> [Double] { indices.flatMap { values[($0 * cols)..<(($0 + 1) * cols)] } }
}

/// One parity fixture file, read through NNHDF5.
final class Fixture {
    let name: String
    let file: HDF5File

    init(_ name: String) throws {
        self.name = name
        file = try HDF5File.open(path: "\(parityDirectory)/\(name).h5")
    }

    /// Whether samples are columns (seeds 001 and 003) rather than rows.
    var columns: Bool { (try? file.stringAttribute("orientation")) == "columns" }

    func has(_ path: String) -> Bool { (try? file.contains(path)) ?? false }
    func shape(_ path: String) throws -> [Int] { try file.dataset(path).shape }
    /// Any numeric dataset as doubles (integer ones, such as masks and permutations, convert exactly).
    func doubles(_ path: String) throws -> [Double] { try file.dataset(path).readDoubles(allowingIntegers: true) }
    func scalar(_ path: String) throws -> Double {
        let v = try doubles(path)
        #expect(v.count == 1, "\(name):\(path) is not a scalar")
        return v[0]
    }
    func ints(_ path: String) throws -> [Int] { try file.dataset(path).readIntegers().map { Int($0) } }

    func matrix(_ path: String) throws -> Matrix {
        let s = try shape(path)
        let v = try doubles(path)
        switch s.count {
        case 0: return Matrix(rows: 1, cols: 1, values: v)
        case 1: return Matrix(rows: 1, cols: s[0], values: v)
        default: return Matrix(rows: s[0], cols: s.dropFirst().reduce(1, *), values: v)
        }
    }

    /// A per-sample array (X, Y, Z, A, ...) with samples as rows, transposed from columns when
    /// the fixture's convention has samples as columns.
    func sampleRows(_ path: String) throws -> Matrix {
        let m = try matrix(path)
        return columns ? m.transposed : m
    }

    /// A weight matrix as Swift stores it: row-major [in, out] (fixtures in the column convention
    /// store W as (out, in)).
    func weight(_ path: String) throws -> [Double] {
        let m = try matrix(path)
        return columns ? m.transposed.values : m.values
    }

    /// A bias as Swift stores it: [out] ((1, out) and (out, 1) hold the same values in order).
    func bias(_ path: String) throws -> [Double] { try doubles(path) }

    func string(_ name: String) throws -> String { try file.stringAttribute(name) }
    func double(_ name: String) throws -> Double { try file.doubleAttribute(name) }
    func integer(_ name: String) throws -> Int { Int(try file.integerAttribute(name)) }
    func integers(_ name: String) throws -> [Int] { try file.integerArrayAttribute(name).map { Int($0) } }

    var layerSizes: [Int] { get throws { try integers("layer_sizes") } }
    var layerCount: Int { get throws { try layerSizes.count - 1 } }

    /// The recipe the fixture's attributes describe.
    func recipe() throws -> TrainingRecipe {
        let activations = try string("activations").split(separator: ",").map { name -> Activation in
            guard let a = Activation(name: String(name)) else { throw ParityError.unknown("activation \(name)") }
            return a
        }
        let loss: Loss
        switch try string("loss") {
        case "cross_entropy": loss = .crossEntropy
        case "quadratic": loss = .quadratic
        case let other: throw ParityError.unknown("loss \(other)")
        }
        guard let initialization = Initialization(rawValue: try string("initialization")) else {
            throw ParityError.unknown("initialization \(try string("initialization"))")
        }
        let keep = try double("keep")
        let dropout = has("mask1") || (try? string("dropout")) == "blog"
        return TrainingRecipe(layerSizes: try layerSizes, activations: activations, loss: loss, epochs: 1,
                              batchSize: try integer("batch"), learningRate: try double("lr"),
                              momentum: try double("mu"), l2: try double("lambda"),
                              dropoutKeep: dropout ? keep : nil, dropoutMode: .blog,
                              initialization: initialization)
    }

    /// The network whose parameters are `W1, b1, ...` under `prefix` ("" for the root).
    func network<S: BLASScalar>(_: S.Type, prefix: String = "") throws -> Network<S> {
        let r = try recipe()
        var weights: [[S]] = [], biases: [[S]] = []
        for l in 1...(r.layerSizes.count - 1) {
            weights.append(try weight("\(prefix)W\(l)").map { S($0) })
            biases.append(try bias("\(prefix)b\(l)").map { S($0) })
        }
        return Network(layerSizes: r.layerSizes, activations: r.activations, weights: weights, biases: biases)
    }

    /// Names of the gradient datasets: seed 003's own (dW1, db1), else grad_W1, grad_b1.
    func gradientNames(_ l: Int) -> (weight: String, bias: String) {
        has("dW\(l)") ? ("dW\(l)", "db\(l)") : ("grad_W\(l)", "grad_b\(l)")
    }

    /// Integer labels as the Swift trainer takes them.
    func labels(_ path: String = "labels") throws -> [Int32] { try ints(path).map { Int32($0) } }
}

enum ParityError: Error, CustomStringConvertible {
    case unknown(String)
    var description: String {
        switch self {
        case let .unknown(what): return "the fixture names an unknown \(what)"
        }
    }
}

/// The MLP fixtures, without the precision suffix.
let mlpFixtures = ["rows_relu_softmax_2layer", "rows_capstone_3layer", "rows_capstone_3layer_nodropout",
                   "columns_sigmoid_quadratic", "columns_binary_square"]

func suffix<S: BLASScalar>(_: S.Type) -> String { S.self == Double.self ? "f64" : "f32" }

// MARK: Driving the trainer

extension Trainer {
    /// forward, with the batch given as a row-major array.
    func forward(_ x: [Scalar], count: Int, training: Bool, random: inout NumPyRandomState) {
        x.withUnsafeBufferPointer { forward($0.baseAddress!, count: count, training: training, random: &random) }
    }

    func loss(_ labels: [Int32]) -> Double { labels.withUnsafeBufferPointer { loss(labels: $0) } }

    func backward(_ x: [Scalar], _ labels: [Int32]) {
        x.withUnsafeBufferPointer { xp in labels.withUnsafeBufferPointer { backward(xp.baseAddress!, labels: $0) } }
    }

    func trainStep(_ x: [Scalar], _ labels: [Int32], random: inout NumPyRandomState) -> Double {
        x.withUnsafeBufferPointer { xp in
            labels.withUnsafeBufferPointer { trainStep(xp.baseAddress!, labels: $0, random: &random) }
        }
    }
}

/// A model holding `network` (no preprocessing), for the inference engine.
func model<S: BLASScalar>(of network: Network<S>) -> Model {
    let (layers, tensors) = network.layersAndTensors()
    let meta = ModelMetadata(input: InputSpec(shape: [network.layerSizes[0]]), layers: layers,
                             provenance: Provenance(tool: "ParityTests", created: "1970-01-01T00:00:00Z"))
    return Model(metadata: meta, tensors: tensors)
}

func argmaxRows(_ values: [Double], columns: Int) -> [Int] {
    stride(from: 0, to: values.count, by: columns).map { start in
        var best = 0
        for j in 1..<columns where values[start + j] > values[start + best] { best = j }
        return best
    }
}

/// Central differences `(f(p + h) - f(p - h)) / 2h` of `objective` for every weight and bias of
/// every layer of `base` (empty for layers without parameters). Exact to O(h^2) plus rounding
/// of order 1e-16 / h.
func centralDifferences(_ base: Network<Double>, h: Double = 1e-5,
                        _ objective: (Network<Double>) -> Double) -> [(weights: [Double], biases: [Double])] {
    (0..<base.layerCount).map { l in
        func derivative(_ perturb: (inout Network<Double>, Double) -> Void) -> Double {
            var plus = base, minus = base
            perturb(&plus, h)
            perturb(&minus, -h)
            return (objective(plus) - objective(minus)) / (2 * h)
        }
        let weights = base.weights[l].indices.map { i in derivative { $0.weights[l][i] += $1 } }
        let biases = base.biases[l].indices.map { i in derivative { $0.biases[l][i] += $1 } }
        return (weights, biases)
    }
}
