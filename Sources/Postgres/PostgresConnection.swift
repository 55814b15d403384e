import CLibPQ
import Foundation

/// One libpq connection. Every call blocks, but for `startSingle`, `advance` and
/// `finishSingle` (the pool's reads without a pool thread: docs/architecture.md, "Threads"):
/// use the others only on a thread of the pool's `NIOThreadPool` (a transaction body), never
/// on an event loop.
///
/// Not thread-safe: the pool hands a connection to one body at a time.
public final class PostgresConnection: @unchecked Sendable {
    private let handle: OpaquePointer
    private var closed = false
    /// Prepared statements by SQL text and parameter types, so that a statement is parsed
    /// and planned once per connection. Empty and unused when `preparesStatements` is false.
    private var statements: [StatementKey: String] = [:]
    private var nextStatement = 0
    /// The most statements kept prepared; past it the cache starts over.
    private let statementCacheLimit: Int
    /// Whether statements are prepared under names and reused. Off behind a pooler in
    /// transaction mode (PgBouncer 1.18), which does not carry named statements from one
    /// transaction to the next: every statement is then sent unnamed, parsed each time.
    public let preparesStatements: Bool
    /// Statements of the transaction waiting to be sent with the next round trip: its start
    /// (`BEGIN`, role, settings) until the first statement, and what `enqueue` queued.
    private var pending: [PostgresQuery] = []
    private var inTransaction = false
    /// Whether `BEGIN` has been sent; whether `commit(returning:)` ended the transaction; how
    /// many statements the body queued.
    private var begun = false
    private var committed = false
    private var queued = 0
    /// What `notifyAfterCommit` asked for (channel, payload), and the role of the transaction
    /// (the statement that sends them acts as it too).
    private var notifications: [(channel: String, payload: String)] = []
    private var role: String?
    /// Statements sent after a COMMIT that failed (their NOTIFYs were lost; the commit stands).
    public private(set) var afterCommitFailures = 0
    /// Network round trips made so far (each a flush of requests and a wait for their answers).
    public private(set) var roundTrips = 0

    fileprivate struct StatementKey: Hashable {
        let sql: String
        let types: [UInt32]
    }

    /// Connects with a libpq connection string (`host=... dbname=...`) or URI (`postgresql://...`).
    /// TLS to the database follows libpq's own `sslmode` and related settings.
    public init(connectionString: String, preparesStatements: Bool = true, statementCacheLimit: Int = 256) throws(PostgresError) {
        guard let handle = Self.connect(connectionString) else { throw PostgresError(.connectionFailed) }
        guard PQstatus(handle) == CONNECTION_OK else {
            PQfinish(handle)
            throw PostgresError(.connectionFailed)
        }
        self.handle = handle
        self.preparesStatements = preparesStatements
        self.statementCacheLimit = statementCacheLimit
    }

    deinit {
        if !closed { PQfinish(handle) }
    }

    /// Settings that bound how long a dead peer can hold a caller: connecting, and noticing a
    /// broken network under a running query. The connection string may override each.
    static let boundedDefaults: [(String, String)] = [
        ("connect_timeout", "10"), ("keepalives", "1"), ("keepalives_idle", "30"), ("keepalives_interval", "10"),
        ("keepalives_count", "3"), ("application_name", "forecourt"),
    ]

    /// `PQconnectdbParams` with the defaults first and the caller's string expanded after them,
    /// so that whatever the string sets wins.
    private static func connect(_ connectionString: String) -> OpaquePointer? {
        let keywords = boundedDefaults.map(\.0) + ["dbname"]
        let values = boundedDefaults.map(\.1) + [connectionString]
        let keywordPointers: [UnsafeMutablePointer<CChar>?] = keywords.map { strdup($0) } + [nil]
        let valuePointers: [UnsafeMutablePointer<CChar>?] = values.map { strdup($0) } + [nil]
        defer {
            for pointer in keywordPointers { free(pointer) }
            for pointer in valuePointers { free(pointer) }
        }
        return keywordPointers.map { UnsafePointer($0) }.withUnsafeBufferPointer { keywordBuffer in
            valuePointers.map { UnsafePointer($0) }.withUnsafeBufferPointer { valueBuffer in
                PQconnectdbParams(keywordBuffer.baseAddress, valueBuffer.baseAddress, 1)
            }
        }
    }

    /// Closes the connection (once).
    public func close() {
        guard !closed else { return }
        closed = true
        PQfinish(handle)
    }

    /// Whether the connection is open as far as libpq knows and not inside a transaction.
    public var isUsable: Bool {
        !closed && !inTransaction && PQstatus(handle) == CONNECTION_OK && PQtransactionStatus(handle) == PQTRANS_IDLE
    }

    /// Whether libpq has seen the connection break.
    public var isBroken: Bool { closed || PQstatus(handle) != CONNECTION_OK }

    /// The server process id (for tests that terminate a backend).
    public var backendPID: Int32 { PQbackendPID(handle) }

    // MARK: Statements

    /// Runs a parameterised statement (prepared once per connection when `preparesStatements`);
    /// results are binary. Inside `transaction`, the statement also carries whatever waits to
    /// be sent: the transaction's start, and statements queued with `enqueue`.
    @discardableResult
    public func query(_ query: PostgresQuery) throws(PostgresError) -> PostgresResult {
        try queries([query])[0]
    }

    /// Runs several statements in one round trip (one after the other, as if sent one by one)
    /// and returns each one's result. For statements that do not depend on each other's
    /// results: a row lock and the checks that must follow it, say.
    public func queries(_ queries: [PostgresQuery]) throws(PostgresError) -> [PostgresResult] {
        try requireOpenTransaction()
        let leading = pending
        let starts = !inTransaction || !begun
        pending = []
        if inTransaction { begun = true }
        return try roundTripPreparingAgain(leading: leading, queries, trailing: [], startsTransaction: starts)
    }

    /// Queues a statement whose result is not needed: it goes out in the next round trip, with
    /// the next `query` or with COMMIT, and its failure is thrown there (the statements after
    /// it then do not run). Only inside `transaction`; a write whose outcome decides nothing
    /// later in the body (a timeline row, an audit row, NOTIFY) costs no round trip of its own.
    /// Outside a transaction it runs at once.
    public func enqueue(_ query: PostgresQuery) throws(PostgresError) {
        guard inTransaction else {
            try self.query(query)
            return
        }
        try requireOpenTransaction()
        pending.append(query)
        queued += 1
    }

    /// Sends `NOTIFY channel, payload` once the transaction has committed, in the same round
    /// trip as its COMMIT, as a transaction of its own with `synchronous_commit` off; duplicates
    /// are sent once, and nothing is sent if the transaction rolls back or sent nothing.
    ///
    /// Why not `pg_notify` inside the transaction: PostgreSQL serialises every committing
    /// transaction that has notified, from before its commit record until it is flushed
    /// (a lock on "database 0" in `PreCommit_Notify`), so notifying writers commit one WAL
    /// flush at a time, with no group commit. Sent right after the COMMIT, by the same
    /// session, the notification is as good a hint: it names only committed changes, and the
    /// lock is held for an asynchronous commit of nothing but the notification. A notification
    /// that fails to go (the notification queue is full, the connection breaks after the
    /// COMMIT) is lost, the change stands, and `afterCommitFailures` counts it.
    public func notifyAfterCommit(channel: String, payload: String) throws(PostgresError) {
        guard inTransaction else { throw PostgresError(.other, context: "notifyAfterCommit outside a transaction") }
        try requireOpenTransaction()
        if !notifications.contains(where: { $0.channel == channel && $0.payload == payload }) {
            notifications.append((channel, payload))
        }
    }

    /// The statements that follow COMMIT for `notifyAfterCommit`, in the same round trip: an
    /// implicit transaction (it ends at the Sync) acting as the transaction's role, with an
    /// asynchronous commit.
    private var afterCommit: [PostgresQuery] {
        guard !notifications.isEmpty else { return [] }
        let settings = TransactionStart(role: role, settings: [(name: "synchronous_commit", value: "off")]).settingsQuery
        let notify: PostgresQuery = """
            SELECT count(pg_notify(channel, payload))
            FROM unnest(\(notifications.map(\.channel))::text[], \(notifications.map(\.payload))::text[]) AS n(channel, payload)
            """
        return (settings.map { [$0] } ?? []) + [notify]
    }

    /// Ends the transaction with `query` as its last statement: everything queued, `query` and
    /// COMMIT go out in one round trip, and `query`'s result is returned once the commit has
    /// succeeded (the changed row, read back). Nothing may run in the transaction after it.
    /// A connection lost in that round trip is `commitOutcomeUnknown`.
    public func commit(returning query: PostgresQuery) throws(PostgresError) -> PostgresResult {
        try commit(returning: [query])[0]
    }

    /// `commit(returning:)` with several last statements, each one's result returned.
    public func commit(returning queries: [PostgresQuery]) throws(PostgresError) -> [PostgresResult] {
        guard inTransaction else { throw PostgresError(.other, context: "commit outside a transaction") }
        try requireOpenTransaction()
        let leading = pending
        let starts = !begun
        pending = []
        begun = true
        do throws(PostgresError) {
            let results = try roundTripPreparingAgain(
                leading: leading, queries, trailing: [Self.commit], tolerated: afterCommit, startsTransaction: starts)
            committed = true
            return results
        } catch where error.kind == .connectionLost {
            throw PostgresError(.commitOutcomeUnknown, sqlState: error.sqlState)
        }
    }

    /// Runs a parameterised statement without preparing it (for one-off statements).
    @discardableResult
    public func queryUnprepared(_ query: PostgresQuery) throws(PostgresError) -> PostgresResult {
        try sendPending()
        roundTrips += 1
        return try withParameters(query.bindings) { count, types, values, lengths, formats in
            PQexecParams(handle, query.sql, count, types, values, lengths, formats, 1)
        }
    }

    /// Runs SQL text without parameters, possibly several statements (a migration file).
    /// Only for SQL written by us, never for request data.
    public func execute(unsafeSQL sql: String) throws(PostgresError) {
        try sendPending()
        roundTrips += 1
        let result = PQexec(handle, sql)
        defer { PQclear(result) }
        try check(result, expecting: [PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY])
    }

    // MARK: Transactions

    /// Runs `body` in a transaction: any error thrown rolls back, a return commits.
    ///
    /// `BEGIN`, the role and the settings of `start` are not sent on their own: they go out in
    /// one round trip with the body's first statement (libpq pipeline mode). Statements
    /// queued with `enqueue` go out with the next one, and `commit(returning:)` sends the last
    /// statement with COMMIT. So a transaction costs one round trip per statement whose result
    /// the body needs, plus COMMIT unless the body ended with `commit(returning:)`; one that
    /// sends nothing costs none. A connection lost while COMMIT was in flight is
    /// `commitOutcomeUnknown`; lost before, `connectionLost` (nothing was committed).
    public func transaction<T>(
        _ start: TransactionStart = TransactionStart(), _ body: (PostgresConnection) throws -> T
    ) throws -> T {
        guard !inTransaction else { throw PostgresError(.other, context: "transaction inside a transaction") }
        inTransaction = true
        begun = false
        committed = false
        queued = 0
        notifications = []
        role = start.role
        pending = [start.readOnly ? Self.beginReadOnly : Self.begin]
        if let settings = start.settingsQuery { pending.append(settings) }
        defer {
            inTransaction = false
            pending = []
            notifications = []
        }
        let value: T
        do {
            value = try body(self)
        } catch {
            rollBackIfNeeded()
            throw error
        }
        // Ended by commit(returning:), or nothing to send: no transaction to end here.
        if committed || (!begun && queued == 0) { return value }
        let leading = pending
        pending = []
        do throws(PostgresError) {
            _ = try roundTrip(leading: leading, [Self.commit], trailing: [], tolerated: afterCommit)
        } catch where error.kind == .connectionLost {
            throw PostgresError(.commitOutcomeUnknown, sqlState: error.sqlState)
        } catch {
            // A queued statement or COMMIT failed (a deferred constraint): roll back.
            rollBackIfNeeded()
            throw error
        }
        return value
    }

    /// One statement as a transaction of its own, in one round trip: the role and settings of
    /// `start`, then the statement, then Sync, which ends the implicit transaction that the
    /// extended protocol gives the messages before it (committed if all went well, else
    /// rolled back). A read-only start makes it `transaction_read_only`.
    ///
    /// A connection lost in a read is `connectionLost`; in a write, `commitOutcomeUnknown`
    /// (the statement may have committed before the connection broke).
    public func transaction(_ start: TransactionStart, single statement: PostgresQuery) throws(PostgresError) -> PostgresResult {
        guard !inTransaction else { throw PostgresError(.other, context: "transaction inside a transaction") }
        var settings = start
        if start.readOnly { settings.settings.append((name: "transaction_read_only", value: "on")) }
        do throws(PostgresError) {
            return try roundTripPreparingAgain(
                leading: settings.settingsQuery.map { [$0] } ?? [], statement, trailing: [], startsTransaction: true)
        } catch where error.kind == .connectionLost && !start.readOnly {
            throw PostgresError(.commitOutcomeUnknown, sqlState: error.sqlState)
        }
    }

    // MARK: Single statements without blocking (docs/architecture.md, "Threads")

    /// `transaction(_:single:)` cut at its wait, for the pool's reactor: `startSingle` sends
    /// it with libpq in non-blocking mode, `advance` reads what arrived whenever the socket is
    /// ready, and `finishSingle` checks the results with the same receive half as the
    /// blocking round trip. No call blocks.
    struct SingleRead: @unchecked Sendable {
        fileprivate let pipeline: Pipeline
        fileprivate let readOnly: Bool
        /// What `PQgetResult` returned, in order, up to the Sync's result.
        fileprivate var results: [OpaquePointer?] = []
        /// The connection broke after this many of `results`.
        fileprivate var brokenAt: Int?
        /// Whether libpq still holds requests to write (`PQflush` returned 1): wait for the
        /// socket to be writable too.
        fileprivate(set) var wantsWrite = false
        /// Every result is in, or the connection broke.
        fileprivate(set) var isComplete = false

        /// The socket failed (epoll refused it): complete, as a lost connection.
        mutating func markBroken() {
            brokenAt = results.count
            isComplete = true
        }
    }

    /// The socket, for a reactor to wait on.
    var socketDescriptor: Int32 { PQsocket(handle) }

    /// Whether `startSingle` may be used: not over TLS, where data that OpenSSL has already
    /// read and decrypted would not wake a reactor waiting on the socket.
    var readsWithoutBlocking: Bool { !closed && PQsslInUse(handle) == 0 }

    /// Sends `transaction(start, single: statement)` without waiting for the socket, and
    /// without waiting for the answer: continue with `advance` when the socket is readable
    /// (or writable, while `wantsWrite`).
    func startSingle(_ start: TransactionStart, _ statement: PostgresQuery) throws(PostgresError) -> SingleRead {
        guard !inTransaction else { throw PostgresError(.other, context: "transaction inside a transaction") }
        guard !closed, PQsetnonblocking(handle, 1) == 0 else { throw Self.singleError(PostgresError(.connectionLost), readOnly: start.readOnly) }
        var settings = start
        if start.readOnly { settings.settings.append((name: "transaction_read_only", value: "on")) }
        let pipeline: Pipeline
        do throws(PostgresError) {
            pipeline = try send(leading: settings.settingsQuery.map { [$0] } ?? [], [statement], trailing: [])
        } catch {
            if !closed { PQsetnonblocking(handle, 0) }
            throw Self.singleError(error, readOnly: start.readOnly)
        }
        var read = SingleRead(pipeline: pipeline, readOnly: start.readOnly)
        let flushed = PQflush(handle)
        if flushed < 0 {
            read.brokenAt = 0
            read.isComplete = true
        }
        read.wantsWrite = flushed == 1
        return read
    }

    /// Writes what libpq still holds, reads what arrived and collects every result that is
    /// complete, without blocking. Sets `isComplete` once the Sync's result is in or the
    /// connection broke.
    func advance(_ read: inout SingleRead) {
        func broke() {
            read.brokenAt = read.results.count
            read.isComplete = true
        }
        if read.wantsWrite {
            let flushed = PQflush(handle)
            guard flushed >= 0 else { return broke() }
            read.wantsWrite = flushed == 1
        }
        guard PQconsumeInput(handle) == 1 else { return broke() }
        // Each statement's results end with a NULL; a pipeline answers with a bounded number
        // of them, so more means libpq and the server are out of step.
        let most = read.pipeline.sent.count * 3 + 3
        while PQisBusy(handle) == 0 {
            guard PQstatus(handle) == CONNECTION_OK, read.results.count < most else { return broke() }
            let result = PQgetResult(handle)
            read.results.append(result)
            if let result, PQresultStatus(result) == PGRES_PIPELINE_SYNC {
                read.isComplete = true
                return
            }
        }
    }

    /// The outcome of a complete `SingleRead`, as `transaction(_:single:)` would have returned
    /// or thrown it. The connection is back in blocking mode (or closed). A statement that
    /// the session lost (SQLSTATE 26000) empties the statement cache and is thrown: the
    /// caller runs the read again with `transaction(_:single:)`.
    func finishSingle(_ read: SingleRead) throws(PostgresError) -> PostgresResult {
        precondition(read.isComplete)
        var cursor = 0
        defer {
            for result in read.results[min(cursor, read.results.count)...] { PQclear(result) }
            if !closed { PQsetnonblocking(handle, 0) }
        }
        do throws(PostgresError) {
            return try receive(
                read.pipeline,
                next: {
                    guard cursor < read.results.count else { return nil }
                    cursor += 1
                    return read.results[cursor - 1]
                },
                broken: { read.brokenAt.map { cursor >= $0 } ?? false })[0]
        } catch {
            if error.sqlState == "26000" && preparesStatements && !isBroken { statements.removeAll(keepingCapacity: true) }
            throw Self.singleError(error, readOnly: read.readOnly)
        }
    }

    /// Drops a read that will not be finished (its pool shut down) and closes the connection.
    func abandon(_ read: SingleRead) {
        for result in read.results { PQclear(result) }
        close()
    }

    /// A lost connection in a single write may have committed.
    private static func singleError(_ error: PostgresError, readOnly: Bool) -> PostgresError {
        error.kind == .connectionLost && !readOnly ? PostgresError(.commitOutcomeUnknown, sqlState: error.sqlState) : error
    }

    private static let begin: PostgresQuery = "BEGIN"
    private static let beginReadOnly: PostgresQuery = "BEGIN READ ONLY"
    private static let commit: PostgresQuery = "COMMIT"

    private func requireOpenTransaction() throws(PostgresError) {
        if inTransaction && committed { throw PostgresError(.other, context: "statement after commit(returning:)") }
    }

    private func rollBackIfNeeded() {
        guard !isBroken, PQtransactionStatus(handle) != PQTRANS_IDLE else { return }
        _ = try? roundTrip(leading: [], "ROLLBACK", trailing: [])
    }

    /// Sends what waits to be sent on its own (before a statement that cannot be pipelined,
    /// such as a multi-statement `execute`).
    private func sendPending() throws(PostgresError) {
        try requireOpenTransaction()
        guard let last = pending.popLast() else { return }
        let leading = pending
        pending = []
        begun = true
        try roundTrip(leading: leading, last, trailing: [])
    }

    // MARK: Round trips

    /// `roundTrip`, sent once more after the session lost its prepared statements (SQLSTATE
    /// 26000: `DISCARD ALL`, `DEALLOCATE`, a pooler's reset), when nothing before this round
    /// trip belongs to the transaction: the statements are prepared again, and the caller
    /// sees one round trip more, not an error.
    private func roundTripPreparingAgain(
        leading: [PostgresQuery], _ main: PostgresQuery, trailing: [PostgresQuery], startsTransaction: Bool
    ) throws(PostgresError) -> PostgresResult {
        try roundTripPreparingAgain(leading: leading, [main], trailing: trailing, startsTransaction: startsTransaction)[0]
    }

    private func roundTripPreparingAgain(
        leading: [PostgresQuery], _ mains: [PostgresQuery], trailing: [PostgresQuery], tolerated: [PostgresQuery] = [],
        startsTransaction: Bool
    ) throws(PostgresError) -> [PostgresResult] {
        do throws(PostgresError) {
            return try roundTrip(leading: leading, mains, trailing: trailing, tolerated: tolerated)
        } catch where error.sqlState == "26000" && preparesStatements && startsTransaction && !isBroken {
            statements.removeAll(keepingCapacity: true)
            rollBackIfNeeded()
            return try roundTrip(leading: leading, mains, trailing: trailing, tolerated: tolerated)
        }
    }

    /// `roundTrip` of one main statement.
    @discardableResult
    private func roundTrip(leading: [PostgresQuery], _ main: PostgresQuery, trailing: [PostgresQuery]) throws(PostgresError) -> PostgresResult {
        try roundTrip(leading: leading, [main], trailing: trailing)[0]
    }

    /// Sends `leading`, `mains`, `trailing` and `tolerated` in one pipeline followed by one
    /// Sync, and reads every result: one network round trip. Returns the results of `mains`;
    /// the others are checked and freed. The first failure is thrown (statements after it did
    /// not run), but for a failure of a `tolerated` statement (those after a COMMIT: the
    /// transaction stands), which is only counted in `afterCommitFailures`.
    private func roundTrip(
        leading: [PostgresQuery], _ mains: [PostgresQuery], trailing: [PostgresQuery], tolerated: [PostgresQuery] = []
    ) throws(PostgresError) -> [PostgresResult] {
        let pipeline = try send(leading: leading, mains, trailing: trailing, tolerated: tolerated)
        return try receive(pipeline, next: { PQgetResult(handle) }, broken: { isBroken })
    }

    /// What one round trip sent, in order, for its receive half: a statement to prepare (its
    /// cache key and name), or a statement to run (whether its result is the one returned).
    struct Pipeline {
        fileprivate enum Sent {
            case prepare(StatementKey, String, tolerated: Bool)
            case run(keep: Bool, tolerated: Bool)
        }
        fileprivate var sent: [Sent] = []
        fileprivate var mains = 0
        fileprivate var tolerated = false
    }

    /// The send half of `roundTrip`: enters pipeline mode and sends the statements (preparing
    /// those the connection has not prepared yet) and a Sync. In non-blocking mode what does
    /// not fit in the socket's buffer stays in libpq's, for `PQflush`.
    private func send(
        leading: [PostgresQuery], _ mains: [PostgresQuery], trailing: [PostgresQuery], tolerated: [PostgresQuery] = []
    ) throws(PostgresError) -> Pipeline {
        guard !closed else { throw PostgresError(.connectionLost) }
        guard PQenterPipelineMode(handle) == 1 else {
            // libpq is not idle on this connection: out of step, so not to be used again.
            close()
            throw PostgresError(.connectionLost)
        }
        var pipeline = Pipeline(mains: mains.count, tolerated: !tolerated.isEmpty)
        pipeline.sent.reserveCapacity(leading.count + mains.count + trailing.count + tolerated.count + 1)
        var sendError: PostgresError?
        func send(_ query: PostgresQuery, keep: Bool, tolerated: Bool = false) {
            guard sendError == nil else { return }
            let ok: Bool
            if preparesStatements {
                let key = StatementKey(sql: query.sql, types: query.bindings.types)
                let name: String
                if let known = statements[key] {
                    name = known
                } else {
                    if statements.count >= statementCacheLimit {
                        // Forgotten here; `DEALLOCATE ALL` goes first in this same pipeline.
                        statements.removeAll(keepingCapacity: true)
                        guard PQsendQueryParams(handle, "DEALLOCATE ALL", 0, nil, nil, nil, nil, 1) == 1 else {
                            sendError = failure(nil)
                            return
                        }
                        pipeline.sent.append(.run(keep: false, tolerated: tolerated))
                    }
                    nextStatement += 1
                    name = "fc\(nextStatement)"
                    let prepared = key.types.withUnsafeBufferPointer { types in
                        PQsendPrepare(handle, name, key.sql, Int32(types.count), types.baseAddress)
                    }
                    guard prepared == 1 else {
                        sendError = failure(nil)
                        return
                    }
                    pipeline.sent.append(.prepare(key, name, tolerated: tolerated))
                }
                ok = withParameterPointers(query.bindings) { count, _, values, lengths, formats in
                    PQsendQueryPrepared(handle, name, count, values, lengths, formats, 1)
                } == 1
            } else {
                ok = withParameterPointers(query.bindings) { count, types, values, lengths, formats in
                    PQsendQueryParams(handle, query.sql, count, types, values, lengths, formats, 1)
                } == 1
            }
            if ok { pipeline.sent.append(.run(keep: keep, tolerated: tolerated)) } else { sendError = failure(nil) }
        }
        for query in leading { send(query, keep: false) }
        for query in mains { send(query, keep: true) }
        for query in trailing { send(query, keep: false) }
        for query in tolerated { send(query, keep: false, tolerated: true) }
        if sendError == nil, PQpipelineSync(handle) != 1 { sendError = failure(nil) }
        roundTrips += 1
        if let sendError {
            // Nothing can be read back reliably: the connection is unusable.
            close()
            throw sendError
        }
        return pipeline
    }

    /// The receive half of `roundTrip`: reads the results of `pipeline` from `next` (libpq's
    /// `PQgetResult`, or the results a reactor collected without blocking) and checks them.
    /// `broken` says whether the connection had broken by the point reached in `next`.
    private func receive(
        _ pipeline: Pipeline, next: () -> OpaquePointer?, broken: () -> Bool
    ) throws(PostgresError) -> [PostgresResult] {
        var kept: [OpaquePointer] = []
        kept.reserveCapacity(pipeline.mains)
        var firstError: PostgresError?
        // The connection was lost after everything but the `tolerated` statements succeeded:
        // the caller's outcome stands, the connection is closed.
        var lostAfterCommit = false
        for entry in pipeline.sent {
            let isTolerated: Bool
            switch entry {
            case .prepare(_, _, let tolerated), .run(_, let tolerated): isTolerated = tolerated
            }
            // Each command's results end with a NULL.
            var result: OpaquePointer?
            while let more = next() {
                if result == nil { result = more } else { PQclear(more) }
            }
            if broken() {
                PQclear(result)
                if isTolerated {
                    if firstError == nil {
                        afterCommitFailures += 1
                        lostAfterCommit = true
                    }
                } else {
                    firstError = firstError ?? PostgresError(.connectionLost)
                }
                break
            }
            let status = result.map(PQresultStatus) ?? PGRES_FATAL_ERROR
            switch status {
            case PGRES_PIPELINE_ABORTED:
                PQclear(result)
            case PGRES_COMMAND_OK, PGRES_TUPLES_OK:
                switch entry {
                case .prepare(let key, let name, _):
                    statements[key] = name
                    PQclear(result)
                case .run(keep: true, _):
                    kept.append(result!)
                case .run(keep: false, _):
                    PQclear(result)
                }
            default:
                if isTolerated {
                    if firstError == nil {
                        afterCommitFailures += 1
                        // Without a SQLSTATE it is the connection that failed (PostgresError.from).
                        if PostgresError.from(result: result, connection: handle).kind == .connectionLost {
                            lostAfterCommit = true
                        }
                    }
                } else if firstError == nil {
                    firstError = PostgresError.from(result: result, connection: handle)
                }
                PQclear(result)
            }
        }
        if !broken() {
            // The Sync's own result, then pipeline mode ends.
            let sync = next()
            let synced = sync.map(PQresultStatus) == PGRES_PIPELINE_SYNC
            if !synced || PQexitPipelineMode(handle) != 1 {
                // No ReadyForQuery after the statements: the server died after running them
                // (FATAL in its place) or the conversation is out of step. The connection is
                // lost either way; what ran may have committed, which COMMIT's callers report.
                // When all but the statements after a COMMIT succeeded, the commit is known to
                // stand: only those (whose implicit transaction ends at the Sync) are lost.
                if firstError == nil && pipeline.tolerated {
                    if !lostAfterCommit { afterCommitFailures += 1 }
                    lostAfterCommit = true
                } else {
                    let reported = sync.map { PostgresError.from(result: $0, connection: handle) }
                    firstError = firstError ?? PostgresError(.connectionLost, sqlState: reported?.sqlState)
                }
            }
            PQclear(sync)
        }
        // A lost connection is never used again, even when libpq still calls it good (in
        // pipeline mode it reports a failed write before it has seen the socket close).
        if firstError?.kind == .connectionLost || lostAfterCommit { close() }
        if let firstError {
            for result in kept { PQclear(result) }
            throw firstError
        }
        guard kept.count == pipeline.mains else {
            for result in kept { PQclear(result) }
            throw PostgresError(.connectionLost)
        }
        return kept.map { PostgresResult($0) }
    }

    /// The error for a libpq call that failed without a result.
    private func failure(_ result: OpaquePointer?) -> PostgresError {
        PostgresError.from(result: result, connection: handle)
    }

    private func withParameters(
        _ bindings: PostgresBindings,
        _ run: (Int32, UnsafePointer<Oid>?, UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<Int32>?, UnsafePointer<Int32>?) -> OpaquePointer?
    ) throws(PostgresError) -> PostgresResult {
        let result = withParameterPointers(bindings, run)
        do {
            try check(result, expecting: [PGRES_COMMAND_OK, PGRES_TUPLES_OK])
        } catch {
            PQclear(result)
            throw error
        }
        return PostgresResult(result!)
    }

    /// Calls `run` with libpq's parameter arrays (count, types, values, lengths, formats: binary).
    private func withParameterPointers<R>(
        _ bindings: PostgresBindings,
        _ run: (Int32, UnsafePointer<Oid>?, UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<Int32>?, UnsafePointer<Int32>?) -> R
    ) -> R {
        let count = bindings.count
        let lengths = bindings.values.map { Int32($0?.count ?? 0) }
        let formats = [Int32](repeating: 1, count: count)
        // Copy each value into one buffer so the pointers stay valid for the call.
        var storage: [UInt8] = []
        storage.reserveCapacity(bindings.values.reduce(0) { $0 + ($1?.count ?? 0) } + 1)
        var offsets: [Int?] = []
        offsets.reserveCapacity(count)
        for value in bindings.values {
            if let value {
                offsets.append(storage.count)
                storage.append(contentsOf: value)
            } else {
                offsets.append(nil)
            }
        }
        storage.append(0)
        return storage.withUnsafeBufferPointer { buffer in
            let base = UnsafeRawPointer(buffer.baseAddress!).assumingMemoryBound(to: CChar.self)
            let pointers: [UnsafePointer<CChar>?] = offsets.map { $0.map { base + $0 } }
            return bindings.types.withUnsafeBufferPointer { types in
                pointers.withUnsafeBufferPointer { values in
                    lengths.withUnsafeBufferPointer { lengths in
                        formats.withUnsafeBufferPointer { formats in
                            run(Int32(count), types.baseAddress, values.baseAddress, lengths.baseAddress, formats.baseAddress)
                        }
                    }
                }
            }
        }
    }

    private func check(_ result: OpaquePointer?, expecting: [ExecStatusType]) throws(PostgresError) {
        guard let result, expecting.contains(PQresultStatus(result)) else {
            throw PostgresError.from(result: result, connection: handle)
        }
    }

    // MARK: LISTEN / NOTIFY

    /// The socket to wait on for notifications.
    var socket: Int32 { PQsocket(handle) }

    /// Reads what arrived on the socket and returns the notifications received (channel, payload).
    func consumeNotifications() throws(PostgresError) -> [(channel: String, payload: String)] {
        guard PQconsumeInput(handle) == 1 else { throw PostgresError(.connectionLost) }
        var received: [(String, String)] = []
        while let notify = PQnotifies(handle) {
            received.append((String(cString: notify.pointee.relname), String(cString: notify.pointee.extra)))
            PQfreemem(notify)
        }
        return received
    }
}

/// How a transaction starts. All of it reaches the server in the transaction's first round
/// trip, together with the first statement (docs/architecture.md, "Transactions").
public struct TransactionStart: Sendable {
    /// `BEGIN READ ONLY`.
    public var readOnly: Bool
    /// The role the transaction acts as (`SET LOCAL ROLE`): whatever a pooler or a session
    /// reset did to the session before, the transaction's statements run as this role, or the
    /// transaction fails in its first round trip. nil: the login role.
    public var role: String?
    /// Transaction-local settings (`set_config(name, value, true)`), in order.
    public var settings: [(name: String, value: String)]

    public init(readOnly: Bool = false, role: String? = nil, settings: [(name: String, value: String)] = []) {
        self.readOnly = readOnly
        self.role = role
        self.settings = settings
    }

    /// One statement that sets the role and every setting, transaction-locally: setting
    /// `role` with `set_config` is `SET LOCAL ROLE`. Values are bind parameters.
    var settingsQuery: PostgresQuery? {
        var names: [String] = []
        var values: [String] = []
        if let role {
            names.append("role")
            values.append(role)
        }
        for (name, value) in settings {
            names.append(name)
            values.append(value)
        }
        guard !names.isEmpty else { return nil }
        return "SELECT count(set_config(name, value, true)) FROM unnest(\(names)::text[], \(values)::text[]) AS s(name, value)"
    }
}

/// A result set in binary format. Rows are decoded on demand from libpq's buffer.
public final class PostgresResult: @unchecked Sendable {
    private let handle: OpaquePointer
    public let count: Int
    public let columnCount: Int

    init(_ handle: OpaquePointer) {
        self.handle = handle
        self.count = Int(PQntuples(handle))
        self.columnCount = Int(PQnfields(handle))
    }

    deinit { PQclear(handle) }

    /// The number of rows a command affected (`UPDATE`, `DELETE`, `INSERT`).
    public var affectedRows: Int {
        Int(String(cString: PQcmdTuples(handle))) ?? 0
    }

    public var rows: [PostgresRow] {
        (0..<count).map { PostgresRow(result: self, index: Int32($0)) }
    }

    public var first: PostgresRow? { count > 0 ? PostgresRow(result: self, index: 0) : nil }

    func decode<T: PostgresDecodable>(row: Int32, column: Int, as type: T.Type) throws(PostgresError) -> T {
        guard column >= 0, column < columnCount else {
            throw PostgresError(.decoding, context: "column \(column) of \(columnCount)")
        }
        let oid = PostgresType(rawValue: PQftype(handle, Int32(column)))
        if PQgetisnull(handle, row, Int32(column)) == 1 {
            return try T.decode(nil, type: oid)
        }
        let length = Int(PQgetlength(handle, row, Int32(column)))
        guard let pointer = PQgetvalue(handle, row, Int32(column)) else {
            return try T.decode(nil, type: oid)
        }
        return try T.decode(UnsafeRawBufferPointer(start: pointer, count: length), type: oid)
    }
}

/// One row of a `PostgresResult`.
public struct PostgresRow: @unchecked Sendable {
    let result: PostgresResult
    let index: Int32

    /// Decodes column `column` (0-based) as `T`; `T?` for nullable columns.
    public func decode<T: PostgresDecodable>(_ column: Int, as type: T.Type = T.self) throws(PostgresError) -> T {
        try result.decode(row: index, column: column, as: type)
    }
}
