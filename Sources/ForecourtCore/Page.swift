/// One page of a list: the contract's `{"items": [...], "next": cursor-or-null}`.
public struct Page<Item: Sendable>: Sendable {
    public var items: [Item]
    public var next: String?

    public init(items: [Item], next: String?) {
        self.items = items
        self.next = next
    }
}
