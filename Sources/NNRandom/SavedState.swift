extension NumPyRandomState {
    /// The whole stream position as integers, for storing in a checkpoint: the 624 key words,
    /// the position in the block, a flag for a cached normal and that normal's bit pattern.
    /// (The binomial set-up cache holds only values derived from n and p, so it is not saved.)
    public var savedState: [Int64] {
        generator.key.map { Int64($0) } + [Int64(generator.position), cachedGauss == nil ? 0 : 1,
                                           Int64(bitPattern: (cachedGauss ?? 0).bitPattern)]
    }

    /// Restores a state from `savedState`; nil if the values cannot be one.
    public init?(savedState s: [Int64]) {
        let n = MT19937.stateSize
        guard s.count == n + 3, s[0..<n].allSatisfy({ (0...Int64(UInt32.max)).contains($0) }),
              (0...Int64(n)).contains(s[n]), s[n + 1] == 0 || s[n + 1] == 1 else { return nil }
        self.init(seed: 0)
        generator.key = s[0..<n].map { UInt32($0) }
        generator.position = Int(s[n])
        cachedGauss = s[n + 1] == 1 ? Double(bitPattern: UInt64(bitPattern: s[n + 2])) : nil
    }
}
