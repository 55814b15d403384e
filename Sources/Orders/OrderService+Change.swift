import Audit
import ForecourtCore
import Foundation
import Notifications
import Postgres

/// One timeline entry (`order_events` row) that an order change appends.
struct OrderEventEntry: Sendable {
    var group: UUID
    var orderID: UUID
    /// A stage, `hold`, `release`, `eta`, or `amended`.
    var event: String
    /// `dealer` or `factory`.
    var source: String
    /// The feed's own time; nil is the transaction's `now()`.
    var occurredAt: Date?
    var late = false
    var note: String?
    var reason: String?
    /// A date, `YYYY-MM-DD`.
    var eta: String?
    var vin: String?
    var scheduledWeek: String?

    init(
        group: UUID, orderID: UUID, event: String, source: String, occurredAt: Date? = nil, late: Bool = false,
        note: String? = nil, reason: String? = nil, eta: String? = nil, vin: String? = nil, scheduledWeek: String? = nil
    ) {
        self.group = group
        self.orderID = orderID
        self.event = event
        self.source = source
        self.occurredAt = occurredAt
        self.late = late
        self.note = note
        self.reason = reason
        self.eta = eta
        self.vin = vin
        self.scheduledWeek = scheduledWeek
    }
}

extension OrderService {
    /// How every order change ends, inside its transaction once the order row is written: its
    /// timeline entry, the notifications it queues, its audit row, the `pg_notify` that every
    /// instance's listener receives, and the order as it now stands. All of them commit or
    /// roll back with the change (docs/architecture.md, "Orders").
    ///
    /// A `delay` notification is queued once per revision: its revision is the new entry's seq.
    ///
    /// All of it is one round trip, with COMMIT: the writes are queued, the read back is the
    /// transaction's last statement (`PostgresConnection.commit(returning:)`). The new entry's
    /// seq is read in SQL where it is needed (the order row is locked, or new, so the order's
    /// latest entry is this one). Nothing may run in the transaction after this, unless `last`
    /// is false (then the read back is an ordinary statement and COMMIT comes later).
    static func finishChange(
        _ connection: PostgresConnection, _ entry: OrderEventEntry, dealerID: UUID, caller: Principal, method: String,
        outcome: String = "ok", queue kinds: [NotificationKind] = [], last: Bool = true
    ) throws -> Order {
        try connection.enqueue(
            """
            INSERT INTO forecourt.order_events (dealer_group_id, order_id, event, occurred_at, source, principal_id, late,
                note, reason, eta, vin, scheduled_week)
            VALUES (\(entry.group), \(entry.orderID), \(entry.event), coalesce(\(entry.occurredAt), now()), \(entry.source),
                \(caller.id), \(entry.late), \(entry.note), \(entry.reason), \(entry.eta)::date, \(entry.vin),
                \(entry.scheduledWeek))
            """)
        for kind in kinds {
            try NotificationOutbox.queue(
                connection, group: entry.group, orderID: entry.orderID, kind: kind, revision: kind == .delay ? nil : 0)
        }
        try AuditLog.record(
            connection, group: entry.group, principal: caller, method: method, objectType: "order", objectID: entry.orderID,
            outcome: outcome)
        // Tells every instance's listener that the order changed: ids only, never personal
        // data; delivered only if the transaction commits (NOTIFY is transactional).
        let change = OrderChange(group: entry.group, dealerID: dealerID, orderID: entry.orderID, event: entry.event, seq: nil)
        try connection.enqueue(
            """
            SELECT pg_notify(\(notifyChannel), \(change.payloadPrefix) || (SELECT max(seq) FROM forecourt.order_events
                WHERE dealer_group_id = \(entry.group) AND order_id = \(entry.orderID))::text)
            """)
        let reload = loadQuery(group: entry.group, id: entry.orderID)
        guard let order = try (last ? connection.commit(returning: reload) : connection.query(reload)).first.map(Order.init)
        else {
            throw DomainError.notFound("order")
        }
        return order
    }
}
