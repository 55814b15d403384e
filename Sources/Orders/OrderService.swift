import Audit
import FieldCrypto
import ForecourtCore
import Foundation
import Notifications
import Postgres
import RPC
import Storage

/// `order.*`: creation with idempotency and gapless per-dealer numbers, reads, amendments,
/// cancellation, the factory feed and the timeline.
///
/// Every change writes its audit row, its outbox notifications and its `pg_notify` (payload:
/// ids only) in its own transaction, so all of them exist exactly when the change does.
public final class OrderService: Sendable {
    /// The `LISTEN`/`NOTIFY` channel of order changes (docs/architecture.md, "Events").
    public static let notifyChannel = "forecourt_orders"

    let database: AppDatabase
    private let cursors: CursorCodec
    private let cipher: FieldCipher

    public init(database: AppDatabase, cursors: CursorCodec, cipher: FieldCipher) {
        self.database = database
        self.cursors = cursors
        self.cipher = cipher
    }

    // MARK: - Inputs

    public struct NewOrder: Sendable {
        public var dealerID: UUID?
        public var customerID: UUID
        public var model: VehicleModel
        public var exteriorColor: String
        public var interiorColor: String?
        public var options: [String]
        public var idempotencyKey: String
    }

    /// How a call names an order.
    public enum OrderReference: Sendable {
        case id(UUID)
        case number(String)
    }

    public struct ListFilter: Sendable {
        public var dealerID: UUID?
        public var stage: OrderStage?
        public var customerID: UUID?
        public var delayed: Bool?
        public var limit: Int
        public var after: String?
    }

    public struct Amendment: Sendable {
        public var id: UUID
        public var version: Int
        public var exteriorColor: String?
        public var interiorColor: Patch<String>
        public var options: [String]?
        public var model: VehicleModel?
    }

    public struct FeedEvent: Sendable {
        public var order: OrderReference
        public var kind: OrderEventKind
        public var occurredAt: Date
        public var note: String?
        public var vin: String?
        public var scheduledWeek: String?
        public var eta: CalendarDate?
        public var reason: String?
    }

    // MARK: - order.create

    public func create(caller: Principal, _ new: NewOrder) async throws -> Order {
        let group = try caller.requireGroup()
        let dealerID: UUID
        if let requested = new.dealerID {
            dealerID = requested
        } else if let own = caller.dealerID {
            dealerID = own
        } else {
            throw DomainError.invalidParams("dealer_id", "dealer_id is required for a principal of the whole group")
        }
        // Dealer roles create orders of their own dealer only; another dealer is not theirs to see.
        if caller.role.isDealerScoped, dealerID != caller.dealerID { throw DomainError.notFound("dealer") }
        let requestHash = cipher.mac(Self.canonicalCreate(new, dealerID: dealerID), purpose: "idempotency/order.create")
        let orderID = UUID()
        let order = try await database.transaction(.group(group), principal: caller.id) { connection -> Order in
            // Claim the key first. A concurrent call with the same key blocks on our row here
            // until we end; then it finds the key taken and returns our order.
            let claimed = try connection.query(
                """
                INSERT INTO forecourt.idempotency_keys (dealer_group_id, key, method, request_hash, object_id)
                VALUES (\(group), \(new.idempotencyKey), 'order.create', \(requestHash), \(orderID))
                ON CONFLICT (dealer_group_id, key) DO NOTHING RETURNING 1
                """
            ).count == 1
            if !claimed {
                let existing = try connection.query(
                    """
                    SELECT method, request_hash, object_id FROM forecourt.idempotency_keys
                    WHERE dealer_group_id = \(group) AND key = \(new.idempotencyKey)
                    """
                ).first
                guard let existing else { throw PostgresError(.serializationFailure) }  // vanished: retry
                let method: String = try existing.decode(0)
                let hash: [UInt8] = try existing.decode(1)
                let firstID: UUID = try existing.decode(2)
                guard method == "order.create", hash == requestHash,
                      let first = try Self.load(connection, group: group, id: firstID)
                else {
                    throw DomainError.conflict("this idempotency_key was already used with other parameters")
                }
                return first
            }
            let customer = try connection.query(
                """
                SELECT 1 FROM forecourt.customers
                WHERE dealer_group_id = \(group) AND id = \(new.customerID) AND erased_at IS NULL
                """)
            guard customer.count == 1 else { throw DomainError.notFound("customer") }
            // The sequence is taken under the dealer's row lock: a call that fails later rolls
            // it back with everything else, so numbers have no gaps.
            let dealer = try connection.query(
                """
                UPDATE forecourt.dealers SET next_order_seq = next_order_seq + 1
                WHERE dealer_group_id = \(group) AND id = \(dealerID)
                RETURNING code, next_order_seq - 1
                """
            ).first
            guard let dealer else { throw DomainError.notFound("dealer") }
            let code: String = try dealer.decode(0)
            let seq: Int = try dealer.decode(1)
            let number = "\(code)-\(Self.pad(seq, 6))"
            try connection.query(
                """
                INSERT INTO forecourt.orders (dealer_group_id, id, dealer_id, customer_id, order_number, model_code,
                    model_year, model_trim, exterior_color, interior_color, options)
                VALUES (\(group), \(orderID), \(dealerID), \(new.customerID), \(number), \(new.model.code),
                    \(new.model.year), \(new.model.trim), \(new.exteriorColor), \(new.interiorColor), \(new.options))
                """)
            try DelayRule.refreshOverdue(connection, group: group, orderID: orderID)
            let seqOfEvent = try Self.insertEvent(
                connection, group: group, orderID: orderID, event: "ordered", occurredAt: nil, source: "dealer",
                principal: caller.id, late: false, note: nil, reason: nil, eta: nil, vin: nil, scheduledWeek: nil)
            try NotificationOutbox.queue(connection, group: group, orderID: orderID, kind: .orderConfirmation)
            try AuditLog.record(
                connection, group: group, principal: caller, method: "order.create", objectType: "order", objectID: orderID)
            try Self.notify(connection, group: group, dealerID: dealerID, orderID: orderID, event: "ordered", seq: seqOfEvent)
            guard let order = try Self.load(connection, group: group, id: orderID) else { throw DomainError.notFound("order") }
            return order
        }
        return order.visible(to: caller)
    }

    /// The parameters that make two `order.create` calls "the same" (after defaults and
    /// normalisation), as canonical JSON.
    static func canonicalCreate(_ new: NewOrder, dealerID: UUID) -> [UInt8] {
        let value: JSON = [
            "dealer_id": dealerID.json, "customer_id": new.customerID.json,
            "model": ["code": .string(new.model.code), "year": .int(new.model.year), "trim": new.model.trim.json],
            "exterior_color": .string(new.exteriorColor), "interior_color": new.interiorColor.json,
            "options": new.options.json,
        ]
        return JSONWriter.write(value)
    }

    // MARK: - Reads

    public func get(caller: Principal, _ reference: OrderReference) async throws -> Order {
        let scope = try AccessScope.of(caller)
        let dealer = caller.role.isDealerScoped ? caller.dealerID : nil
        let order = try await database.transaction(scope, readOnly: true) { connection in
            try Self.find(connection, reference, dealer: dealer, lock: false)
        }
        guard let order else { throw DomainError.notFound("order") }
        return order.visible(to: caller)
    }

    public func list(caller: Principal, _ filter: ListFilter) async throws -> Page<Order> {
        let scope = try AccessScope.of(caller)
        let group = caller.role == .factory ? nil : try caller.requireGroup()
        var dealer = filter.dealerID
        if caller.role.isDealerScoped {
            // Another dealer's orders are invisible: asking for them gives an empty list.
            if let requested = filter.dealerID, requested != caller.dealerID { return Page(items: [], next: nil) }
            dealer = caller.dealerID
        }
        let cursorScope = group?.uuidString.lowercased() ?? "factory"
        var position: (micros: Int, id: UUID)?
        if let after = filter.after {
            let text = try cursors.decode(after, list: "order.list", scope: cursorScope)
            let parts = text.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, let micros = Int(parts[0]), let id = UUID(uuidString: String(parts[1])) else {
                throw DomainError.invalidParams("after", "not a cursor returned by this list")
            }
            position = (micros, id)
        }
        /// The filters and the keyset position, as conditions after a WHERE.
        func appendFilters(_ sql: inout PostgresQuery.StringInterpolation) {
            sql.appendLiteral("true")
            if let group {
                sql.appendLiteral(" AND dealer_group_id = ")
                sql.appendInterpolation(group)
            }
            if let dealer {
                sql.appendLiteral(" AND dealer_id = ")
                sql.appendInterpolation(dealer)
            }
            if let stage = filter.stage {
                sql.appendLiteral(" AND stage = ")
                sql.appendInterpolation(stage.rawValue)
            }
            if let customer = filter.customerID {
                sql.appendLiteral(" AND customer_id = ")
                sql.appendInterpolation(customer)
            }
            if let position {
                // Keyset: strictly after the last row of the previous page, newest first.
                sql.appendLiteral(" AND (created_at, id) < (timestamptz 'epoch' + ")
                sql.appendInterpolation(position.micros)
                sql.appendLiteral(" * interval '1 microsecond', ")
                sql.appendInterpolation(position.id)
                sql.appendLiteral(")")
            }
        }
        let order = " ORDER BY created_at DESC, id DESC LIMIT "
        var sql = PostgresQuery.StringInterpolation(literalCapacity: 1024, interpolationCount: 16)
        sql.appendLiteral("SELECT \(Order.columns) FROM forecourt.orders WHERE ")
        switch filter.delayed {
        case true?:
            // The two halves of the rule, each served by its partial index (the planner cannot
            // estimate the OR with now(), so it is spelt out): a keyset page of on-hold or
            // late-ETA orders (orders_delayed_flag), and the group's overdue orders
            // (orders_overdue, a range up to now()). The cost follows the page and the number
            // of overdue orders, never the size of the group.
            sql.appendLiteral("id IN ((SELECT id FROM forecourt.orders WHERE (on_hold OR eta > promised_eta) AND ")
            appendFilters(&sql)
            sql.appendLiteral(order)
            sql.appendInterpolation(filter.limit + 1)
            sql.appendLiteral(") UNION ALL (SELECT id FROM forecourt.orders WHERE overdue_at <= now() ")
            sql.appendLiteral("AND overdue_at IS NOT NULL AND stage NOT IN ('delivered', 'cancelled') AND ")
            appendFilters(&sql)
            sql.appendLiteral(order)
            sql.appendInterpolation(filter.limit + 1)
            sql.appendLiteral(")) AND ")
            appendFilters(&sql)
        case false?:
            sql.appendLiteral("NOT coalesce(\(Order.delayedCondition), false) AND ")
            appendFilters(&sql)
        case nil:
            appendFilters(&sql)
        }
        sql.appendLiteral(order)
        sql.appendInterpolation(filter.limit + 1)
        let query = PostgresQuery(stringInterpolation: sql)
        let orders = try await database.transaction(scope, readOnly: true) { connection in
            try connection.query(query).rows.map(Order.init)
        }
        let items = orders.prefix(filter.limit).map { $0.visible(to: caller) }
        let next = orders.count > filter.limit ? items.last.map {
            cursors.encode("\($0.createdMicros):\($0.id.uuidString.lowercased())", list: "order.list", scope: cursorScope)
        } : nil
        return Page(items: Array(items), next: next)
    }

    public func timeline(caller: Principal, id: UUID) async throws -> [TimelineEvent] {
        let scope = try AccessScope.of(caller)
        let dealer = caller.role.isDealerScoped ? caller.dealerID : nil
        let events = try await database.transaction(scope, readOnly: true) { connection -> [TimelineEvent]? in
            guard let order = try Self.find(connection, .id(id), dealer: dealer, lock: false) else { return nil }
            return try connection.query(
                """
                SELECT \(unsafeSQL: TimelineEvent.columns) FROM forecourt.order_events
                WHERE dealer_group_id = \(order.dealerGroupID) AND order_id = \(order.id)
                ORDER BY occurred_at, seq
                """
            ).rows.map(TimelineEvent.init)
        }
        guard let events else { throw DomainError.notFound("order") }
        return events
    }

    /// The order and one of its timeline entries, for an `order.updated` push (Events).
    public func changed(group: UUID, orderID: UUID, seq: Int?) async throws -> (Order, TimelineEvent?)? {
        try await database.transaction(.group(group), readOnly: true) { connection -> (Order, TimelineEvent?)? in
            guard let order = try Self.load(connection, group: group, id: orderID) else { return nil }
            let event = try seq.flatMap { seq in
                try connection.query(
                    """
                    SELECT \(unsafeSQL: TimelineEvent.columns) FROM forecourt.order_events
                    WHERE dealer_group_id = \(group) AND order_id = \(orderID) AND seq = \(seq)
                    """
                ).first.map(TimelineEvent.init)
            }
            return (order, event)
        }
    }

    // MARK: - order.amend, order.cancel

    public func amend(caller: Principal, _ amendment: Amendment) async throws -> Order {
        let group = try caller.requireGroup()
        let dealer = caller.role.isDealerScoped ? caller.dealerID : nil
        return try await database.transaction(.group(group), principal: caller.id) { connection -> Order in
            guard let current = try Self.find(connection, .id(amendment.id), dealer: dealer, lock: true) else {
                throw DomainError.notFound("order")
            }
            guard current.stage.mayAmend else {
                throw DomainError.invalidTransition("an order can be amended only in stage ordered")
            }
            guard current.version == amendment.version else { throw DomainError.staleVersion() }
            let exterior = amendment.exteriorColor ?? current.exteriorColor
            let interior = amendment.interiorColor.applied(to: current.interiorColor)
            let options = amendment.options ?? current.options
            let model = amendment.model ?? VehicleModel(code: current.modelCode, year: current.modelYear, trim: current.modelTrim)
            if exterior == current.exteriorColor, interior == current.interiorColor, options == current.options,
               model == VehicleModel(code: current.modelCode, year: current.modelYear, trim: current.modelTrim) {
                return current
            }
            try connection.query(
                """
                UPDATE forecourt.orders SET exterior_color = \(exterior), interior_color = \(interior),
                    options = \(options), model_code = \(model.code), model_year = \(model.year), model_trim = \(model.trim),
                    version = version + 1, updated_at = now()
                WHERE dealer_group_id = \(group) AND id = \(current.id)
                """)
            let seq = try Self.insertEvent(
                connection, group: group, orderID: current.id, event: "amended", occurredAt: nil, source: "dealer",
                principal: caller.id, late: false, note: nil, reason: nil, eta: nil, vin: nil, scheduledWeek: nil)
            try AuditLog.record(
                connection, group: group, principal: caller, method: "order.amend", objectType: "order", objectID: current.id)
            try Self.notify(connection, group: group, dealerID: current.dealerID, orderID: current.id, event: "amended", seq: seq)
            guard let order = try Self.load(connection, group: group, id: current.id) else { throw DomainError.notFound("order") }
            return order
        }
    }

    public func cancel(caller: Principal, id: UUID, version: Int, reason: String) async throws -> Order {
        let group = try caller.requireGroup()
        let dealer = caller.role.isDealerScoped ? caller.dealerID : nil
        return try await database.transaction(.group(group), principal: caller.id) { connection -> Order in
            guard let current = try Self.find(connection, .id(id), dealer: dealer, lock: true) else {
                throw DomainError.notFound("order")
            }
            guard current.stage.mayCancel else {
                throw DomainError.invalidTransition("an order can be cancelled only before stage frame")
            }
            guard current.version == version else { throw DomainError.staleVersion() }
            try connection.query(
                """
                UPDATE forecourt.orders SET stage = 'cancelled', stage_entered_at = now(), cancel_reason = \(reason),
                    on_hold = false, hold_reason = NULL, overdue_at = NULL, version = version + 1, updated_at = now()
                WHERE dealer_group_id = \(group) AND id = \(id)
                """)
            let seq = try Self.insertEvent(
                connection, group: group, orderID: id, event: "cancelled", occurredAt: nil, source: "dealer",
                principal: caller.id, late: false, note: nil, reason: reason, eta: nil, vin: nil, scheduledWeek: nil)
            try AuditLog.record(
                connection, group: group, principal: caller, method: "order.cancel", objectType: "order", objectID: id)
            try Self.notify(connection, group: group, dealerID: current.dealerID, orderID: id, event: "cancelled", seq: seq)
            guard let order = try Self.load(connection, group: group, id: id) else { throw DomainError.notFound("order") }
            return order
        }
    }

    // MARK: - order.record_event

    /// Records one event of the factory feed (or a dealer's `at_dealer`/`delivered`), applying
    /// the lifecycle rules of API.md: see `FeedRules.apply`.
    public func recordEvent(caller: Principal, _ event: FeedEvent) async throws -> Order {
        // Who records what (API.md): the factory every event but delivered; dealer staff
        // at_dealer and delivered on their dealer's orders.
        switch (caller.role, event.kind) {
        case (.factory, .stage(.delivered)):
            throw DomainError.forbidden("the factory may not record delivered")
        case (.factory, _):
            break
        case (let role, .stage(.atDealer)) where role.isDealerStaff, (let role, .stage(.delivered)) where role.isDealerStaff:
            break
        default:
            throw DomainError.forbidden("this role may record only at_dealer and delivered")
        }
        let scope = try AccessScope.of(caller)
        let dealer = caller.role.isDealerScoped ? caller.dealerID : nil
        let source = caller.role == .factory ? "factory" : "dealer"
        let order = try await database.transaction(scope, principal: caller.id) { connection -> Order in
            guard var current = try Self.find(connection, event.order, dealer: dealer, lock: false) else {
                throw DomainError.notFound("order")
            }
            if caller.role == .factory {
                // Found under the factory's read-everything scope; write only inside its group.
                try connection.query(
                    """
                    SELECT set_config('forecourt.scope', '', true),
                        set_config('forecourt.dealer_group_id', \(current.dealerGroupID.uuidString.lowercased()), true)
                    """)
            }
            guard let locked = try Self.find(connection, .id(current.id), dealer: dealer, lock: true) else {
                throw DomainError.notFound("order")
            }
            current = locked
            do {
                return try FeedRules.apply(
                    event, to: current, connection: connection, caller: caller, source: source)
            } catch let error as PostgresError where error.kind == .uniqueViolation && error.constraintName == "orders_vin_key" {
                throw DomainError.conflict("this VIN is already assigned to another order")
            }
        }
        return order.visible(to: caller)
    }

    // MARK: - SQL helpers

    static func load(_ connection: PostgresConnection, group: UUID, id: UUID) throws -> Order? {
        try connection.query(
            "SELECT \(unsafeSQL: Order.columns) FROM forecourt.orders WHERE dealer_group_id = \(group) AND id = \(id)"
        ).first.map(Order.init)
    }

    /// The order as the transaction's scope admits it (RLS), narrowed to `dealer` for dealer roles.
    static func find(_ connection: PostgresConnection, _ reference: OrderReference, dealer: UUID?, lock: Bool) throws -> Order? {
        let lockClause = lock ? " FOR UPDATE" : ""
        let rows: PostgresResult
        switch reference {
        case .id(let id):
            rows = try connection.query(
                """
                SELECT \(unsafeSQL: Order.columns) FROM forecourt.orders
                WHERE id = \(id) AND (\(dealer)::uuid IS NULL OR dealer_id = \(dealer))\(unsafeSQL: lockClause)
                """)
        case .number(let number):
            rows = try connection.query(
                """
                SELECT \(unsafeSQL: Order.columns) FROM forecourt.orders
                WHERE order_number = \(number) AND (\(dealer)::uuid IS NULL OR dealer_id = \(dealer))\(unsafeSQL: lockClause)
                """)
        }
        return try rows.first.map(Order.init)
    }

    /// Appends a timeline entry; returns its seq. `occurredAt` nil is now().
    static func insertEvent(
        _ connection: PostgresConnection, group: UUID, orderID: UUID, event: String, occurredAt: Date?, source: String,
        principal: UUID?, late: Bool, note: String?, reason: String?, eta: String?, vin: String?, scheduledWeek: String?
    ) throws -> Int {
        let row = try connection.query(
            """
            INSERT INTO forecourt.order_events (dealer_group_id, order_id, event, occurred_at, source, principal_id, late,
                note, reason, eta, vin, scheduled_week)
            VALUES (\(group), \(orderID), \(event), coalesce(\(occurredAt), now()), \(source), \(principal), \(late),
                \(note), \(reason), \(eta)::date, \(vin), \(scheduledWeek))
            RETURNING seq
            """
        ).first
        guard let row else { throw PostgresError(.decoding, context: "order_events.seq") }
        return try row.decode(0)
    }

    /// Tells every instance's listener that an order changed: ids only, never personal data.
    /// Delivered only if the transaction commits (NOTIFY is transactional).
    static func notify(_ connection: PostgresConnection, group: UUID, dealerID: UUID, orderID: UUID, event: String, seq: Int?) throws {
        let payload = OrderChange(group: group, dealerID: dealerID, orderID: orderID, event: event, seq: seq).payload
        try connection.query("SELECT pg_notify(\(notifyChannel), \(payload))")
    }

    static func pad(_ value: Int, _ width: Int) -> String {
        let text = String(value)
        return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
    }
}

/// The payload of a `forecourt_orders` notification: `group dealer order event seq`, separated
/// by spaces. Ids and an event name only, so nothing personal goes through PostgreSQL's queue.
public struct OrderChange: Sendable, Equatable {
    public let group: UUID
    public let dealerID: UUID
    public let orderID: UUID
    public let event: String
    public let seq: Int?

    public init(group: UUID, dealerID: UUID, orderID: UUID, event: String, seq: Int?) {
        self.group = group
        self.dealerID = dealerID
        self.orderID = orderID
        self.event = event
        self.seq = seq
    }

    public var payload: String {
        [group, dealerID, orderID].map { $0.uuidString.lowercased() }.joined(separator: " ") + " \(event) \(seq.map(String.init) ?? "-")"
    }

    /// Parses a payload; nil for anything else.
    public init?(payload: String) {
        let parts = payload.split(separator: " ")
        guard parts.count == 5, let group = UUID(uuidString: String(parts[0])), let dealer = UUID(uuidString: String(parts[1])),
              let order = UUID(uuidString: String(parts[2]))
        else { return nil }
        self.init(group: group, dealerID: dealer, orderID: order, event: String(parts[3]), seq: Int(parts[4]))
    }
}
