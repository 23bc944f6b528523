#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Set-up constants of one binomial distribution, kept between draws as NumPy's `binomial_t` is.
///
/// NumPy recomputes them whenever (n, p) changes. Recomputing is deterministic, so the cache only
/// saves time; it never changes a value. Which algorithm runs is a function of (n, p) alone, so a
/// cache filled by one algorithm is never read by the other (NumPy shares one struct between them).
enum BinomialCache: Sendable {
    case inversion(InversionConstants)
    case btpe(BTPEConstants)
}

/// Constants of the inversion sampler for (n, p).
struct InversionConstants: Sendable {
    let n: Int
    let p: Double
    let q: Double
    /// P(X = 0) = q^n, the starting probability of the search.
    let qn: Double
    /// The mean n p.
    let np: Double
    /// The search gives up and restarts past this many successes (about mean + 10 sd).
    let bound: Int

    init(n: Int, p: Double) {
        self.n = n
        self.p = p
        q = 1.0 - p
        qn = exp(Double(n) * log(q))
        np = Double(n) * p
        bound = Int(min(Double(n), np + 10.0 * (np * q + 1).squareRoot()))
    }
}

/// Constants of Kachitvichyanukul and Schmeiser's BTPE sampler for (n, p), p <= 0.5.
struct BTPEConstants: Sendable {
    let n: Int
    let p: Double
    let r: Double
    let q: Double
    let fm: Double
    /// The mode.
    let m: Int
    let p1: Double
    let xm: Double
    let xl: Double
    let xr: Double
    let c: Double
    let laml: Double
    let lamr: Double
    let p2: Double
    let p3: Double
    let p4: Double

    init(n: Int, p: Double) {
        self.n = n
        self.p = p
        let dn = Double(n)
        r = min(p, 1.0 - p)
        q = 1.0 - r
        fm = dn * r + r
        m = Int(fm.rounded(.down))
        p1 = (2.195 * (dn * r * q).squareRoot() - 4.6 * q).rounded(.down) + 0.5
        xm = Double(m) + 0.5
        xl = xm - p1
        xr = xm + p1
        c = 0.134 + 20.5 / (15.3 + Double(m))
        var a = (fm - xl) / (fm - xl * r)
        laml = a * (1.0 + a / 2.0)
        a = (xr - fm) / (xr * q)
        lamr = a * (1.0 + a / 2.0)
        p2 = p1 * (1.0 + 2.0 * c)
        p3 = p2 + c / laml
        p4 = p3 + c / lamr
    }
}

extension NumPyRandomState {
    /// One binomial deviate, the number of successes in `n` trials of probability `p`:
    /// `np.random.binomial(n, p)`.
    ///
    /// This is NumPy's legacy sampler: the distribution is mirrored so that the success probability
    /// is at most 0.5 (`p > 0.5` samples `n - B(n, 1 - p)`), then a mean of at most 30 uses
    /// sequential inversion (one uniform per attempt) and a larger one uses BTPE. Unlike NumPy's
    /// newer `Generator`, the legacy code has no shortcut for `n == 0` or `p == 0`: those still
    /// consume one uniform draw, and so do they here.
    ///
    /// The blog's dropout mask `np.random.binomial(1, 0.8, size=shape)` is
    /// `binomial(n: 1, p: 0.8, count: shape.product)`: each element is `1 - B(1, 0.2)` by inversion,
    /// costs exactly one uniform and is 1 when that uniform is at most `exp(log(1 - 0.2))`, which is
    /// the double 0.8.
    /// - Precondition: `n >= 0` and `0 <= p <= 1` (NumPy raises ValueError otherwise).
    public mutating func binomial(n: Int, p: Double) -> Int {
        NumPyRandomState.checkBinomial(n: n, p: p)
        // p > 0.5 samples the mirror image, as NumPy does.
        let (pp, mirrored) = p <= 0.5 ? (p, false) : (1.0 - p, true)
        let x: Int
        if Double(n) * pp <= 30.0 {
            let constants = inversionConstants(n: n, p: pp)
            x = sampleInversion(constants)
        } else {
            let constants = btpeConstants(n: n, p: pp)
            x = sampleBTPE(constants)
        }
        return mirrored ? n - x : x
    }

    /// `count` binomial deviates: `np.random.binomial(n, p, size=count)` (or any shape with that
    /// many elements, in row-major order).
    ///
    /// The same draws as `count` calls of ``binomial(n:p:)``; the set-up is looked up once.
    public mutating func binomial(n: Int, p: Double, count: Int) -> [Int] {
        NumPyRandomState.checkBinomial(n: n, p: p)
        precondition(count >= 0, "NumPyRandomState.binomial: negative count")
        let (pp, mirrored) = p <= 0.5 ? (p, false) : (1.0 - p, true)
        return [Int](unsafeUninitializedCapacity: count) { buffer, initialized in
            if n == 1 {
                // Bernoulli: the dropout masks. The inversion search unrolled for one trial, on a
                // local copy of the generator (a closure's access to `self` is checked per draw).
                let constants = inversionConstants(n: n, p: pp)
                var generator = self.generator
                for i in 0..<count {
                    let x = Self.sampleInversionOfOneTrial(constants, &generator)
                    buffer[i] = mirrored ? 1 - x : x
                }
                self.generator = generator
            } else if Double(n) * pp <= 30.0 {
                let constants = inversionConstants(n: n, p: pp)
                for i in 0..<count {
                    let x = sampleInversion(constants)
                    buffer[i] = mirrored ? n - x : x
                }
            } else {
                let constants = btpeConstants(n: n, p: pp)
                for i in 0..<count {
                    let x = sampleBTPE(constants)
                    buffer[i] = mirrored ? n - x : x
                }
            }
            initialized = count
        }
    }

    /// NumPy's argument checks (it raises ValueError; here they are programming errors).
    static func checkBinomial(n: Int, p: Double) {
        precondition(n >= 0, "NumPyRandomState.binomial: n < 0")
        precondition(p >= 0 && p <= 1, "NumPyRandomState.binomial: p < 0, p > 1 or p is NaN")
    }

    /// The inversion set-up for (n, p), from the cache when the last distribution was the same.
    mutating func inversionConstants(n: Int, p: Double) -> InversionConstants {
        if case let .inversion(cached)? = binomialCache, cached.n == n, cached.p == p { return cached }
        let constants = InversionConstants(n: n, p: p)
        binomialCache = .inversion(constants)
        return constants
    }

    /// The BTPE set-up for (n, p), from the cache when the last distribution was the same.
    mutating func btpeConstants(n: Int, p: Double) -> BTPEConstants {
        if case let .btpe(cached)? = binomialCache, cached.n == n, cached.p == p { return cached }
        let constants = BTPEConstants(n: n, p: p)
        binomialCache = .btpe(constants)
        return constants
    }

    /// Sequential search: walk up the probability mass function from 0 until the uniform is used
    /// up, restarting with a fresh uniform if the walk passes `bound` (rounding can leave a tiny
    /// remainder that would otherwise never be consumed).
    mutating func sampleInversion(_ k: InversionConstants) -> Int {
        let n = k.n, p = k.p
        var x = 0
        var px = k.qn
        var u = generator.nextDouble()
        while u > px {
            x += 1
            if x > k.bound {
                x = 0
                px = k.qn
                u = generator.nextDouble()
            } else {
                u -= px
                // P(X = x) from P(X = x - 1), in the same operation order as NumPy.
                px = (Double(n - x + 1) * p * px) / (Double(x) * k.q)
            }
        }
        return x
    }

    /// `sampleInversion` for n = 1, draw for draw: 0 when the uniform is at most P(X = 0) = q,
    /// 1 when what is left is at most P(X = 1), computed with the general step's operations; else
    /// the walk would pass its bound (1 for one trial) and restart with a fresh uniform.
    @inline(__always)
    static func sampleInversionOfOneTrial(_ k: InversionConstants, _ generator: inout MT19937) -> Int {
        let p0 = k.qn
        let p1 = (Double(1) * k.p * p0) / (Double(1) * k.q)
        while true {
            let u = generator.nextDouble()
            // For u <= p0, u - p0 <= 0 <= p1 holds too: one branch that is almost always taken,
            // and a select instead of a branch that goes either way.
            if u - p0 <= p1 { return u <= p0 ? 0 : 1 }
        }
    }

    /// BTPE (Kachitvichyanukul and Schmeiser 1988): triangle, parallelograms and exponential tails
    /// as a majorizing function, with squeezes and a Stirling-series final test. The steps keep the
    /// paper's numbering, which NumPy's C code also uses, and every floating-point expression keeps
    /// NumPy's operation order so that accept/reject decisions agree to the bit.
    mutating func sampleBTPE(_ k: BTPEConstants) -> Int {
        let n = k.n, p = k.p
        let dn = Double(n)
        let r = k.r, q = k.q, m = k.m, p1 = k.p1, xm = k.xm, xl = k.xl, xr = k.xr, c = k.c
        let nrq = dn * r * q
        var y: Int
        sampling: while true {
            // Step 10: pick a region of the majorizing function.
            let u = generator.nextDouble() * k.p4
            var v = generator.nextDouble()
            if u <= p1 {
                // Inside the triangle: accept at once.
                y = Int((xm - p1 * v + u).rounded(.down))
                break sampling
            }
            if u <= k.p2 {
                // Step 20: the parallelograms.
                let x = xl + (u - p1) / c
                v = v * c + 1.0 - abs(Double(m) - x + 0.5) / p1
                if v > 1.0 { continue sampling }
                y = Int(x.rounded(.down))
            } else if u <= k.p3 {
                // Step 30: the left exponential tail. NumPy converts floor(-inf) for v == 0 and
                // then rejects; rejecting first avoids trapping on the conversion.
                if v == 0.0 { continue sampling }
                let x = (xl + log(v) / k.laml).rounded(.down)
                if x < 0 { continue sampling }
                y = Int(x)
                v = v * (u - k.p2) * k.laml
            } else {
                // Step 40: the right exponential tail (same v == 0 care). A value beyond n is
                // rejected before conversion, which also keeps absurdly large ones from trapping.
                if v == 0.0 { continue sampling }
                let x = (xr - log(v) / k.lamr).rounded(.down)
                if x > dn { continue sampling }
                y = Int(x)
                if y > n { continue sampling }
                v = v * (u - k.p3) * k.lamr
            }

            // Step 50: far from the mode use the squeeze (step 52); near it evaluate f(y)/f(m)
            // exactly by the recurrence.
            let distance = abs(y - m)
            if !(distance > 20 && Double(distance) < nrq / 2.0 - 1) {
                let s = r / q
                let a = s * Double(n + 1)
                var f = 1.0
                if m < y {
                    var i = m + 1
                    while i <= y { f *= (a / Double(i) - s); i += 1 }
                } else if m > y {
                    var i = y + 1
                    while i <= m { f /= (a / Double(i) - s); i += 1 }
                }
                if v > f { continue sampling }
                break sampling
            }

            // Step 52: squeeze on log(v) using bounds on log(f(y)/f(m)).
            let dk = Double(distance)
            let rho = (dk / nrq) * ((dk * (dk / 3.0 + 0.625) + 0.16666666666666666) / nrq + 0.5)
            // NumPy negates and squares in 64-bit integers before converting.
            let t = Double((0 &- distance) &* distance) / (2 * nrq)
            let logV = log(v)
            if logV < t - rho { break sampling }
            if logV > t + rho { continue sampling }

            // Final test against Stirling's approximation of log(f(y)/f(m)).
            let x1 = Double(y + 1)
            let f1 = Double(m + 1)
            let z = Double(n + 1 - m)
            let w = Double(n - y + 1)
            let x2 = x1 * x1
            let f2 = f1 * f1
            let z2 = z * z
            let w2 = w * w
            // Summed strictly left to right, as the single C expression is evaluated.
            var bound = xm * log(f1 / x1)
            bound += (Double(n - m) + 0.5) * log(z / w)
            bound += Double(y - m) * log(w * r / (x1 * q))
            bound += BTPEConstants.stirlingCorrection(f2) / f1 / 166_320.0
            bound += BTPEConstants.stirlingCorrection(x2) / x1 / 166_320.0
            bound += BTPEConstants.stirlingCorrection(z2) / z / 166_320.0
            bound += BTPEConstants.stirlingCorrection(w2) / w / 166_320.0
            if logV > bound { continue sampling }
            break sampling
        }
        // BTPE is only called with p <= 0.5 (the caller mirrors), so NumPy's final
        // "if p > 0.5 then y = n - y" never fires; it is kept for fidelity.
        return p > 0.5 ? n - y : y
    }
}

extension BTPEConstants {
    /// The series part of the Stirling correction, 13680 - (462 - (132 - (99 - 140/s)/s)/s)/s, for
    /// s the square of the argument.
    static func stirlingCorrection(_ square: Double) -> Double {
        13680.0 - (462.0 - (132.0 - (99.0 - 140.0 / square) / square) / square) / square
    }
}
