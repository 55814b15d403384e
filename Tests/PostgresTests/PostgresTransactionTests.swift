import Foundation
@testable import Postgres
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

/// The one transaction path (`PostgresConnection.transaction`): what its first round trip
/// carries, and what each shape of transaction costs in round trips.
@Suite struct TransactionStartTests {
    private static let start = TransactionStart(
        role: "forecourt_app", settings: [(name: "forecourt.dealer_group_id", value: "abc")])

    @Test func theFirstStatementRunsWithTheRoleAndSettingsInTheSameRoundTrip() async throws {
        try await withTestDatabase { db in
            let connection = try db.ownerConnection()
            defer { connection.close() }
            let before = connection.roundTrips
            let (user, group) = try connection.transaction(Self.start) { connection in
                let row = try connection.query("SELECT current_user::text, current_setting('forecourt.dealer_group_id')").first!
                return (try row.decode(0, as: String.self), try row.decode(1, as: String.self))
            }
            #expect(user == "forecourt_app")
            #expect(group == "abc")
            // BEGIN, role, settings and the SELECT in one; COMMIT in the other.
            #expect(connection.roundTrips - before == 2)
            // Transaction-local: the session is the owner's again, with no group.
            let after = try connection.query(
                "SELECT current_user::text, coalesce(current_setting('forecourt.dealer_group_id', true), '')"
            ).first!
            #expect(try after.decode(0, as: String.self) == "postgres")
            #expect(try after.decode(1, as: String.self) == "")
        }
    }

    @Test func aTransactionThatRunsNothingSendsNothing() async throws {
        try await withTestDatabase { db in
            let connection = try db.ownerConnection()
            defer { connection.close() }
            let before = connection.roundTrips
            let value = try connection.transaction(Self.start) { _ in 42 }
            #expect(value == 42)
            #expect(connection.roundTrips == before)
            #expect(connection.isUsable)
        }
    }

    @Test func aSingleStatementTransactionIsOneRoundTripAndReadOnly() async throws {
        try await withTestDatabase { db in
            try makeScratchTable(db)
            let connection = try db.ownerConnection()
            defer { connection.close() }
            let before = connection.roundTrips
            let read = TransactionStart(readOnly: true, role: "forecourt_app", settings: Self.start.settings)
            let row = try connection.transaction(
                read, single: "SELECT current_user::text, current_setting('forecourt.dealer_group_id'), current_setting('transaction_read_only')"
            ).first!
            #expect(try row.decode(0, as: String.self) == "forecourt_app")
            #expect(try row.decode(1, as: String.self) == "abc")
            #expect(try row.decode(2, as: String.self) == "on")
            #expect(connection.roundTrips - before == 1)
            // Read only: a write is refused (25006), and the connection is clean afterwards.
            let refused = #expect(throws: PostgresError.self) {
                try connection.transaction(read, single: "INSERT INTO public.scratch VALUES (1, 'a')")
            }
            #expect(refused?.sqlState == "25006")
            #expect(connection.isUsable)
            // A write as a single statement commits.
            _ = try connection.transaction(TransactionStart(role: "forecourt_app"), single: "INSERT INTO public.scratch VALUES (2, 'b')")
            #expect(try connection.query("SELECT count(*) FROM public.scratch").first!.decode(0, as: Int.self) == 1)
            #expect(try connection.query("SELECT current_user::text").first!.decode(0, as: String.self) == "postgres")
        }
    }

    @Test func aRoleThatCannotBeTakenFailsTheTransactionBeforeItsFirstStatementRuns() async throws {
        try await withTestDatabase { db in
            try makeScratchTable(db)
            let connection = try db.ownerConnection()
            defer { connection.close() }
            let error = #expect(throws: PostgresError.self) {
                try connection.transaction(TransactionStart(role: "no_such_role_anywhere")) { connection in
                    try connection.query("INSERT INTO public.scratch VALUES (1, 'a')")
                }
            }
            #expect(error != nil)
            #expect(connection.isUsable)
            #expect(try connection.query("SELECT count(*) FROM public.scratch").first!.decode(0, as: Int.self) == 0)
        }
    }

    @Test func withoutTheStatementCacheNothingIsPreparedByName() async throws {
        try await withTestDatabase { db in
            let connection = try PostgresConnection(connectionString: db.ownerConnectionString, preparesStatements: false)
            defer { connection.close() }
            for _ in 0..<3 {
                let one = try connection.transaction(Self.start) { try $0.query("SELECT 1::int8").first!.decode(0, as: Int.self) }
                #expect(one == 1)
            }
            let prepared = try connection.query("SELECT count(*) FROM pg_prepared_statements").first!.decode(0, as: Int.self)
            #expect(prepared == 0)
        }
    }

    @Test func aFailedCommitRollsBackAndLeavesTheConnectionUsable() async throws {
        try await withTestDatabase { db in
            let owner = try db.ownerConnection()
            defer { owner.close() }
            try owner.execute(
                unsafeSQL: """
                    CREATE TABLE public.deferred_check (id int PRIMARY KEY DEFERRABLE INITIALLY DEFERRED);
                    """)
            let error = #expect(throws: PostgresError.self) {
                try owner.transaction { connection in
                    try connection.query("INSERT INTO public.deferred_check VALUES (1)")
                    try connection.query("INSERT INTO public.deferred_check VALUES (1)")
                }
            }
            #expect(error?.kind == .uniqueViolation)
            #expect(owner.isUsable)
        }
    }

    @Test func queuedStatementsAndTheLastGoOutWithCommitInOneRoundTrip() async throws {
        try await withTestDatabase { db in
            try makeScratchTable(db)
            let connection = try db.ownerConnection()
            defer { connection.close() }
            let before = connection.roundTrips
            let count = try connection.transaction(Self.start) { connection in
                try connection.enqueue("INSERT INTO public.scratch VALUES (1, 'a')")
                try connection.enqueue("INSERT INTO public.scratch VALUES (2, 'b')")
                return try connection.commit(returning: "SELECT count(*) FROM public.scratch").first!.decode(0, as: Int.self)
            }
            #expect(count == 2)
            // BEGIN, role, settings, two inserts, the count and COMMIT: one round trip.
            #expect(connection.roundTrips - before == 1)
            #expect(connection.isUsable)
            #expect(try connection.query("SELECT count(*) FROM public.scratch").first!.decode(0, as: Int.self) == 2)
            // Nothing runs after the commit.
            let late = #expect(throws: PostgresError.self) {
                try connection.transaction(Self.start) { connection in
                    _ = try connection.commit(returning: "SELECT 1")
                    try connection.query("INSERT INTO public.scratch VALUES (3, 'c')")
                }
            }
            #expect(late?.kind == .other)
            #expect(try connection.query("SELECT count(*) FROM public.scratch").first!.decode(0, as: Int.self) == 2)
        }
    }

    @Test func aQueuedStatementThatFailsIsThrownByTheNextRoundTripAndRollsBackEverything() async throws {
        try await withTestDatabase { db in
            try makeScratchTable(db)
            let connection = try db.ownerConnection()
            defer { connection.close() }
            // Thrown by the next query...
            let error = #expect(throws: PostgresError.self) {
                try connection.transaction(Self.start) { connection in
                    try connection.enqueue("INSERT INTO public.scratch VALUES (1, 'a')")
                    try connection.enqueue("INSERT INTO public.scratch VALUES (1, 'again')")
                    try connection.query("INSERT INTO public.scratch VALUES (2, 'b')")
                }
            }
            #expect(error?.kind == .uniqueViolation)
            // ...or by COMMIT, when nothing else follows.
            let atCommit = #expect(throws: PostgresError.self) {
                try connection.transaction(Self.start) { connection in
                    try connection.enqueue("INSERT INTO public.scratch VALUES (5, 'a')")
                    try connection.enqueue("INSERT INTO public.scratch VALUES (6, 'far too long to fit the check')")
                }
            }
            #expect(atCommit?.kind == .checkViolation)
            #expect(connection.isUsable)
            #expect(try connection.query("SELECT count(*) FROM public.scratch").first!.decode(0, as: Int.self) == 0)
        }
    }
    /// What a LISTENing connection has received within a few seconds, once `count` arrived.
    private static func received(_ listener: PostgresConnection, count: Int) async throws -> [String] {
        var payloads: [String] = []
        for _ in 0..<50 where payloads.count < count {
            try listener.execute(unsafeSQL: "SELECT 1")
            payloads += try listener.consumeNotifications().map(\.payload)
            if payloads.count < count { try await Task.sleep(for: .milliseconds(100)) }
        }
        return payloads
    }

    @Test func notificationsAfterCommitGoOutInTheCommitsRoundTripOnceAndOnlyIfItCommits() async throws {
        try await withTestDatabase { db in
            try makeScratchTable(db)
            let listener = try db.ownerConnection()
            defer { listener.close() }
            try listener.execute(unsafeSQL: "LISTEN fc_after_commit")
            let connection = try db.ownerConnection()
            defer { connection.close() }
            let before = connection.roundTrips
            try connection.transaction(Self.start) { connection in
                try connection.enqueue("INSERT INTO public.scratch VALUES (1, 'a')")
                try connection.notifyAfterCommit(channel: "fc_after_commit", payload: "one")
                try connection.notifyAfterCommit(channel: "fc_after_commit", payload: "one")
                try connection.notifyAfterCommit(channel: "fc_after_commit", payload: "two")
            }
            // The insert, COMMIT and the NOTIFYs: one round trip.
            #expect(connection.roundTrips - before == 1)
            #expect(connection.isUsable)
            // A rolled-back transaction sends nothing.
            #expect(throws: Boom.self) {
                try connection.transaction(Self.start) { connection in
                    try connection.query("INSERT INTO public.scratch VALUES (2, 'b')")
                    try connection.notifyAfterCommit(channel: "fc_after_commit", payload: "rolled back")
                    throw Boom()
                }
            }
            // Nor does one whose COMMIT fails.
            #expect(throws: PostgresError.self) {
                try connection.transaction(Self.start) { connection in
                    try connection.enqueue("INSERT INTO public.scratch VALUES (3, 'far too long to fit the check')")
                    try connection.notifyAfterCommit(channel: "fc_after_commit", payload: "failed")
                }
            }
            // With commit(returning:) too.
            let count = try connection.transaction(Self.start) { connection in
                try connection.enqueue("INSERT INTO public.scratch VALUES (4, 'd')")
                try connection.notifyAfterCommit(channel: "fc_after_commit", payload: "three")
                return try connection.commit(returning: "SELECT count(*) FROM public.scratch").first!.decode(0, as: Int.self)
            }
            #expect(count == 2)
            #expect(try await Self.received(listener, count: 3) == ["one", "two", "three"])
            #expect(connection.afterCommitFailures == 0)
        }
    }

    @Test func aNotificationThatFailsAfterTheCommitLeavesTheChangeStandingAndIsCounted() async throws {
        try await withTestDatabase { db in
            try makeScratchTable(db)
            let connection = try db.ownerConnection()
            defer { connection.close() }
            // pg_notify refuses an empty channel name: the NOTIFY fails after the COMMIT.
            try connection.transaction(Self.start) { connection in
                try connection.enqueue("INSERT INTO public.scratch VALUES (1, 'a')")
                try connection.notifyAfterCommit(channel: "", payload: "lost")
            }
            #expect(connection.afterCommitFailures == 1)
            #expect(connection.isUsable)
            #expect(try connection.query("SELECT count(*) FROM public.scratch").first!.decode(0, as: Int.self) == 1)
        }
    }
}
