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

    /// Recomputes `overdue_at` of one order from its current stage and entry time (queued: it
    /// goes out with the transaction's next round trip).
    static func refreshOverdue(_ connection: PostgresConnection, group: UUID, orderID: UUID) throws {
        let stages = defaults.keys.map(\.rawValue)
        let seconds = stages.compactMap { OrderStage(rawValue: $0).flatMap { defaults[$0] } }
        try connection.enqueue(
            """
            UPDATE forecourt.orders o SET overdue_at = CASE WHEN o.stage IN ('delivered', 'cancelled') THEN NULL ELSE
                o.stage_entered_at + make_interval(secs => greatest(
                    (SELECT d.secs FROM unnest(\(stages)::text[], \(seconds)::int8[]) AS d(stage, secs) WHERE d.stage = o.stage),
                    coalesce((
                        SELECT CASE WHEN count(*) >= \(minimumSamples)
                            THEN \(factor) * percentile_cont(0.9) WITHIN GROUP (ORDER BY h.seconds) END
                        FROM (SELECT s.seconds FROM forecourt.stage_durations s
                              WHERE s.dealer_group_id = o.dealer_group_id AND s.stage = o.stage
                              ORDER BY s.seq DESC LIMIT \(window)) h), 0)))
                END
            WHERE o.dealer_group_id = \(group) AND o.id = \(orderID)
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
