import NNCommandLine
import NNCore
import NNTrain

#if canImport(Glibc)
import Glibc
#endif

/// Renders training progress: a bar redrawn in place on a terminal, plain lines otherwise.
public final class TrainingProgressPrinter {
    let interactive: Bool
    public init() { interactive = isatty(2) == 1 }

    public func batch(_ p: BatchProgress) {
        guard interactive else { return }
        let width = 30
        let filled = p.batches == 0 ? width : width * p.batch / p.batches
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        let line = "\rEpoch \(p.epoch)/\(p.epochs) [\(bar)] \(p.batch)/\(p.batches) loss \(formatDecimal(p.runningLoss, digits: 4)) \(Int(p.imagesPerSecond)) img/s ETA \(formatDecimal(p.secondsRemainingInEpoch, digits: 1)) s "
        printError(line, newline: false)
    }

    public func epoch(_ r: EpochRecord, epochs: Int) {
        if interactive { printError("\r\u{1B}[K", newline: false) }
        var line = "epoch \(r.epoch)/\(epochs): train loss \(formatDecimal(r.trainLoss ?? .nan, digits: 4))"
        if let a = r.trainAccuracy { line += ", train accuracy \(formatDecimal(a * 100, digits: 2)) %" }
        if let l = r.testLoss, let a = r.testAccuracy { line += ", test loss \(formatDecimal(l, digits: 4)), test accuracy \(formatDecimal(a * 100, digits: 2)) %" }
        if let l = r.validationLoss, let a = r.validationAccuracy { line += ", validation loss \(formatDecimal(l, digits: 4)), accuracy \(formatDecimal(a * 100, digits: 2)) %" }
        line += ", \(formatDecimal(r.seconds ?? 0, digits: 2)) s"
        print(line)
    }
}
