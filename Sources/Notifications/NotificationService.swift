import ForecourtCore
import Foundation
import Postgres
import RPC
import Storage

extension NotificationRecord: JSONRepresentable {
    public var json: JSON {
        [
            "id": id.json, "kind": .string(kind), "channel": .string(channel), "status": .string(status),
            "attempts": .int(attempts), "created_at": createdAt.json, "sent_at": sentAt.json,
        ]
    }
}

/// `notification.list`: the outbox rows of one order the caller may see.
public final class NotificationService: Sendable {
    private let database: AppDatabase

    public init(database: AppDatabase) {
        self.database = database
    }

    public func list(caller: Principal, orderID: UUID) async throws -> [NotificationRecord] {
        let group = try caller.requireGroup()
        let dealer = caller.role.isDealerScoped ? caller.dealerID : nil
        let items = try await database.transaction(.group(group), readOnly: true) { connection -> [NotificationRecord]? in
            // The order must be visible: dealer roles see only their dealer's orders.
            let visible = try connection.query(
                """
                SELECT 1 FROM forecourt.orders WHERE dealer_group_id = \(group) AND id = \(orderID)
                    AND (\(dealer)::uuid IS NULL OR dealer_id = \(dealer))
                """
            ).count > 0
            guard visible else { return nil }
            return try connection.query(
                """
                SELECT \(unsafeSQL: NotificationRecord.columns) FROM forecourt.notifications
                WHERE dealer_group_id = \(group) AND order_id = \(orderID) ORDER BY created_at, kind, channel, revision
                """
            ).rows.map(NotificationRecord.init)
        }
        guard let items else { throw DomainError.notFound("order") }
        return items
    }
}
