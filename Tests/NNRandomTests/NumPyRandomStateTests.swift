import Foundation
import Testing
@testable import NNRandom

/// 64-bit FNV-1a over the little-endian bytes of each value, the checksum the Python side used.
func fnv1a<S: Sequence>(_ values: S) -> UInt64 where S.Element: FixedWidthInteger {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for value in values {
        var word = UInt64(truncatingIfNeeded: Int64(truncatingIfNeeded: value)).littleEndian
        for _ in 0..<8 {
            hash ^= word & 0xff
            hash = hash &* 0x0000_0100_0000_01b3
            word >>= 8
        }
    }
    return hash
}

/// FNV-1a over the IEEE bit patterns of doubles.
func fnv1a(_ values: [Double]) -> UInt64 {
    fnv1a(values.map { Int64(bitPattern: $0.bitPattern) })
}

@Suite("Mersenne Twister and seeding")
struct SeedingTests {
    @Test("raw 32-bit outputs match numpy for seeds 0, 1, 42, 2**32-1")
    func rawOutputs() {
        for (seed, expected) in zip(NumPyExpected.seeds, NumPyExpected.rawUInt32) {
            var mt = MT19937(seed: seed)
            #expect((0..<expected.count).map { _ in mt.nextUInt32() } == expected, "seed \(seed)")
            var state = NumPyRandomState(seed: seed)
            #expect((0..<expected.count).map { _ in state.randint(low: 0, high: 1 << 32) } == expected.map(Int.init))
        }
    }

    @Test("the published MT19937 reference output for seed 5489")
    func reference() {
        var mt = MT19937(seed: 5489)
        #expect(mt.nextUInt32() == 3_499_211_612)
        var again = MT19937(seed: 5489)
        #expect((0..<3).map { _ in again.nextUInt32() } == NumPyExpected.reference5489)
    }

    @Test("array seeds use init_by_array, as np.random.seed([1, 2, 3]) does")
    func arraySeeds() {
        var state = NumPyRandomState(seedArray: [1, 2, 3])
        #expect(state.rand(count: 3) == NumPyExpected.seedArray123)
        var zero = NumPyRandomState(seedArray: [0])
        #expect(zero.rand(count: 2) == NumPyExpected.seedArray0)
        var scalarZero = NumPyRandomState(seed: 0)
        #expect(scalarZero.uniform() != NumPyExpected.seedArray0[0])
    }

    @Test("64-bit draws put the first 32-bit draw in the high half (randint dtype=uint64)")
    func uint64Draws() {
        var mt = MT19937(seed: 3)
        #expect((0..<3).map { _ in mt.next() } == NumPyExpected.uint64Draws)
    }

    @Test("system seeding gives a working, unrepeatable stream")
    func systemSeeded() {
        var a = NumPyRandomState.systemSeeded()
        var b = NumPyRandomState.systemSeeded()
        let drawsA = a.rand(count: 4)
        #expect(drawsA.allSatisfy { $0 >= 0 && $0 < 1 })
        // 128 bits of entropy each: equal streams would mean the entropy source is broken.
        #expect(drawsA != b.rand(count: 4))
    }

    @Test("a copy continues the same stream independently")
    func copyForks() {
        var a = NumPyRandomState(seed: 5)
        _ = a.standardNormal()  // leaves a cached gauss behind, which must be copied too
        var b = a
        let fromA = a.randn(count: 700) + a.rand(count: 3)
        let fromB = b.randn(count: 700) + b.rand(count: 3)
        #expect(fromA == fromB)
    }
}

@Suite("Uniform and normal draws")
struct ContinuousTests {
    @Test("rand(5) for seeds 0, 1, 42, 2**32-1")
    func rand() {
        for (seed, expected) in zip(NumPyExpected.seeds, NumPyExpected.rand5) {
            var state = NumPyRandomState(seed: seed)
            #expect(state.rand(count: 5) == expected, "seed \(seed)")
            var scalar = NumPyRandomState(seed: seed)
            #expect((0..<5).map { _ in scalar.uniform() } == expected)
        }
    }

    @Test("randn(7), rand(2), randn(3): the cached second polar value survives uniform draws")
    func randnWithCachedGauss() {
        for (seed, expected) in zip(NumPyExpected.seeds, NumPyExpected.randn7rand2randn3) {
            var state = NumPyRandomState(seed: seed)
            let values = state.randn(count: 7) + state.rand(count: 2) + state.randn(count: 3)
            #expect(values == expected, "seed \(seed)")
        }
    }

    @Test("fill(standardNormal:) gives the same values as randn(count:)")
    func fillHelpers() {
        var a = NumPyRandomState(seed: 1)
        var b = NumPyRandomState(seed: 1)
        var c = NumPyRandomState(seed: 1)
        var array = [Double](repeating: .nan, count: 11)
        a.fill(standardNormal: &array)
        var viaPointer = [Double](repeating: .nan, count: 11)
        viaPointer.withUnsafeMutableBufferPointer { b.fill(standardNormal: $0) }
        #expect(array == c.randn(count: 11))
        #expect(Array(array.prefix(7)) == Array(NumPyExpected.randn7rand2randn3[1].prefix(7)))
        #expect(viaPointer == array)
    }

    @Test("uniform(-1, 1) and normal(2, 0.5) use NumPy's low + range * u and loc + scale * z")
    func scaled() {
        var state = NumPyRandomState(seed: 11)
        #expect((0..<5).map { _ in state.uniform(low: -1, high: 1) } == NumPyExpected.uniformMinus1To1)
        #expect((0..<5).map { _ in state.normal(mean: 2.0, standardDeviation: 0.5) } == NumPyExpected.normal2Half)
    }

    @Test("200k normals match numpy and take milliseconds")
    func manyNormals() {
        var state = NumPyRandomState(seed: 0)
        let clock = ContinuousClock()
        var values: [Double] = []
        let elapsed = clock.measure { values = state.randn(count: 200_000) }
        #expect(fnv1a(values) == NumPyExpected.normals200k.hash)
        #expect(values.last == NumPyExpected.normals200k.last)
        // Generous so that debug builds on a loaded shared machine pass; release takes a few ms.
        #expect(elapsed < .seconds(2), "200k normals took \(elapsed)")
    }
}

@Suite("Integers, permutations and shuffles")
struct DiscreteTests {
    @Test("permutation(10) for seeds 0, 1, 42, 2**32-1")
    func permutation10() {
        for (seed, expected) in zip(NumPyExpected.seeds, NumPyExpected.permutation10) {
            var state = NumPyRandomState(seed: seed)
            #expect(state.permutation(10) == expected, "seed \(seed)")
        }
    }

    @Test("permutation(1000) checksums")
    func permutation1000() {
        for (seed, expected) in zip(NumPyExpected.seeds, NumPyExpected.permutation1000) {
            var state = NumPyRandomState(seed: seed)
            let p = state.permutation(1000)
            #expect(Array(p.prefix(5)) == expected.first, "seed \(seed)")
            #expect(fnv1a(p) == expected.hash, "seed \(seed)")
            #expect(p.sorted() == Array(0..<1000))
        }
    }

    @Test("shuffle of a list and of a double array, and the trivial cases")
    func shuffle() {
        var state = NumPyRandomState(seed: 42)
        var values = Array(0..<20)
        state.shuffle(&values)
        #expect(values == NumPyExpected.shuffle20)

        var doubles = NumPyRandomState(seed: 42)
        var y = (0..<7).map { Double($0) * 0.5 }
        doubles.shuffle(&y)
        #expect(y == NumPyExpected.shuffleDoubles)

        // Shuffling a slice works on its own indices.
        var sliceState = NumPyRandomState(seed: 42)
        var padded = [-1] + Array(0..<20) + [-1]
        sliceState.shuffle(&padded[1..<21])
        #expect(padded == [-1] + NumPyExpected.shuffle20 + [-1])

        // Nothing is drawn for fewer than two elements, and permutation(0) is empty.
        var untouched = NumPyRandomState(seed: 1)
        var single = [7]
        untouched.shuffle(&single)
        #expect(untouched.permutation(0) == [])
        #expect(untouched.permutation(1) == [0])
        #expect(untouched.uniform() == NumPyExpected.rand5[1][0])
    }

    @Test("randint over small, negative, 40-bit, full 64-bit and just-over-32-bit ranges")
    func randint() {
        var state = NumPyRandomState(seed: 7)
        var values = state.randint(low: 0, high: 10, count: 10)
        values += (0..<4).map { _ in state.randint(low: -5, high: 5) }
        values += (0..<3).map { _ in state.randint(low: 0, high: 1 << 40) }
        values += (0..<3).map { _ in state.randint(low: .min, high: .max) }
        values.append(state.randint(low: 3, high: 4))
        values += (0..<3).map { _ in state.randint(low: 0, high: (1 << 32) + 1) }
        #expect(values == NumPyExpected.randintMix)
        #expect(state.uniform() == NumPyExpected.randintMixTail)
    }

    @Test("choice with and without replacement, as 003's sample-image cell uses it")
    func choice() {
        var state = NumPyRandomState(seed: 1)
        #expect(state.choice(12665, count: 5, replace: false) == NumPyExpected.choice.withoutReplacement)
        #expect(state.choice(100, count: 7) == NumPyExpected.choice.withReplacement)
    }
}

@Suite("Binomial draws")
struct BinomialTests {
    @Test("dropout masks: binomial(1, 0.8, size=40) for seeds 0, 1, 42, 2**32-1")
    func dropoutMasks() {
        for (seed, expected) in zip(NumPyExpected.seeds, NumPyExpected.binomial1p08) {
            var state = NumPyRandomState(seed: seed)
            #expect(state.binomial(n: 1, p: 0.8, count: 40) == expected, "seed \(seed)")
            // Each element is 1 - B(1, 0.2) by inversion: one uniform, kept when it is at most
            // P(B = 0) = exp(1 * log(1 - 0.2)), which is the double 0.8.
            var uniforms = NumPyRandomState(seed: seed)
            #expect((0..<40).map { _ in uniforms.uniform() <= 0.8 ? 1 : 0 } == expected)
        }
    }

    @Test("inversion and BTPE over many (n, p), including the draws n = 0 and p = 0 consume")
    func cases() {
        for expected in NumPyExpected.binomialCases {
            var state = NumPyRandomState(seed: 2024)
            let values = state.binomial(n: expected.n, p: expected.p, count: 2000)
            #expect(Array(values.prefix(6)) == expected.first, "n \(expected.n) p \(expected.p)")
            #expect(fnv1a(values) == expected.hash, "n \(expected.n) p \(expected.p)")
            #expect(state.uniform() == expected.next, "n \(expected.n) p \(expected.p): draws consumed")
        }
    }

    @Test("alternating parameters switch the cached set-up between the two algorithms")
    func alternatingParameters() {
        var state = NumPyRandomState(seed: 9)
        let values = [
            state.binomial(n: 1, p: 0.8), state.binomial(n: 1000, p: 0.5), state.binomial(n: 1, p: 0.8),
            state.binomial(n: 1000, p: 0.5), state.binomial(n: 50, p: 0.5), state.binomial(n: 1, p: 0.8),
        ]
        #expect(values == NumPyExpected.binomialScalarMix)
    }
}

@Suite("Blog parity")
struct BlogParityTests {
    @Test("002-style run: init weights, shuffle, dropout mask, odd randn, more weights, reshuffle")
    func trainingFlow() {
        let expected = NumPyExpected.blogFlow
        var state = NumPyRandomState(seed: 1)
        let w1 = state.randn(count: 784 * 256).map { $0 * 0.01 }
        #expect(Array(w1.prefix(3)) == expected.w1First)
        #expect(fnv1a(w1) == expected.w1)
        #expect(fnv1a(state.permutation(5000)) == expected.permutation)
        let mask = state.binomial(n: 1, p: 0.8, count: 64 * 256)
        #expect(fnv1a(mask) == expected.mask)
        #expect(mask.reduce(0, +) == expected.maskOnes)
        #expect(state.randn(count: 3) == expected.odd)
        #expect(fnv1a(state.randn(count: 256 * 128).map { $0 * 0.01 }) == expected.w2)
        #expect(fnv1a(state.permutation(5000)) == expected.permutation2)
    }

    @Test("003: np.random.seed(1); X, Y, then W1 = randn(n_h, n_x)/sqrt(n_x), W2 = randn(n_y, n_h)/sqrt(n_h)")
    func homework003() {
        let expected = NumPyExpected.seed003
        var state = NumPyRandomState(seed: 1)
        let (nX, nH, nY) = (2, 10, 1)
        let x = state.randn(count: nX * 3)
        let y = state.randn(count: nY * 3)
        let w1 = state.randn(count: nH * nX).map { $0 / Double(nX).squareRoot() }
        let w2 = state.randn(count: nY * nH).map { $0 / Double(nH).squareRoot() }
        #expect(x == expected.x)
        #expect(y == expected.y)
        #expect(w1 == expected.w1)
        #expect(w2 == expected.w2)

        // The values the notebook printed (8 significant decimals), row-major W1 (10, 2) and W2 (1, 10).
        let printedW1: [Double] = [
            -0.17633148, 1.03386644, -1.45673947, -0.22798339, -0.27156744, 0.80169606, -0.77774057, -0.12192515,
            -0.62073964, 0.02984963, 0.41211259, -0.77825528, 0.8094419, 0.63752091, 0.35531715, 0.63700135,
            -0.48346861, -0.08689651, -0.66168891, -0.18942548,
        ]
        let printedW2: [Double] = [
            0.16771312, -0.21872233, -0.12546448, -0.21730309, -0.26727749, -0.21226666, -0.0040049, -0.35332456,
            0.07412875, 0.52487553,
        ]
        for (value, printed) in zip(w1 + w2, printedW1 + printedW2) {
            #expect(abs(value - printed) <= 5e-9, "\(value) printed as \(printed)")
        }
    }
}
