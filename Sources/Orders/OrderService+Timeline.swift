import ForecourtCore
import Foundation
import Postgres
import Storage

/// `order.timeline`, and the read behind an `order.updated` push.
extension OrderService {
    public func timeline(caller: Principal, id: UUID) async throws -> [TimelineEvent] {
        let scope = try AccessScope.of(caller)
        let dealer = caller.role.isDealerScoped ? caller.dealerID : nil
        let events = try await database.transaction(scope, readOnly: true) { connection -> [TimelineEvent]? in
            guard let order = try Self.find(connection, .id(id), dealer: dealer, lock: false) else { return nil }
            return try connection.query(
                """
                SELECT \(unsafeSQL: TimelineEvent.columns) FROM forecourt.order_events
                WHERE dealer_group_id = \(order.dealerGroupID) AND order_id = \(order.id)
                ORDER BY occurred_at, seq
                """
            ).rows.map(TimelineEvent.init)
        }
        guard let events else { throw DomainError.notFound("order") }
        return events
    }

    /// The order and one of its timeline entries, for an `order.updated` push (Events).
    public func changed(group: UUID, orderID: UUID, seq: Int?) async throws -> (Order, TimelineEvent?)? {
        try await database.transaction(.group(group), readOnly: true) { connection -> (Order, TimelineEvent?)? in
            guard let order = try Self.load(connection, group: group, id: orderID) else { return nil }
            let event = try seq.flatMap { seq in
                try connection.query(
                    """
                    SELECT \(unsafeSQL: TimelineEvent.columns) FROM forecourt.order_events
                    WHERE dealer_group_id = \(group) AND order_id = \(orderID) AND seq = \(seq)
                    """
                ).first.map(TimelineEvent.init)
            }
            return (order, event)
        }
    }
}
