/// The bounds the pickle machine keeps, so that no input can make it allocate without limit or
/// recurse without limit. Input bytes need no bound of their own: the caller passes the data,
/// nothing is read past its end, and every length field is checked against the bytes that
/// remain before anything is allocated for it.
public struct PickleLimits: Equatable, Sendable {
    /// Memo entries (PUT, BINPUT, LONG_BINPUT, MEMOIZE with distinct indices). Python's pickler
    /// stores one per container and string, so a state dict uses a few per tensor. The memo is a
    /// dictionary, as in Python: a PUT at index 2^32 - 1 costs one entry, and a GET of an index
    /// never stored is an error.
    public var maxMemoEntries: Int
    /// Values on the stack at once. Python's pickler leaves at most 1,000 items between a MARK and
    /// APPENDS/SETITEMS; only a tuple is written whole.
    public var maxStackDepth: Int
    /// Open MARKs at once; each nested container under construction holds one.
    public var maxMarkDepth: Int
    /// Containers within containers in the result (a tensor record in a whole pickled model is
    /// about 15 deep, plus 3 per level of submodules).
    public var maxNestingDepth: Int
    /// Values created by the opcodes, and values in the result counting each shared value at every
    /// place it appears (a memo entry read twice counts twice).
    public var maxValues: Int
    /// Bytes of one integer (LONG1, LONG4, or the digits of INT and LONG, about 2.4 per byte).
    public var maxLongBytes: Int

    /// 1 Mi memo entries, 1 Mi stack values, 1,024 marks, nesting 200, 8 Mi values, 64-byte integers.
    public static let `default` = PickleLimits(maxMemoEntries: 1 << 20, maxStackDepth: 1 << 20, maxMarkDepth: 1024,
                                               maxNestingDepth: 200, maxValues: 1 << 23, maxLongBytes: 64)

    public init(maxMemoEntries: Int, maxStackDepth: Int, maxMarkDepth: Int, maxNestingDepth: Int,
                maxValues: Int, maxLongBytes: Int) {
        self.maxMemoEntries = maxMemoEntries
        self.maxStackDepth = maxStackDepth
        self.maxMarkDepth = maxMarkDepth
        self.maxNestingDepth = maxNestingDepth
        self.maxValues = maxValues
        self.maxLongBytes = maxLongBytes
    }
}
