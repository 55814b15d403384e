import ForecourtCore
import Foundation
import Postgres
import Storage

/// A notification claimed by this instance: enough to find it again in its group's scope.
struct ClaimedNotification: Sendable, Equatable {
    let group: UUID
    let id: UUID
    let channel: String
}

/// The queue's SQL (docs/architecture.md, "Delivery"). Claims and releases run in the narrow
/// `.delivery` scope, which sees the pending notifications of every group and may only move
/// their leases; everything that reads an order or a customer, or records an outcome, runs in
/// the notification's own `.group` scope.
struct DeliveryQueue: Sendable {
    let database: AppDatabase
    /// This instance's id, written into the leases it takes.
    let instance: UUID

    /// Claims up to `limit` due notifications of each of `channels` for `lease`: `FOR UPDATE
    /// SKIP LOCKED`, so concurrent instances take disjoint rows without waiting for each other,
    /// and committed before anything is sent; returned in due order.
    func claim(channels: [String], limit: Int, lease: Duration) async throws -> [ClaimedNotification] {
        let leaseSeconds = Double(lease.components.seconds) + Double(lease.components.attoseconds) / 1e18
        let query = Self.claimQuery(channels: channels, limit: limit, leaseSeconds: leaseSeconds, instance: instance)
        return try await database.transaction(.delivery) { connection in
            try connection.enqueue(Self.claimSettings)
            return try connection.query(query).rows.map { row in
                (try row.decode(3, as: Date.self), ClaimedNotification(group: try row.decode(0), id: try row.decode(1), channel: try row.decode(2)))
            }.sorted { $0.0 < $1.0 }.map(\.1)
        }
    }

    /// The pick reads the partial index `notifications_due_channel` (migration 0018) one channel
    /// at a time, in due order, so it reads about its batch however long the backlog, and
    /// nothing of the channels this instance does not send (with one index over every channel,
    /// an instance without a relay read through the whole email backlog at every claim:
    /// docs/performance.md, "The dispatcher's pick per channel"). It is a MATERIALIZED CTE, run
    /// once: as a subquery in `UPDATE ... FROM`, PostgreSQL put it on the inner side of a nested
    /// loop over every pending row (the RLS policy's quals), re-ran it per row, and with 20,000
    /// pending claimed 5,018 rows in 60 s instead of 10 (docs/performance.md, "Where the time
    /// goes").
    static func claimQuery(channels: [String], limit: Int, leaseSeconds: Double, instance: UUID) -> PostgresQuery {
        """
        WITH due AS MATERIALIZED (
            SELECT p.dealer_group_id, p.id FROM unnest(\(channels)::text[]) AS c(channel)
            CROSS JOIN LATERAL (
                SELECT n.dealer_group_id, n.id FROM forecourt.notifications n
                WHERE n.status = 'pending' AND n.channel = c.channel AND n.next_attempt_at <= now()
                    AND (n.claimed_until IS NULL OR n.claimed_until < now())
                ORDER BY n.next_attempt_at
                LIMIT \(limit)
                FOR UPDATE SKIP LOCKED
            ) p
        )
        UPDATE forecourt.notifications n
        SET claimed_by = \(instance), claimed_until = now() + \(leaseSeconds) * interval '1 second'
        FROM due
        WHERE n.dealer_group_id = due.dealer_group_id AND n.id = due.id
        RETURNING n.dealer_group_id, n.id, n.channel, n.next_attempt_at
        """
    }

    /// The claim's transaction settings, sent in its round trip. Left to itself the planner,
    /// which cannot estimate the row-level security quals, read every due row and sorted them
    /// (20,000 due: 14-22 ms a claim, 0.7 ms in due order; docs/performance.md), so bitmap scans
    /// and sorts are off. That makes any plan with a sort look enormously costly, which would
    /// start JIT compilation (about 200 ms a claim), so JIT is off too.
    static let claimSettings: PostgresQuery = """
        SELECT set_config('enable_bitmapscan', 'off', true), set_config('enable_sort', 'off', true),
            set_config('jit', 'off', true)
        """

    /// Gives back claims that were not acted on (stopping, or the lease running short).
    func release(_ claims: [ClaimedNotification]) async throws {
        guard !claims.isEmpty else { return }
        let groups = claims.map(\.group)
        let ids = claims.map(\.id)
        let instance = self.instance
        try await database.transaction(.delivery) { connection in
            try connection.query(
                """
                UPDATE forecourt.notifications n SET claimed_by = NULL, claimed_until = NULL
                FROM unnest(\(groups)::uuid[], \(ids)::uuid[]) AS c(dealer_group_id, id)
                WHERE n.dealer_group_id = c.dealer_group_id AND n.id = c.id AND n.claimed_by = \(instance)
                """)
        }
    }

    /// When the next notification of `channels` comes due (a retry's time, or a lease's end),
    /// nil when none is pending.
    func nextDue(channels: [String]) async throws -> Date? {
        try await database.transaction(.delivery, readOnly: true) { connection in
            try connection.enqueue(Self.claimSettings)
            return try connection.query(Self.nextDueQuery(channels: channels)).first?.decode(0, as: Date?.self)
        }
    }

    /// Asked after a claim found nothing, so every unclaimed pending notification is due later
    /// and every one due now is leased. Per channel, through `notifications_due_channel`: the
    /// soonest unclaimed one (the index in due order, past the leased ones before it), and the
    /// end of each lease, read from the due ones only (a lease is taken on a due notification
    /// and ends with its outcome). So it reads about the leases in force however long the
    /// backlog of later retries, which it read whole before, at every idle cycle: each write's
    /// NOTIFY makes one (docs/performance.md, "The dispatcher's idle look ahead").
    static func nextDueQuery(channels: [String]) -> PostgresQuery {
        """
        SELECT min(d.at) FROM unnest(\(channels)::text[]) AS c(channel)
        CROSS JOIN LATERAL (
            (SELECT n.next_attempt_at AS at FROM forecourt.notifications n
             WHERE n.status = 'pending' AND n.channel = c.channel AND n.claimed_by IS NULL
             ORDER BY n.next_attempt_at LIMIT 1)
            UNION ALL
            SELECT greatest(n.next_attempt_at, n.claimed_until) FROM forecourt.notifications n
            WHERE n.status = 'pending' AND n.channel = c.channel AND n.next_attempt_at <= now()
                AND n.claimed_by IS NOT NULL
        ) d
        """
    }

    /// The queue's depth and the age of its oldest pending notification, for the metrics.
    func statistics() async throws -> (depth: Int, oldestAge: Double) {
        try await database.transaction(.delivery, readOnly: true) { connection in
            guard let row = try connection.query(
                """
                SELECT count(*)::int8, coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8
                FROM forecourt.notifications WHERE status = 'pending'
                """
            ).first else { return (0, 0) }
            return (try row.decode(0), try row.decode(1))
        }
    }
}
