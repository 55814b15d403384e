import Foundation
import NIOCore
import NIOPosix
import Postgres
import Testing
import TestSupport

/// One-statement reads that find a connection free are sent without a pool thread and
/// finished by the pool's reactor (docs/architecture.md, "Threads"): their results and errors
/// are those of the blocking path, a lost connection is `connectionLost` and never a hang, and
/// shutdown fails the reads in flight.
@Suite struct PostgresReadWithoutThreadTests {
    private func makePool(
        _ maximumConnections: Int, settings: [(name: String, value: String)] = []
    ) throws -> PostgresPool {
        PostgresPool(
            configuration: .init(
                connectionString: try TestEnvironment.baseConnectionString, maximumConnections: maximumConnections,
                acquireTimeout: .seconds(120), transactionSettings: settings))
    }

    /// Opens `count` connections at once (a connection being opened is opened on a pool
    /// thread), so that the reads after find them idle.
    private func open(_ pool: PostgresPool, _ count: Int) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<count {
                group.addTask { try await pool.withConnection { _ = try $0.query("SELECT pg_sleep(0.2)") } }
            }
            try await group.waitForAll()
        }
        #expect(pool.statistics.idle == count)
    }

    /// Waits until `count` backends run `sql` (each test its own): the reads are in flight.
    private func waitFor(_ count: Int, running sql: String, _ owner: PostgresConnection) async throws {
        while true {
            let running = try owner.query(
                "SELECT count(*)::int8 FROM pg_stat_activity WHERE query = \(sql) AND state = 'active'"
            ).first!.decode(0, as: Int.self)
            if running >= count { return }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    @Test func resultsAndErrorsAreThoseOfTheBlockingPath() async throws {
        let pool = try makePool(1, settings: [(name: "statement_timeout", value: "200ms")])
        try await open(pool, 1)
        let before = pool.readsWithoutThread

        let row = try await pool.transaction(
            settings: [("application_name", "reactor test")], readOnly: true,
            single: "SELECT 41::int8 + 1, current_setting('transaction_read_only'), current_setting('application_name')"
        ).first!
        #expect(try row.decode(0, as: Int.self) == 42)
        #expect(try row.decode(1, as: String.self) == "on")
        #expect(try row.decode(2, as: String.self) == "reactor test")
        let rows = try await pool.transaction(readOnly: true, single: "SELECT g::int8 FROM generate_series(1, 1000) AS g").rows
        #expect(try rows.map { try $0.decode(0, as: Int.self) } == Array(1...1000))

        // A SQL error, with its SQLSTATE.
        let division = await #expect(throws: PostgresError.self) {
            try await pool.transaction(readOnly: true, single: "SELECT 1 / 0")
        }
        #expect(division?.sqlState == "22012")
        // A write in a read-only read.
        let write = await #expect(throws: PostgresError.self) {
            try await pool.transaction(readOnly: true, single: "CREATE TEMPORARY TABLE t (x int)")
        }
        #expect(write?.sqlState == "25006")
        // The configured statement timeout.
        let timeout = await #expect(throws: PostgresError.self) {
            try await pool.transaction(readOnly: true, single: "SELECT pg_sleep(30)")
        }
        #expect(timeout?.kind == .queryCanceled)

        // The same connection serves the next read, and none of these took a pool thread.
        let one = try await pool.transaction(readOnly: true, single: "SELECT 1::int8").first!.decode(0, as: Int.self)
        #expect(one == 1)
        #expect(pool.readsWithoutThread - before == 6)
        #expect(pool.statistics.open == 1 && pool.statistics.idle == 1)
        #expect(pool.roundTrips >= 6)
        await pool.shutdown()
    }

    @Test func aBackendTerminatedUnderAReadIsConnectionLostAndTheNextReadWorks() async throws {
        let pool = try makePool(2)
        try await open(pool, 2)
        let owner = try PostgresConnection(connectionString: TestEnvironment.baseConnectionString)
        defer { owner.close() }
        let before = pool.readsWithoutThread

        let sleep = "SELECT pg_sleep(30.1)"
        let inFlight = Task { try await pool.transaction(readOnly: true, single: PostgresQuery(unsafeSQL: sleep)) }
        try await waitFor(1, running: sleep, owner)
        try owner.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = \(sleep)")
        let error = await #expect(throws: PostgresError.self) { try await inFlight.value }
        #expect(error?.kind == .connectionLost)
        #expect(pool.readsWithoutThread - before == 1)

        // The lost connection is gone, the idle one was discarded with it (a restart would have
        // killed it too), and the next read opens a fresh one and works.
        #expect(pool.statistics.open == 0)
        let one = try await pool.transaction(readOnly: true, single: "SELECT 1::int8").first!.decode(0, as: Int.self)
        #expect(one == 1)
        let two = try await pool.transaction(readOnly: true, single: "SELECT 2::int8").first!.decode(0, as: Int.self)
        #expect(two == 2)
        #expect(pool.readsWithoutThread - before == 2)
        await pool.shutdown()
    }

    @Test func manyConcurrentReadsFromSeveralEventLoops() async throws {
        let loops = MultiThreadedEventLoopGroup(numberOfThreads: 3)
        let pool = try makePool(4)
        try await open(pool, 4)
        let before = pool.readsWithoutThread
        let callers = 24
        let readsEach = 50
        let total = try await withThrowingTaskGroup(of: Int.self) { group in
            for caller in 0..<callers {
                let executor = LoopExecutor(loops.next())
                group.addTask(executorPreference: executor) {
                    var sum = 0
                    for read in 0..<readsEach {
                        let value = caller * 1000 + read
                        let row = try await pool.transaction(
                            settings: [("application_name", "caller \(caller)")], readOnly: true,
                            single: "SELECT \(value)::int8, current_setting('application_name')"
                        ).first!
                        #expect(try row.decode(1, as: String.self) == "caller \(caller)")
                        sum += try row.decode(0, as: Int.self)
                    }
                    return sum
                }
            }
            return try await group.reduce(0, +)
        }
        let expected = (0..<callers).reduce(0) { sum, caller in sum + (0..<readsEach).reduce(0) { $0 + caller * 1000 + $1 } }
        #expect(total == expected)
        // 24 callers on 4 connections: most reads waited in line and were handed a connection
        // by the read before them, still without a pool thread.
        #expect(pool.readsWithoutThread - before == callers * readsEach)
        #expect(pool.statistics.open <= 4)
        await pool.shutdown()
        try await loops.shutdownGracefully()
    }

    @Test func shutdownFailsTheReadsInFlight() async throws {
        let pool = try makePool(3)
        try await open(pool, 3)
        let owner = try PostgresConnection(connectionString: TestEnvironment.baseConnectionString)
        defer { owner.close() }

        let sleep = "SELECT pg_sleep(30.2)"
        let reads = (0..<3).map { _ in
            Task { try await pool.transaction(readOnly: true, single: PostgresQuery(unsafeSQL: sleep)) }
        }
        try await waitFor(3, running: sleep, owner)
        await pool.shutdown()
        for read in reads {
            let error = await #expect(throws: PostgresError.self) { try await read.value }
            #expect(error?.kind == .poolClosed)
        }
        #expect(pool.statistics.open == 0)
        let after = await #expect(throws: PostgresError.self) {
            try await pool.transaction(readOnly: true, single: "SELECT 1")
        }
        #expect(after?.kind == .poolClosed)
    }
}

/// Runs a task's jobs on one event loop, as the server runs a connection's requests.
private final class LoopExecutor: TaskExecutor {
    private let loop: any EventLoop

    init(_ loop: any EventLoop) {
        self.loop = loop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        loop.execute { [self] in
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}
