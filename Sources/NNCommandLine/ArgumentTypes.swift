import ArgumentParser
import NNCore
import NNImage

// Choices more than one tool takes, as argument types: ArgumentParser lists them in --help and
// refuses others before anything runs.
extension WeightLayout: ExpressibleByArgument {}
extension PreprocessMode: ExpressibleByArgument {}
