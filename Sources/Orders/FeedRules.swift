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
    ///
    /// `history` is what the timeline said once the order was locked (`historyQuery`). The
    /// change's writes go out with the commit (`OrderService.finishChange`).
    static func apply(
        _ event: OrderService.FeedEvent, to current: Order, history: History, connection: PostgresConnection,
        caller: Principal, source: String
    ) throws -> Order {
        let group = current.dealerGroupID
        if history.repeated { return current }
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
            late = history.newerHoldOrRelease
            if !late {
                onHold = event.kind == .hold
                holdReason = event.kind == .hold ? event.reason : nil
            }
        case .eta:
            guard current.stage != .delivered else { throw DomainError.invalidTransition("the order is delivered") }
            late = history.newerETA
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
        // Without a new stage, nothing writes the order after its UPDATE: the UPDATE goes last
        // and returns the read back (`OrderService.finishChange`).
        var update: PostgresQuery?
        if changed {
            if newStage != nil { try DelayRule.recordDuration(connection, order: current, leftAt: event.occurredAt) }
            let statement: PostgresQuery = """
                UPDATE forecourt.orders SET stage = coalesce(\(newStage?.rawValue), stage),
                    stage_entered_at = CASE WHEN \(newStage?.rawValue)::text IS NULL THEN stage_entered_at ELSE \(event.occurredAt) END,
                    on_hold = \(onHold), hold_reason = \(holdReason), vin = \(vin), scheduled_week = \(scheduledWeek),
                    promised_eta = \(promised)::date, eta = \(eta)::date, version = version + 1, updated_at = now()
                WHERE dealer_group_id = \(group) AND id = \(current.id)
                """
            if let stage = newStage {
                try connection.enqueue(statement)
                try DelayRule.refreshPace(connection, group: group, stage: stage)
                try DelayRule.refreshOverdue(connection, group: group, orderID: current.id)
            } else {
                update = statement
            }
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
            group: group, orderID: current.id, seq: history.seq, event: event.kind.rawValue, source: source, occurredAt: event.occurredAt,
            late: late, note: event.note, reason: event.reason, eta: event.eta?.description, vin: event.vin,
            scheduledWeek: event.scheduledWeek)
        // Leaving `ordered` records the forecast the order then carries, after its read back.
        let recordsForecast = current.stage == .ordered && newStage != nil
        let order = try OrderService.finishChange(
            connection, entry, dealerID: current.dealerID, caller: caller, method: "order.record_event",
            outcome: late ? "late" : "ok", queue: notifications, last: !recordsForecast, update: update)
        if recordsForecast { try recordForecast(connection, order) }
        return order
    }

    /// Keeps, for `analytics.forecast_accuracy`, the forecast an order carries just after it
    /// first leaves `ordered` (docs/analytics.md, "The delivery forecast"): the moment the
    /// factory schedules it, when its promised ETA is usually given too. Once per order.
    private static func recordForecast(_ connection: PostgresConnection, _ order: Order) throws {
        guard let forecast = order.forecast else { return }
        try connection.enqueue(
            """
            UPDATE forecourt.order_facts SET forecast_stage = \(order.stage.rawValue),
                forecast_p50 = \(forecast.p50.description)::date, forecast_p90 = \(forecast.p90.description)::date,
                forecast_basis = \(forecast.basis)
            WHERE dealer_group_id = \(order.dealerGroupID) AND order_id = \(order.id) AND forecast_stage IS NULL
            """)
    }

    /// What the timeline says about an event, read once the order is locked.
    struct History {
        /// The same event at the same `occurred_at` is recorded already.
        let repeated: Bool
        /// An applied (not late) hold or release occurred after this event.
        let newerHoldOrRelease: Bool
        /// An applied ETA occurred after this event.
        let newerETA: Bool
        /// The seq of the timeline entry this event makes (taken by the same statement, after
        /// the lock).
        let seq: Int

        init(_ result: PostgresResult) throws {
            guard let row = result.first else { throw PostgresError(.decoding, context: "feed history") }
            repeated = try row.decode(0)
            newerHoldOrRelease = try row.decode(1)
            newerETA = try row.decode(2)
            seq = try row.decode(3)
        }
    }

    /// The statement of `History` (and the seq of the entry the event makes: one aggregate row,
    /// so one `nextval`), for the order `event` names in the transaction's group
    /// (`forecourt.current_group()`: the caller's, or the one a factory transaction was
    /// re-scoped to). Sent right after the statement that locks the order, in the same round
    /// trip: it runs once the lock is held, so it sees every event of an earlier holder.
    static func historyQuery(_ event: OrderService.FeedEvent) -> PostgresQuery {
        var sql = PostgresQuery.StringInterpolation(literalCapacity: 640, interpolationCount: 5)
        let order: String
        switch event.order {
        case .id(let id):
            sql.appendLiteral("WITH o AS (SELECT ")
            sql.appendInterpolation(id)
            order = "::uuid AS id) "
        case .number(let number):
            sql.appendLiteral("WITH o AS (SELECT id FROM forecourt.orders WHERE dealer_group_id = forecourt.current_group() ")
            sql.appendLiteral("AND order_number = ")
            sql.appendInterpolation(number)
            order = ") "
        }
        sql.appendLiteral(order)
        // One pass over the order's entries (the primary key's prefix), not one per question.
        sql.appendLiteral("SELECT coalesce(bool_or(e.event = ")
        sql.appendInterpolation(event.kind.rawValue)
        sql.appendLiteral(" AND e.occurred_at = ")
        sql.appendInterpolation(event.occurredAt)
        sql.appendLiteral(
            """
            ), false),
                coalesce(bool_or(NOT e.late AND e.event IN ('hold', 'release') AND e.occurred_at > 
            """)
        sql.appendInterpolation(event.occurredAt)
        sql.appendLiteral(
            """
            ), false),
                coalesce(bool_or(NOT e.late AND e.eta IS NOT NULL AND e.occurred_at > 
            """)
        sql.appendInterpolation(event.occurredAt)
        sql.appendLiteral(
            """
            ), false),
                \(OrderService.nextSeq)
            FROM forecourt.order_events e, o WHERE e.dealer_group_id = forecourt.current_group() AND e.order_id = o.id
            """)
        return PostgresQuery(stringInterpolation: sql)
    }
}
