import ForecourtCore
import Foundation
import Postgres

/// The kinds of customer notification (docs/protocol.md, "notifications").
public enum NotificationKind: String, Sendable, CaseIterable {
    case orderConfirmation = "order_confirmation"
    case productionScheduled = "production_scheduled"
    case vinAssigned = "vin_assigned"
    case shipped
    case delivered
    case delay
}

/// The transactional outbox: notifications are written in the transaction of the change that
/// causes them, and delivered later by the service.
public enum NotificationOutbox {
    /// The channel on which a transaction that queued notifications wakes the dispatchers of
    /// every instance. The payload is empty: nothing but a wake-up passes through PostgreSQL's
    /// notification queue, and the dispatcher re-reads the table.
    public static let notifyChannel = "forecourt_delivery"

    /// Queues `kind` for the order's customer on every channel the customer opted into.
    ///
    /// Each (order, kind, channel, revision) is queued at most once, whatever the retries:
    /// `revision` is 0 for every kind but `delay`, which passes the seq of the order event that
    /// caused it (one delay notification per revision). An erased customer gets nothing. Runs
    /// inside the caller's transaction, scoped to the order's group, queued to go out with its
    /// next round trip (`PostgresConnection.enqueue`); the dispatchers are woken once it has
    /// committed (`PostgresConnection.notifyAfterCommit`, an empty payload: nothing but a
    /// wake-up passes through PostgreSQL's notification queue). The wake-up is sent whether or
    /// not the customer opted into anything: a dispatcher woken for nothing finds nothing due.
    ///
    /// `new`: the caller knows that no notification of this (order, kind, revision) can exist
    /// yet (a new order's confirmation; a delay, whose revision is a new timeline entry's seq),
    /// so the row is a plain INSERT; otherwise one already queued is skipped (`ON CONFLICT DO
    /// NOTHING`, whose speculative insertion costs an index probe and a WAL record more per row:
    /// docs/performance.md, "The group's row no longer locked by every write").
    public static func queue(
        _ connection: PostgresConnection, group: UUID, orderID: UUID, kind: NotificationKind, revision: Int = 0,
        new: Bool = false
    ) throws {
        try connection.enqueue(
            """
            INSERT INTO forecourt.notifications (dealer_group_id, id, order_id, kind, channel, revision)
            SELECT o.dealer_group_id, gen_random_uuid(), o.id, \(kind.rawValue), ch.channel, \(revision)
            FROM forecourt.orders o
            JOIN forecourt.customers c ON c.dealer_group_id = o.dealer_group_id AND c.id = o.customer_id
            CROSS JOIN LATERAL (VALUES ('email', c.notify_email), ('sms', c.notify_sms)) AS ch(channel, wanted)
            WHERE o.dealer_group_id = \(group) AND o.id = \(orderID) AND ch.wanted AND c.erased_at IS NULL
            \(unsafeSQL: new ? "" : "ON CONFLICT (dealer_group_id, order_id, kind, channel, revision) DO NOTHING")
            """)
        try connection.notifyAfterCommit(channel: notifyChannel, payload: "")
    }
}

/// One queued notification, as `notification.list` shows it (no content: messages are
/// rendered at send time from the encrypted customer record).
public struct NotificationRecord: Sendable, Equatable {
    public let id: UUID
    public let kind: String
    public let channel: String
    public let status: String
    public let attempts: Int
    public let createdAt: Date
    public let sentAt: Date?
    /// The last failure's short code (`smtp_451`, `http_503`, `timeout`...), never peer text.
    public let lastError: String?

    /// `created_at` in microseconds since 1970 (exact, for list cursors).
    let createdMicros: Int

    static let columns = """
        id, kind, channel, status, attempts, created_at, sent_at, last_error, \
        (extract(epoch FROM created_at) * 1000000)::int8
        """

    init(row: PostgresRow) throws {
        id = try row.decode(0)
        kind = try row.decode(1)
        channel = try row.decode(2)
        status = try row.decode(3)
        attempts = try row.decode(4)
        createdAt = try row.decode(5)
        sentAt = try row.decode(6)
        lastError = try row.decode(7)
        createdMicros = try row.decode(8)
    }
}
