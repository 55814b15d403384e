import ForecourtCore
import Foundation
import Postgres
import Storage

/// `order.timeline`, and the read behind an `order.updated` push.
extension OrderService {
    public func timeline(caller: Principal, id: UUID) async throws -> [TimelineEvent] {
        let scope = try AccessScope.of(caller)
        let dealer = caller.role.isDealerScoped ? caller.dealerID : nil
        // One statement (one round trip): the order as the scope admits it, joined to its
        // events; no row at all means no such order.
        var sql = PostgresQuery.StringInterpolation(literalCapacity: 512, interpolationCount: 3)
        sql.appendLiteral(
            """
            SELECT \(TimelineEvent.qualifiedColumns) FROM forecourt.orders o
            LEFT JOIN forecourt.order_events e ON e.dealer_group_id = o.dealer_group_id AND e.order_id = o.id
            WHERE o.id = 
            """)
        sql.appendInterpolation(id)
        if let group = caller.dealerGroupID {
            sql.appendLiteral(" AND o.dealer_group_id = ")
            sql.appendInterpolation(group)
        }
        if let dealer {
            sql.appendLiteral(" AND o.dealer_id = ")
            sql.appendInterpolation(dealer)
        }
        sql.appendLiteral(" ORDER BY e.occurred_at, e.seq")
        let rows = try await database.transaction(scope, readOnly: true, single: PostgresQuery(stringInterpolation: sql)).rows
        guard !rows.isEmpty else { throw DomainError.notFound("order") }
        return try rows.filter { try $0.decode(0, as: Int?.self) != nil }.map(TimelineEvent.init)
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
            // Both reads and the transaction's start and end: one round trip.
            let results = try connection.commit(returning: [
                """
                SELECT \(unsafeSQL: TimelineEvent.columns) FROM forecourt.order_events
                WHERE dealer_group_id = \(group) AND order_id = \(orderID) AND seq = \(seq)
                  AND recorded_at > now() - make_interval(secs => \(maximumAge))
                """,
                Self.loadQuery(group: group, id: orderID),
            ])
            guard let event = try results[0].first.map(TimelineEvent.init), let order = try results[1].first.map(Order.init)
            else { return nil }
            return (order, event)
        }
    }
}
