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

    /// How recent a timeline entry must be for a notification naming it to be pushed: far more
    /// than a notification takes to arrive, far less than history (docs/security.md, "Notifications").
    public static let pushableAge: Duration = .seconds(300)

    /// The order and the timeline entry a notification names, for an `order.updated` push
    /// (Events), read again from the tables in the named group's scope; nil unless the entry
    /// exists, belongs to that order and was recorded within `pushableAge`. A notification's
    /// text is a hint of what to read, never what is pushed: anyone who may connect to the
    /// database can send one.
    public func changed(group: UUID, orderID: UUID, seq: Int) async throws -> (Order, TimelineEvent)? {
        let maximumAge = Int(Self.pushableAge.components.seconds)
        return try await database.transaction(.group(group), readOnly: true) { connection -> (Order, TimelineEvent)? in
            let event = try connection.query(
                """
                SELECT \(unsafeSQL: TimelineEvent.columns) FROM forecourt.order_events
                WHERE dealer_group_id = \(group) AND order_id = \(orderID) AND seq = \(seq)
                  AND recorded_at > now() - make_interval(secs => \(maximumAge))
                """
            ).first.map(TimelineEvent.init)
            guard let event, let order = try Self.load(connection, group: group, id: orderID) else { return nil }
            return (order, event)
        }
    }
}
