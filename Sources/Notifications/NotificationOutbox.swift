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
    /// Queues `kind` for the order's customer on every channel the customer opted into.
    ///
    /// Each (order, kind, channel, revision) is queued at most once, whatever the retries:
    /// `revision` is 0 for every kind but `delay`, which passes the seq of the order event that
    /// caused it (one delay notification per revision); nil is the seq of the order's latest
    /// timeline entry (written earlier in the transaction, with the order row locked). An
    /// erased customer gets nothing. Runs inside the caller's transaction, scoped to the
    /// order's group, queued to go out with its next round trip (`PostgresConnection.enqueue`).
    public static func queue(
        _ connection: PostgresConnection, group: UUID, orderID: UUID, kind: NotificationKind, revision: Int? = 0
    ) throws {
        try connection.enqueue(
            """
            INSERT INTO forecourt.notifications (dealer_group_id, id, order_id, kind, channel, revision)
            SELECT o.dealer_group_id, gen_random_uuid(), o.id, \(kind.rawValue), ch.channel,
                coalesce(\(revision)::int8, (SELECT max(e.seq) FROM forecourt.order_events e
                    WHERE e.dealer_group_id = o.dealer_group_id AND e.order_id = o.id))
            FROM forecourt.orders o
            JOIN forecourt.customers c ON c.dealer_group_id = o.dealer_group_id AND c.id = o.customer_id
            CROSS JOIN LATERAL (VALUES ('email', c.notify_email), ('sms', c.notify_sms)) AS ch(channel, wanted)
            WHERE o.dealer_group_id = \(group) AND o.id = \(orderID) AND ch.wanted AND c.erased_at IS NULL
            ON CONFLICT (dealer_group_id, order_id, kind, channel, revision) DO NOTHING
            """)
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

    static let columns = "id, kind, channel, status, attempts, created_at, sent_at"

    init(row: PostgresRow) throws {
        id = try row.decode(0)
        kind = try row.decode(1)
        channel = try row.decode(2)
        status = try row.decode(3)
        attempts = try row.decode(4)
        createdAt = try row.decode(5)
        sentAt = try row.decode(6)
    }
}
