import Foundation

/// The payload of a `forecourt_orders` notification: `group dealer order event seq`, separated
/// by spaces. Ids and an event name only, so nothing personal goes through PostgreSQL's queue.
public struct OrderChange: Sendable, Equatable {
    public let group: UUID
    public let dealerID: UUID
    public let orderID: UUID
    public let event: String
    public let seq: Int?

    public init(group: UUID, dealerID: UUID, orderID: UUID, event: String, seq: Int?) {
        self.group = group
        self.dealerID = dealerID
        self.orderID = orderID
        self.event = event
        self.seq = seq
    }

    public var payload: String {
        [group, dealerID, orderID].map { $0.uuidString.lowercased() }.joined(separator: " ") + " \(event) \(seq.map(String.init) ?? "-")"
    }

    /// Parses a payload; nil for anything else.
    public init?(payload: String) {
        let parts = payload.split(separator: " ")
        guard parts.count == 5, let group = UUID(uuidString: String(parts[0])), let dealer = UUID(uuidString: String(parts[1])),
              let order = UUID(uuidString: String(parts[2]))
        else { return nil }
        self.init(group: group, dealerID: dealer, orderID: order, event: String(parts[3]), seq: Int(parts[4]))
    }
}
