import ForecourtCore
import RPC

/// The JSON Schemas of `order.*` and `track.*` for `rpc.discover` (docs/protocol.md, "orders").
extension Schema {
    static let stage = Schema.oneOf(OrderStage.allCases.map(\.rawValue))
    static let delayReason = Schema.oneOf(DelayReason.allCases.map(\.rawValue))
    static let vin = Schema([
        "type": "string", "pattern": "^[A-HJ-NPR-Z0-9]{17}$", "description": "check digit in position 9 (North American rule)",
        "examples": ["1FCDMA2B3TL100037"],
    ])
    static let vehicleModel = Schema.object([
        "code": .string(maxLength: 16), "year": .integer(1990...2100), "trim": Schema.string(maxLength: 50).orNull,
    ])
    static let vehicleModelParameter = Schema([
        "type": "object", "required": ["code", "year"], "additionalProperties": false,
        "properties": [
            "code": Schema.string(maxLength: 16).json, "year": Schema.integer(1990...2100).json,
            "trim": Schema.string(maxLength: 50).orNull.json,
        ],
    ])
    static let forecast = Schema.object(["p50": .date, "p90": .date, "basis": .integer]).orNull
        .described("50th and 90th percentile delivery dates and the number of past orders behind them")

    static let order = Schema.object([
        "id": .uuid, "order_number": .string, "dealer_group_id": .uuid, "dealer_id": .uuid,
        "customer_id": Schema.uuid.orNull.described("null for factory principals"), "model": .vehicleModel,
        "exterior_color": .string, "interior_color": Schema.string.orNull, "options": .array(.string), "stage": .stage,
        "on_hold": .boolean, "hold_reason": Schema.delayReason.orNull, "vin": Schema.vin.orNull,
        "scheduled_week": Schema.isoWeek.orNull, "promised_eta": Schema.date.orNull, "eta": Schema.date.orNull,
        "delayed": .boolean, "version": .integer, "created_at": .dateTime, "updated_at": .dateTime,
    ]).adding("forecast", .forecast)

    static let timelineEvent = Schema.object([
        "seq": .integer, "event": .string, "occurred_at": .dateTime, "recorded_at": .dateTime,
        "source": .oneOf(["dealer", "factory"]), "late": .boolean, "note": Schema.string.orNull,
        "reason": Schema.string.orNull, "eta": Schema.date.orNull, "vin": Schema.vin.orNull,
        "scheduled_week": Schema.isoWeek.orNull,
    ])

    static let tracking = Schema.object([
        "order_number": .string, "model": .vehicleModel, "stage": .stage, "on_hold": .boolean,
        "eta": Schema.date.orNull, "delayed": .boolean,
        "stages": .array(
            .object(["stage": .stage, "state": .oneOf(["done", "current", "pending"]), "at": Schema.dateTime.orNull]),
            minItems: 9, maxItems: 9),
    ]).adding("forecast", .forecast)
}

extension MethodSchema {
    private static let idOrNumber: [Parameter] = [
        .optional("id", Schema.uuid.described("or order_number, exactly one")),
        .optional("order_number", .string(maxLength: 32)),
    ]

    static let orderCreate = MethodSchema(
        "Places an order in stage ordered; the same idempotency_key with the same parameters returns the first order again.",
        params: [
            .optional("dealer_id", Schema.uuid.described("defaults to the principal's dealer")),
            .required("customer_id", .uuid), .required("model", .vehicleModelParameter),
            .required("exterior_color", .string(maxLength: 50)), .optional("interior_color", .string(maxLength: 50)),
            .optional("options", .array(.string(maxLength: 16), maxItems: 100)),
            .required("idempotency_key", .string(maxLength: 200)),
        ],
        result: .order, errors: .write + [.notFound, .conflict])
    static let orderGet = MethodSchema(
        "One order, by id or by order number.", params: idOrNumber, result: .order, errors: .read + [.notFound])
    static let orderList = MethodSchema(
        "Orders, newest first; delayed selects on-hold, late-ETA and overdue orders.",
        params: [
            .optional("dealer_id", .uuid), .optional("stage", .stage), .optional("customer_id", .uuid),
            .optional("delayed", .boolean),
        ] + Parameter.listParameters,
        result: .page(of: .order), errors: .read)
    static let orderAmend = MethodSchema(
        "Changes colours, options or model while the order is in stage ordered.",
        params: [
            .required("id", .uuid), .required("version", .integer(1...Int(Int32.max))),
            .optional("exterior_color", .string(maxLength: 50)),
            .optional("interior_color", Schema.string(maxLength: 50).orNull),
            .optional("options", .array(.string(maxLength: 16), maxItems: 100)),
            .optional("model", .vehicleModelParameter),
        ],
        result: .order, errors: .write + [.notFound, .conflict, .invalidTransition])
    static let orderCancel = MethodSchema(
        "Cancels an order before stage frame.",
        params: [
            .required("id", .uuid), .required("version", .integer(1...Int(Int32.max))),
            .required("reason", .string(maxLength: 500)),
        ],
        result: .order, errors: .write + [.notFound, .conflict, .invalidTransition])
    static let orderRecordEvent = MethodSchema(
        "Records a production, shipping or dealer event, a hold, a release or an ETA revision; repeats change nothing.",
        params: idOrNumber + [
            .required(
                "event",
                .oneOf(OrderStage.allCases.filter { $0 != .ordered && $0 != .cancelled }.map(\.rawValue) + ["hold", "release", "eta"])),
            .required("occurred_at", Schema.dateTime.described("at most a day ahead")),
            .optional("note", .string(maxLength: 1000)), .optional("vin", .vin),
            .optional("scheduled_week", .isoWeek), .optional("eta", .date),
            .optional("reason", Schema.delayReason.described("required with hold and eta")),
        ],
        result: .order, errors: .write + [.notFound, .conflict, .invalidTransition])
    static let orderTimeline = MethodSchema(
        "The order's events, by occurred_at.", params: [.required("id", .uuid)],
        result: .object(["events": .array(.timelineEvent)]), errors: .read + [.notFound])
    static let trackLookup = MethodSchema(
        "An order's progress for its customer, by the last 8 VIN characters and the customer's name.",
        params: [.required("vin_last8", .string(maxLength: 8, minLength: 8)), .required("full_name", .string(maxLength: 200))],
        result: .tracking, errors: .write + [.notFound, .rateLimited])
}
