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
}
