import Foundation
import Postgres
import Testing
import TestSupport

/// A scratch table the service role may write, made by the owner.
private func makeScratchTable(_ db: TestDatabase) throws {
    let owner = try db.ownerConnection()
    defer { owner.close() }
    try owner.execute(
        unsafeSQL: """
            CREATE TABLE public.scratch (id int PRIMARY KEY, note text CHECK (length(note) < 20));
            GRANT USAGE ON SCHEMA public TO forecourt_app;
            GRANT SELECT, INSERT, UPDATE ON public.scratch TO forecourt_app;
            """)
}

private struct Boom: Error {}

@Suite struct PostgresTransactionTests {
    @Test func anyThrownErrorRollsBack() async throws {
        try await withTestDatabase { db in
            try makeScratchTable(db)
            await #expect(throws: Boom.self) {
                try await db.pool.transaction { connection in
                    try connection.query("INSERT INTO public.scratch VALUES (1, 'a')")
                    throw Boom()
                }
            }
            try await db.pool.transaction { try $0.query("INSERT INTO public.scratch VALUES (2, 'b')") }
            let ids = try await db.pool.withConnection { connection in
                try connection.query("SELECT id::int8 FROM public.scratch ORDER BY id").rows.map { try $0.decode(0, as: Int.self) }
            }
            #expect(ids == [2])
        }
    }

    @Test func settingsAreLocalToTheTransaction() async throws {
        try await withTestDatabase(maximumConnections: 1) { db in
            let inside = try await db.pool.transaction(settings: [("forecourt.dealer_group_id", "abc")]) { connection in
                try connection.query("SELECT current_setting('forecourt.dealer_group_id', true)").first!.decode(0, as: String?.self)
            }
            #expect(inside == "abc")
            let after = try await db.pool.transaction { connection in
                try connection.query("SELECT current_setting('forecourt.dealer_group_id', true)").first!.decode(0, as: String?.self)
            }
            #expect(after == nil || after == "")
        }
    }

    @Test func errorsCarryClassAndNoValues() async throws {
        try await withTestDatabase { db in
            try makeScratchTable(db)
            try await db.pool.transaction { try $0.query("INSERT INTO public.scratch VALUES (1, 'secret-value-1')") }
            let unique = await #expect(throws: PostgresError.self) {
                try await db.pool.transaction { try $0.query("INSERT INTO public.scratch VALUES (1, 'secret-value-2')") }
            }
            #expect(unique?.kind == .uniqueViolation)
            #expect(unique?.sqlState == "23505")
            #expect(unique?.constraintName == "scratch_pkey")
            #expect(!String(describing: unique!).contains("secret-value"))
            let check = await #expect(throws: PostgresError.self) {
                try await db.pool.transaction { try $0.query("INSERT INTO public.scratch VALUES (3, 'secret-value-long-enough-to-fail')") }
            }
            #expect(check?.kind == .checkViolation)
            #expect(!String(describing: check!).contains("secret-value"))
            let invalid = await #expect(throws: PostgresError.self) {
                try await db.pool.transaction { try $0.query("SELECT \("secret-value-3")::int") }
            }
            #expect(invalid?.kind == .invalidData)
            #expect(!String(describing: invalid!).contains("secret-value"))
        }
    }

    @Test func connectionLostDuringCommitIsOutcomeUnknown() async throws {
        try await withTestDatabase(maximumConnections: 1) { db in
            try db.installCommitKiller()
            let error = await #expect(throws: PostgresError.self) {
                try await db.pool.transaction { try $0.query("INSERT INTO public.doomed VALUES (1)") }
            }
            #expect(error?.kind == .commitOutcomeUnknown)
        }
    }
}
