import ForecourtCore
import Foundation
import Postgres
import RPC
import Storage

/// `order.list`: keyset pages, newest first, with the `delayed` filter spelt out for its indexes
/// (docs/architecture.md, "Delays").
extension OrderService {
    public struct ListFilter: Sendable {
        public var dealerID: UUID?
        public var stage: OrderStage?
        public var customerID: UUID?
        public var delayed: Bool?
        public var limit: Int
        public var after: String?
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
            sql.appendOrderScope(group: group, dealer: dealer)
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
            // late-ETA orders (orders_delayed_flag, on the stored column delayed_flag: migration
            // 0013), and the group's overdue orders
            // (orders_overdue, a range up to now()). The cost follows the page and the number
            // of overdue orders, never the size of the group.
            sql.appendLiteral("id IN ((SELECT id FROM forecourt.orders WHERE delayed_flag AND ")
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
        let orders = try await database.transaction(scope, readOnly: true, single: query).rows.map(Order.init)
        let items = orders.prefix(filter.limit).map { $0.visible(to: caller) }
        let next = orders.count > filter.limit ? items.last.map {
            cursors.encode("\($0.createdMicros):\($0.id.uuidString.lowercased())", list: "order.list", scope: cursorScope)
        } : nil
        return Page(items: Array(items), next: next)
    }
}
