import ForecourtCore
import Logging
import Metrics
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// A bounded pool of libpq connections, each used from a thread of its own `NIOThreadPool`.
///
/// `transaction` checks a connection out, runs the whole synchronous body on a pool thread
/// (one hop off the caller's executor per transaction), and puts it back. When every
/// connection is busy, callers wait in line up to `acquireTimeout`. A connection that broke
/// is closed and replaced by a fresh one for the next caller.
///
/// A `Service`: in a `ServiceGroup` it publishes its usage as gauges while it runs, and on
/// graceful shutdown (or cancellation) closes every connection. Place it before the services
/// that use it, so that the group shuts it down after them. Used outside a group (tools,
/// tests), call `shutdown()` when done. A pool that was never used holds no thread.
public final class PostgresPool: Service, Sendable {
    public struct Configuration: Sendable {
        /// A libpq connection string or URI.
        public var connectionString: String
        /// The most connections open at once.
        public var maximumConnections: Int
        /// How long a caller waits for a free connection before `poolTimeout`.
        public var acquireTimeout: Duration
        /// Statements run once on every new connection. Session state does not survive a
        /// pooler in transaction mode or a session reset: what every transaction needs goes in
        /// `role` and `transactionSettings` instead.
        public var connectionSetup: [String]
        /// The role every `transaction` acts as (`SET LOCAL ROLE`, in its first round trip).
        public var role: String?
        /// Settings every `transaction` makes first (`set_config(name, value, true)`), before its own.
        public var transactionSettings: [(name: String, value: String)]
        /// Whether connections prepare statements under names (off behind PgBouncer in
        /// transaction mode: see `PostgresConnection.preparesStatements`).
        public var statementCache: Bool

        public init(
            connectionString: String,
            maximumConnections: Int = 10,
            acquireTimeout: Duration = .seconds(5),
            connectionSetup: [String] = [],
            role: String? = nil,
            transactionSettings: [(name: String, value: String)] = [],
            statementCache: Bool = true
        ) {
            self.connectionString = connectionString
            self.maximumConnections = maximumConnections
            self.acquireTimeout = acquireTimeout
            self.connectionSetup = connectionSetup
            self.role = role
            self.transactionSettings = transactionSettings
            self.statementCache = statementCache
        }
    }

    private enum Grant {
        case connection(PostgresConnection)
        /// A slot was freed: the waiter opens a connection of its own.
        case slot
    }

    private struct Waiter {
        let id: Int
        let continuation: CheckedContinuation<Grant, any Error>
    }

    private struct State {
        var idle: [PostgresConnection] = []
        /// Connections open or being opened.
        var open = 0
        var waiters: [Waiter] = []
        var nextWaiterID = 0
        var closed = false
        var threadsStarted = false
        var roundTrips = 0
    }

    public let configuration: Configuration
    private let state = Mutex(State())
    private let roundTripCounter = Counter(label: "forecourt_db_round_trips_total")
    private let threads: NIOThreadPool
    private let logger: Logger

    public init(configuration: Configuration, logger: Logger = Logger(label: "forecourt.postgres")) {
        precondition(configuration.maximumConnections > 0)
        self.configuration = configuration
        self.logger = logger
        self.threads = NIOThreadPool(numberOfThreads: configuration.maximumConnections)
    }

    /// Publishes the pool's usage every few seconds until graceful shutdown or cancellation,
    /// then closes it (`shutdown()`).
    public func run() async throws {
        let open = Gauge(label: "forecourt_db_connections_open")
        let idle = Gauge(label: "forecourt_db_connections_idle")
        let waiting = Gauge(label: "forecourt_db_pool_waiting")
        try? await cancelWhenGracefulShutdown {
            while true {
                let statistics = self.statistics
                open.record(statistics.open)
                idle.record(statistics.idle)
                waiting.record(statistics.waiting)
                try await Task.sleep(for: .seconds(5))
            }
        }
        await shutdown()
    }

    /// Closes every connection; later calls fail with `poolClosed`. Idempotent.
    public func shutdown() async {
        let (idle, waiters, started) = state.withLock { state in
            state.closed = true
            defer {
                state.idle = []
                state.waiters = []
            }
            return (state.idle, state.waiters, state.threadsStarted)
        }
        for waiter in waiters { waiter.continuation.resume(throwing: PostgresError(.poolClosed)) }
        for connection in idle { connection.close() }
        if started { try? await threads.shutdownGracefully() }
    }

    /// Runs `body` with a connection on a pool thread. The connection returns to the pool
    /// afterwards, or is discarded if it broke or was left inside a transaction.
    @discardableResult
    public func withConnection<T: Sendable>(
        _ body: @escaping @Sendable (PostgresConnection) throws -> T
    ) async throws -> T {
        let grant = try await acquire()
        return try await threads.runIfActive { [self] in
            let connection: PostgresConnection
            switch grant {
            case .connection(let existing):
                connection = existing
            case .slot:
                do {
                    connection = try openConnection()
                } catch {
                    release(nil)
                    throw error
                }
            }
            let before = connection.roundTrips
            let failuresBefore = connection.afterCommitFailures
            defer {
                if connection.afterCommitFailures > failuresBefore {
                    logger.warning("notifications after a commit were not sent; the change stands (docs/architecture.md, \"Transactions\")")
                }
            }
            do {
                let value = try body(connection)
                countRoundTrips(connection.roundTrips - before)
                release(connection)
                return value
            } catch {
                countRoundTrips(connection.roundTrips - before)
                release(connection)
                if let error = error as? PostgresError, error.kind == .connectionLost {
                    discardIdle()
                }
                throw error
            }
        }
    }

    /// Runs `body` in a transaction (`PostgresConnection.transaction`) that acts as the
    /// configured `role` and makes the configured `transactionSettings`, then `settings`
    /// (`set_config(name, value, true)`, for row-level security), all in its first round trip.
    /// Any error thrown rolls back; success commits.
    ///
    /// A connection lost while COMMIT was in flight is `commitOutcomeUnknown`; lost before,
    /// `connectionLost` (nothing was committed).
    @discardableResult
    public func transaction<T: Sendable>(
        settings: [(String, String)] = [],
        readOnly: Bool = false,
        _ body: @escaping @Sendable (PostgresConnection) throws -> T
    ) async throws -> T {
        let start = transactionStart(settings: settings, readOnly: readOnly)
        return try await withConnection { connection in
            try connection.transaction(start, body)
        }
    }

    /// One statement as a transaction of its own, in one round trip (role, settings, the
    /// statement: `PostgresConnection.transaction(_:single:)`). For reads that are one statement.
    public func transaction(
        settings: [(String, String)] = [],
        readOnly: Bool = false,
        single statement: PostgresQuery
    ) async throws -> PostgresResult {
        let start = transactionStart(settings: settings, readOnly: readOnly)
        return try await withConnection { connection in
            try connection.transaction(start, single: statement)
        }
    }

    private func transactionStart(settings: [(String, String)], readOnly: Bool) -> TransactionStart {
        TransactionStart(
            readOnly: readOnly, role: configuration.role,
            settings: configuration.transactionSettings + settings.map { (name: $0.0, value: $0.1) })
    }

    /// Usage, for metrics and tests.
    public var statistics: (open: Int, idle: Int, waiting: Int) {
        state.withLock { ($0.open, $0.idle.count, $0.waiters.count) }
    }

    /// Network round trips to PostgreSQL made by the pool's connections so far (each a
    /// flush of statements and a wait for their results): what the transaction path is
    /// designed to keep low, counted for tests and the `forecourt_db_round_trips_total` metric.
    public var roundTrips: Int {
        state.withLock { $0.roundTrips }
    }

    private func countRoundTrips(_ count: Int) {
        guard count > 0 else { return }
        state.withLock { $0.roundTrips += count }
        roundTripCounter.increment(by: count)
    }

    // MARK: - Checkout

    private func acquire() async throws -> Grant {
        enum Decision {
            case grant(Grant)
            case wait
            case closed
        }
        let decision = state.withLock { state -> Decision in
            if state.closed { return .closed }
            if !state.threadsStarted {
                state.threadsStarted = true
                threads.start()
            }
            if let connection = state.idle.popLast() { return .grant(.connection(connection)) }
            if state.open < configuration.maximumConnections {
                state.open += 1
                return .grant(.slot)
            }
            return .wait
        }
        switch decision {
        case .grant(let grant): return grant
        case .closed: throw PostgresError(.poolClosed)
        case .wait: return try await waitForConnection()
        }
    }

    private func waitForConnection() async throws -> Grant {
        let id = state.withLock { state -> Int in
            state.nextWaiterID += 1
            return state.nextWaiterID
        }
        Counter(label: "forecourt_db_pool_waits_total").increment()
        let timeout = configuration.acquireTimeout
        // The timer runs on an event loop, not as a task: it fires on time even when the
        // cooperative threads are busy. It starts only once the waiter is in line.
        let timer = Mutex<Scheduled<Void>?>(nil)
        defer { timer.withLock { $0?.cancel() } }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let enqueued = state.withLock { state -> Bool in
                    guard !state.closed else { return false }
                    state.waiters.append(Waiter(id: id, continuation: continuation))
                    return true
                }
                guard enqueued else {
                    continuation.resume(throwing: PostgresError(.poolClosed))
                    return
                }
                let scheduled = MultiThreadedEventLoopGroup.singleton.any().scheduleTask(
                    in: .nanoseconds(timeout.nanoseconds)
                ) { [self] in
                    cancelWaiter(id, with: PostgresError(.poolTimeout))
                }
                timer.withLock { $0 = scheduled }
            }
        } onCancel: {
            cancelWaiter(id, with: CancellationError())
        }
    }

    private func cancelWaiter(_ id: Int, with error: any Error) {
        let waiter = state.withLock { state -> Waiter? in
            guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
            return state.waiters.remove(at: index)
        }
        waiter?.continuation.resume(throwing: error)
    }

    /// Returns a connection (nil: a slot whose connection could not be opened or was dropped).
    private func release(_ connection: PostgresConnection?) {
        var keep = connection
        if let connection, !connection.isUsable {
            connection.close()
            keep = nil
        }
        let waiter = state.withLock { state -> (Waiter, Grant)? in
            if state.closed {
                state.open -= 1
                return nil
            }
            if !state.waiters.isEmpty {
                let waiter = state.waiters.removeFirst()
                return (waiter, keep.map(Grant.connection) ?? .slot)
            }
            if let keep {
                state.idle.append(keep)
            } else {
                state.open -= 1
            }
            return nil
        }
        if let (waiter, grant) = waiter {
            waiter.continuation.resume(returning: grant)
        } else if state.withLock({ $0.closed }) {
            keep?.close()
        }
    }

    /// After a lost connection, the idle ones are likely dead too (a database restart):
    /// close them so the next callers open fresh ones instead of failing one by one.
    private func discardIdle() {
        let idle = state.withLock { state -> [PostgresConnection] in
            defer {
                state.open -= state.idle.count
                state.idle = []
            }
            return state.idle
        }
        if !idle.isEmpty {
            logger.info("discarding idle database connections after a lost connection", metadata: ["db.count": "\(idle.count)"])
        }
        for connection in idle { connection.close() }
    }

    private func openConnection() throws -> PostgresConnection {
        let connection = try PostgresConnection(
            connectionString: configuration.connectionString, preparesStatements: configuration.statementCache)
        for statement in configuration.connectionSetup {
            try connection.execute(unsafeSQL: statement)
        }
        return connection
    }
}
