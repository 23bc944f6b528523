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

    let numeric = centralDifferences(base, objective)
    for l in 0..<base.layerCount {
        let (w, b) = fx.gradientNames(l + 1)
        let tol = Tolerance(relative: 1e-6, floorFraction: 1e-3)
        expectClose(numeric[l].weights, try fx.weight(w), tol, "\(fx.name) \(w) vs central differences")
        expectClose(numeric[l].biases, try fx.bias(b), tol, "\(fx.name) \(b) vs central differences")
    }
}

@Suite struct GradientCheck {
    @Test(arguments: ["rows_relu_softmax_2layer", "rows_capstone_3layer_nodropout",
                      "columns_sigmoid_quadratic", "columns_binary_square"])
    func centralDifferences(_ name: String) throws { try checkFiniteDifferences(name) }
}
