import NNCore
import NNEngine
import NNRandom
import NNTrain
import Testing

/// The fixture's gradients (f64) against central differences of the objective evaluated by the
/// Swift trainer: the loss of a forward pass, plus the L2 penalty `lambda * sum(W^2)` the L2
/// gradient belongs to. Every weight and bias is perturbed.
///
/// The capstone with the blog's dropout is not checked this way: its "gradient" mixes the output
/// of the unmasked forward pass with masked activations and recomputed pre-activations, so it is
/// not the derivative of any function of the parameters (the fixture reproduces it as written).
func checkFiniteDifferences(_ name: String) throws {
    let fx = try Fixture("\(name)_f64")
    let recipe = try fx.recipe()
    let x = try fx.sampleRows("X")
    let labels = try fx.labels()
    let base: Network<Double> = try fx.network(Double.self)
    let trainer = Trainer<Double>(network: base, recipe: recipe, maxBatch: x.rows)
    var unused = NumPyRandomState(seed: 0)

    func objective(_ network: Network<Double>) -> Double {
        trainer.setNetwork(network)
        trainer.forward(x.values, count: x.rows, training: false, random: &unused)
        let penalty = network.weights.reduce(0) { $0 + $1.reduce(0) { $0 + $1 * $1 } }
        return trainer.loss(labels) + recipe.l2 * penalty
    }

    let h = 1e-5
    for l in 0..<base.layerCount {
        var numericW: [Double] = [], numericB: [Double] = []
        for i in base.weights[l].indices {
            var plus = base, minus = base
            plus.weights[l][i] += h
            minus.weights[l][i] -= h
            numericW.append((objective(plus) - objective(minus)) / (2 * h))
        }
        for i in base.biases[l].indices {
            var plus = base, minus = base
            plus.biases[l][i] += h
            minus.biases[l][i] -= h
            numericB.append((objective(plus) - objective(minus)) / (2 * h))
        }
        let (w, b) = fx.gradientNames(l + 1)
        // Central differences are exact to O(h^2) plus rounding of order 1e-16 / h.
        let tol = Tolerance(relative: 1e-6, floorFraction: 1e-3)
        expectClose(numericW, try fx.weight(w), tol, "\(fx.name) \(w) vs central differences")
        expectClose(numericB, try fx.bias(b), tol, "\(fx.name) \(b) vs central differences")
    }
}

@Suite struct GradientCheck {
    @Test(arguments: ["rows_relu_softmax_2layer", "rows_capstone_3layer_nodropout",
                      "columns_sigmoid_quadratic", "columns_binary_square"])
    func centralDifferences(_ name: String) throws { try checkFiniteDifferences(name) }
}
