import ForecourtCore
import Foundation
import Postgres
import RPC

/// A vehicle order (docs/protocol.md, "orders").
public struct Order: Sendable, Equatable {
    public let id: UUID
    public let orderNumber: String
    public let dealerGroupID: UUID
    public let dealerID: UUID
    public let customerID: UUID
    public let modelCode: String
    public let modelYear: Int
    public let modelTrim: String?
    public let exteriorColor: String
    public let interiorColor: String?
    public let options: [String]
    public let stage: OrderStage
    public let onHold: Bool
    public let holdReason: String?
    public let vin: String?
    public let scheduledWeek: String?
    /// Dates as `YYYY-MM-DD`.
    public let promisedETA: String?
    public let eta: String?
    public let delayed: Bool
    public let version: Int
    public let createdAt: Date
    public let updatedAt: Date
    public let stageEnteredAt: Date
    /// `created_at` in microseconds since 1970 (exact, for list cursors).
    let createdMicros: Int
    /// The delivery forecast; nil below its threshold and for delivered or cancelled orders.
    public let forecast: DeliveryForecast?
    /// Factory principals see orders without their customer (docs/protocol.md, "Roles").
    public var showsCustomer = true

    /// The select list matching `init(row:)`, for `FROM forecourt.orders` without an alias.
    /// `delayed` is the rule of docs/architecture.md: on hold, or an ETA later than promised, or
    /// in its stage past `overdue_at`. The last column is the forecast's quantiles
    /// (`DeliveryForecast.column`: a primary-key probe of `delivery_quantiles`).
    static let columns = """
        id, order_number, dealer_group_id, dealer_id, customer_id, model_code, model_year, model_trim, \
        exterior_color, interior_color, options, stage, on_hold, hold_reason, vin, scheduled_week, \
        promised_eta::text, eta::text, \
        (on_hold OR coalesce(eta > promised_eta, false) \
            OR coalesce(overdue_at <= now() AND stage NOT IN ('delivered', 'cancelled'), false)), \
        version, created_at, updated_at, stage_entered_at, \
        (extract(epoch FROM created_at) * 1000000)::int8, \
        \(DeliveryForecast.column)
        """

    /// The `delayed` rule as a filter (NULLs count as false in WHERE), written so that the
    /// partial indexes `orders_delayed_flag` and `orders_overdue` serve it.
    static let delayedCondition =
        "(on_hold OR eta > promised_eta OR (overdue_at <= now() AND stage NOT IN ('delivered', 'cancelled')))"

    init(row: PostgresRow) throws {
        id = try row.decode(0)
        orderNumber = try row.decode(1)
        dealerGroupID = try row.decode(2)
        dealerID = try row.decode(3)
        customerID = try row.decode(4)
        modelCode = try row.decode(5)
        modelYear = try row.decode(6)
        modelTrim = try row.decode(7)
        exteriorColor = try row.decode(8)
        interiorColor = try row.decode(9)
        options = try row.decode(10)
        let stageText: String = try row.decode(11)
        guard let stage = OrderStage(rawValue: stageText) else {
            throw PostgresError(.decoding, context: "orders.stage")
        }
        self.stage = stage
        onHold = try row.decode(12)
        holdReason = try row.decode(13)
        vin = try row.decode(14)
        scheduledWeek = try row.decode(15)
        promisedETA = try row.decode(16)
        eta = try row.decode(17)
        delayed = try row.decode(18)
        version = try row.decode(19)
        createdAt = try row.decode(20)
        updatedAt = try row.decode(21)
        stageEnteredAt = try row.decode(22)
        createdMicros = try row.decode(23)
        forecast = DeliveryForecast(quantiles: try row.decode(24, as: [Int]?.self), enteredAt: stageEnteredAt)
    }

    /// The same order as `principal` may see it.
    public func visible(to principal: Principal) -> Order {
        var copy = self
        copy.showsCustomer = principal.role != .factory
        return copy
    }
}

extension Order: JSONRepresentable {
    public var json: JSON {
        [
            "id": id.json, "order_number": .string(orderNumber), "dealer_group_id": dealerGroupID.json,
            "dealer_id": dealerID.json, "customer_id": showsCustomer ? customerID.json : .null,
            "model": ["code": .string(modelCode), "year": .int(modelYear), "trim": modelTrim.json],
            "exterior_color": .string(exteriorColor), "interior_color": interiorColor.json,
            "options": options.json, "stage": .string(stage.rawValue), "on_hold": .bool(onHold),
            "hold_reason": holdReason.json, "vin": vin.json, "scheduled_week": scheduledWeek.json,
            "promised_eta": promisedETA.json, "eta": eta.json, "delayed": .bool(delayed),
            "version": .int(version), "created_at": createdAt.json, "updated_at": updatedAt.json,
            "forecast": forecast.json,
        ]
    }
}

/// One entry of an order's timeline (`order.timeline`).
public struct TimelineEvent: Sendable, Equatable {
    public let seq: Int
    public let event: String
    public let occurredAt: Date
    public let recordedAt: Date
    public let source: String
    public let late: Bool
    public let note: String?
    public let reason: String?
    public let eta: String?
    public let vin: String?
    public let scheduledWeek: String?

    static let columns = "seq, event, occurred_at, recorded_at, source, late, note, reason, eta::text, vin, scheduled_week"
    /// `columns` of `order_events e`, beside another table's.
    static let qualifiedColumns = columns.split(separator: ", ").map { "e." + $0 }.joined(separator: ", ")

    init(row: PostgresRow) throws {
        seq = try row.decode(0)
        event = try row.decode(1)
        occurredAt = try row.decode(2)
        recordedAt = try row.decode(3)
        source = try row.decode(4)
        late = try row.decode(5)
        note = try row.decode(6)
        reason = try row.decode(7)
        eta = try row.decode(8)
        vin = try row.decode(9)
        scheduledWeek = try row.decode(10)
    }
}

extension TimelineEvent: JSONRepresentable {
    public var json: JSON {
        [
            "seq": .int(seq), "event": .string(event), "occurred_at": occurredAt.json, "recorded_at": recordedAt.json,
            "source": .string(source), "late": .bool(late), "note": note.json, "reason": reason.json,
            "eta": eta.json, "vin": vin.json, "scheduled_week": scheduledWeek.json,
        ]
    }
}
