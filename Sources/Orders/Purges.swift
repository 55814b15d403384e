import ForecourtCore
import Foundation
import Postgres
import Storage

/// Rows that have served their purpose, deleted by every instance now and then
/// (`forecourt serve`'s maintenance service). In the `.maintenance` scope, whose policies
/// (migrations/0006) show only rows past their retention: a purge can never delete younger
/// ones, whatever it is asked.
public enum Purges {
    /// Rows deleted per transaction, so that a large backlog never holds locks for long.
    static let batchSize = 5000

    /// How long `order.create`'s idempotency keys are kept (docs/protocol.md, "orders"): a
    /// retry within this time returns the first order; later, a key is new again.
    public static let idempotencyRetention: Duration = .seconds(24 * 3600)

    /// Deletes idempotency keys older than `retention` (never younger than 24 hours, which
    /// the database enforces); returns how many.
    @discardableResult
    public static func idempotencyKeys(_ database: AppDatabase, retention: Duration = idempotencyRetention) async throws -> Int {
        let seconds = Int(retention.components.seconds)
        return try await inBatches(database) { connection in
            try connection.query(
                """
                DELETE FROM forecourt.idempotency_keys WHERE ctid = ANY(ARRAY(
                    SELECT ctid FROM forecourt.idempotency_keys
                    WHERE created_at < now() - make_interval(secs => \(seconds)) LIMIT \(batchSize)))
                """
            ).affectedRows
        }
    }

    /// Deletes `track.lookup` failure counters whose window has ended; returns how many.
    @discardableResult
    public static func trackingCounters(_ database: AppDatabase, window: Duration = TrackingService.Limits().window)
        async throws -> Int
    {
        let seconds = Int(window.components.seconds)
        var deleted = 0
        for table in ["track_lookup_failures", "track_lookup_budgets"] {
            deleted += try await inBatches(database) { connection in
                try connection.query(
                    """
                    DELETE FROM forecourt.\(unsafeSQL: table) WHERE ctid = ANY(ARRAY(
                        SELECT ctid FROM forecourt.\(unsafeSQL: table)
                        WHERE window_started_at < now() - make_interval(secs => \(seconds)) LIMIT \(batchSize)))
                    """
                ).affectedRows
            }
        }
        return deleted
    }

    private static func inBatches(
        _ database: AppDatabase, _ batch: @escaping @Sendable (PostgresConnection) throws -> Int
    ) async throws -> Int {
        var total = 0
        while true {
            let deleted = try await database.transaction(.maintenance, batch)
            total += deleted
            if deleted < batchSize { return total }
        }
    }
}
