import ForecourtCore
import Foundation
import Postgres
import Storage

/// `order.record_event`: the factory feed, and a dealer's `at_dealer`/`delivered`. The rules
/// themselves are `FeedRules`.
extension OrderService {
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

    /// Records one event of the factory feed (or a dealer's `at_dealer`/`delivered`), applying
    /// the lifecycle rules of docs/protocol.md ("orders", `order.record_event`): see `FeedRules.apply`.
    public func recordEvent(caller: Principal, _ event: FeedEvent) async throws -> Order {
        // Who records what (docs/protocol.md): the factory every event but delivered; dealer staff
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
            if caller.role == .factory {
                // Found under the factory's read-everything scope, written only inside its
                // group: one statement looks the order's group up (still as the factory) and
                // re-scopes the transaction to it, so the lock below, and everything after,
                // sees that group's rows only (docs/architecture.md, "Orders").
                try connection.enqueue(Self.rescopeToGroup(of: event.order))
            }
            // The lock, and the timeline checks that must follow it with the seq of the entry
            // this event will make, in one round trip with the transaction's start.
            let found = try connection.queries([
                Self.findQuery(event.order, group: caller.dealerGroupID, dealer: dealer, lock: true),
                FeedRules.historyQuery(event),
            ])
            guard let current = try found[0].first.map(Order.init) else { throw DomainError.notFound("order") }
            let history = try FeedRules.History(found[1])
            do {
                return try FeedRules.apply(
                    event, to: current, history: history, connection: connection, caller: caller, source: source)
            } catch let error as PostgresError where error.kind == .uniqueViolation && error.constraintName == "orders_vin_key" {
                throw DomainError.conflict("this VIN is already assigned to another order")
            }
        }
        return order.visible(to: caller)
    }

    /// Re-scopes a factory transaction from every group's orders (read) to the group of the
    /// order `reference` names (read and write): `forecourt.dealer_group_id` becomes that group
    /// (none when there is no such order), `forecourt.scope` is cleared. The group is looked up
    /// before the scope changes, in the same statement.
    static func rescopeToGroup(of reference: OrderReference) -> PostgresQuery {
        let lookup: PostgresQuery
        switch reference {
        case .id(let id): lookup = "SELECT dealer_group_id::text FROM forecourt.orders WHERE id = \(id)"
        case .number(let number): lookup = "SELECT dealer_group_id::text FROM forecourt.orders WHERE order_number = \(number)"
        }
        return PostgresQuery(
            unsafeSQL: "SELECT set_config('forecourt.dealer_group_id', coalesce((\(lookup.sql)), ''), true), "
                + "set_config('forecourt.scope', '', true)",
            bindings: lookup.bindings)
    }
}
