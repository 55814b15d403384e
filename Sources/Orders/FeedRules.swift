import ForecourtCore
import Foundation
import Notifications
import Postgres

/// The rules of `order.record_event` (docs/protocol.md, "orders"), applied inside the order's
/// transaction with the order row locked.
enum FeedRules {
    /// - An exact repeat (same event and `occurred_at`) changes nothing: feeds deliver at least once.
    /// - A cancelled order takes no event (-32005); a delivered one no hold, release or ETA.
    /// - Stage events never move backwards; skips are allowed; an event for the current or an
    ///   earlier stage is kept as `late` and changes nothing else.
    /// - `hold`/`release` and ETA revisions older than the latest applied one of their kind are
    ///   late too (a delayed feed must not undo a newer state).
    /// - VIN: set once (a different one later is -32004); required once the order reaches `shipped`.
    /// - ETA: the first becomes `promised_eta`; every revision stays in the timeline.
    static func apply(
        _ event: OrderService.FeedEvent, to current: Order, connection: PostgresConnection, caller: Principal, source: String
    ) throws -> Order {
        let group = current.dealerGroupID
        let repeated = try connection.query(
            """
            SELECT 1 FROM forecourt.order_events
            WHERE dealer_group_id = \(group) AND order_id = \(current.id) AND event = \(event.kind.rawValue)
                AND occurred_at = \(event.occurredAt)
            LIMIT 1
            """)
        if repeated.count > 0 { return current }
        guard current.stage != .cancelled else { throw DomainError.invalidTransition("the order is cancelled") }

        var late = false
        var newStage: OrderStage?
        var onHold = current.onHold
        var holdReason = current.holdReason
        switch event.kind {
        case .stage(let stage):
            switch StageReducer.apply(stage, to: current.stage) {
            case .advance(let to): newStage = to
            case .late: late = true
            case .refused: throw DomainError.invalidTransition("the order's stage does not allow this event")
            }
        case .hold, .release:
            guard current.stage != .delivered else { throw DomainError.invalidTransition("the order is delivered") }
            late = try newer(connection, current, than: event.occurredAt, "event IN ('hold', 'release')")
            if !late {
                onHold = event.kind == .hold
                holdReason = event.kind == .hold ? event.reason : nil
            }
        case .eta:
            guard current.stage != .delivered else { throw DomainError.invalidTransition("the order is delivered") }
            late = try newer(connection, current, than: event.occurredAt, "eta IS NOT NULL")
        }

        var vin = current.vin
        var scheduledWeek = current.scheduledWeek
        var promised = current.promisedETA
        var eta = current.eta
        var etaMovedLater = false
        if !late {
            if let given = event.vin {
                if let existing = current.vin, existing != given {
                    throw DomainError.conflict("the order already has another VIN")
                }
                vin = given
            }
            if let week = event.scheduledWeek { scheduledWeek = week }
            if let given = event.eta?.description {
                if promised == nil {
                    promised = given
                } else if let old = eta, given > old {
                    etaMovedLater = true
                }
                eta = given
            }
            if let stage = newStage, stage >= .shipped, vin == nil {
                throw DomainError.invalidParams("vin", "vin is required: the order has no VIN and is being shipped")
            }
        }

        let changed = newStage != nil || onHold != current.onHold || holdReason != current.holdReason
            || vin != current.vin || scheduledWeek != current.scheduledWeek || promised != current.promisedETA
            || eta != current.eta
        if changed {
            if newStage != nil { try DelayRule.recordDuration(connection, order: current, leftAt: event.occurredAt) }
            try connection.query(
                """
                UPDATE forecourt.orders SET stage = coalesce(\(newStage?.rawValue), stage),
                    stage_entered_at = CASE WHEN \(newStage?.rawValue)::text IS NULL THEN stage_entered_at ELSE \(event.occurredAt) END,
                    on_hold = \(onHold), hold_reason = \(holdReason), vin = \(vin), scheduled_week = \(scheduledWeek),
                    promised_eta = \(promised)::date, eta = \(eta)::date, version = version + 1, updated_at = now()
                WHERE dealer_group_id = \(group) AND id = \(current.id)
                """)
            if newStage != nil { try DelayRule.refreshOverdue(connection, group: group, orderID: current.id) }
        }

        var notifications: [NotificationKind] = []
        switch newStage {
        case .scheduled?: notifications.append(.productionScheduled)
        case .shipped?: notifications.append(.shipped)
        case .delivered?: notifications.append(.delivered)
        default: break
        }
        if current.vin == nil, vin != nil { notifications.append(.vinAssigned) }
        if (onHold && !current.onHold) || etaMovedLater { notifications.append(.delay) }
        let entry = OrderEventEntry(
            group: group, orderID: current.id, event: event.kind.rawValue, source: source, occurredAt: event.occurredAt,
            late: late, note: event.note, reason: event.reason, eta: event.eta?.description, vin: event.vin,
            scheduledWeek: event.scheduledWeek)
        let order = try OrderService.finishChange(
            connection, entry, dealerID: current.dealerID, caller: caller, method: "order.record_event",
            outcome: late ? "late" : "ok", queue: notifications)
        if current.stage == .ordered, newStage != nil { try recordForecast(connection, order) }
        return order
    }

    /// Keeps, for `analytics.forecast_accuracy`, the forecast an order carries just after it
    /// first leaves `ordered` (docs/analytics.md, "The delivery forecast"): the moment the
    /// factory schedules it, when its promised ETA is usually given too. Once per order.
    private static func recordForecast(_ connection: PostgresConnection, _ order: Order) throws {
        guard let forecast = order.forecast else { return }
        try connection.query(
            """
            UPDATE forecourt.order_facts SET forecast_stage = \(order.stage.rawValue),
                forecast_p50 = \(forecast.p50.description)::date, forecast_p90 = \(forecast.p90.description)::date,
                forecast_basis = \(forecast.basis)
            WHERE dealer_group_id = \(order.dealerGroupID) AND order_id = \(order.id) AND forecast_stage IS NULL
            """)
    }

    /// Whether an applied (not late) event matching `condition` occurred after `time`.
    private static func newer(_ connection: PostgresConnection, _ order: Order, than time: Date, _ condition: String) throws -> Bool {
        try connection.query(
            """
            SELECT 1 FROM forecourt.order_events
            WHERE dealer_group_id = \(order.dealerGroupID) AND order_id = \(order.id) AND NOT late
                AND occurred_at > \(time) AND \(unsafeSQL: condition)
            LIMIT 1
            """
        ).count > 0
    }
}
