import ForecourtCore
import Foundation
import Postgres
import Storage
import Testing
import TestSupport

/// Two groups with a dealer each, made by the owner.
private func seedTwoGroups(_ db: TestDatabase) throws -> (a: UUID, b: UUID) {
    let owner = try db.ownerConnection()
    defer { owner.close() }
    let a = UUID()
    let b = UUID()
    for (group, code) in [(a, "AAA01"), (b, "BBB01")] {
        try owner.query("INSERT INTO forecourt.dealer_groups (id, name) VALUES (\(group), \("group " + code))")
        try owner.query(
            "INSERT INTO forecourt.dealers (dealer_group_id, id, code, name) VALUES (\(group), \(UUID()), \(code), \("dealer"))")
    }
    return (a, b)
}

/// Row-level security as the service meets it: each test that goes through the service's pool
/// runs twice, straight to PostgreSQL as the owner login, and through PgBouncer in transaction
/// mode (which resets the session after every transaction) as a login that is only a member
/// of `forecourt_app`.
@Suite struct TenancyTests {
    @Test(arguments: TestRoute.allCases)
    func aGroupSeesOnlyItsOwnRows(route: TestRoute) async throws {
        try await withTestDatabase(route: route) { db in
            let (a, _) = try seedTwoGroups(db)
            let database = AppDatabase(pool: db.pool)
            let codes = try await database.transaction(.group(a)) { connection in
                try connection.query("SELECT code FROM forecourt.dealers ORDER BY code").rows.map { try $0.decode(0, as: String.self) }
            }
            #expect(codes == ["AAA01"])
        }
    }

    @Test(arguments: TestRoute.allCases)
    func noScopeSeesNothing(route: TestRoute) async throws {
        try await withTestDatabase(route: route) { db in
            _ = try seedTwoGroups(db)
            let count = try await db.pool.transaction { connection in
                try connection.query("SELECT count(*) FROM forecourt.dealers").first!.decode(0, as: Int.self)
            }
            #expect(count == 0)
        }
    }

    @Test(arguments: TestRoute.allCases)
    func aGroupCannotWriteIntoAnother(route: TestRoute) async throws {
        try await withTestDatabase(route: route) { db in
            let (a, b) = try seedTwoGroups(db)
            let database = AppDatabase(pool: db.pool)
            await #expect(throws: (any Error).self) {
                try await database.transaction(.group(a)) { connection in
                    try connection.query(
                        "INSERT INTO forecourt.dealers (dealer_group_id, id, code, name) VALUES (\(b), \(UUID()), 'CCC01', 'x')")
                }
            }
            // Updates of the other group's rows find nothing to update.
            let updated = try await database.transaction(.group(a)) { connection in
                try connection.query("UPDATE forecourt.dealers SET name = 'taken' WHERE dealer_group_id = \(b)").affectedRows
            }
            #expect(updated == 0)
        }
    }

    @Test(arguments: TestRoute.allCases)
    func theServiceRoleCannotBypassRowLevelSecurity(route: TestRoute) async throws {
        try await withTestDatabase(route: route) { db in
            let (a, _) = try seedTwoGroups(db)
            let flags = try await db.pool.transaction { connection in
                try connection.query(
                    "SELECT rolsuper, rolbypassrls, current_user::text FROM pg_roles WHERE rolname = current_user"
                ).first.map { (try $0.decode(0, as: Bool.self), try $0.decode(1, as: Bool.self), try $0.decode(2, as: String.self)) }
            }
            #expect(flags?.0 == false)
            #expect(flags?.1 == false)
            #expect(flags?.2 == "forecourt_app")
            // Not the owner: it cannot switch RLS off or drop the policies.
            await #expect(throws: PostgresError.self) {
                try await db.pool.transaction { try $0.execute(unsafeSQL: "ALTER TABLE forecourt.dealers DISABLE ROW LEVEL SECURITY") }
            }
            await #expect(throws: PostgresError.self) {
                try await db.pool.transaction { try $0.execute(unsafeSQL: "DROP POLICY tenant ON forecourt.dealers") }
            }
            // It cannot write the append-only audit log's history.
            let audit = await #expect(throws: PostgresError.self) {
                try await AppDatabase(pool: db.pool).pool.transaction(settings: [("forecourt.dealer_group_id", a.uuidString)]) {
                    try $0.query("DELETE FROM forecourt.audit_log")
                }
            }
            #expect(audit?.kind == .insufficientPrivilege)
        }
    }

    /// The rule that replaced the audit log's and the idempotency keys' foreign keys to the group
    /// (migration 0016, docs/architecture.md "Tenancy"): not even the owner deletes a group, or
    /// changes its id, though nothing else refers to it; its name may change.
    @Test func aGroupIsNeverDeletedNorReKeyed() async throws {
        try await withTestDatabase { db in
            let owner = try db.ownerConnection()
            defer { owner.close() }
            let group = UUID()
            try owner.query("INSERT INTO forecourt.dealer_groups (id, name) VALUES (\(group), 'alone')")
            try owner.query(
                """
                INSERT INTO forecourt.audit_log (dealer_group_id, principal_role, method, outcome)
                VALUES (\(group), 'group_admin', 'order.create', 'ok')
                """)
            for statement: PostgresQuery in [
                "DELETE FROM forecourt.dealer_groups WHERE id = \(group)",
                "UPDATE forecourt.dealer_groups SET id = \(UUID()) WHERE id = \(group)",
                "TRUNCATE forecourt.dealer_groups CASCADE",
            ] {
                let error = #expect(throws: PostgresError.self) { try owner.query(statement) }
                #expect(error?.sqlState == "23001", "\(statement.sql)")
            }
            try owner.query("UPDATE forecourt.dealer_groups SET name = 'renamed' WHERE id = \(group)")
            let left = try owner.query(
                """
                SELECT (SELECT name FROM forecourt.dealer_groups WHERE id = \(group)),
                    (SELECT count(*) FROM forecourt.audit_log WHERE dealer_group_id = \(group))
                """
            ).first
            #expect(try left?.decode(0, as: String.self) == "renamed")
            #expect(try left?.decode(1, as: Int.self) == 1)
        }
    }

    @Test func everyTableHasForcedRowLevelSecurityAndGroupedKeys() async throws {
        try await withTestDatabase { db in
            let owner = try db.ownerConnection()
            defer { owner.close() }
            let tables = try owner.query(
                """
                SELECT c.relname::text, c.relrowsecurity, c.relforcerowsecurity,
                       EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'dealer_group_id' AND NOT a.attisdropped)
                FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = 'forecourt' AND c.relkind = 'r'
                """
            ).rows.map { (try $0.decode(0, as: String.self), try $0.decode(1, as: Bool.self), try $0.decode(2, as: Bool.self), try $0.decode(3, as: Bool.self)) }
            #expect(!tables.isEmpty)
            for (name, enabled, forced, grouped) in tables {
                #expect(enabled && forced, "\(name) must have RLS enabled and forced")
                // The group table is the tenant itself.
                if name != "dealer_groups" {
                    #expect(grouped, "\(name) must carry dealer_group_id")
                }
            }
            // Unique keys include dealer_group_id, but for the world-unique identifiers.
            let worldUnique: Set<String> = [
                "dealers_code_key", "orders_order_number_key", "orders_vin_key", "api_keys_key_hash_key", "api_keys_pkey",
                "dealer_groups_pkey",
                // A portal key's budget: keyed by the key, world-unique as its id.
                "track_lookup_budgets_pkey",
                // An analyst's login role (cluster-wide), whatever groups it may read.
                "analyst_grants_pkey",
            ]
            let uniques = try owner.query(
                """
                SELECT con.conname::text,
                       EXISTS (SELECT 1 FROM unnest(con.conkey) k JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k
                               WHERE a.attname = 'dealer_group_id')
                FROM pg_constraint con JOIN pg_namespace n ON n.oid = con.connamespace
                WHERE n.nspname = 'forecourt' AND con.contype IN ('u', 'p', 'f')
                """
            ).rows.map { (try $0.decode(0, as: String.self), try $0.decode(1, as: Bool.self)) }
            for (name, grouped) in uniques where !worldUnique.contains(name) {
                #expect(grouped, "\(name) must include dealer_group_id")
            }
        }
    }

    /// Issue 12, point 12: a row that names an order, customer, dealer, notification or webhook
    /// points at one of its own group, by a foreign key that includes `dealer_group_id`
    /// (`stage_durations` once had none).
    @Test func everyReferenceToAnotherTenantRowIsAForeignKeyWithinTheGroup() async throws {
        try await withTestDatabase { db in
            let owner = try db.ownerConnection()
            defer { owner.close() }
            let targets = [
                "order_id": "orders", "customer_id": "customers", "dealer_id": "dealers",
                "notification_id": "notifications", "webhook_id": "webhooks",
            ]
            let columns = try owner.query(
                """
                SELECT c.relname::text, a.attname::text
                FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = 'forecourt' AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
                  AND a.attname = ANY (\(Array(targets.keys)))
                ORDER BY 1, 2
                """
            ).rows.map { (try $0.decode(0, as: String.self), try $0.decode(1, as: String.self)) }
            #expect(columns.contains { $0 == ("stage_durations", "order_id") })
            for (table, column) in columns {
                let target = targets[column]!
                let covered = try owner.query(
                    """
                    SELECT EXISTS (
                        SELECT 1 FROM pg_constraint con
                        WHERE con.contype = 'f' AND con.conrelid = ('forecourt.' || \(table))::regclass
                          AND con.confrelid = ('forecourt.' || \(target))::regclass
                          AND (SELECT array_agg(a.attname::text ORDER BY a.attname) FROM unnest(con.conkey) k
                               JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k)
                              = (SELECT array_agg(x ORDER BY x) FROM unnest(ARRAY['dealer_group_id', \(column)]) x))
                    """
                ).first!.decode(0, as: Bool.self)
                #expect(covered, "\(table).\(column) must reference \(target) of its group")
            }
        }
    }

    @Test(arguments: TestRoute.allCases)
    func apiKeysAreFoundOnlyByTheirHashBeforeTheGroupIsKnown(route: TestRoute) async throws {
        try await withTestDatabase(route: route) { db in
            let (a, _) = try seedTwoGroups(db)
            let owner = try db.ownerConnection()
            defer { owner.close() }
            let hash = [UInt8](repeating: 7, count: 32)
            let other = [UInt8](repeating: 8, count: 32)
            for h in [hash, other] {
                try owner.query(
                    "INSERT INTO forecourt.api_keys (id, dealer_group_id, role, label, key_prefix, key_hash) VALUES (\(UUID()), \(a), 'auditor', 'k', 'fck_', \(h))"
                )
            }
            let database = AppDatabase(pool: db.pool)
            let visible = try await database.transaction(.authentication(keyHash: hash)) { connection in
                try connection.query("SELECT count(*) FROM forecourt.api_keys").first!.decode(0, as: Int.self)
            }
            #expect(visible == 1)
        }
    }

    /// Whatever is done to a pooled session between calls (what a pooler in transaction mode,
    /// `RESET ROLE` or `DISCARD ALL` does, or a session left acting as the owner), the next
    /// transaction acts as forecourt_app in its scope: the role is part of every transaction.
    @Test func aSessionResetBetweenCallsCannotWidenTheScope() async throws {
        try await withTestDatabase(maximumConnections: 1) { db in
            let (a, _) = try seedTwoGroups(db)
            let database = AppDatabase(pool: db.pool)
            let pid = try await db.pool.withConnection { $0.backendPID }
            for reset in ["RESET ROLE", "DISCARD ALL", "SET ROLE postgres", "RESET ALL", "SET SESSION AUTHORIZATION DEFAULT"] {
                try await db.pool.withConnection { try $0.execute(unsafeSQL: reset) }
                let (user, codes) = try await database.transaction(.group(a)) { connection in
                    let user = try connection.query("SELECT current_user::text").first!.decode(0, as: String.self)
                    let codes = try connection.query("SELECT code FROM forecourt.dealers ORDER BY code").rows.map {
                        try $0.decode(0, as: String.self)
                    }
                    return (user, codes)
                }
                #expect(user == "forecourt_app", "after \(reset)")
                #expect(codes == ["AAA01"], "after \(reset)")
                let total = try await database.transaction(.group(a), readOnly: true, single: "SELECT count(*) FROM forecourt.dealers")
                #expect(try total.first!.decode(0, as: Int.self) == 1, "after \(reset)")
                // After the transaction the session is back to whatever it was: nothing relied on it.
                let after = try await db.pool.withConnection { connection in
                    try connection.query("SELECT current_user::text").first!.decode(0, as: String.self)
                }
                #expect(after == "postgres", "after \(reset)")
            }
            // All of it on the one pooled connection.
            #expect(try await db.pool.withConnection { $0.backendPID } == pid)
        }
    }

    /// A login that is not a member of forecourt_app runs nothing at all, rather than running
    /// as itself.
    @Test func aLoginThatCannotActAsTheServiceRoleRunsNothing() async throws {
        try await withTestDatabase { db in
            let (a, _) = try seedTwoGroups(db)
            let owner = try db.ownerConnection()
            defer { owner.close() }
            try owner.execute(
                unsafeSQL: """
                    DO $$ BEGIN
                        CREATE ROLE forecourt_test_outsider LOGIN;
                    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
                    END $$;
                    GRANT USAGE ON SCHEMA forecourt TO forecourt_test_outsider;
                    GRANT SELECT ON forecourt.dealers TO forecourt_test_outsider;
                    """)
            let pool = PostgresPool(
                configuration: AppDatabase.poolConfiguration(
                    connectionString: db.ownerConnectionString + " user=forecourt_test_outsider", maximumConnections: 1))
            let database = AppDatabase(pool: pool)
            let error = await #expect(throws: PostgresError.self) {
                try await database.transaction(.group(a)) { connection in
                    try connection.query("SELECT count(*) FROM forecourt.dealers").first!.decode(0, as: Int.self)
                }
            }
            #expect(error?.kind == .insufficientPrivilege)
            await pool.shutdown()
        }
    }
}
