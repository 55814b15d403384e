/// A partial update's instruction for one field.
public enum Patch<Value: Sendable>: Sendable {
    case unchanged
    case clear
    case set(Value)

    /// Applies the patch to a current value.
    public func applied(to current: Value?) -> Value? {
        switch self {
        case .unchanged: current
        case .clear: nil
        case .set(let value): value
        }
    }

    public var isUnchanged: Bool {
        if case .unchanged = self { return true }
        return false
    }
}

extension Patch: Equatable where Value: Equatable {}
