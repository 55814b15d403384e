import ForecourtCore
import Foundation
import RPC

/// `order.*` (docs/protocol.md, "orders"). Dealer roles see and change only their dealer's orders; the
/// factory reads every group's orders (without `customer_id`) and feeds events.
public enum OrderMethods {
    static let writers: Set<Role> = [.groupAdmin, .dealerManager, .sales]
    static let readers: Set<Role> = [.groupAdmin, .dealerManager, .sales, .crmSync, .auditor, .factory]
    static let feeders: Set<Role> = [.factory, .groupAdmin, .dealerManager, .sales]

    public static func all(_ service: OrderService) -> [RPCMethod] {
        [
            RPCMethod(
                "order.create", roles: writers, mutating: true, schema: .orderCreate,
                decode: { params in
                    OrderService.NewOrder(
                        dealerID: try params.optionalUUID("dealer_id"),
                        customerID: try params.uuid("customer_id"),
                        model: try OrderRules.model(params),
                        exteriorColor: try OrderRules.color(params, "exterior_color", required: true) ?? "",
                        interiorColor: try OrderRules.color(params, "interior_color", required: false),
                        options: try OrderRules.options(params) ?? [],
                        idempotencyKey: try params.string("idempotency_key", maxLength: 200))
                },
                run: { context, new in try await service.create(caller: try context.caller, new) }),
            RPCMethod(
                "order.get", roles: readers, schema: .orderGet, decode: { try reference($0) },
                run: { context, reference in try await service.get(caller: try context.caller, reference) }),
            RPCMethod(
                "order.list", roles: readers, schema: .orderList,
                decode: { params in
                    let list = try params.listRequest()
                    return OrderService.ListFilter(
                        dealerID: try params.optionalUUID("dealer_id"),
                        stage: try params.optionalEnum("stage", OrderStage.self),
                        customerID: try params.optionalUUID("customer_id"),
                        delayed: try params.optionalBool("delayed"),
                        limit: list.limit, after: list.after)
                },
                run: { context, filter in try await service.list(caller: try context.caller, filter) }),
            RPCMethod(
                "order.amend", roles: writers, mutating: true, schema: .orderAmend,
                decode: { params in
                    let interior = try params.patchString("interior_color", maxLength: 50)
                    return OrderService.Amendment(
                        id: try params.uuid("id"), version: try params.int("version", in: 1...Int(Int32.max)),
                        exteriorColor: try OrderRules.color(params, "exterior_color", required: false),
                        interiorColor: interior,
                        options: try OrderRules.options(params),
                        model: params.contains("model") ? try OrderRules.model(params) : nil)
                },
                run: { context, amendment in try await service.amend(caller: try context.caller, amendment) }),
            RPCMethod(
                "order.cancel", roles: writers, mutating: true, schema: .orderCancel,
                decode: { params in
                    (id: try params.uuid("id"), version: try params.int("version", in: 1...Int(Int32.max)),
                     reason: try params.string("reason", maxLength: 500))
                },
                run: { context, input in
                    try await service.cancel(caller: try context.caller, id: input.id, version: input.version, reason: input.reason)
                }),
            RPCMethod(
                "order.record_event", roles: feeders, mutating: true, schema: .orderRecordEvent, decode: { try feedEvent($0) },
                run: { context, event in try await service.recordEvent(caller: try context.caller, event) }),
            RPCMethod(
                "order.timeline", roles: readers, schema: .orderTimeline, decode: { try $0.uuid("id") },
                run: { context, id in ["events": try await service.timeline(caller: try context.caller, id: id).json] as JSON }),
        ]
    }

    /// `{"id"}` or `{"order_number"}`, exactly one of them.
    static func reference(_ params: Params) throws -> OrderService.OrderReference {
        let id = try params.optionalUUID("id")
        let number = try params.optionalString("order_number", maxLength: 32)
        switch (id, number) {
        case (let id?, nil): return .id(id)
        case (nil, let number?): return .number(number.uppercased())
        case (nil, nil): throw params.invalid("id", "or order_number is required")
        default: throw params.invalid("order_number", "may not be given together with id")
        }
    }

    static func feedEvent(_ params: Params) throws -> OrderService.FeedEvent {
        let order = try reference(params)
        let eventName = try params.string("event", maxLength: 32)
        guard let kind = OrderEventKind(rawValue: eventName) else {
            throw params.invalid("event", "must be a stage after ordered, or hold, release or eta")
        }
        let occurredAt = try params.timestamp("occurred_at")
        // A feed's clock may run a little ahead; a day ahead is a mistake.
        guard occurredAt.timeIntervalSinceNow < 86_400 else { throw params.invalid("occurred_at", "is in the future") }
        let note = try params.optionalString("note", maxLength: 1000)
        var vin: String?
        if let text = try params.optionalString("vin", maxLength: 17) {
            guard let valid = VIN.validated(text) else {
                throw params.invalid("vin", "must be 17 characters without I, O and Q, with a valid check digit")
            }
            guard case .stage(let stage) = kind, stage.admitsVIN else {
                throw params.invalid("vin", "may be given only with scheduled or a later stage")
            }
            vin = valid
        }
        var week: String?
        if let text = try params.optionalString("scheduled_week", maxLength: 8) {
            guard let parsed = ISOWeek(text) else { throw params.invalid("scheduled_week", "must be an ISO week like 2026-W51") }
            guard case .stage = kind else { throw params.invalid("scheduled_week", "may be given only with a stage event") }
            week = parsed.description
        }
        let eta = try params.optionalDate("eta")
        let reasonText = try params.optionalString("reason", maxLength: 64)
        var reason: String?
        if let reasonText {
            guard let code = DelayReason(rawValue: reasonText) else {
                throw params.invalid("reason", "must be one of \(DelayReason.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            reason = code.rawValue
        }
        switch kind {
        case .hold where reason == nil:
            throw params.invalid("reason", "is required with hold")
        case .eta where eta == nil:
            throw params.invalid("eta", "is required with event eta")
        case .eta where reason == nil:
            throw params.invalid("reason", "is required with event eta")
        default: break
        }
        return OrderService.FeedEvent(
            order: order, kind: kind, occurredAt: occurredAt, note: note, vin: vin, scheduledWeek: week, eta: eta,
            reason: reason)
    }
}
