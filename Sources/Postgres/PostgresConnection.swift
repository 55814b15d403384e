import CLibPQ
import Foundation

/// One libpq connection. Every call blocks: use it only on a thread of the pool's
/// `NIOThreadPool` (a transaction body), never on an event loop.
///
/// Not thread-safe: the pool hands a connection to one body at a time.
public final class PostgresConnection: @unchecked Sendable {
    private let handle: OpaquePointer
    private var closed = false
    /// Prepared statements by SQL text and parameter types, so that a statement is parsed
    /// and planned once per connection.
    private var statements: [StatementKey: String] = [:]
    private var nextStatement = 0
    /// The most statements kept prepared; past it the cache starts over.
    private let statementCacheLimit: Int

    private struct StatementKey: Hashable {
        let sql: String
        let types: [UInt32]
    }

    /// Connects with a libpq connection string (`host=... dbname=...`) or URI (`postgresql://...`).
    /// TLS to the database follows libpq's own `sslmode` and related settings.
    public init(connectionString: String, statementCacheLimit: Int = 256) throws(PostgresError) {
        guard let handle = Self.connect(connectionString) else { throw PostgresError(.connectionFailed) }
        guard PQstatus(handle) == CONNECTION_OK else {
            PQfinish(handle)
            throw PostgresError(.connectionFailed)
        }
        self.handle = handle
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

    /// Whether the connection is open as far as libpq knows and not inside a failed transaction.
    public var isUsable: Bool {
        !closed && PQstatus(handle) == CONNECTION_OK && PQtransactionStatus(handle) == PQTRANS_IDLE
    }

    /// Whether libpq has seen the connection break.
    public var isBroken: Bool { closed || PQstatus(handle) != CONNECTION_OK }

    /// The server process id (for tests that terminate a backend).
    public var backendPID: Int32 { PQbackendPID(handle) }

    /// Runs a parameterised statement through the prepared-statement cache; results are binary.
    @discardableResult
    public func query(_ query: PostgresQuery) throws(PostgresError) -> PostgresResult {
        let key = StatementKey(sql: query.sql, types: query.bindings.types)
        let name: String
        if let known = statements[key] {
            name = known
        } else {
            name = try prepare(key)
        }
        return try execute(prepared: name, bindings: query.bindings)
    }

    /// Runs a parameterised statement without preparing it (for one-off statements).
    @discardableResult
    public func queryUnprepared(_ query: PostgresQuery) throws(PostgresError) -> PostgresResult {
        try withParameters(query.bindings) { count, types, values, lengths, formats in
            PQexecParams(handle, query.sql, count, types, values, lengths, formats, 1)
        }
    }

    /// Runs SQL text without parameters, possibly several statements (a migration file,
    /// `BEGIN`). Only for SQL written by us, never for request data.
    public func execute(unsafeSQL sql: String) throws(PostgresError) {
        let result = PQexec(handle, sql)
        defer { PQclear(result) }
        try check(result, expecting: [PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY])
    }

    private func prepare(_ key: StatementKey) throws(PostgresError) -> String {
        if statements.count >= statementCacheLimit {
            try execute(unsafeSQL: "DEALLOCATE ALL")
            statements.removeAll(keepingCapacity: true)
        }
        nextStatement += 1
        let name = "fc\(nextStatement)"
        let result = key.types.withUnsafeBufferPointer { types in
            PQprepare(handle, name, key.sql, Int32(types.count), types.baseAddress)
        }
        defer { PQclear(result) }
        try check(result, expecting: [PGRES_COMMAND_OK])
        statements[key] = name
        return name
    }

    private func execute(prepared name: String, bindings: PostgresBindings) throws(PostgresError) -> PostgresResult {
        try withParameters(bindings) { count, _, values, lengths, formats in
            PQexecPrepared(handle, name, count, values, lengths, formats, 1)
        }
    }

    private func withParameters(
        _ bindings: PostgresBindings,
        _ run: (Int32, UnsafePointer<Oid>?, UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<Int32>?, UnsafePointer<Int32>?) -> OpaquePointer?
    ) throws(PostgresError) -> PostgresResult {
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
        let result: OpaquePointer? = storage.withUnsafeBufferPointer { buffer in
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
        do {
            try check(result, expecting: [PGRES_COMMAND_OK, PGRES_TUPLES_OK])
        } catch {
            PQclear(result)
            throw error
        }
        return PostgresResult(result!)
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
