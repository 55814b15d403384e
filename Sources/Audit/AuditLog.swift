import ForecourtCore
import Foundation
import Postgres

/// The audit log: one row per state-changing call, written in the call's own transaction
/// (so it exists exactly when the change does). Never personal data: ids, names of methods
/// and outcomes only.
public enum AuditLog {
    /// Records that `principal` called `method` on an object of `group`: queued to go out with
    /// the transaction's next round trip (`PostgresConnection.enqueue`), a failure thrown there.
    public static func record(
        _ connection: PostgresConnection,
        group: UUID,
        principal: Principal?,
        method: String,
        objectType: String?,
        objectID: UUID?,
        outcome: String = "ok"
    ) throws {
        try connection.enqueue(
            """
            INSERT INTO forecourt.audit_log (dealer_group_id, principal_id, principal_role, method, object_type, object_id, outcome)
            VALUES (\(group), \(principal?.id), \(principal?.role.rawValue ?? "operator"), \(method), \(objectType), \(objectID), \(outcome))
            """)
    }
}
