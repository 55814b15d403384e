import FieldCrypto
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
            "last_error": lastError.json,
        ]
    }
}

/// `notification.list` and `webhook.*`: the outbox rows of an order, and the group's webhooks.
public final class NotificationService: Sendable {
    let database: AppDatabase
    let cursors: CursorCodec
    let cipher: FieldCipher
    /// `FORECOURT_WEBHOOK_ALLOW_INSECURE=1`: `http://` and non-public addresses are accepted.
    let allowsInsecureWebhooks: Bool

    public init(database: AppDatabase, cursors: CursorCodec, cipher: FieldCipher, allowsInsecureWebhooks: Bool = false) {
        self.database = database
        self.cursors = cursors
        self.cipher = cipher
        self.allowsInsecureWebhooks = allowsInsecureWebhooks
    }

    /// One order's notifications, oldest first, in pages (keyset on `(created_at, id)`).
    public func list(caller: Principal, orderID: UUID, limit: Int, after: String?) async throws -> Page<NotificationRecord> {
        let group = try caller.requireGroup()
        let dealer = caller.role.isDealerScoped ? caller.dealerID : nil
        // The cursor is bound to the group and the order: it cannot page another order's list.
        let cursorScope = group.uuidString.lowercased() + "/" + orderID.uuidString.lowercased()
        let position = try after.map { try Self.position(cursors.decode($0, list: "notification.list", scope: cursorScope)) }
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
                WHERE dealer_group_id = \(group) AND order_id = \(orderID)
                    AND (\(position?.micros)::int8 IS NULL
                        OR (created_at, id) > (timestamptz 'epoch' + \(position?.micros) * interval '1 microsecond', \(position?.id)))
                ORDER BY created_at, id LIMIT \(limit + 1)
                """
            ).rows.map(NotificationRecord.init)
        }
        guard let items else { throw DomainError.notFound("order") }
        let page = Array(items.prefix(limit))
        let next = items.count > limit ? page.last.map {
            cursors.encode("\($0.createdMicros):\($0.id.uuidString.lowercased())", list: "notification.list", scope: cursorScope)
        } : nil
        return Page(items: page, next: next)
    }

    /// The keyset position `<created_at micros>:<id>` of a decoded cursor.
    static func position(_ text: String) throws -> (micros: Int, id: UUID) {
        let parts = text.split(separator: ":", maxSplits: 1)
        guard parts.count == 2, let micros = Int(parts[0]), let id = UUID(uuidString: String(parts[1])) else {
            throw DomainError.invalidParams("after", "not a cursor returned by this list")
        }
        return (micros, id)
    }
}
