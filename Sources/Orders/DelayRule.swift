import ForecourtCore
import Foundation
import Postgres

/// "Far longer than usual" (docs/protocol.md, `delayed`), from the group's own history
/// (docs/architecture.md, "Delays").
///
/// When an order enters a stage, `overdue_at` becomes
/// `stage entry + max(default for the stage, 1.5 × p90 of the group's recent durations of it)`.
/// The p90 counts only when the group has at least `minimumSamples` durations of that stage
/// (the latest `window` ones are used), so a young group falls back to the defaults. An order
/// is delayed once `now() > overdue_at` while it is still in that stage; `delivered` and
/// `cancelled` are never overdue. Durations are recorded in `stage_durations` each time an
/// order moves on, so the rule follows the group's own pace.
public enum DelayRule {
    /// The default longest "usual" time in each stage, in seconds.
    public static let defaults: [OrderStage: Int] = [
        .ordered: 14 * day, .scheduled: 35 * day, .frame: 3 * day, .paint: 3 * day, .trim: 4 * day,
        .finalInspection: 3 * day, .shipped: 21 * day, .atDealer: 14 * day,
    ]
    public static let minimumSamples = 20
    public static let window = 200
    public static let factor = 1.5
    static let day = 86_400

    /// How long a group's computed p90 of a stage serves (`stage_paces`, migration 0015;
    /// docs/architecture.md, "Delays"), in seconds.
    public static let paceLifetime = 60

    /// Recomputes `overdue_at` of one order from its current stage and entry time (queued: it
    /// goes out with the transaction's next round trip). `refreshPace` for that stage must be
    /// queued before it.
    static func refreshOverdue(_ connection: PostgresConnection, group: UUID, orderID: UUID) throws {
        try connection.enqueue(
            """
            UPDATE forecourt.orders o SET overdue_at = \(unsafeSQL: overdueAt(group: "o.dealer_group_id", stage: "o.stage", enteredAt: "o.stage_entered_at"))
            WHERE o.dealer_group_id = \(group) AND o.id = \(orderID)
            """)
    }

    /// `overdue_at` of a new order (stage `ordered` since the transaction's `now()`), as an
    /// expression of the INSERT that makes it: one row version, not an INSERT and an UPDATE.
    /// `refreshPace(.ordered)` must be queued before it.
    static let newOrderOverdueAt = overdueAt(group: "forecourt.current_group()", stage: "'ordered'", enteredAt: "now()")

    /// The rule as one SQL expression of an order's group, stage and stage entry time (SQL
    /// expressions chosen by code, never request data). The defaults are constants of the
    /// statement; the group's p90 of the stage is its `stage_paces` row.
    static func overdueAt(group: String, stage: String, enteredAt: String) -> String {
        let byStage = OrderStage.allCases.compactMap { stage in defaults[stage].map { "WHEN '\(stage.rawValue)' THEN \($0)" } }
        return """
            CASE WHEN \(stage) IN ('delivered', 'cancelled') THEN NULL ELSE
                \(enteredAt) + make_interval(secs => greatest(
                    CASE \(stage) \(byStage.joined(separator: " ")) END,
                    coalesce((SELECT \(factor)::float8 * p.p90_seconds FROM forecourt.stage_paces p
                              WHERE p.dealer_group_id = \(group) AND p.stage = \(stage)), 0)))
            END
            """
    }

    /// Makes the group's `stage_paces` row of `stage` current (queued): when it is missing or
    /// older than `paceLifetime`, the p90 of the group's latest `window` durations of the
    /// stage, counted only with at least `minimumSamples` of them. A row that is current is
    /// read only. Of concurrent writers that find it stale, one recomputes it; the others wait
    /// for that one's commit and keep its figure (the update's WHERE), so the row is written
    /// at most once a lifetime.
    static func refreshPace(_ connection: PostgresConnection, group: UUID, stage: OrderStage) throws {
        guard defaults[stage] != nil else { return }
        try connection.enqueue(
            """
            INSERT INTO forecourt.stage_paces AS p (dealer_group_id, stage, p90_seconds, computed_at)
            SELECT \(group), \(stage.rawValue), (
                    SELECT CASE WHEN count(*) >= \(minimumSamples)
                        THEN percentile_cont(0.9) WITHIN GROUP (ORDER BY h.seconds) END
                    FROM (SELECT s.seconds FROM forecourt.stage_durations s
                          WHERE s.dealer_group_id = \(group) AND s.stage = \(stage.rawValue)
                          ORDER BY s.seq DESC LIMIT \(window)) h), now()
            WHERE NOT EXISTS (SELECT 1 FROM forecourt.stage_paces c
                WHERE c.dealer_group_id = \(group) AND c.stage = \(stage.rawValue)
                    AND c.computed_at > now() - make_interval(secs => \(paceLifetime)))
            ON CONFLICT (dealer_group_id, stage) DO UPDATE SET p90_seconds = EXCLUDED.p90_seconds,
                computed_at = EXCLUDED.computed_at
            WHERE p.computed_at <= EXCLUDED.computed_at - make_interval(secs => \(paceLifetime))
            """)
    }

    /// Records how long the order stayed in the stage it leaves at `leftAt` (queued).
    static func recordDuration(_ connection: PostgresConnection, order: Order, leftAt: Date) throws {
        guard order.stage != .cancelled, order.stage != .delivered else { return }
        try connection.enqueue(
            """
            INSERT INTO forecourt.stage_durations (dealer_group_id, stage, order_id, seconds)
            VALUES (\(order.dealerGroupID), \(order.stage.rawValue), \(order.id),
                greatest(0, extract(epoch FROM (\(leftAt) - \(order.stageEnteredAt))))::float8)
            """)
    }
}
