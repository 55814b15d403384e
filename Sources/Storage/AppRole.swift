import Postgres

/// The role every query of the service runs as (docs/architecture.md, "Tenancy"). Migration
/// 0001 creates it without privileges that bypass row-level security, but accepts one that
/// already exists; this check refuses one that was made (or changed) otherwise. `forecourt
/// migrate` runs it after migrating and `forecourt serve` before serving.
public enum AppRole {
    public static let name = AppDatabase.role

    /// What is wrong with `role` (empty when nothing is): superuser, BYPASSRLS, a member of a
    /// role that is either, or a member of the owner of the `forecourt` schema (which owns the
    /// tables and could turn row-level security off). Each item is a phrase naming the fix.
    public static func problems(_ connection: PostgresConnection, role: String = name) throws -> [String] {
        let row = try connection.query(
            """
            SELECT r.rolsuper, r.rolbypassrls,
                   EXISTS (SELECT 1 FROM pg_roles o
                           WHERE (o.rolsuper OR o.rolbypassrls) AND o.oid <> r.oid AND pg_has_role(r.oid, o.oid, 'MEMBER')),
                   COALESCE((SELECT pg_has_role(r.oid, n.nspowner, 'MEMBER') FROM pg_namespace n
                             WHERE n.nspname = 'forecourt'), false)
            FROM pg_roles r WHERE r.rolname = \(role)
            """
        ).first
        guard let row else { return ["the role \(role) does not exist (run forecourt migrate)"] }
        var problems: [String] = []
        if try row.decode(0, as: Bool.self) { problems.append("\(role) is a superuser (ALTER ROLE \(role) NOSUPERUSER)") }
        if try row.decode(1, as: Bool.self) { problems.append("\(role) has BYPASSRLS (ALTER ROLE \(role) NOBYPASSRLS)") }
        if try row.decode(2, as: Bool.self) {
            problems.append("\(role) is a member of a superuser or BYPASSRLS role (REVOKE that role FROM \(role))")
        }
        if try row.decode(3, as: Bool.self) {
            problems.append("\(role) is a member of the owner of the forecourt schema (REVOKE the owner FROM \(role))")
        }
        return problems
    }

    /// `problems` as one line for a start-up or command error, or nil.
    public static func check(_ connection: PostgresConnection, role: String = name) throws -> String? {
        let found = try problems(connection, role: role)
        guard !found.isEmpty else { return nil }
        return "row-level security would not hold: " + found.joined(separator: "; ")
    }
}
