import ForecourtApp
import ForecourtClient
import ForecourtCore
import Foundation
import Logging
import MetricsTestKit
import NIOCore
import NIOSSL
import RPC
import Server
import ServiceLifecycle
import Synchronization
import TestSupport

/// Counts the `test.block` calls running and lets them finish on demand.
final class Gate: Sendable {
    private struct State {
        var running = 0
        var maximum = 0
        var started = 0
        var open = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())

    var running: Int { state.withLock { $0.running } }
    var maximumRunning: Int { state.withLock { $0.maximum } }
    var started: Int { state.withLock { $0.started } }

    func enter() async {
        let mustWait = state.withLock { state -> Bool in
            state.running += 1
            state.started += 1
            state.maximum = max(state.maximum, state.running)
            return !state.open
        }
        if mustWait {
            await withCheckedContinuation { continuation in
                let resumeNow = state.withLock { state -> Bool in
                    if state.open { return true }
                    state.waiters.append(continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        }
        state.withLock { $0.running -= 1 }
    }

    func open() {
        let waiters = state.withLock { state in
            state.open = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }
}

/// A server on 127.0.0.1, port 0, with development certificates in a temporary directory and
/// methods made for these tests (no database).
struct TestServer {
    let server: RPCServer
    let port: Int
    let directory: String
    let certificates: (certificate: String, privateKey: String, ca: String)
    let gate: Gate
    let group: ServiceGroup
    let runTask: Task<Void, any Error>
    /// What this server's listener and dispatcher recorded, and nothing of any other test's.
    let metrics: TestMetrics

    static let testKey = "test-api-key"

    static func registry(gate: Gate) -> MethodRegistry {
        let everyone = Set(Role.allCases)
        var registry = MethodRegistry()
        registry.register(RPCMethod("system.ping", access: .anyone, decode: { _ in () }, run: { _, _ in ["ok": true] as JSON }))
        registry.register(
            RPCMethod(
                "session.authenticate", access: .anyone, decode: { p in try p.string("api_key") },
                run: { context, key in
                    guard key == testKey else { throw DomainError(.unauthenticated, "unknown API key") }
                    let principal = Principal(id: UUID(), role: .groupAdmin, dealerGroupID: UUID(), dealerID: nil, label: "test")
                    context.session.authenticate(principal, credential: nil)
                    return ["principal": ["id": .string(principal.id.uuidString.lowercased()), "role": "group_admin"]] as JSON
                }))
        registry.register(
            RPCMethod("test.echo", access: .anyone, decode: { p in p.raw("value") ?? .null }, run: { _, value in value }))
        registry.register(
            RPCMethod(
                "test.sleep", access: .anyone, decode: { p in try p.int("ms", in: 0...60_000) },
                run: { _, ms in
                    try await Task.sleep(for: .milliseconds(ms))
                    return ["slept": .int(ms)] as JSON
                }))
        registry.register(
            RPCMethod(
                "test.block", access: .anyone, decode: { _ in () },
                run: { _, _ in
                    await gate.enter()
                    return true
                }))
        registry.register(
            RPCMethod(
                "test.push", roles: everyone, decode: { p in try p.int("count", in: 0...10_000) },
                run: { context, count in
                    var queued = 0
                    for i in 0..<count where context.session.push(method: "test.pushed", params: ["n": .int(i)]) == .queued {
                        queued += 1
                    }
                    return ["queued": .int(queued)] as JSON
                }))
        registry.register(
            RPCMethod(
                "test.pushLater", roles: everyone,
                decode: { p in (count: try p.int("count", in: 0...10_000), everyMs: try p.int("every_ms", in: 1...10_000)) },
                run: { context, input in
                    // Pushes from the server's side after the call is answered, as events are.
                    let session = context.session
                    Task {
                        for i in 0..<input.count {
                            try await Task.sleep(for: .milliseconds(input.everyMs))
                            if session.push(method: "test.pushed", params: ["n": .int(i)]) == .closed { return }
                        }
                    }
                    return ["scheduled": .int(input.count)] as JSON
                }))
        registry.register(
            RPCMethod(
                "test.fingerprint", access: .anyone, decode: { _ in () },
                run: { context, _ in
                    context.session.clientCertificateFingerprint.map { bytes in
                        JSON.string(bytes.hexString)
                    } ?? JSON.null
                }))
        return registry
    }

    /// Starts a server; `configure` adjusts the configuration (timeouts, limits).
    static func start(_ configure: (inout ServerConfiguration) -> Void = { _ in }) async throws -> TestServer {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("forecourt-server-tests-\(UUID().uuidString)").path
        let certificates = try DevCertificates.ensure(in: directory)
        var configuration = ServerConfiguration(
            port: 0, certificatePath: certificates.certificate, privateKeyPath: certificates.privateKey)
        configure(&configuration)
        var logger = Logger(label: "forecourt.test")
        logger.logLevel = ProcessInfo.processInfo.environment["FORECOURT_TEST_LOG"] == nil ? .critical : .debug
        let gate = Gate()
        let metrics = TestMetrics()
        let dispatcher = Dispatcher(registry: registry(gate: gate), authority: nil, logger: logger, metrics: metrics)
        let server = try RPCServer(configuration: configuration, dispatcher: dispatcher, logger: logger, metrics: metrics)
        let group = ServiceGroup(configuration: .init(services: [server], logger: logger))
        let runTask = Task { try await group.run() }
        let port = try await server.listeningPort()
        return TestServer(
            server: server, port: port, directory: directory, certificates: certificates, gate: gate, group: group,
            runTask: runTask, metrics: metrics)
    }

    func connect() async throws -> ForecourtClient {
        try await ForecourtClient.connect(host: "127.0.0.1", port: port, caPath: certificates.ca)
    }

    func connect(tls: TLSConfiguration) async throws -> ForecourtClient {
        try await ForecourtClient.connect(host: "127.0.0.1", port: port, tlsConfiguration: tls)
    }

    func clientTLS() throws -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(certificates.ca))
        return tls
    }

    /// Shuts the server down gracefully and waits for `run()` to return.
    func stop() async throws {
        await group.triggerGracefulShutdown()
        try await runTask.value
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// Runs `body` on a fresh server and stops it afterwards, even when `body` throws.
func withTestServer(
    _ configure: (inout ServerConfiguration) -> Void = { _ in },
    _ body: (TestServer) async throws -> Void
) async throws {
    let server = try await TestServer.start(configure)
    do {
        try await body(server)
    } catch {
        try? await server.stop()
        throw error
    }
    try await server.stop()
}

/// `operation`'s result, or `TimedOut` after `limit`.
func within<T: Sendable>(_ limit: Duration = .seconds(60), _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            try await Task.sleep(for: limit)
            throw TimedOut()
        }
        defer { group.cancelAll() }
        guard let first = try await group.next() else { throw TimedOut() }
        return first
    }
}
