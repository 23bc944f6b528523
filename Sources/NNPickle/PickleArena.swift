/// The values a running pickle has built, as nodes that refer to each other by index.
///
/// Python's containers are shared and can change after they are stored: the memo and other
/// containers hold the same list that a later APPENDS extends, the same object that a later BUILD
/// completes. Nodes give that sharing without reference cycles in Swift; the tree of
/// `PickleValue`s is made once, after STOP.
struct PickleArena {
    enum Node {
        /// None, bool, int, float, str, bytes, or an allowed global.
        case scalar(PickleValue)
        case tuple([Int])
        case list([Int])
        /// Keys and values alternating.
        case dict([Int])
        case set([Int])
        case call(Int, [Int])
        case object(Int, Int)
        case persistent(Int)

        var children: [Int] {
            switch self {
            case .scalar: return []
            case let .tuple(ids), let .list(ids), let .dict(ids), let .set(ids): return ids
            case let .call(callee, args): return [callee] + args
            case let .object(base, state): return [base, state]
            case let .persistent(id): return [id]
            }
        }

        /// "a list", "an int", for errors.
        var kind: String {
            switch self {
            case let .scalar(value): return value.kindDescription
            case .tuple: return "a tuple"
            case .list: return "a list"
            case .dict: return "a dict"
            case .set: return "a set"
            case .call: return "a call"
            case .object: return "an object"
            case .persistent: return "a persistent id"
            }
        }
    }

    enum Failure: Error {
        case cycle
        case tooDeep
        case tooManyValues
    }

    var nodes: [Node] = []

    /// The tree of values under `root`, built without recursion. A node reached twice (shared
    /// through the memo) is built once and its value reused. Fails on a node that contains itself,
    /// on nesting deeper than `maxDepth`, and on a tree of more than `maxValues` values counting
    /// shared ones at each place.
    func value(of root: Int, maxDepth: Int, maxValues: Int) throws(Failure) -> PickleValue {
        // 0: not reached, 1: its children are being built (it is on the current path), 2: built.
        var state = [UInt8](repeating: 0, count: nodes.count)
        var values = [PickleValue](repeating: .none, count: nodes.count)
        var depths = [Int](repeating: 0, count: nodes.count)
        var counts = [Int](repeating: 0, count: nodes.count)
        var work = [root]
        while let id = work.last {
            if state[id] == 2 {
                work.removeLast()
                continue
            }
            let node = nodes[id]
            let children = node.children
            if state[id] == 0 {
                state[id] = 1
                for child in children.reversed() {
                    if state[child] == 1 { throw .cycle }
                    if state[child] == 0 { work.append(child) }
                }
                continue
            }
            // Every child is built: build this one.
            var depth = 0
            var count = 1
            for child in children {
                depth = max(depth, depths[child])
                let (sum, overflow) = count.addingReportingOverflow(counts[child])
                count = overflow ? Int.max : sum
            }
            depth += 1
            guard depth <= maxDepth else { throw .tooDeep }
            guard count <= maxValues else { throw .tooManyValues }
            values[id] = build(node, values)
            depths[id] = depth
            counts[id] = count
            state[id] = 2
            work.removeLast()
        }
        return values[root]
    }

    private func build(_ node: Node, _ values: [PickleValue]) -> PickleValue {
        switch node {
        case let .scalar(value): return value
        case let .tuple(ids): return .tuple(ids.map { values[$0] })
        case let .list(ids): return .list(ids.map { values[$0] })
        case let .set(ids): return .set(ids.map { values[$0] })
        case let .dict(ids):
            let pairs = stride(from: 0, to: ids.count - 1, by: 2).map {
                PickleDictEntry(key: values[ids[$0]], value: values[ids[$0 + 1]])
            }
            return .dict(pairs)
        case let .call(callee, args): return .call(values[callee], args: args.map { values[$0] })
        case let .object(base, state): return .object(values[base], state: values[state])
        case let .persistent(id): return .persistent(values[id])
        }
    }
}
