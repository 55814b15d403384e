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
/// (one hop off the caller's executor per transaction), and puts it back; a one-statement
/// read is sent without blocking and finished by the pool's reactor thread instead
/// (`transaction(settings:readOnly:single:)`). When every
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
        /// A slot was freed: the job opens a connection of its own.
        case slot
    }

    /// A caller's body, type-erased, to run on a pool thread. `run` executes it with its grant,
    /// passes the connection on (`release`), answers the caller, and returns what `release`
    /// handed over: the next job in line with the connection, to run on the same thread.
    private struct Job {
        let id: Int
        let run: @Sendable (Grant) -> (Job, Grant)?
        let fail: @Sendable (any Error) -> Void
        /// For a one-statement read: starts it with an existing connection on the calling
        /// thread without blocking, and leaves the wait for its answer to the reactor
        /// (docs/architecture.md, "Threads"). Used instead of `run` whenever the job gets a
        /// connection rather than a slot.
        var withoutThread: (@Sendable (PostgresConnection) -> Void)?
        /// When the job, waiting in line, fails with `poolTimeout` (its arrival plus
        /// `acquireTimeout`): the pool's one sweep timer fails it then.
        var deadline = NIODeadline.distantFuture
    }

    private struct State {
        var idle: [PostgresConnection] = []
        /// Connections open or being opened.
        var open = 0
        /// Jobs waiting for a connection, in arrival order.
        var waiting = CircularBuffer<Job>()
        var closed = false
        /// Whether the sweep timer (`sweepWaiting`) is scheduled: while anyone waits in line.
        var sweepScheduled = false
        var threadsStarted = false
        var roundTrips = 0
    }

    public let configuration: Configuration
    private let state = Mutex(State())
    private let nextJobID = Atomic(0)
    private let threadFreeReads = Atomic(0)
    private let roundTripCounter = Counter(label: "forecourt_db_round_trips_total")
    private let waitsCounter = Counter(label: "forecourt_db_pool_waits_total")
    private let threads: NIOThreadPool
    /// Waits for the answers of one-statement reads started without a pool thread.
    private let reactor = PostgresReactor()
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
        let (idle, waiting, started) = state.withLock { state in
            state.closed = true
            defer {
                state.idle = []
                state.waiting = []
            }
            return (state.idle, state.waiting, state.threadsStarted)
        }
        for job in waiting { job.fail(PostgresError(.poolClosed)) }
        for connection in idle { connection.close() }
        await reactor.stop()
        if started { try? await threads.shutdownGracefully() }
    }

    /// Runs `body` with a connection on a pool thread. The connection returns to the pool
    /// afterwards, or is discarded if it broke or was left inside a transaction.
    ///
    /// When every connection is busy the body waits in line (up to `acquireTimeout`), and the
    /// pool thread that finishes a body runs the next one in line itself, with the same
    /// connection: a call that waited costs no more thread hops than one that found a
    /// connection free (docs/architecture.md, "Threads").
    @discardableResult
    public func withConnection<T: Sendable>(
        _ body: @escaping @Sendable (PostgresConnection) throws -> T
    ) async throws -> T {
        let id = nextJobID.add(1, ordering: .relaxed).newValue
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
                enqueue(job(id, body, continuation))
            }
        } onCancel: {
            cancelWaiting(id, with: CancellationError())
        }
    }

    /// The job that runs `body` on a pool thread and answers `continuation`.
    private func job<T: Sendable>(
        _ id: Int, _ body: @escaping @Sendable (PostgresConnection) throws -> T, _ continuation: CheckedContinuation<T, any Error>
    ) -> Job {
        Job(
            id: id,
            run: { [self] grant in
                let (result, connection, roundTrips) = execute(body, grant: grant)
                let next = release(connection, roundTrips: roundTrips)
                if case .failure(let error as PostgresError) = result, error.kind == .connectionLost {
                    discardIdle()
                }
                continuation.resume(with: result)
                return next
            },
            fail: { continuation.resume(throwing: $0) })
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
    ///
    /// With a connection free (or handed over when one is freed), no pool thread takes part:
    /// the statement is sent without blocking on the calling thread and the pool's reactor
    /// waits for the answer (docs/architecture.md, "Threads"). Without one, it waits in line;
    /// a connection that is still being opened is opened on a pool thread, which then runs it.
    public func transaction(
        settings: [(String, String)] = [],
        readOnly: Bool = false,
        single statement: PostgresQuery
    ) async throws -> PostgresResult {
        let start = transactionStart(settings: settings, readOnly: readOnly)
        let id = nextJobID.add(1, ordering: .relaxed).newValue
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<PostgresResult, any Error>) in
                let body: @Sendable (PostgresConnection) throws -> PostgresResult = { connection in
                    try connection.transaction(start, single: statement)
                }
                var job = job(id, body, continuation)
                let blocking = job
                job.withoutThread = { [self] connection in
                    readWithoutThread(connection, start, statement, blocking: blocking, continuation)
                }
                enqueue(job)
            }
        } onCancel: {
            cancelWaiting(id, with: CancellationError())
        }
    }

    /// Sends a one-statement read without blocking and has the reactor finish it; over TLS
    /// (`readsWithoutBlocking`), runs `blocking` on a pool thread instead.
    private func readWithoutThread(
        _ connection: PostgresConnection, _ start: TransactionStart, _ statement: PostgresQuery, blocking: Job,
        _ continuation: CheckedContinuation<PostgresResult, any Error>
    ) {
        guard connection.readsWithoutBlocking else {
            self.start(blocking, grant: .connection(connection))
            return
        }
        let before = connection.roundTrips
        let finish: @Sendable (PostgresReactor.Outcome) -> Void = { [self] outcome in
            let result: Result<PostgresResult, any Error>
            switch outcome {
            case .complete(let read):
                do {
                    result = .success(try connection.finishSingle(read))
                } catch let error as PostgresError where error.sqlState == "26000" && connection.preparesStatements && !connection.isBroken {
                    // The session lost its prepared statements: prepared again on a pool
                    // thread, as `transaction(_:single:)` does.
                    self.start(blocking, grant: .connection(connection))
                    return
                } catch {
                    result = .failure(error)
                }
            case .stopped(let read):
                connection.abandon(read)
                result = .failure(PostgresError(.poolClosed))
            }
            let next = release(connection, roundTrips: connection.roundTrips - before)
            if case .failure(let error as PostgresError) = result, error.kind == .connectionLost {
                discardIdle()
            }
            continuation.resume(with: result)
            if let next { dispatch(next) }
        }
        let read: PostgresConnection.SingleRead
        do {
            read = try connection.startSingle(start, statement)
        } catch {
            let next = release(connection, roundTrips: connection.roundTrips - before)
            if error.kind == .connectionLost { discardIdle() }
            continuation.resume(throwing: error)
            if let next { dispatch(next) }
            return
        }
        threadFreeReads.add(1, ordering: .relaxed)
        if read.isComplete {
            finish(.complete(read))
        } else if !reactor.register(connection, read, completion: finish) {
            finish(.stopped(read))
        }
    }

    /// Starts a job that was handed a connection or a slot: without a thread when it can,
    /// else on a pool thread.
    private func dispatch(_ next: (Job, Grant)) {
        let (job, grant) = next
        if case .connection(let connection) = grant, let withoutThread = job.withoutThread {
            withoutThread(connection)
        } else {
            start(job, grant: grant)
        }
    }

    private func transactionStart(settings: [(String, String)], readOnly: Bool) -> TransactionStart {
        TransactionStart(
            readOnly: readOnly, role: configuration.role,
            settings: configuration.transactionSettings + settings.map { (name: $0.0, value: $0.1) })
    }

    /// Usage, for metrics and tests.
    public var statistics: (open: Int, idle: Int, waiting: Int) {
        state.withLock { ($0.open, $0.idle.count, $0.waiting.count) }
    }

    /// Network round trips to PostgreSQL made by the pool's connections so far (each a
    /// flush of statements and a wait for their results): what the transaction path is
    /// designed to keep low, counted for tests and the `forecourt_db_round_trips_total` metric.
    public var roundTrips: Int {
        state.withLock { $0.roundTrips }
    }

    /// One-statement reads sent without a pool thread so far (`transaction(settings:readOnly:single:)`),
    /// for tests.
    public var readsWithoutThread: Int {
        threadFreeReads.load(ordering: .relaxed)
    }

    // MARK: - Checkout

    /// Starts `job` on a pool thread with an idle connection or a free slot, or puts it in line.
    private func enqueue(_ job: Job) {
        enum Decision {
            case start(Grant)
            case waiting(sweepAt: NIODeadline?)
            case closed
        }
        let decision = state.withLock { state -> Decision in
            if state.closed { return .closed }
            if !state.threadsStarted {
                state.threadsStarted = true
                threads.start()
            }
            if let connection = state.idle.popLast() { return .start(.connection(connection)) }
            if state.open < configuration.maximumConnections {
                state.open += 1
                return .start(.slot)
            }
            var job = job
            // Every job waits the same `acquireTimeout` and the line is in arrival order, so
            // the first in line is always the next to time out: one timer for the pool, at
            // the first's deadline, instead of one per job (scheduling and cancelling a
            // timer per job woke the timer's event loop from the thread that handed the job a
            // connection: docs/performance.md).
            job.deadline = .now() + .nanoseconds(configuration.acquireTimeout.nanoseconds)
            state.waiting.append(job)
            if state.sweepScheduled { return .waiting(sweepAt: nil) }
            state.sweepScheduled = true
            return .waiting(sweepAt: job.deadline)
        }
        switch decision {
        case .start(let grant): dispatch((job, grant))
        case .waiting(let sweepAt):
            waitsCounter.increment()
            if let sweepAt { scheduleSweep(at: sweepAt) }
        case .closed: job.fail(PostgresError(.poolClosed))
        }
    }

    /// Runs `job` on a pool thread, then, on the same thread, each job handed over in turn.
    private func start(_ job: Job, grant: Grant) {
        threads.submit { [self] threadState in
            guard case .active = threadState else {
                // The threads were shut down: the grant goes back unused.
                job.fail(PostgresError(.poolClosed))
                if case .connection(let connection) = grant { connection.close() }
                state.withLock { $0.open -= 1 }
                return
            }
            var next = job.run(grant)
            while let (job, grant) = next {
                if case .connection(let connection) = grant, let withoutThread = job.withoutThread {
                    withoutThread(connection)
                    return
                }
                next = job.run(grant)
            }
        }
    }

    /// The timer runs on an event loop, not as a task: it fires on time even when the
    /// cooperative threads are busy.
    private func scheduleSweep(at deadline: NIODeadline) {
        MultiThreadedEventLoopGroup.singleton.any().scheduleTask(deadline: deadline) { [self] in
            sweepWaiting()
        }
    }

    /// Fails the jobs in line whose deadline has passed (`poolTimeout`), then schedules
    /// itself again for the first one left, if any.
    private func sweepWaiting() {
        let now = NIODeadline.now()
        let (expired, next) = state.withLock { state -> ([Job], NIODeadline?) in
            var expired: [Job] = []
            while let first = state.waiting.first, first.deadline <= now {
                expired.append(state.waiting.removeFirst())
            }
            guard let first = state.waiting.first else {
                state.sweepScheduled = false
                return (expired, nil)
            }
            return (expired, first.deadline)
        }
        for job in expired { job.fail(PostgresError(.poolTimeout)) }
        if let next { scheduleSweep(at: next) }
    }

    private func cancelWaiting(_ id: Int, with error: any Error) {
        let job = state.withLock { state -> Job? in
            guard let index = state.waiting.firstIndex(where: { $0.id == id }) else { return nil }
            return state.waiting.remove(at: index)
        }
        guard let job else { return }
        job.fail(error)
    }

    /// Runs a body with its grant, on a pool thread: its outcome, the connection to pass on
    /// (nil: none could be opened), and the round trips it made.
    private func execute<T>(
        _ body: (PostgresConnection) throws -> T, grant: Grant
    ) -> (Result<T, any Error>, PostgresConnection?, Int) {
        let connection: PostgresConnection
        switch grant {
        case .connection(let existing):
            connection = existing
        case .slot:
            do {
                connection = try openConnection()
            } catch {
                return (.failure(error), nil, 0)
            }
        }
        let before = connection.roundTrips
        let failuresBefore = connection.afterCommitFailures
        let result = Result { try body(connection) }
        if connection.afterCommitFailures > failuresBefore {
            logger.warning("notifications after a commit were not sent; the change stands (docs/architecture.md, \"Transactions\")")
        }
        return (result, connection, connection.roundTrips - before)
    }

    /// Passes a connection on (nil: a slot whose connection could not be opened or broke): to
    /// the first job in line, returned to be run by the caller's thread, or back to the idle
    /// ones.
    private func release(_ connection: PostgresConnection?, roundTrips: Int) -> (Job, Grant)? {
        var keep = connection
        if let connection, !connection.isUsable {
            connection.close()
            keep = nil
        }
        if roundTrips > 0 { roundTripCounter.increment(by: roundTrips) }
        let handed = state.withLock { state -> (Job, Grant)? in
            state.roundTrips += roundTrips
            if state.closed {
                state.open -= 1
                return nil
            }
            if let job = state.waiting.popFirst() {
                return (job, keep.map(Grant.connection) ?? .slot)
            }
            if let keep {
                state.idle.append(keep)
            } else {
                state.open -= 1
            }
            return nil
        }
        if handed == nil, state.withLock({ $0.closed }) {
            keep?.close()
        }
        return handed
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
