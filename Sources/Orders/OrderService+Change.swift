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
    static func finishChange(
        _ connection: PostgresConnection, _ entry: OrderEventEntry, dealerID: UUID, caller: Principal, method: String,
        outcome: String = "ok", queue kinds: [NotificationKind] = []
    ) throws -> Order {
        let seq = try insertEvent(connection, entry, principal: caller.id)
        for kind in kinds {
            try NotificationOutbox.queue(
                connection, group: entry.group, orderID: entry.orderID, kind: kind, revision: kind == .delay ? seq : 0)
        }
        try AuditLog.record(
            connection, group: entry.group, principal: caller, method: method, objectType: "order", objectID: entry.orderID,
            outcome: outcome)
        try notify(connection, group: entry.group, dealerID: dealerID, orderID: entry.orderID, event: entry.event, seq: seq)
        guard let order = try load(connection, group: entry.group, id: entry.orderID) else {
            throw DomainError.notFound("order")
        }
        return order
    }

    /// Appends a timeline entry; returns its seq.
    private static func insertEvent(_ connection: PostgresConnection, _ entry: OrderEventEntry, principal: UUID) throws -> Int {
        let row = try connection.query(
            """
            INSERT INTO forecourt.order_events (dealer_group_id, order_id, event, occurred_at, source, principal_id, late,
                note, reason, eta, vin, scheduled_week)
            VALUES (\(entry.group), \(entry.orderID), \(entry.event), coalesce(\(entry.occurredAt), now()), \(entry.source),
                \(principal), \(entry.late), \(entry.note), \(entry.reason), \(entry.eta)::date, \(entry.vin),
                \(entry.scheduledWeek))
            RETURNING seq
            """
        ).first
        guard let row else { throw PostgresError(.decoding, context: "order_events.seq") }
        return try row.decode(0)
    }

    /// Tells every instance's listener that an order changed: ids only, never personal data.
    /// Delivered only if the transaction commits (NOTIFY is transactional).
    private static func notify(
        _ connection: PostgresConnection, group: UUID, dealerID: UUID, orderID: UUID, event: String, seq: Int?
    ) throws {
        let payload = OrderChange(group: group, dealerID: dealerID, orderID: orderID, event: event, seq: seq).payload
        try connection.query("SELECT pg_notify(\(notifyChannel), \(payload))")
    }
}
