import FieldCrypto
import ForecourtApp
import ForecourtCore
import Foundation
import Identity
import Logging
import Postgres
import RPC
import Storage
import Testing
import TestSupport

/// How database failures reach clients: -32007 when PostgreSQL is unreachable, -32008 when the
/// connection breaks during COMMIT.
@Suite struct StorageErrorTests {
    @Test func unreachableDatabaseIsUnavailable() async throws {
        // Nothing listens on this socket directory.
        let pool = PostgresPool(
            configuration: AppDatabase.poolConfiguration(
                connectionString: "host=/tmp/forecourt-nowhere port=1 user=x dbname=x connect_timeout=2",
                maximumConnections: 1))
        let database = AppDatabase(pool: pool)
        let wiring = ServiceWiring(database: database, cipher: FieldCipher(keyring: .generate()))
        let dispatcher = wiring.dispatcher(logger: Logger(label: "test"))
        let session = Session(remoteAddress: "127.0.0.1")
        let request: JSON = [
            "jsonrpc": "2.0", "id": 7, "method": "session.authenticate",
            "params": ["api_key": .string(APIKey.generate().secret)],
        ]
        let response = await dispatcher.handle(request, session: session)
        #expect(response?["error"]?["code"] == -32007)
        #expect(response?["error"]?["data"]?["reason"] == "unavailable")
        await pool.shutdown()
    }

    @Test func connectionLostDuringCommitIsOutcomeUnknown() async throws {
        try await withTestDatabase(maximumConnections: 1) { db in
            try db.installCommitKiller()
            let database = AppDatabase(pool: db.pool)
            let error = await #expect(throws: DomainError.self) {
                try await database.transaction(.group(UUID())) { try $0.query("INSERT INTO public.doomed VALUES (1)") }
            }
            #expect(error?.code == .outcomeUnknown)
            #expect(RPCError(error!).code == -32008)
        }
    }

    @Test func aLostConnectionBeforeCommitIsRetriedOnAFreshOne() async throws {
        try await withTestDatabase(maximumConnections: 1) { db in
            let fixture = try db.makeGroup()
            let database = AppDatabase(pool: db.pool)
            let pid = try await db.pool.withConnection { $0.backendPID }
            let owner = try db.ownerConnection()
            defer { owner.close() }
            try owner.query("SELECT pg_terminate_backend(\(pid))")
            try await Task.sleep(for: .milliseconds(100))
            // The pooled connection is dead; the call still succeeds, once, on a new one.
            let count = try await database.transaction(.group(fixture.group)) { connection in
                try connection.query("SELECT count(*) FROM forecourt.dealers").first!.decode(0, as: Int.self)
            }
            #expect(count == 2)
        }
    }
}
