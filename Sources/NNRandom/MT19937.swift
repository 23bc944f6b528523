/// The 32-bit Mersenne Twister (MT19937) exactly as NumPy's `MT19937` bit generator runs it.
///
/// The state is the 624-word key plus a position; copying the struct forks the stream (the key is
/// copy-on-write), which is what a value type should do.
///
/// It also conforms to `RandomNumberGenerator` so it can drive the standard library's
/// `shuffled(using:)`, `Double.random(in:using:)` and friends. Those algorithms are Swift's, not
/// NumPy's: use ``NumPyRandomState`` wherever draws must match NumPy.
public struct MT19937: RandomNumberGenerator, Sendable {
    /// Words in the state vector.
    @usableFromInline static let stateSize = 624
    /// Distance of the "middle" word used by the recurrence.
    @usableFromInline static let shift = 397
    @usableFromInline static let matrixA: UInt32 = 0x9908_b0df
    @usableFromInline static let upperMask: UInt32 = 0x8000_0000
    @usableFromInline static let lowerMask: UInt32 = 0x7fff_ffff

    @usableFromInline var key: [UInt32]
    /// Index of the next word to temper; `stateSize` means the block is used up.
    @usableFromInline var position: Int

    /// Seeds with one 32-bit integer (Matsumoto and Nishimura's `init_genrand`).
    ///
    /// This is what `np.random.seed(S)` and `np.random.RandomState(S)` do for an integer `S`
    /// (checked against `np.random.get_state()` for 0, 1, 42 and 2**32-1).
    public init(seed: UInt32) {
        key = MT19937.genrandKey(seed)
        // NumPy leaves the position at the end so the first draw regenerates the whole block.
        position = MT19937.stateSize
    }

    /// Seeds with a vector of 32-bit words (Matsumoto and Nishimura's `init_by_array`).
    ///
    /// This is what `np.random.seed([a, b, ...])` does for a 1-d array of integers. Note that
    /// `seed([S])` and `seed(S)` give different streams.
    /// - Precondition: `seedArray` is not empty (NumPy raises "Seed must be non-empty").
    public init(seedArray: [UInt32]) {
        precondition(!seedArray.isEmpty, "MT19937: the seed array must not be empty")
        let n = MT19937.stateSize
        var mt = MT19937.genrandKey(19_650_218)
        var i = 1
        var j = 0
        // The first pass mixes every seed word in, and runs at least once over the whole state.
        for _ in 0..<max(n, seedArray.count) {
            let previous = mt[i - 1] ^ (mt[i - 1] >> 30)
            mt[i] = (mt[i] ^ (previous &* 1_664_525)) &+ seedArray[j] &+ UInt32(truncatingIfNeeded: j)
            i += 1
            j += 1
            if i >= n { mt[0] = mt[n - 1]; i = 1 }
            if j >= seedArray.count { j = 0 }
        }
        // The second pass diffuses the state once more, without the seed words.
        for _ in 0..<(n - 1) {
            let previous = mt[i - 1] ^ (mt[i - 1] >> 30)
            mt[i] = (mt[i] ^ (previous &* 1_566_083_941)) &- UInt32(truncatingIfNeeded: i)
            i += 1
            if i >= n { mt[0] = mt[n - 1]; i = 1 }
        }
        // Guarantees a non-zero state whatever the seed words were.
        mt[0] = 0x8000_0000
        key = mt
        position = n
    }

    /// The `init_genrand` linear-congruential fill of the state vector.
    static func genrandKey(_ seed: UInt32) -> [UInt32] {
        var mt = [UInt32](repeating: 0, count: stateSize)
        mt[0] = seed
        for i in 1..<stateSize {
            mt[i] = 1_812_433_253 &* (mt[i - 1] ^ (mt[i - 1] >> 30)) &+ UInt32(i)
        }
        return mt
    }

    /// Replaces all 624 words with the next block of the recurrence.
    // Out of line: it runs once per 624 draws and would only bloat the inlined draw functions.
    @usableFromInline @inline(never)
    mutating func regenerate() {
        let n = MT19937.stateSize
        let m = MT19937.shift
        key.withUnsafeMutableBufferPointer { mt in
            let words = UnsafeMutableRawPointer(mt.baseAddress!)
            // Branch-free: the matrix is XORed in exactly when the low bit of y is set.
            @inline(__always) func twist(_ upper: UInt32, _ lower: UInt32, _ far: UInt32) -> UInt32 {
                let y = (upper & MT19937.upperMask) | (lower & MT19937.lowerMask)
                return far ^ (y >> 1) ^ ((0 &- (y & 1)) & MT19937.matrixA)
            }
            // Four words at once. Word i reads words i + 1 and i + m (or i + m - n) as they are at
            // that point of the sequential loop; a group of four still does: i + 1 ... i + 4 are
            // not written yet, and i + m - n ... i + m - n + 3 were written at least m - 3 words
            // earlier.
            @inline(__always) func twist4(_ i: Int, far: Int) {
                let upper = words.loadUnaligned(fromByteOffset: i * 4, as: SIMD4<UInt32>.self)
                let lower = words.loadUnaligned(fromByteOffset: (i + 1) * 4, as: SIMD4<UInt32>.self)
                let distant = words.loadUnaligned(fromByteOffset: far * 4, as: SIMD4<UInt32>.self)
                let y = (upper & MT19937.upperMask) | (lower & MT19937.lowerMask)
                let odd = SIMD4<UInt32>(repeating: 0) &- (y & 1)
                words.storeBytes(of: distant ^ (y &>> 1) ^ (odd & MT19937.matrixA), toByteOffset: i * 4, as: SIMD4<UInt32>.self)
            }
            var i = 0
            while i + 4 <= n - m {
                twist4(i, far: i + m)
                i += 4
            }
            while i < n - m {
                mt[i] = twist(mt[i], mt[i + 1], mt[i + m])
                i += 1
            }
            while i + 4 <= n - 1 {
                twist4(i, far: i + m - n)
                i += 4
            }
            while i < n - 1 {
                mt[i] = twist(mt[i], mt[i + 1], mt[i + m - n])
                i += 1
            }
            mt[n - 1] = twist(mt[n - 1], mt[0], mt[m - 1])
        }
        position = 0
    }

    /// The next tempered 32-bit output (NumPy's `next_uint32`).
    // Always inlined: a draw is a handful of instructions and is called in every sampling loop.
    @inlinable @inline(__always)
    public mutating func nextUInt32() -> UInt32 {
        if position == MT19937.stateSize { regenerate() }
        var y = key[position]
        position += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9d2c_5680
        y ^= (y << 15) & 0xefc6_0000
        y ^= y >> 18
        return y
    }

    /// The next 64-bit output: two 32-bit draws, the first in the high half (NumPy's `next_uint64`).
    @inlinable
    public mutating func nextUInt64() -> UInt64 {
        let high = UInt64(nextUInt32())
        return (high << 32) | UInt64(nextUInt32())
    }

    /// A double in [0, 1) with 53 random bits from two draws: 27 high bits, then 26 low bits
    /// (NumPy's `next_double`, the same as CPython's `random.random()`).
    // Always inlined: a draw is a handful of instructions and is called in every sampling loop.
    @inlinable @inline(__always)
    public mutating func nextDouble() -> Double {
        let a = Double(nextUInt32() >> 5)
        let b = Double(nextUInt32() >> 6)
        // Times 2^-53 rather than divided by 2^53: scaling by a power of two is exact either way,
        // and a multiplication costs a fraction of a division.
        return (a * 67_108_864.0 + b) * 0x1p-53
    }

    /// `RandomNumberGenerator` requirement; the same as ``nextUInt64()``.
    @inlinable
    public mutating func next() -> UInt64 { nextUInt64() }
}
