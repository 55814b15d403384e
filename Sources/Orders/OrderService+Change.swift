import Audit
import ForecourtCore
import Foundation
import Notifications
import Postgres

/// One timeline entry (`order_events` row) that an order change appends.
struct OrderEventEntry: Sendable {
    var group: UUID
    var orderID: UUID
    /// Its `seq`, taken beforehand (`OrderService.nextSeqQuery`) in the round trip that locked
    /// the order (or with the claim of a new order's key), so that the notification sent after
    /// the commit can name it.
    var seq: Int
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
        group: UUID, orderID: UUID, seq: Int, event: String, source: String, occurredAt: Date? = nil, late: Bool = false,
        note: String? = nil, reason: String? = nil, eta: String? = nil, vin: String? = nil, scheduledWeek: String? = nil
    ) {
        self.group = group
        self.orderID = orderID
        self.seq = seq
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
    /// The seq of the next timeline entry (`order_events.seq`'s own sequence; migration 0011 lets
    /// the service's role take from it), sent in the round trip that locks the order.
    static let nextSeqQuery: PostgresQuery = "SELECT \(unsafeSQL: nextSeq)"

    /// The same as a column of another statement of that round trip (one statement fewer).
    static let nextSeq = "nextval('forecourt.order_events_seq_seq'::regclass)"

    /// The value `nextSeqQuery` returned.
    static func seq(_ result: PostgresResult) throws -> Int {
        guard let row = result.first else { throw PostgresError(.decoding, context: "order_events seq") }
        return try row.decode(0)
    }

    /// How every order change ends, inside its transaction once the order row is written: its
    /// timeline entry, the notifications it queues, its audit row, and the order as it now
    /// stands, all committing or rolling back with the change; then, once it has committed, the
    /// `NOTIFY` that every instance's listener receives (docs/architecture.md, "Orders").
    ///
    /// A `delay` notification is queued once per revision: its revision is the new entry's seq.
    ///
    /// All of it is one round trip, with COMMIT and the NOTIFYs after it: the writes are queued,
    /// the read back is the transaction's last statement (`PostgresConnection.commit(returning:)`),
    /// the NOTIFYs follow the COMMIT (`PostgresConnection.notifyAfterCommit`: inside the
    /// transaction they would make every notifying commit wait for the one before it to reach
    /// the disk). Nothing may run in the transaction after this, unless `last` is false (then
    /// the read back is an ordinary statement and COMMIT comes later).
    ///
    /// `update`: the change's UPDATE of the order, when nothing else in the transaction writes
    /// the order after it. It is then sent last, after the timeline entry, the notifications and
    /// the audit row (none of which reads what it changes), and its `RETURNING` is the read back:
    /// one statement fewer (docs/architecture.md, "Orders").
    static func finishChange(
        _ connection: PostgresConnection, _ entry: OrderEventEntry, dealerID: UUID, caller: Principal, method: String,
        outcome: String = "ok", queue kinds: [NotificationKind] = [], last: Bool = true, update: PostgresQuery? = nil
    ) throws -> Order {
        precondition(update == nil || last, "an order's UPDATE that returns the read back is the transaction's last statement")
        try connection.enqueue(
            """
            INSERT INTO forecourt.order_events (dealer_group_id, order_id, seq, event, occurred_at, source, principal_id, late,
                note, reason, eta, vin, scheduled_week)
            OVERRIDING SYSTEM VALUE
            VALUES (\(entry.group), \(entry.orderID), \(entry.seq), \(entry.event), coalesce(\(entry.occurredAt), now()),
                \(entry.source), \(caller.id), \(entry.late), \(entry.note), \(entry.reason), \(entry.eta)::date, \(entry.vin),
                \(entry.scheduledWeek))
            """)
        for kind in kinds {
            // A delay's revision is this entry's seq, and a confirmation is queued only by
            // order.create: neither can have been queued before.
            try NotificationOutbox.queue(
                connection, group: entry.group, orderID: entry.orderID, kind: kind, revision: kind == .delay ? entry.seq : 0,
                new: kind == .delay || kind == .orderConfirmation)
        }
        try AuditLog.record(
            connection, group: entry.group, principal: caller, method: method, objectType: "order", objectID: entry.orderID,
            outcome: outcome)
        // Tells every instance's listener that the order changed: ids only, never personal
        // data; sent only once the transaction has committed.
        let change = OrderChange(group: entry.group, dealerID: dealerID, orderID: entry.orderID, event: entry.event, seq: entry.seq)
        try connection.notifyAfterCommit(channel: notifyChannel, payload: change.payload)
        let reload = update.map {
            PostgresQuery(unsafeSQL: $0.sql + " RETURNING " + Order.columns, bindings: $0.bindings)
        } ?? loadQuery(group: entry.group, id: entry.orderID)
        guard let order = try (last ? connection.commit(returning: reload) : connection.query(reload)).first.map(Order.init)
        else {
            throw DomainError.notFound("order")
        }
        return order
    }
}
