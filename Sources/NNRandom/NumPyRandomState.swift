#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A bit-exact replica of NumPy's legacy `np.random.RandomState` (the generator behind
/// `np.random.seed`, `np.random.rand`, `np.random.randn`, `np.random.permutation`, ...).
///
/// After `NumPyRandomState(seed: S)` every method returns exactly what the NumPy call of the same
/// name returns after `np.random.seed(S)`, draw for draw, as long as the same sequence of calls is
/// made. Array-valued NumPy calls (`randn(2, 3)`, `binomial(1, p, size=shape)`) fill their result
/// in C (row-major) order, so the `count:` variants here return the same values in the same order.
///
/// The legacy stream is frozen by NumPy's compatibility policy, which is why matching it is
/// worth doing: blog code that calls `np.random.seed(1)` gets the same numbers on every NumPy
/// version since 1.x.
///
/// Copying the struct forks the stream: both copies continue with identical draws.
///
/// Normals and BTPE binomials call the C library's `log`, as NumPy's C code does; they are
/// bit-identical to NumPy when both use the same libm (glibc here). Uniforms, integers and
/// permutations use no libm at all; small-mean binomials (dropout masks) only in their
/// per-distribution constant q^n = exp(n log q).
public struct NumPyRandomState: Sendable {
    /// The underlying bit generator.
    public internal(set) var generator: MT19937
    /// The second value of the last polar-method pair, handed out by the next normal draw
    /// (NumPy's `has_gauss` / `gauss`). `nil` when no value is waiting.
    var cachedGauss: Double?
    /// Set-up constants of the last binomial distribution sampled (NumPy's `binomial_t`).
    var binomialCache: BinomialCache?

    /// The state after `np.random.seed(seed)` for an integer seed.
    ///
    /// NumPy accepts integers in 0...2**32-1, which is exactly `UInt32`.
    public init(seed: UInt32) {
        generator = MT19937(seed: seed)
    }

    /// The state after `np.random.seed([a, b, ...])` for a 1-d array of integers in 0...2**32-1.
    /// - Precondition: `seedArray` is not empty.
    public init(seedArray: [UInt32]) {
        generator = MT19937(seedArray: seedArray)
    }

    /// A state seeded from the system's entropy, for runs that need no NumPy parity.
    ///
    /// The generator is the same Mersenne Twister (a few nanoseconds a draw, so there is no need
    /// for a separate "fast" generator); 128 bits of entropy go through `init_by_array`.
    public static func systemSeeded() -> NumPyRandomState {
        var system = SystemRandomNumberGenerator()
        return NumPyRandomState(seedArray: (0..<4).map { _ in UInt32(truncatingIfNeeded: system.next()) })
    }

    // MARK: Raw draws

    /// The next raw 32-bit output of the Mersenne Twister.
    public mutating func nextUInt32() -> UInt32 {
        generator.nextUInt32()
    }

    // MARK: Uniform

    /// One uniform double in [0, 1): `np.random.rand()` / `np.random.random_sample()`.
    public mutating func uniform() -> Double {
        generator.nextDouble()
    }

    /// One uniform double in [low, high): `np.random.uniform(low, high)`, computed as NumPy does,
    /// `low + (high - low) * u`.
    public mutating func uniform(low: Double, high: Double) -> Double {
        low + (high - low) * generator.nextDouble()
    }

    /// `count` uniform doubles in [0, 1): `np.random.rand(count)`.
    public mutating func rand(count: Int) -> [Double] {
        precondition(count >= 0, "NumPyRandomState.rand: negative count")
        return [Double](unsafeUninitializedCapacity: count) { buffer, initialized in
            for i in 0..<count { buffer[i] = generator.nextDouble() }
            initialized = count
        }
    }

    // MARK: Normal

    /// One standard normal deviate: `np.random.randn()` / `np.random.standard_normal()`.
    ///
    /// NumPy's legacy method is Marsaglia's polar method: it draws a point in the unit disc and
    /// turns it into two independent normals, returns the second and keeps the first for the next
    /// call. The kept value survives intervening uniform or integer draws (but not re-seeding), so
    /// odd-sized `randn` calls shift the pairing of later ones exactly as in NumPy.
    public mutating func standardNormal() -> Double {
        if let cached = cachedGauss {
            cachedGauss = nil
            return cached
        }
        var x1: Double
        var x2: Double
        var r2: Double
        repeat {
            x1 = 2.0 * generator.nextDouble() - 1.0
            x2 = 2.0 * generator.nextDouble() - 1.0
            r2 = x1 * x1 + x2 * x2
        } while r2 >= 1.0 || r2 == 0.0
        // libm's log and the IEEE square root, as in NumPy's C code, so the results agree to the bit.
        let f = (-2.0 * log(r2) / r2).squareRoot()
        cachedGauss = f * x1
        return f * x2
    }

    /// One normal deviate with the given mean and standard deviation: `np.random.normal(loc, scale)`,
    /// computed as NumPy does, `loc + scale * z`.
    public mutating func normal(mean: Double, standardDeviation: Double) -> Double {
        mean + standardDeviation * standardNormal()
    }

    /// `count` standard normal deviates: `np.random.randn(count)`, or `np.random.randn(rows, cols)`
    /// in row-major order for `count == rows * cols`.
    public mutating func randn(count: Int) -> [Double] {
        precondition(count >= 0, "NumPyRandomState.randn: negative count")
        return [Double](unsafeUninitializedCapacity: count) { buffer, initialized in
            for i in 0..<count { buffer[i] = standardNormal() }
            initialized = count
        }
    }

    /// Overwrites every element, in order, with a standard normal deviate (the same values as
    /// `randn(count: buffer.count)`).
    public mutating func fill(standardNormal buffer: UnsafeMutableBufferPointer<Double>) {
        for i in buffer.indices { buffer[i] = standardNormal() }
    }

    /// Overwrites every element, in collection order, with a standard normal deviate.
    public mutating func fill<C: MutableCollection>(standardNormal values: inout C) where C.Element == Double {
        var index = values.startIndex
        while index != values.endIndex {
            values[index] = standardNormal()
            values.formIndex(after: &index)
        }
    }

    // MARK: Integers

    /// A uniform integer in 0...max by masked rejection sampling (NumPy's `random_interval`).
    ///
    /// Draws are masked to the smallest all-ones bit pattern covering `max` and rejected until one
    /// is in range; a 32-bit draw is used when `max` fits in 32 bits, else a 64-bit one.
    mutating func randomInterval(_ max: UInt64) -> UInt64 {
        if max == 0 { return 0 }
        let mask = NumPyRandomState.coveringMask(max)
        if max <= UInt64(UInt32.max) {
            let max32 = UInt32(max)
            let mask32 = UInt32(mask)
            while true {
                let value = generator.nextUInt32() & mask32
                if value <= max32 { return UInt64(value) }
            }
        }
        while true {
            let value = generator.nextUInt64() & mask
            if value <= max { return value }
        }
    }

    /// The smallest 2**k - 1 that is >= `value`.
    static func coveringMask(_ value: UInt64) -> UInt64 {
        var mask = value
        mask |= mask >> 1
        mask |= mask >> 2
        mask |= mask >> 4
        mask |= mask >> 8
        mask |= mask >> 16
        mask |= mask >> 32
        return mask
    }

    /// A uniform integer in low..<high: `np.random.randint(low, high)` (default `dtype=int`,
    /// which is int64 on Linux and macOS).
    ///
    /// Legacy NumPy draws `low + v` with `v` uniform in 0...(high - 1 - low) by masked rejection:
    /// 32-bit draws when that range fits in 32 bits, one raw 32-bit draw when it is exactly
    /// 2**32 - 1, otherwise 64-bit draws. Nothing is drawn when `high == low + 1`.
    /// - Precondition: `low < high` (NumPy raises "low >= high").
    public mutating func randint(low: Int, high: Int) -> Int {
        precondition(low < high, "NumPyRandomState.randint: low >= high")
        // The inclusive width, computed in UInt64 because it can exceed Int.max.
        let range = UInt64(truncatingIfNeeded: high) &- 1 &- UInt64(truncatingIfNeeded: low)
        // NumPy's bounded-integer fill special-cases a range of exactly 2**32 - 1 as one raw 32-bit
        // draw, which is also what masked rejection does with an all-ones mask, so random_interval
        // covers every case.
        return Int(truncatingIfNeeded: UInt64(truncatingIfNeeded: low) &+ randomInterval(range))
    }

    /// `count` uniform integers in low..<high: `np.random.randint(low, high, size=count)`.
    /// - Precondition: `low < high`.
    public mutating func randint(low: Int, high: Int, count: Int) -> [Int] {
        precondition(count >= 0, "NumPyRandomState.randint: negative count")
        return (0..<count).map { _ in randint(low: low, high: high) }
    }

    // MARK: Permutations

    /// A random permutation of 0..<n: `np.random.permutation(n)`.
    ///
    /// NumPy shuffles `arange(n)` in place, so this is ``shuffle(_:)`` applied to `Array(0..<n)`.
    public mutating func permutation(_ n: Int) -> [Int] {
        precondition(n >= 0, "NumPyRandomState.permutation: negative n")
        var values = Array(0..<n)
        shuffle(&values)
        return values
    }

    /// Shuffles a collection in place exactly as `np.random.shuffle(x)` shuffles a list or 1-d array.
    ///
    /// Legacy NumPy runs Fisher-Yates from the end: for i = n-1 down to 1 it swaps element i with
    /// element j = random_interval(i). To shuffle the rows of a matrix as NumPy does for a 2-d
    /// array, shuffle an index array (or use ``permutation(_:)``) and gather the rows.
    public mutating func shuffle<C: MutableCollection & RandomAccessCollection>(_ values: inout C) {
        let n = values.count
        guard n > 1 else { return }
        for offset in stride(from: n - 1, through: 1, by: -1) {
            let j = Int(randomInterval(UInt64(offset)))
            let a = values.index(values.startIndex, offsetBy: offset)
            let b = values.index(values.startIndex, offsetBy: j)
            values.swapAt(a, b)
        }
    }

    /// Random indices in 0..<n: `np.random.choice(n, size=count, replace=replace)` without `p`.
    ///
    /// With replacement NumPy draws `randint(0, n, size)`; without it takes the first `count`
    /// entries of a full `permutation(n)` (so it always consumes the draws of a whole shuffle).
    /// - Precondition: `n > 0`, and `count <= n` when `replace` is false.
    public mutating func choice(_ n: Int, count: Int, replace: Bool = true) -> [Int] {
        precondition(n > 0, "NumPyRandomState.choice: n must be positive")
        precondition(count >= 0, "NumPyRandomState.choice: negative count")
        if replace {
            return randint(low: 0, high: n, count: count)
        }
        precondition(count <= n, "NumPyRandomState.choice: cannot take a larger sample than population when replace is false")
        return Array(permutation(n).prefix(count))
    }
}
