import ForecourtCore
import Foundation
import Postgres
import Storage
import Synchronization
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// A connection to PostgreSQL that breaks at any moment (a restart, a crash, a network cut)
/// is `connectionLost`, or `commitOutcomeUnknown` when COMMIT may have gone through: never an
/// error of another kind, which the service would answer with -32603 instead of the -32007 or
/// -32008 that tell a client to retry (docs/protocol.md, "Errors"). `scripts/faults` found it
/// with `pg_ctl restart`: libpq in pipeline mode reports "server closed the connection
/// unexpectedly" without a SQLSTATE while it still calls the connection good.
@Suite struct ConnectionLossTests {
    @Test func aConnectionCutAtAnyMomentIsLostNeverAnotherError() async throws {
        try await withTestDatabase { db in
            try Self.makeScratchTable(db)
            let proxy = try CuttingProxy(upstreamPort: try Self.clusterPort())
            defer { proxy.stop() }
            let pool = Self.pool(through: proxy, to: db, maximumConnections: 2)
            var kinds: [PostgresError.Kind: Int] = [:]
            var succeeded = 0
            for round in 0..<120 {
                // Cut while idle, while a statement is in flight, or while COMMIT is.
                let delay = round.isMultiple(of: 3) ? 0 : Int.random(in: 0...4000)
                let cutter = Task {
                    try? await Task.sleep(for: .microseconds(delay))
                    proxy.cutAll()
                }
                do {
                    if round.isMultiple(of: 2) {
                        try await pool.transaction { connection in
                            try connection.query("INSERT INTO public.scratch VALUES (\(round))")
                            _ = try connection.query("SELECT count(*) FROM public.scratch, generate_series(1, 2000)")
                            try connection.query("UPDATE public.scratch SET n = n + 1 WHERE id = \(round)")
                        }
                    } else {
                        _ = try await pool.transaction(single: "INSERT INTO public.scratch VALUES (\(round))")
                    }
                    succeeded += 1
                } catch let error as PostgresError {
                    kinds[error.kind, default: 0] += 1
                }
                await cutter.value
            }
            await pool.shutdown()
            let lost: Set<PostgresError.Kind> = [.connectionLost, .commitOutcomeUnknown, .connectionFailed]
            #expect(Set(kinds.keys).isSubset(of: lost), "errors of a cut connection: \(kinds), \(succeeded) succeeded")
            #expect(kinds.values.reduce(0, +) > 0, "some cuts hit a transaction")
        }
    }

    /// The server dies after COMMIT (or a one-statement write) went through but before it said
    /// it was ready again: the write may have committed (here it did), so the caller must hear
    /// `commitOutcomeUnknown` (-32008: retry with the same idempotency key), not another error.
    @Test func aServerThatDiesBeforeSayingItIsReadyLeavesTheOutcomeUnknown() async throws {
        try await withTestDatabase { db in
            try Self.makeScratchTable(db)
            let proxy = try CuttingProxy(upstreamPort: try Self.clusterPort())
            defer { proxy.stop() }
            let pool = Self.pool(through: proxy, to: db, maximumConnections: 1)
            defer { Task { await pool.shutdown() } }
            let commit = await #expect(throws: PostgresError.self) {
                try await pool.transaction { connection in
                    try connection.query("INSERT INTO public.scratch VALUES (1)")
                    proxy.dieAtNextReadyForQuery()  // the next round trip is COMMIT's
                }
            }
            #expect(commit?.kind == .commitOutcomeUnknown)
            // (A new connection first, so that its own start-up is not what dies.)
            _ = try await pool.transaction(readOnly: true, single: "SELECT 1")
            proxy.dieAtNextReadyForQuery()
            let single = await #expect(throws: PostgresError.self) {
                try await pool.transaction(single: "INSERT INTO public.scratch VALUES (2)")
            }
            #expect(single?.kind == .commitOutcomeUnknown)
            _ = try await pool.transaction(readOnly: true, single: "SELECT 1")
            proxy.dieAtNextReadyForQuery()
            let read = await #expect(throws: PostgresError.self) {
                try await pool.transaction(readOnly: true, single: "SELECT count(*) FROM public.scratch")
            }
            #expect(read?.kind == .connectionLost)
            // Both writes did commit; the connections they broke were not kept.
            let owner = try db.ownerConnection()
            defer { owner.close() }
            #expect(try owner.query("SELECT count(*) FROM public.scratch").first?.decode(0, as: Int.self) == 2)
            #expect(try await pool.transaction(single: "SELECT 1").count == 1)
        }
    }

    /// Through `AppDatabase`, as a method sees it: a read whose connection was cut is retried
    /// on a fresh connection; what cannot be is -32007 or -32008, never -32603.
    @Test func theServiceSeesUnavailableOrOutcomeUnknownOnly() async throws {
        try await withTestDatabase { db in
            try Self.makeScratchTable(db)
            let proxy = try CuttingProxy(upstreamPort: try Self.clusterPort())
            defer { proxy.stop() }
            let pool = Self.pool(through: proxy, to: db, maximumConnections: 2)
            let database = AppDatabase(pool: pool)
            var other: [String] = []
            for round in 0..<80 {
                let cutter = Task {
                    try? await Task.sleep(for: .microseconds(Int.random(in: 0...4000)))
                    proxy.cutAll()
                }
                do {
                    try await database.transaction(.group(UUID())) { connection in
                        try connection.query("INSERT INTO public.scratch VALUES (\(round))")
                        _ = try connection.query("SELECT count(*) FROM public.scratch, generate_series(1, 2000)")
                    }
                } catch let error as DomainError where error.code == .unavailable || error.code == .outcomeUnknown {
                } catch {
                    other.append(String(describing: error))
                }
                await cutter.value
            }
            await pool.shutdown()
            #expect(other.isEmpty, "\(other)")
        }
    }

    static func makeScratchTable(_ db: TestDatabase) throws {
        let owner = try db.ownerConnection()
        defer { owner.close() }
        try owner.execute(
            unsafeSQL: """
                CREATE TABLE public.scratch (id int PRIMARY KEY, n int NOT NULL DEFAULT 0);
                GRANT USAGE ON SCHEMA public TO forecourt_app;
                GRANT SELECT, INSERT, UPDATE ON public.scratch TO forecourt_app;
                """)
    }

    /// A pool whose connections to `db` go through `proxy` (TCP, so the proxy can cut them).
    static func pool(through proxy: CuttingProxy, to db: TestDatabase, maximumConnections: Int) -> PostgresPool {
        PostgresPool(
            configuration: AppDatabase.poolConfiguration(
                connectionString: "host=127.0.0.1 port=\(proxy.port) user=postgres sslmode=disable dbname=\(db.name)",
                maximumConnections: maximumConnections))
    }

    /// The TCP port of the test cluster (`port=` of `FORECOURT_TEST_DATABASE_URL`).
    static func clusterPort() throws -> Int {
        let url = try TestEnvironment.baseConnectionString
        guard let field = url.split(separator: " ").first(where: { $0.hasPrefix("port=") }), let port = Int(field.dropFirst(5)) else {
            throw TestSetupError("no port= in FORECOURT_TEST_DATABASE_URL")
        }
        return port
    }
}

/// A TCP proxy to 127.0.0.1:`upstreamPort` whose connections can all be cut at once, as when
/// the server process dies: the client side is reset (RST), so libpq's next write fails, while
/// new connections are still accepted.
final class CuttingProxy: Sendable {
    final class Pair: Sendable {
        let client: Int32
        let upstream: Int32
        let cut = Atomic<Bool>(false)
        let ended = Atomic<Int>(0)

        init(client: Int32, upstream: Int32) {
            self.client = client
            self.upstream = upstream
        }

        /// Wakes both pumps (a blocked read returns 0 after SHUT_RD); the last one closes.
        func stopReading() {
            shutdown(client, Int32(SHUT_RD))
            shutdown(upstream, Int32(SHUT_RD))
        }
    }

    let port: Int
    private let listener: Int32
    private let open = Mutex<[Pair]>([])
    private let stopped = Atomic<Bool>(false)
    private let armed = Atomic<Bool>(false)

    /// The next ReadyForQuery the server sends is replaced by FATAL 57P01 and the connection
    /// closed: the server died after it had done everything asked, before saying so.
    func dieAtNextReadyForQuery() {
        armed.store(true, ordering: .releasing)
    }

    init(upstreamPort: Int) throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = Self.loopback(port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, length) == 0 && listen(listener, 16) == 0 && getsockname(listener, $0, &length) == 0
            }
        }
        guard listener >= 0, bound else { throw TestSetupError("the proxy cannot listen") }
        self.listener = listener
        port = Int(UInt16(bigEndian: address.sin_port))
        Thread.detachNewThread { [self] in
            while !stopped.load(ordering: .relaxed) {
                let client = accept(listener, nil, nil)
                guard client >= 0 else { continue }
                let upstream = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
                var target = Self.loopback(port: upstreamPort)
                let connected = withUnsafeMutablePointer(to: &target) { pointer in
                    pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        connect(upstream, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
                    }
                }
                guard connected else {
                    close(client)
                    close(upstream)
                    continue
                }
                let pair = Pair(client: client, upstream: upstream)
                open.withLock { $0.append(pair) }
                for (from, to) in [(client, upstream), (upstream, client)] {
                    Thread.detachNewThread { [self] in
                        var buffer = [UInt8](repeating: 0, count: 65536)
                        // Server messages (type, length, body), parsed so that a ReadyForQuery
                        // can be replaced when armed (the connection string disables TLS, so
                        // every server message is framed).
                        var pending: [UInt8] = []
                        pump: while true {
                            let count = buffer.withUnsafeMutableBytes { read(from, $0.baseAddress, $0.count) }
                            guard count > 0 else { break }
                            var out = Array(buffer[..<count])
                            if from == upstream {
                                pending += out
                                out = []
                                while pending.count >= 5 {
                                    let length = Int(pending[1]) << 24 | Int(pending[2]) << 16 | Int(pending[3]) << 8 | Int(pending[4])
                                    guard pending.count >= 1 + length else { break }
                                    if pending[0] == UInt8(ascii: "Z"), armed.exchange(false, ordering: .acquiringAndReleasing) {
                                        // Dies instead of saying it is ready: FATAL, then gone.
                                        out += Self.fatal
                                        _ = out.withUnsafeBytes { send(to, $0.baseAddress, out.count, Int32(MSG_NOSIGNAL)) }
                                        break pump
                                    }
                                    out += pending[..<(1 + length)]
                                    pending.removeFirst(1 + length)
                                }
                            }
                            let written = out.withUnsafeBytes { send(to, $0.baseAddress, out.count, Int32(MSG_NOSIGNAL)) }
                            guard written == out.count else { break }
                        }
                        pair.stopReading()
                        guard pair.ended.add(1, ordering: .acquiringAndReleasing).newValue == 2 else { return }
                        open.withLock { pairs in pairs.removeAll { $0 === pair } }
                        if pair.cut.load(ordering: .acquiring) {
                            // What a backend stopped by `pg_ctl stop -m immediate` does: a
                            // warning, then its socket is gone (closed with a zero linger: a
                            // reset). libpq's next write then fails while the warning can
                            // still be read.
                            let fast = Bool.random()
                            let notice = fast ? Self.fatal : Self.notice
                            _ = notice.withUnsafeBytes { send(pair.client, $0.baseAddress, notice.count, Int32(MSG_NOSIGNAL)) }
                            if !fast {
                                var reset = linger(l_onoff: 1, l_linger: 0)
                                setsockopt(pair.client, SOL_SOCKET, SO_LINGER, &reset, socklen_t(MemoryLayout<linger>.size))
                            }
                        }
                        close(pair.client)
                        close(pair.upstream)
                    }
                }
            }
        }
    }

    /// Breaks every open connection.
    func cutAll() {
        open.withLock { pairs in
            for pair in pairs {
                pair.cut.store(true, ordering: .releasing)
                pair.stopReading()
            }
        }
    }

    func stop() {
        stopped.store(true, ordering: .relaxed)
        cutAll()
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    /// A NoticeResponse: WARNING 57P02, as from `pg_ctl stop -m immediate`.
    static let notice = message("N", [("S", "WARNING"), ("V", "WARNING"), ("C", "57P02"),
                                      ("M", "terminating connection due to immediate shutdown command")])
    /// An ErrorResponse: FATAL 57P01, as from `pg_ctl stop -m fast`.
    static let fatal = message("E", [("S", "FATAL"), ("V", "FATAL"), ("C", "57P01"),
                                     ("M", "terminating connection due to administrator command")])

    static func message(_ type: String, _ fields: [(String, String)]) -> [UInt8] {
        var body: [UInt8] = []
        for (code, text) in fields { body += Array(code.utf8) + Array(text.utf8) + [0] }
        body.append(0)
        return Array(type.utf8) + withUnsafeBytes(of: UInt32(body.count + 4).bigEndian, Array.init) + body
    }

    private static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        return address
    }
}
