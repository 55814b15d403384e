import Foundation
import Postgres
import Synchronization
import Testing
import TestSupport

@Suite struct PostgresPoolTests {
    @Test func brokenConnectionIsReplaced() async throws {
        try await withTestDatabase(maximumConnections: 1) { db in
            let first = try await db.pool.withConnection { $0.backendPID }
            let owner = try db.ownerConnection()
            defer { owner.close() }
            try owner.query("SELECT pg_terminate_backend(\(first))")
            try await Task.sleep(for: .milliseconds(100))
            // The dead connection fails its statement as `connectionLost`...
            let error = await #expect(throws: PostgresError.self) {
                try await db.pool.withConnection { try $0.query("SELECT 1") }
            }
            #expect(error?.kind == .connectionLost)
            // ...and the next caller gets a fresh, working one.
            let second = try await db.pool.withConnection { connection in
                try connection.query("SELECT pg_backend_pid()").first!.decode(0, as: Int32.self)
            }
            #expect(second != first)
            #expect(db.pool.statistics.open == 1)
        }
    }

    @Test func waitingForABusyPoolTimesOut() async throws {
        let url = try TestEnvironment.baseConnectionString
        let pool = PostgresPool(
            configuration: .init(connectionString: url, maximumConnections: 1, acquireTimeout: .milliseconds(200)))
        // The holder says when it has the only connection, however slow the machine is.
        let (held, heldContinuation) = AsyncStream.makeStream(of: Void.self)
        let holder = Task {
            try await pool.withConnection { connection in
                heldContinuation.yield()
                // Far longer than the timeout, so a busy machine cannot blur the two.
                try connection.query("SELECT pg_sleep(5)")
            }
        }
        var heldIterator = held.makeAsyncIterator()
        _ = await heldIterator.next()
        let error = await #expect(throws: PostgresError.self) {
            try await pool.withConnection { try $0.query("SELECT 1") }
        }
        #expect(error?.kind == .poolTimeout)
        _ = try await holder.value
        // Once the holder is done, the connection serves the next caller.
        let one = try await pool.withConnection { try $0.query("SELECT 1::int8").first!.decode(0, as: Int.self) }
        #expect(one == 1)
        await pool.shutdown()
    }

    /// The pool has one timer for the whole line, at the first waiter's deadline: after it
    /// fails the first, it must fire again for the next, who came later (docs/architecture.md,
    /// "Threads"). Both time out while the only connection is still held.
    @Test func eachWaiterInLineTimesOutInTurn() async throws {
        let url = try TestEnvironment.baseConnectionString
        let pool = PostgresPool(
            configuration: .init(connectionString: url, maximumConnections: 1, acquireTimeout: .milliseconds(300)))
        let (held, heldContinuation) = AsyncStream.makeStream(of: Void.self)
        let released = Mutex(false)
        let holder = Task {
            try await pool.withConnection { connection in
                heldContinuation.yield()
                try connection.query("SELECT pg_sleep(5)")
                released.withLock { $0 = true }
            }
        }
        var heldIterator = held.makeAsyncIterator()
        _ = await heldIterator.next()
        let first = Task { try await pool.withConnection { try $0.query("SELECT 1") } }
        try await Task.sleep(for: .milliseconds(150))
        let second = Task { try await pool.transaction(readOnly: true, single: "SELECT 2::int8") }
        let firstError = await #expect(throws: PostgresError.self) { _ = try await first.value }
        #expect(firstError?.kind == .poolTimeout)
        let error = await #expect(throws: PostgresError.self) { _ = try await second.value }
        #expect(error?.kind == .poolTimeout)
        // Both gave up before the holder let go.
        #expect(pool.statistics.waiting == 0)
        #expect(released.withLock { $0 } == false)
        _ = try await holder.value
        let one = try await pool.transaction(readOnly: true, single: "SELECT 1::int8").first!.decode(0, as: Int.self)
        #expect(one == 1)
        await pool.shutdown()
    }

    @Test func waitersAreServedWhenConnectionsFreeUp() async throws {
        let url = try TestEnvironment.baseConnectionString
        // Twenty callers in line for two connections: the last is served after nineteen hand-overs,
        // each of which needs a cooperative thread, busy with other suites on a loaded machine.
        // The acquire timeout only stops a hang here.
        let pool = PostgresPool(configuration: .init(connectionString: url, maximumConnections: 2, acquireTimeout: .seconds(120)))
        let total = try await withThrowingTaskGroup(of: Int.self) { group in
            for i in 0..<20 {
                group.addTask {
                    try await pool.withConnection { connection in
                        try connection.query("SELECT \(i)::int8 FROM pg_sleep(0.01)").first!.decode(0, as: Int.self)
                    }
                }
            }
            return try await group.reduce(0, +)
        }
        #expect(total == (0..<20).reduce(0, +))
        #expect(pool.statistics.open <= 2)
        await pool.shutdown()
    }

    @Test func aCancelledCallerLeavesTheLine() async throws {
        let url = try TestEnvironment.baseConnectionString
        let pool = PostgresPool(configuration: .init(connectionString: url, maximumConnections: 1, acquireTimeout: .seconds(60)))
        let (held, heldContinuation) = AsyncStream.makeStream(of: Void.self)
        // The holder keeps the only connection until the test lets it go: no timing involved.
        let letGo = DispatchSemaphore(value: 0)
        let holder = Task {
            try await pool.withConnection { connection in
                heldContinuation.yield()
                letGo.wait()
                try connection.query("SELECT 1")
            }
        }
        var heldIterator = held.makeAsyncIterator()
        _ = await heldIterator.next()
        let waiter = Task { try await pool.withConnection { try $0.query("SELECT 1") } }
        // In line once the pool counts it (however slow the machine is to start the task).
        while pool.statistics.waiting == 0 { try await Task.sleep(for: .milliseconds(5)) }
        waiter.cancel()
        await #expect(throws: CancellationError.self) { try await waiter.value }
        #expect(pool.statistics.waiting == 0)
        letGo.signal()
        _ = try await holder.value
        // The connection went back to the pool, not to the cancelled caller.
        #expect(pool.statistics.idle == 1)
        let one = try await pool.withConnection { try $0.query("SELECT 1::int8").first!.decode(0, as: Int.self) }
        #expect(one == 1)
        await pool.shutdown()
    }
}
