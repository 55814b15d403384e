import Audit
import FieldCrypto
import ForecourtCore
import Foundation
import Postgres
import Storage

/// `webhook.create`, `list`, `delete` (docs/protocol.md, "webhooks"): group admins only, one group.
extension NotificationService {
    public func createWebhook(caller: Principal, _ new: NewWebhook) async throws -> Webhook {
        let group = try caller.requireGroup()
        let id = UUID()
        // Bound to its row: a sealed secret copied onto another webhook does not open.
        let sealed = try cipher.seal(
            new.secret, context: FieldContext(group: group, table: Webhook.table, column: Webhook.secretColumn, row: id))
        let kinds = new.kinds.map(\.rawValue)
        return try await database.transaction(.group(group), principal: caller.id) { connection in
            // Serialises creations in the group, so the limit holds under concurrent calls.
            try connection.query("SELECT pg_advisory_xact_lock(hashtextextended('webhooks ' || \(group)::text, 0))")
            let count: Int = try connection.query(
                "SELECT count(*)::int8 FROM forecourt.webhooks WHERE dealer_group_id = \(group)"
            ).first?.decode(0) ?? 0
            guard count < Webhook.maximumPerGroup else {
                throw DomainError.conflict("the group already has \(Webhook.maximumPerGroup) webhooks; delete one first")
            }
            let row = try connection.query(
                """
                INSERT INTO forecourt.webhooks (dealer_group_id, id, url, secret, kinds)
                VALUES (\(group), \(id), \(new.url), \(sealed), \(kinds))
                RETURNING \(unsafeSQL: Webhook.columns)
                """
            ).first
            guard let row else { throw DomainError.notFound("webhook") }
            try AuditLog.record(
                connection, group: group, principal: caller, method: "webhook.create", objectType: "webhook", objectID: id)
            return try Webhook(row: row)
        }
    }

    public func listWebhooks(caller: Principal, limit: Int, after: String?) async throws -> Page<Webhook> {
        let group = try caller.requireGroup()
        let cursorScope = group.uuidString.lowercased()
        let position = try after.map { try Self.position(cursors.decode($0, list: "webhook.list", scope: cursorScope)) }
        let rows = try await database.transaction(.group(group), readOnly: true) { connection in
            try connection.query(
                """
                SELECT \(unsafeSQL: Webhook.columns) FROM forecourt.webhooks
                WHERE dealer_group_id = \(group)
                    AND (\(position?.micros)::int8 IS NULL
                        OR (created_at, id) > (timestamptz 'epoch' + \(position?.micros) * interval '1 microsecond', \(position?.id)))
                ORDER BY created_at, id LIMIT \(limit + 1)
                """
            ).rows.map(Webhook.init)
        }
        let items = Array(rows.prefix(limit))
        let next = rows.count > limit ? items.last.map {
            cursors.encode("\($0.createdMicros):\($0.id.uuidString.lowercased())", list: "webhook.list", scope: cursorScope)
        } : nil
        return Page(items: items, next: next)
    }

    /// Deletes a webhook of the caller's group; deliveries still owed to it are dropped.
    public func deleteWebhook(caller: Principal, id: UUID) async throws {
        let group = try caller.requireGroup()
        try await database.transaction(.group(group), principal: caller.id) { connection in
            let deleted = try connection.query(
                "DELETE FROM forecourt.webhooks WHERE dealer_group_id = \(group) AND id = \(id)"
            ).affectedRows
            guard deleted > 0 else { throw DomainError.notFound("webhook") }
            try AuditLog.record(
                connection, group: group, principal: caller, method: "webhook.delete", objectType: "webhook", objectID: id)
        }
    }
}
