/// Which globals (`module.name`) a pickle may name. Every GLOBAL, STACK_GLOBAL and INST is
/// checked the moment it is read; anything else ends the reading with
/// `PickleError.refusedGlobal`. Nothing is ever imported or called either way: the policy only
/// decides which names a caller is prepared to interpret.
///
/// Names are checked after Python's protocol-2 renaming (`__builtin__` is `builtins`,
/// `copy_reg` is `copyreg`), as Python itself resolves them.
public struct PickleGlobalPolicy: Sendable {
    private let test: @Sendable (_ module: String, _ name: String) -> Bool

    /// A policy that asks `test` for each global.
    public init(allowing test: @escaping @Sendable (_ module: String, _ name: String) -> Bool) {
        self.test = test
    }

    /// A policy that allows exactly the dotted names in `names`, e.g. "collections.OrderedDict".
    public init(allowing names: Set<String>) {
        self.test = { module, name in names.contains("\(module).\(name)") }
    }

    /// No globals at all: plain data only (numbers, strings, containers, persistent ids).
    public static let nothing = PickleGlobalPolicy { _, _ in false }

    /// Whether the global `module.name` may appear.
    public func allows(module: String, name: String) -> Bool { test(module, name) }

    /// The globals either policy allows.
    public func union(_ other: PickleGlobalPolicy) -> PickleGlobalPolicy {
        PickleGlobalPolicy { module, name in self.allows(module: module, name: name) || other.allows(module: module, name: name) }
    }
}
