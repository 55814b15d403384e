import Delivery
import FieldCrypto
import ForecourtApp
import ForecourtCore
import Foundation
import Metrics
import Postgres
import RPC
import Storage
import Synchronization
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The suites that start real relays, receivers and service processes run one test at a time:
/// they stay well inside a minute that way, and do not load a two-core machine so much that
/// other suites' timing tests suffer.
@Suite(.serialized) struct DeliveryIntegrationTests {}

/// A Python peer of the tests (Tests/DeliveryTests/Peers): a real SMTP relay or webhook
/// receiver on a free loopback port, stopped when the test is done.
final class Peer: Sendable {
    let process: Process
    let port: Int
    /// Where it records what it received.
    let output: String

    static var peersDirectory: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Peers").path
    }

    private init(process: Process, port: Int, output: String) {
        self.process = process
        self.port = port
        self.output = output
    }

    /// Starts `script` with `arguments` (plus `--out`) and waits for its `READY <port>` line,
    /// off the cooperative threads (other suites' tasks run on them meanwhile).
    static func start(_ script: String, output: String, _ arguments: [String] = []) async throws -> Peer {
        try await offloaded { try startBlocking(script, output: output, arguments) }
    }

    private static func startBlocking(_ script: String, output: String, _ arguments: [String]) throws -> Peer {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", peersDirectory + "/" + script, "--out", output] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.standardError
        try process.run()
        var line: [UInt8] = []
        let handle = pipe.fileHandleForReading
        while true {
            let byte = handle.readData(ofLength: 1)
            guard let first = byte.first else { break }
            if first == UInt8(ascii: "\n") { break }
            line.append(first)
        }
        let text = String(decoding: line, as: UTF8.self)
        guard text.hasPrefix("READY "), let port = Int(text.dropFirst(6)) else {
            process.terminate()
            throw TestSetupError("\(script) did not start (is aiosmtpd installed? scripts/test installs it): \(text)")
        }
        return Peer(process: process, port: port, output: output)
    }

    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}

/// A scripted SMTP relay (aiosmtpd); each accepted message is one JSON file in a directory.
struct Relay {
    let peer: Peer
    var port: Int { peer.port }

    /// - Parameters:
    ///   - script: DATA replies used in turn before accepting (`[451, 451]`).
    ///   - tls: certificate and key: STARTTLS required (or implicit TLS with `implicitTLS`).
    ///   - auth: `user:password` the relay requires.
    static func start(
        script: [Int] = [], delay: Double = 0, tls: (certificate: String, privateKey: String)? = nil,
        implicitTLS: Bool = false, auth: String? = nil
    ) async throws -> Relay {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("relay-\(UUID().uuidString)").path
        var arguments = ["--script", script.map(String.init).joined(separator: ",")]
        if delay > 0 { arguments += ["--delay", String(delay)] }
        if let tls { arguments += ["--cert", tls.certificate, "--key", tls.privateKey] }
        if implicitTLS { arguments.append("--implicit-tls") }
        if let auth { arguments += ["--auth", auth] }
        return Relay(peer: try await Peer.start("smtp_relay.py", output: directory, arguments))
    }

    /// How many messages were accepted so far: a directory listing, cheap enough to poll.
    var count: Int {
        ((try? FileManager.default.contentsOfDirectory(atPath: peer.output)) ?? []).filter { $0.hasSuffix(".json") }.count
    }

    /// The messages accepted so far, oldest first (parsed: read them once a test waited for them).
    var messages: [JSON] {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: peer.output)) ?? []
        return files.filter { $0.hasSuffix(".json") }.sorted().compactMap { name in
            guard let data = FileManager.default.contents(atPath: peer.output + "/" + name) else { return nil }
            return try? JSONParser().parse(Array(data))
        }
    }

    func stop() {
        peer.stop()
        try? FileManager.default.removeItem(atPath: peer.output)
    }
}

/// A scripted HTTP(S) webhook receiver; every request is one JSON line in a file.
struct Receiver {
    let peer: Peer
    var port: Int { peer.port }

    static func start(script: [Int] = [], tls: (certificate: String, privateKey: String)? = nil) async throws -> Receiver {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("hooks-\(UUID().uuidString).jsonl").path
        var arguments = ["--script", script.map(String.init).joined(separator: ",")]
        if let tls { arguments += ["--cert", tls.certificate, "--key", tls.privateKey] }
        return Receiver(peer: try await Peer.start("webhook_receiver.py", output: file, arguments))
    }

    var requests: [JSON] {
        guard let data = FileManager.default.contents(atPath: peer.output) else { return [] }
        return String(decoding: data, as: UTF8.self).split(separator: "\n").compactMap {
            try? JSONParser().parse(Array($0.utf8))
        }
    }

    func stop() {
        peer.stop()
        try? FileManager.default.removeItem(atPath: peer.output)
    }
}

/// A dealer group with a harness, sessions and helpers to make customers and orders, for
/// delivery tests.
struct DeliveryWorld {
    let db: TestDatabase
    let fixture: GroupFixture
    let harness: DispatcherHarness
    let admin: Session
    let sales: Session

    static func make(
        _ db: TestDatabase, groupName: String = "Groupe Étoile", allowsInsecureWebhooks: Bool = true,
        cipher: FieldCipher = FieldCipher(keyring: .generate())
    ) async throws -> DeliveryWorld {
        let fixture = try db.makeGroup(name: groupName)
        let harness = DispatcherHarness(db, cipher: cipher, allowsInsecureWebhooks: allowsInsecureWebhooks)
        return DeliveryWorld(
            db: db, fixture: fixture, harness: harness,
            admin: try await harness.session(authenticatedWith: fixture.key(.groupAdmin)),
            sales: try await harness.session(authenticatedWith: fixture.key(.sales)))
    }

    /// A customer made through `customer.create`.
    func customer(
        name: String = "Zoë Ångström-Müller", email: String? = "zoe@example.org", phone: String? = "+44 20 7946 0958",
        notifyEmail: Bool = true, notifySMS: Bool = false
    ) async throws -> UUID {
        var params: JSONObject = ["full_name": .string(name), "notify": ["email": .bool(notifyEmail), "sms": .bool(notifySMS)]]
        if let email { params.members.append((key: "email", value: .string(email))) }
        if let phone { params.members.append((key: "phone", value: .string(phone))) }
        let customer = try await harness.call(sales, "customer.create", .object(params)).get()
        return try #require(customer["id"]?.stringValue.flatMap(UUID.init(uuidString:)))
    }

    /// An order for `customer` (queues `order_confirmation`).
    func order(for customer: UUID) async throws -> JSON {
        try await harness.call(sales, "order.create", orderParams(customer: customer)).get()
    }

    func notifications(of order: JSON) async throws -> [JSON] {
        try await harness.call(sales, "notification.list", ["order_id": order["id"] ?? .null]).get()["items"]?.arrayValue ?? []
    }

    /// A dispatcher over the test database, with the world's keyring and quick settings.
    func dispatcher(
        _ settings: DeliverySettings, instance: UUID = UUID(), metrics: any MetricsFactory = MetricsSystem.factory,
        cipher: FieldCipher? = nil
    ) throws -> DeliveryService {
        try DeliveryService(
            database: harness.database, cipher: cipher ?? harness.cipher, settings: settings, instance: instance, metrics: metrics)
    }
}

/// Settings for tests: tiny retry base, short timeouts and lease, a quick safety poll.
func quickSettings(relay: SMTPRelay? = nil, ca: String? = nil) -> DeliverySettings {
    DeliverySettings(
        relay: relay, relayCAPath: ca, mailFrom: relay == nil ? nil : "orders@forecourt.test", retryBase: 0.05,
        maximumAttempts: 4, allowsInsecureWebhooks: true, webhookCAPath: ca, lease: .seconds(30), batchSize: 10,
        pollInterval: .milliseconds(200), smtpTimeout: .seconds(5), webhookTimeout: .seconds(5))
}

/// Runs `dispatchers` until `done` holds (checked every 100 ms) or `timeout` passes, then stops them.
func run(
    _ dispatchers: [DeliveryService], timeout: Duration = .seconds(20), until done: @escaping @Sendable () async throws -> Bool
) async throws {
    let tasks = dispatchers.map { dispatcher in Task { try await dispatcher.run() } }
    defer { for task in tasks { task.cancel() } }
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await done() { break }
        try await Task.sleep(for: .milliseconds(100))
    }
    for dispatcher in dispatchers { dispatcher.stop() }
    for task in tasks { _ = try? await task.value }
}

/// One notification as the owner sees it (past RLS).
struct NotificationRow: Sendable {
    let id: UUID
    let status: String
    let attempts: Int
    let lastError: String?
    let channel: String
}

/// The notifications of the database, read off the cooperative threads (libpq blocks).
func notificationRows(_ db: TestDatabase) async throws -> [NotificationRow] {
    try await offloaded {
        let owner = try db.ownerConnection()
        defer { owner.close() }
        return try owner.query("SELECT id, status, attempts, last_error, channel FROM forecourt.notifications ORDER BY created_at, id")
            .rows.map {
                NotificationRow(
                    id: try $0.decode(0), status: try $0.decode(1), attempts: try $0.decode(2), lastError: try $0.decode(3),
                    channel: try $0.decode(4))
            }
    }
}
