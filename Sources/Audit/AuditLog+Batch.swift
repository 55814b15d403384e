import ForecourtCore
import Foundation
import Postgres

extension AuditLog {
    /// Records one row per object changed by a bulk call (`customer.upsert_batch`), in one
    /// statement: a batch of a thousand changes costs one round trip, not a thousand.
    public static func recordMany(
        _ connection: PostgresConnection,
        group: UUID,
        principal: Principal?,
        method: String,
        objectType: String,
        objects: [(id: UUID, outcome: String)]
    ) throws {
        guard !objects.isEmpty else { return }
        let ids = objects.map(\.id)
        let outcomes = objects.map(\.outcome)
        try connection.query(
            """
            INSERT INTO forecourt.audit_log (dealer_group_id, principal_id, principal_role, method, object_type, object_id, outcome)
            SELECT \(group), \(principal?.id), \(principal?.role.rawValue ?? "operator"), \(method), \(objectType), u.id, u.outcome
            FROM unnest(\(ids)::uuid[], \(outcomes)::text[]) AS u(id, outcome)
            """)
    }
}
