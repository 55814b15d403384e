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
    let cursors: CursorCodec
    let cipher: FieldCipher

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

    public struct Amendment: Sendable {
        public var id: UUID
        public var version: Int
        public var exteriorColor: String?
        public var interiorColor: Patch<String>
        public var options: [String]?
        public var model: VehicleModel?
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
        let orderID = UUID.random()
        let order = try await database.transaction(.group(group), principal: caller.id) { connection -> Order in
            // Claim the key first. A concurrent call with the same key blocks on our row here
            // until we end; then it finds the key taken and returns our order. The customer
            // and the dealer are checked, and the timeline entry's seq taken, by one statement
            // in the same round trip (with the transaction's start).
            let first = try connection.queries([
                """
                INSERT INTO forecourt.idempotency_keys (dealer_group_id, key, method, request_hash, object_id)
                VALUES (\(group), \(new.idempotencyKey), 'order.create', \(requestHash), \(orderID))
                ON CONFLICT (dealer_group_id, key) DO NOTHING RETURNING 1
                """,
                """
                SELECT EXISTS (SELECT 1 FROM forecourt.customers
                        WHERE dealer_group_id = \(group) AND id = \(new.customerID) AND erased_at IS NULL),
                    EXISTS (SELECT 1 FROM forecourt.dealers WHERE dealer_group_id = \(group) AND id = \(dealerID)),
                    \(unsafeSQL: Self.nextSeq)
                """,
            ])
            if first[0].count != 1 {
                return try Self.existing(connection, group: group, key: new.idempotencyKey, requestHash: requestHash)
            }
            guard let checks = first[1].first else { throw PostgresError(.decoding, context: "order.create checks") }
            guard try checks.decode(0, as: Bool.self) else { throw DomainError.notFound("customer") }
            guard try checks.decode(1, as: Bool.self) else { throw DomainError.notFound("dealer") }
            // Its overdue time is computed by the INSERT itself (DelayRule), so the new order is one
            // row version, from the group's pace of `ordered` made current just before. The
            // number comes from the dealer's sequence (forecourt.next_order_number, migration
            // 0010), taken here, after every check: no lock is held until the commit, so a
            // dealer's orders do not wait for each other; a call that fails after this point
            // leaves a gap in the dealer's numbers.
            try DelayRule.refreshPace(connection, group: group, stage: .ordered)
            try connection.enqueue(
                """
                INSERT INTO forecourt.orders (dealer_group_id, id, dealer_id, customer_id, order_number, model_code,
                    model_year, model_trim, exterior_color, interior_color, options, overdue_at)
                VALUES (\(group), \(orderID), \(dealerID), \(new.customerID), forecourt.next_order_number(\(dealerID)),
                    \(new.model.code), \(new.model.year), \(new.model.trim), \(new.exteriorColor), \(new.interiorColor),
                    \(new.options), \(unsafeSQL: DelayRule.newOrderOverdueAt))
                """)
            let entry = OrderEventEntry(
                group: group, orderID: orderID, seq: try checks.decode(2), event: "ordered", source: "dealer")
            return try Self.finishChange(
                connection, entry,
                dealerID: dealerID, caller: caller, method: "order.create", queue: [.orderConfirmation])
        }
        return order.visible(to: caller)
    }

    /// The order an earlier `order.create` with this key made, when the parameters are the same.
    private static func existing(_ connection: PostgresConnection, group: UUID, key: String, requestHash: [UInt8]) throws -> Order {
        let existing = try connection.query(
            """
            SELECT method, request_hash, object_id FROM forecourt.idempotency_keys
            WHERE dealer_group_id = \(group) AND key = \(key)
            """
        ).first
        guard let existing else { throw PostgresError(.serializationFailure) }  // vanished: retry
        let method: String = try existing.decode(0)
        let hash: [UInt8] = try existing.decode(1)
        let firstID: UUID = try existing.decode(2)
        guard method == "order.create", hash == requestHash, let first = try load(connection, group: group, id: firstID) else {
            throw DomainError.conflict("this idempotency_key was already used with other parameters")
        }
        return first
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
        // One statement, one round trip: the scope, the read and its end go out together.
        let rows = try await database.transaction(
            scope, readOnly: true, single: Self.findQuery(reference, group: caller.dealerGroupID, dealer: dealer, lock: false))
        guard let order = try rows.first.map(Order.init) else { throw DomainError.notFound("order") }
        return order.visible(to: caller)
    }

    // MARK: - order.amend, order.cancel

    public func amend(caller: Principal, _ amendment: Amendment) async throws -> Order {
        let group = try caller.requireGroup()
        let dealer = caller.role.isDealerScoped ? caller.dealerID : nil
        return try await database.transaction(.group(group), principal: caller.id) { connection -> Order in
            let (found, seq) = try Self.lock(connection, .id(amendment.id), group: group, dealer: dealer)
            guard let current = found else { throw DomainError.notFound("order") }
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
            let update: PostgresQuery = """
                UPDATE forecourt.orders SET exterior_color = \(exterior), interior_color = \(interior),
                    options = \(options), model_code = \(model.code), model_year = \(model.year), model_trim = \(model.trim),
                    version = version + 1, updated_at = now()
                WHERE dealer_group_id = \(group) AND id = \(current.id)
                """
            return try Self.finishChange(
                connection, OrderEventEntry(group: group, orderID: current.id, seq: seq, event: "amended", source: "dealer"),
                dealerID: current.dealerID, caller: caller, method: "order.amend", update: update)
        }
    }

    public func cancel(caller: Principal, id: UUID, version: Int, reason: String) async throws -> Order {
        let group = try caller.requireGroup()
        let dealer = caller.role.isDealerScoped ? caller.dealerID : nil
        return try await database.transaction(.group(group), principal: caller.id) { connection -> Order in
            let (found, seq) = try Self.lock(connection, .id(id), group: group, dealer: dealer)
            guard let current = found else { throw DomainError.notFound("order") }
            guard current.stage.mayCancel else {
                throw DomainError.invalidTransition("an order can be cancelled only before stage frame")
            }
            guard current.version == version else { throw DomainError.staleVersion() }
            let update: PostgresQuery = """
                UPDATE forecourt.orders SET stage = 'cancelled', stage_entered_at = now(), cancel_reason = \(reason),
                    on_hold = false, hold_reason = NULL, overdue_at = NULL, version = version + 1, updated_at = now()
                WHERE dealer_group_id = \(group) AND id = \(id)
                """
            let entry = OrderEventEntry(group: group, orderID: id, seq: seq, event: "cancelled", source: "dealer", reason: reason)
            return try Self.finishChange(
                connection, entry, dealerID: current.dealerID, caller: caller, method: "order.cancel", update: update)
        }
    }

    // MARK: - SQL helpers

    static func load(_ connection: PostgresConnection, group: UUID, id: UUID) throws -> Order? {
        try connection.query(loadQuery(group: group, id: id)).first.map(Order.init)
    }

    /// The order by its primary key.
    static func loadQuery(group: UUID, id: UUID) -> PostgresQuery {
        "SELECT \(unsafeSQL: Order.columns) FROM forecourt.orders WHERE dealer_group_id = \(group) AND id = \(id)"
    }

    /// The order as the transaction's scope admits it (RLS), narrowed to `dealer` for dealer roles.
    static func find(
        _ connection: PostgresConnection, _ reference: OrderReference, group: UUID?, dealer: UUID?, lock: Bool
    ) throws -> Order? {
        try connection.query(findQuery(reference, group: group, dealer: dealer, lock: lock)).first.map(Order.init)
    }

    /// The order locked (`FOR UPDATE`) as `find` finds it, and the seq its change's timeline
    /// entry will have, in one round trip (with the transaction's start).
    static func lock(
        _ connection: PostgresConnection, _ reference: OrderReference, group: UUID?, dealer: UUID?
    ) throws -> (Order?, Int) {
        let results = try connection.queries([findQuery(reference, group: group, dealer: dealer, lock: true), nextSeqQuery])
        return (try results[0].first.map(Order.init), try seq(results[1]))
    }

    /// The statement of `find`. With the caller's `group` it is a primary-key probe; without
    /// (the factory, whose scope spans every group) it goes by the `orders_id` index, or the
    /// unique order number: either way its cost does not grow with the number of orders.
    static func findQuery(_ reference: OrderReference, group: UUID?, dealer: UUID?, lock: Bool) -> PostgresQuery {
        var sql = PostgresQuery.StringInterpolation(literalCapacity: 512, interpolationCount: 3)
        sql.appendLiteral("SELECT \(Order.columns) FROM forecourt.orders WHERE ")
        switch reference {
        case .id(let id):
            sql.appendLiteral("id = ")
            sql.appendInterpolation(id)
        case .number(let number):
            sql.appendLiteral("order_number = ")
            sql.appendInterpolation(number)
        }
        sql.appendOrderScope(group: group, dealer: dealer)
        if lock { sql.appendLiteral(" FOR UPDATE") }
        return PostgresQuery(stringInterpolation: sql)
    }
}

extension PostgresQuery.StringInterpolation {
    /// The caller's scope on `orders`, as conditions after others: ` AND dealer_group_id = ...`
    /// with a group, ` AND dealer_id = ...` with a dealer (`find` and `order.list` alike).
    mutating func appendOrderScope(group: UUID?, dealer: UUID?) {
        if let group {
            appendLiteral(" AND dealer_group_id = ")
            appendInterpolation(group)
        }
        if let dealer {
            appendLiteral(" AND dealer_id = ")
            appendInterpolation(dealer)
        }
    }
}
