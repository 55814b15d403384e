import ForecourtCore
import Foundation
import RPC

/// An order's delivery forecast (docs/protocol.md, "orders"; method in docs/analytics.md,
/// "The delivery forecast").
///
/// From the group's own history: `forecourt.delivery_quantiles` holds, per group, model (or
/// `''` for every model) and stage, the 50th and 90th percentile of the time its latest 200
/// delivered orders took from entering that stage to delivery, refreshed in the transaction
/// that delivers an order (migration 0007, trigger `order_facts_record`). An order in stage S,
/// entered at T, is forecast T + p50 and T + p90 (UTC dates, never before today), from its
/// model's figures when at least 20 delivered orders of the model passed S, else from the
/// whole group's, else none. Delivered and cancelled orders have none (no quantiles exist for
/// those stages). Later stages leave less to chance, so the dates narrow as stages pass.
public struct DeliveryForecast: Sendable, Equatable {
    /// Fewer past orders than this give no forecast.
    public static let minimumBasis = 20

    public let p50: CalendarDate
    public let p90: CalendarDate
    /// How many delivered orders the figures come from.
    public let basis: Int

    /// The quantiles of an order row, as one `int8[]` (p50 seconds, p90 seconds, basis) or NULL:
    /// a select-list expression for statements that read `FROM forecourt.orders` without an
    /// alias. One probe of the quantiles' primary key, in the same statement as the order.
    static let column = """
        (SELECT ARRAY[q.p50_seconds, q.p90_seconds, q.basis::int8] FROM forecourt.delivery_quantiles q \
        WHERE q.dealer_group_id = orders.dealer_group_id AND q.stage = orders.stage \
        AND q.model_code IN (orders.model_code, '') AND q.basis >= \(minimumBasis) \
        ORDER BY q.model_code = '' LIMIT 1)
        """

    public init(p50: CalendarDate, p90: CalendarDate, basis: Int) {
        self.p50 = p50
        self.p90 = p90
        self.basis = basis
    }

    /// The forecast of an order that entered its stage at `enteredAt`, from `quantiles` as
    /// `column` reads them; nil when there are none.
    init?(quantiles: [Int]?, enteredAt: Date, now: Date = Date()) {
        guard let quantiles, quantiles.count == 3 else { return nil }
        let today = Self.utcDate(now)
        let p50 = max(Self.utcDate(enteredAt.addingTimeInterval(TimeInterval(quantiles[0]))), today)
        let p90 = max(Self.utcDate(enteredAt.addingTimeInterval(TimeInterval(quantiles[1]))), p50)
        self.init(p50: p50, p90: p90, basis: quantiles[2])
    }

    /// The UTC calendar date of `date`.
    public static func utcDate(_ date: Date) -> CalendarDate {
        CalendarDate(daysSinceEpoch: Int((date.timeIntervalSince1970 / 86_400).rounded(.down)))
    }
}

extension DeliveryForecast: JSONRepresentable {
    public var json: JSON {
        ["p50": .string(p50.description), "p90": .string(p90.description), "basis": .int(basis)]
    }
}
