import Crypto
import ForecourtCore
import Foundation
import Postgres
import Storage

/// A database of its own for one test, migrated, on the throwaway cluster that `scripts/test`
/// starts (`FORECOURT_TEST_DATABASE_URL`, a key=value libpq string naming a superuser).
///
/// Each database is a copy of a template migrated once per run (keyed by the migrations'
/// checksums), so a test costs a `CREATE DATABASE ... TEMPLATE`, not a migration.
public struct TestDatabase: Sendable {
    /// The connection string of this test's database as the owner (superuser).
    public let ownerConnectionString: String
    /// The database's name.
    public let name: String
    /// A pool that connects as the owner and whose transactions act as `forecourt_app`, as the
    /// service's do (`AppDatabase.poolConfiguration`).
    public let pool: PostgresPool

    /// Makes `public.doomed`, where an insert kills its own backend inside COMMIT (a deferred
    /// trigger): the connection is lost while the commit is in flight.
    public func installCommitKiller() throws {
        let owner = try ownerConnection()
        defer { owner.close() }
        try owner.execute(
            unsafeSQL: """
                CREATE TABLE public.doomed (id int);
                GRANT USAGE ON SCHEMA public TO forecourt_app;
                GRANT INSERT ON public.doomed TO forecourt_app;
                CREATE FUNCTION public.die() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS
                $$ BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NULL; END $$;
                CREATE CONSTRAINT TRIGGER die AFTER INSERT ON public.doomed
                    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION public.die();
                """)
    }

    /// Opens a connection as the owner (operator commands, assertions that look past RLS).
    public func ownerConnection() throws -> PostgresConnection {
        try PostgresConnection(connectionString: ownerConnectionString)
    }
}

public enum TestEnvironment {
    /// The base connection string, or a clear failure telling how tests are meant to run.
    public static var baseConnectionString: String {
        get throws {
            guard let url = ProcessInfo.processInfo.environment["FORECOURT_TEST_DATABASE_URL"], !url.isEmpty else {
                throw TestSetupError("FORECOURT_TEST_DATABASE_URL is not set: run the tests with scripts/test")
            }
            return url
        }
    }

    /// The base connection string of the PgBouncer (transaction mode) that `scripts/test` puts
    /// in front of the test cluster, or a clear failure.
    public static var pgbouncerConnectionString: String {
        get throws {
            guard let url = ProcessInfo.processInfo.environment["FORECOURT_TEST_PGBOUNCER_URL"], !url.isEmpty else {
                throw TestSetupError("FORECOURT_TEST_PGBOUNCER_URL is not set: run the tests with scripts/test")
            }
            return url
        }
    }

    /// The login role the service uses through PgBouncer: a member of `forecourt_app` and
    /// nothing more (docs/operations.md, "The database roles").
    public static let serviceLogin = "forecourt_test_service"

    /// The checkout this test binary was built from.
    public static var repositoryDirectory: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
    }

    /// The repository's `migrations/` directory.
    public static var migrationsDirectory: String { repositoryDirectory + "/migrations" }

    /// A connection string for database `name` on the test cluster.
    public static func connectionString(database name: String) throws -> String {
        // In a key=value string, a later keyword wins.
        try baseConnectionString + " dbname=\(name)"
    }
}

public struct TestSetupError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Creates (once per run) the migrated template database and returns its name.
actor TemplateDatabase {
    static let shared = TemplateDatabase()
    private var name: String?

    func ensure() throws -> String {
        if let name { return name }
        let migrator = try Migrator(directory: TestEnvironment.migrationsDirectory)
        let digest = SHA256.hash(data: Data(migrator.migrations.map(\.checksum).joined().utf8))
        let templateName = "fc_template_" + digest.prefix(8).hexString
        let admin = try PostgresConnection(connectionString: TestEnvironment.baseConnectionString)
        defer { admin.close() }
        // Other test processes of the same run may be building it too.
        try admin.query("SELECT pg_advisory_lock(4242)")
        defer { _ = try? admin.query("SELECT pg_advisory_unlock(4242)") }
        let exists = try admin.query("SELECT 1 FROM pg_database WHERE datname = \(templateName)").count > 0
        if !exists {
            let building = templateName + "_building"
            try admin.execute(unsafeSQL: "DROP DATABASE IF EXISTS \(building)")
            try admin.execute(unsafeSQL: "CREATE DATABASE \(building)")
            do {
                let connection = try PostgresConnection(connectionString: TestEnvironment.connectionString(database: building))
                defer { connection.close() }
                try migrator.migrate(on: connection)
            }
            try admin.execute(unsafeSQL: "ALTER DATABASE \(building) RENAME TO \(templateName)")
        }
        // The service's login for TestRoute.pgbouncer (roles are cluster-wide; another test
        // process may be making it too, and it is kept for the cluster's life).
        try admin.execute(
            unsafeSQL: """
                DO $$ BEGIN
                    CREATE ROLE \(TestEnvironment.serviceLogin) LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
                EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
                END $$;
                GRANT forecourt_app TO \(TestEnvironment.serviceLogin);
                """)
        name = templateName
        return templateName
    }
}

/// How the pool of a test database reaches PostgreSQL.
public enum TestRoute: String, Sendable, CaseIterable, CustomStringConvertible {
    /// Straight to the test cluster, logged in as the owner (a superuser): the service's
    /// transactions must act as `forecourt_app` all the same.
    case direct
    /// Through PgBouncer in transaction mode, which resets the server session after every
    /// transaction, logged in as `TestEnvironment.serviceLogin`, with the statement cache off
    /// (`FORECOURT_DB_STATEMENT_CACHE=off`), as docs/operations.md describes.
    case pgbouncer

    public var description: String { rawValue }
}

/// Runs `body` with a fresh migrated database, dropped afterwards; its pool goes by `route`.
public func withTestDatabase<T>(
    maximumConnections: Int = 4,
    route: TestRoute = .direct,
    _ body: (TestDatabase) async throws -> T
) async throws -> T {
    let name = try await createTestDatabase(migrated: true)
    return try await withDatabase(named: name, maximumConnections: maximumConnections, route: route, body)
}

/// Runs `body` with a fresh empty database (no migrations), dropped afterwards.
public func withEmptyTestDatabase<T>(_ body: (TestDatabase) async throws -> T) async throws -> T {
    let name = try await createTestDatabase(migrated: false)
    return try await withDatabase(named: name, maximumConnections: 2, route: .direct, body)
}

private func createTestDatabase(migrated: Bool) async throws -> String {
    let name = "fc_test_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
    let template = migrated ? try await TemplateDatabase.shared.ensure() : "template0"
    let admin = try PostgresConnection(connectionString: TestEnvironment.baseConnectionString)
    defer { admin.close() }
    try admin.execute(unsafeSQL: "CREATE DATABASE \(name) TEMPLATE \(template)")
    return name
}

private func withDatabase<T>(
    named name: String, maximumConnections: Int, route: TestRoute, _ body: (TestDatabase) async throws -> T
) async throws -> T {
    let connectionString = try TestEnvironment.connectionString(database: name)
    let configuration: PostgresPool.Configuration
    switch route {
    case .direct:
        configuration = AppDatabase.poolConfiguration(connectionString: connectionString, maximumConnections: maximumConnections)
    case .pgbouncer:
        configuration = AppDatabase.poolConfiguration(
            connectionString: try TestEnvironment.pgbouncerConnectionString + " dbname=\(name) user=\(TestEnvironment.serviceLogin)",
            maximumConnections: maximumConnections, statementCache: false)
    }
    let pool = PostgresPool(configuration: configuration)
    let database = TestDatabase(ownerConnectionString: connectionString, name: name, pool: pool)
    func drop() async {
        await pool.shutdown()
        if let admin = try? PostgresConnection(connectionString: TestEnvironment.baseConnectionString) {
            try? admin.execute(unsafeSQL: "DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
            admin.close()
        }
    }
    do {
        let value = try await body(database)
        await drop()
        return value
    } catch {
        await drop()
        throw error
    }
}
