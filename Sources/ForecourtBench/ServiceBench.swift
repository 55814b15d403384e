import ArgumentParser
import FieldCrypto
import ForecourtClient
import Foundation
import Histogram
import Postgres
import RPC
import Synchronization

/// `forecourt-bench service`: every workload of docs/performance.md through the TLS endpoint,
/// each followed in the same run by pgbench running the same SQL (the ceiling without TLS,
/// JSON, authorisation and encryption), and the ratio of the two, as text and JSON.
///
/// Run by `scripts/bench`, which seeds the database, makes the keys and starts the service.
struct ServiceBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "service",
        abstract: "Each workload through the TLS endpoint beside pgbench running its SQL (scripts/bench runs it).")

    @Option(help: "host:port of the service.") var connect: String
    @Option(help: "CA certificate (PEM) to trust.") var ca: String
    @Option(name: .customLong("database-url"), help: "The database as its owner (key=value form with host, port, dbname).")
    var databaseURL: String
    @Option(help: "JSON file with the group, its dealer and the API keys (written by scripts/bench).") var keys: String
    @Option(help: "The service's keyring (blind indexes of the sampled customers' names).") var keyring: String
    @Option(help: "The pgbench executable.") var pgbench = "/usr/lib/postgresql/15/bin/pgbench"
    @Option(name: .customLong("pgbench-scripts"), help: "Directory of the pgbench scripts.") var pgbenchScripts = "scripts/pgbench"
    @Option(name: .customLong("tpcb-database"), help: "A database initialised by pgbench -i (the TPC-B reference); none: skip.")
    var tpcbDatabase: String?
    @Option(help: "Comma-separated workloads (default: all).") var workloads = Workload.allCases.map(\.rawValue).joined(separator: ",")
    @Option(help: "TLS connections (and pgbench clients).") var connections = 8
    @Option(help: "Requests in flight per connection.") var pipeline = 4
    @Option(help: "Seconds per measured phase.") var seconds = 10
    @Option(help: "Seconds of warm-up before each phase.") var warmup = 3
    @Option(help: "Orders sampled for the workloads to draw from.") var samples = 5000
    @Option(name: .customLong("idle-sessions"), help: "Authenticated idle sessions opened by the idle workload.")
    var idleSessions = 1000
    @Option(name: .customLong("server-pid"), help: "The service's process id (memory of idle sessions).") var serverPID: Int32?
    @Option(help: "Write the results as JSON here.") var json: String?
    @Option(help: "A JSON result of a smaller database: print each read's cost relative to it.") var compare: String?

    func validate() throws {
        for name in workloads.split(separator: ",") where Workload(rawValue: String(name)) == nil {
            throw ValidationError("--workloads: unknown workload \(name) (known: \(Workload.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        guard connections >= 1, pipeline >= 1, seconds >= 1, warmup >= 0, samples >= 10 else {
            throw ValidationError("--connections, --pipeline, --seconds and --samples must be positive")
        }
    }

    func run() async throws {
        let keysData = try Data(contentsOf: URL(fileURLWithPath: keys))
        let keyFile = try JSONDecoder().decode(BenchKeys.self, from: keysData)
        let parameters = Self.parameters(of: databaseURL)
        guard let group = UUID(uuidString: keyFile.group), let dealer = UUID(uuidString: keyFile.dealer) else {
            throw ValidationError("--keys: group and dealer must be UUIDs")
        }
        let cipher = FieldCipher(keyring: try Keyring.load(path: keyring))
        let owner = try PostgresConnection(connectionString: databaseURL)
        progress("sampling \(samples) orders of the group ...")
        let sample = try BenchSample.make(owner: owner, group: group, count: samples, cipher: cipher)
        try Self.makeCeilingLogin(owner, group: group)
        owner.close()
        guard !sample.orders.isEmpty else { throw BenchError("the group has no orders to sample") }

        let logs = FileManager.default.temporaryDirectory.appendingPathComponent("forecourt-bench-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: logs) }
        let ceiling = Pgbench(
            executable: pgbench, host: parameters["host"] ?? "127.0.0.1", port: parameters["port"] ?? "5432",
            database: parameters["dbname"] ?? "postgres", user: Self.ceilingLogin, scriptsDirectory: pgbenchScripts,
            logDirectory: logs)
        let parts = connect.split(separator: ":")
        guard parts.count == 2, let port = Int(parts[1]) else { throw ValidationError("--connect: host:port") }
        let endpoint = Endpoint(host: String(parts[0]), port: port, ca: ca)

        let environment = Environment(
            sample: sample, group: group, dealer: dealer, keys: keyFile, endpoint: endpoint, ceiling: ceiling,
            tpcbDatabase: tpcbDatabase, connections: connections, pipeline: pipeline, seconds: seconds, warmup: warmup,
            idleSessions: idleSessions, serverPID: serverPID)
        let cores = ProcessInfo.processInfo.activeProcessorCount
        progress(
            "orders in the group: \(sample.groupOrders), sampled: \(sample.orders.count), cores: \(cores), "
                + "\(connections) connections × \(pipeline) in flight, \(seconds) s per phase after \(warmup) s of warm-up")
        var results: [WorkloadResult] = []
        for name in workloads.split(separator: ",") {
            let workload = Workload(rawValue: String(name))!
            progress("\(workload.rawValue) ...")
            let result = try await workload.run(environment)
            progress("  " + result.summary)
            results.append(result)
        }
        let report = BenchReport(
            date: ISO8601DateFormatter().string(from: Date()), cores: cores, groupOrders: sample.groupOrders,
            connections: connections, pipeline: pipeline, seconds: seconds, workloads: results)
        var baseline: BenchReport?
        if let compare {
            baseline = try JSONDecoder().decode(BenchReport.self, from: Data(contentsOf: URL(fileURLWithPath: compare)))
        }
        progress("")
        progress(report.table(baseline: baseline))
        if let json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(report).write(to: URL(fileURLWithPath: json))
            progress("(written to \(json))")
        }
    }

    /// The login pgbench uses: a member of forecourt_app whose sessions act as it, scoped to
    /// the bench group by default, so that the scripts' SQL meets the same row-level security.
    static let ceilingLogin = "forecourt_bench"

    static func makeCeilingLogin(_ owner: PostgresConnection, group: UUID) throws {
        let database = try owner.query("SELECT current_database()::text").first!.decode(0, as: String.self)
        try owner.execute(
            unsafeSQL: """
                DO $$ BEGIN
                    CREATE ROLE \(ceilingLogin) LOGIN;
                EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
                END $$;
                GRANT forecourt_app TO \(ceilingLogin);
                """)
        // Identifiers and a UUID chosen by code, never request data.
        try owner.execute(
            unsafeSQL: """
                ALTER ROLE \(ceilingLogin) IN DATABASE "\(database)" SET role = 'forecourt_app';
                ALTER ROLE \(ceilingLogin) IN DATABASE "\(database)" SET forecourt.dealer_group_id = '\(group.uuidString.lowercased())';
                """)
    }

    /// `key=value` pairs of a libpq connection string.
    static func parameters(of connectionString: String) -> [String: String] {
        var parameters: [String: String] = [:]
        for pair in connectionString.split(separator: " ") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { parameters[String(parts[0])] = String(parts[1]) }
        }
        return parameters
    }
}

/// The keys file `scripts/bench` writes.
struct BenchKeys: Codable, Sendable {
    let group: String
    /// The sales key's dealer.
    let dealer: String
    let groupAdmin: String
    let sales: String
    let factory: String
    let crmSync: String
    let portal: String

    enum CodingKeys: String, CodingKey {
        case group, dealer, sales, factory, portal
        case groupAdmin = "group_admin"
        case crmSync = "crm_sync"
    }
}

struct Endpoint: Sendable {
    let host: String
    let port: Int
    let ca: String

    /// `count` connections authenticated with `key`.
    func open(_ count: Int, key: String) async throws -> [ForecourtClient] {
        var clients: [ForecourtClient] = []
        for _ in 0..<count {
            let client = try await ForecourtClient.connect(host: host, port: port, caPath: ca)
            _ = try await client.authenticate(apiKey: key)
            clients.append(client)
        }
        return clients
    }
}

/// Everything a workload needs.
struct Environment: Sendable {
    let sample: BenchSample
    let group: UUID
    let dealer: UUID
    let keys: BenchKeys
    let endpoint: Endpoint
    let ceiling: Pgbench
    let tpcbDatabase: String?
    let connections: Int
    let pipeline: Int
    let seconds: Int
    let warmup: Int
    let idleSessions: Int
    let serverPID: Int32?

    /// Variables every pgbench script may use.
    var variables: [String: String] {
        ["samples": String(sample.orders.count), "group": group.uuidString.lowercased(), "dealer": dealer.uuidString.lowercased()]
    }
}

/// A shared increasing counter.
final class Counter: Sendable {
    private let value = Mutex(0)

    func next() -> Int {
        value.withLock { value in
            value += 1
            return value
        }
    }
}

/// RFC 3339 with milliseconds, in UTC.
enum RFC3339String {
    static let style = Date.ISO8601FormatStyle(includingFractionalSeconds: true)

    static func format(_ date: Date) -> String { style.format(date) }
}

/// Prints a line at once, also into a file or a pipe (progress of a long run).
func progress(_ text: String) {
    print(text)
    fflush(nil)
}
