import ForecourtApp
import ForecourtClient
import ForecourtCore
import Foundation
import NIOCore
import NIOSSL
import RPC
import Server
import Logging
import MetricsTestKit
import Synchronization
import TestSupport
import Testing

/// The listener over real TLS on 127.0.0.1, with `ForecourtClient`.
@Suite(.timeLimit(.minutes(2)))
struct EndToEndTests {
    @Test func ping() async throws {
        try await withTestServer { server in
            let client = try await server.connect()
            #expect(try await client.call("system.ping") == ["ok": true])
            await client.close()
        }
    }

    @Test func unauthenticatedCallsAreRefusedAndAuthenticationWorks() async throws {
        try await withTestServer { server in
            let client = try await server.connect()
            await #expect(throws: ForecourtClient.Error.self) { try await client.call("test.push", params: ["count": 1]) }
            do {
                try await client.authenticate(apiKey: "wrong")
                Issue.record("a wrong key authenticated")
            } catch let error as ForecourtClient.Error {
                #expect(error.code == -32001)
                #expect(error.reason == "unauthenticated")
            }
            let principal = try await client.authenticate(apiKey: TestServer.testKey)
            #expect(principal["role"] == "group_admin")
            #expect(try await client.call("test.push", params: ["count": 0]) == ["queued": 0])
            await client.close()
        }
    }

    @Test func pipelinesTwoHundredRequestsOnOneConnection() async throws {
        // Unauthenticated test methods: a slow machine must not run into the 10 s authentication timeout.
        try await withTestServer({ $0.unauthenticatedTimeout = .minutes(5) }) { server in
            let client = try await server.connect()
            try await withThrowingTaskGroup(of: (Int, JSON).self) { group in
                for i in 0..<200 {
                    group.addTask {
                        // Varying sleeps make the server answer out of order.
                        let result = try await client.call("test.sleep", params: ["ms": .int((200 - i) % 7)])
                        #expect(result["slept"] == .int((200 - i) % 7))
                        return (i, try await client.call("test.echo", params: ["value": .int(i)]))
                    }
                }
                var seen = Set<Int>()
                for try await (i, echoed) in group {
                    #expect(echoed == .int(i))
                    seen.insert(i)
                }
                #expect(seen.count == 200)
            }
            #expect(client.isClosed == false)
            await client.close()
        }
    }

    @Test func rawPipelinedLinesInOneWriteAreAllAnswered() async throws {
        try await withTestServer { server in
            let client = try await server.connect()
            // Authenticated, so they are handled together, not one at a time.
            try await client.authenticate(apiKey: TestServer.testKey)
            let lines = (0..<50).map { #"{"jsonrpc":"2.0","method":"test.echo","params":{"value":\#($0)},"id":"r\#($0)"}"# }
            // CRLF endings and blank lines between requests, all in one write.
            try await client.sendRaw(bytes: Array((lines.joined(separator: "\r\n\n") + "\r\n").utf8))
            var ids = Set<String>()
            for _ in 0..<50 {
                let response = try #require(await client.receiveUnmatched())
                let id = try #require(response["id"]?.stringValue)
                #expect(response["result"] == .int(Int(id.dropFirst()) ?? -1))
                ids.insert(id)
            }
            #expect(ids.count == 50)
            await client.close()
        }
    }

    @Test func overlongLineGetsOneInvalidRequestWithNullIDThenClose() async throws {
        try await withTestServer({ $0.maximumLineLength = 4096 }) { server in
            let client = try await server.connect()
            #expect(try await client.call("system.ping") == ["ok": true])
            try await client.sendRaw(line: #"{"jsonrpc":"2.0","method":"test.echo","params":{"value":""# + String(repeating: "x", count: 10_000) + #""},"id":"big"}"#)
            let response = try #require(await client.receiveUnmatched())
            #expect(response["id"] == .null)
            #expect(response["error"]?["code"] == .int(-32600))
            #expect(response["error"]?["data"]?["reason"] == "invalid_request")
            #expect(await client.receiveUnmatched() == nil, "exactly one response, then the connection closes")
            try await within { await client.waitUntilClosed() }
            #expect(client.isClosed)
            await #expect(throws: ForecourtClient.Error.connectionClosed) { try await client.call("system.ping") }
        }
    }

    @Test func lineOfTheMaximumLengthIsServed() async throws {
        try await withTestServer({ $0.maximumLineLength = 4096 }) { server in
            let client = try await server.connect()
            let prefix = #"{"jsonrpc":"2.0","method":"test.echo","params":{"value":""#
            let suffix = #""},"id":"max"}"#
            let filler = String(repeating: "y", count: 4096 - prefix.utf8.count - suffix.utf8.count)
            try await client.sendRaw(line: prefix + filler + suffix)
            let response = try #require(await client.receiveUnmatched())
            #expect(response["result"] == .string(filler))
            await client.close()
        }
    }

    @Test func batchesOfOneHundredAreServedAndOfOneHundredOneRefused() async throws {
        try await withTestServer { server in
            let client = try await server.connect()
            func batch(_ count: Int) -> String {
                "[" + (0..<count).map { #"{"jsonrpc":"2.0","method":"system.ping","id":"b\#($0)"}"# }.joined(separator: ",") + "]"
            }
            try await client.sendRaw(line: batch(100))
            let answers = try #require(await client.receiveUnmatched())
            #expect(answers.arrayValue?.count == 100)
            try await client.sendRaw(line: batch(101))
            let refused = try #require(await client.receiveUnmatched())
            #expect(refused["error"]?["code"] == .int(-32600))
            #expect(refused["id"] == .null)
            #expect(try await client.call("system.ping") == ["ok": true], "the connection stays open")
            await client.close()
        }
    }

    @Test func deepNestingIsAParseErrorAndOthersAreServed() async throws {
        try await withTestServer { server in
            let hostile = try await server.connect()
            // Authenticated: before, a line may not be this long (PreAuthenticationTests).
            try await hostile.authenticate(apiKey: TestServer.testKey)
            let bystander = try await server.connect()
            try await hostile.sendRaw(line: String(repeating: "[", count: 500_000) + String(repeating: "]", count: 500_000))
            let response = try #require(await hostile.receiveUnmatched())
            #expect(response["error"]?["code"] == .int(-32700))
            #expect(response["id"] == .null)
            #expect(try await hostile.call("system.ping") == ["ok": true], "a parse error keeps the connection open")
            #expect(try await bystander.call("system.ping") == ["ok": true])
            await hostile.close()
            await bystander.close()
        }
    }

    @Test func notificationsAreNotAnswered() async throws {
        try await withTestServer { server in
            let client = try await server.connect()
            try await client.notify("test.echo", params: ["value": 1])
            try await client.sendRaw(line: #"{"jsonrpc":"2.0","method":"test.echo","params":{"value":2},"id":"after"}"#)
            let response = try #require(await client.receiveUnmatched())
            #expect(response["id"] == "after", "the notification produced nothing before this answer")
            await client.close()
        }
    }

    @Test func unauthenticatedConnectionIsClosedAfterTheTimeout() async throws {
        // Every connection starts under the timeout, the one that will authenticate too: it
        // connects and authenticates first, with a timeout long enough for a TLS handshake and a
        // call on a loaded machine. Its own timer is then due before the anonymous one's.
        try await withTestServer({ $0.unauthenticatedTimeout = .seconds(5) }) { server in
            let authenticated = try await server.connect()
            try await authenticated.authenticate(apiKey: TestServer.testKey)
            let connected = ContinuousClock.now
            let anonymous = try await server.connect()
            #expect(try await anonymous.call("system.ping") == ["ok": true], "pings are allowed before authentication")
            try await within(.seconds(60)) { await anonymous.waitUntilClosed() }
            #expect(ContinuousClock.now - connected >= .seconds(5), "closed by the timeout, not before")
            #expect(try await authenticated.call("system.ping") == ["ok": true], "authenticated connections stay")
            await authenticated.close()
        }
    }

    @Test func idleConnectionIsClosed() async throws {
        // The idle timer runs from the TLS handshake, so the timeout leaves room for connecting
        // and authenticating on a loaded machine; the request outlasts it more than twice.
        try await withTestServer({ $0.idleTimeout = .seconds(5) }) { server in
            let client = try await server.connect()
            try await client.authenticate(apiKey: TestServer.testKey)
            // A request running longer than the idle timeout keeps the connection.
            #expect(try await client.call("test.sleep", params: ["ms": 11_000]) == ["slept": 11_000])
            try await within(.seconds(60)) { await client.waitUntilClosed() }
            #expect(client.isClosed)
        }
    }

    @Test func tls11OnlyClientIsRefused() async throws {
        try await withTestServer { server in
            var tls = try server.clientTLS()
            tls.minimumTLSVersion = .tlsv1
            tls.maximumTLSVersion = .tlsv11
            await #expect(throws: (any Error).self) { try await server.connect(tls: tls) }
            // TLS 1.2 is accepted, and the control works.
            var tls12 = try server.clientTLS()
            tls12.maximumTLSVersion = .tlsv12
            let client = try await server.connect(tls: tls12)
            #expect(try await client.call("system.ping") == ["ok": true])
            await client.close()
        }
    }

    @Test func untrustedCertificateIsRefusedByTheClient() async throws {
        try await withTestServer { server in
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.trustRoots = .certificates([])
            await #expect(throws: (any Error).self) { try await server.connect(tls: tls) }
        }
    }

    @Test func inFlightRequestsAreBounded() async throws {
        try await withTestServer({ $0.maximumInFlightPerConnection = 4 }) { server in
            let client = try await server.connect()
            // The bound of an authenticated session (before, it is one: PreAuthenticationTests).
            try await client.authenticate(apiKey: TestServer.testKey)
            let calls = Task {
                try await withThrowingTaskGroup(of: JSON.self) { group in
                    for _ in 0..<20 { group.addTask { try await client.call("test.block") } }
                    var results: [JSON] = []
                    for try await result in group { results.append(result) }
                    return results
                }
            }
            try await eventually { server.gate.running == 4 }
            // Give the server every chance to start more than it may.
            try await Task.sleep(for: .milliseconds(300))
            #expect(server.gate.running == 4)
            #expect(server.gate.started == 4, "the fifth request waits; it is not failed")
            server.gate.open()
            let results = try await calls.value
            #expect(results.count == 20)
            #expect(results.allSatisfy { $0 == true })
            #expect(server.gate.maximumRunning == 4)
            await client.close()
        }
    }

    @Test func cancellingACallEndsItsWait() async throws {
        try await withTestServer { server in
            let client = try await server.connect()
            let blocked = Task { try await client.call("test.block") }
            try await eventually { server.gate.running == 1 }
            blocked.cancel()
            await #expect(throws: CancellationError.self) { try await blocked.value }
            server.gate.open()
            #expect(try await client.call("system.ping") == ["ok": true])
            await client.close()
        }
    }

    @Test func pushesReachTheClient() async throws {
        try await withTestServer({ $0.pushQueueLimit = 5 }) { server in
            let client = try await server.connect()
            try await client.authenticate(apiKey: TestServer.testKey)
            let result = try await client.call("test.push", params: ["count": 3])
            #expect(result == ["queued": 3])
            var iterator = client.notifications.makeAsyncIterator()
            for i in 0..<3 {
                let push = try #require(await iterator.next())
                #expect(push["method"] == "test.pushed")
                #expect(push["params"]?["n"] == .int(i))
                #expect(push["id"] == nil)
            }
            // More than the queue holds at once: the excess is dropped, not buffered without bound.
            let flood = try await client.call("test.push", params: ["count": 1000])
            let queued = try #require(flood["queued"]?.intValue)
            #expect(queued >= 5 && queued < 1000)
            await client.close()
        }
    }

    @Test func gracefulShutdownLetsInFlightRequestsFinish() async throws {
        let server = try await TestServer.start { $0.shutdownGracePeriod = .seconds(20) }
        let client = try await server.connect()
        let slow = Task { try await client.call("test.block") }
        try await eventually { server.gate.running == 1 }
        let stopped = Task { try await server.stop() }
        // The listener closes at once: new connections are refused while the old one drains.
        try await eventually {
            do {
                let late = try await server.connect()
                await late.close()
                return false
            } catch {
                return true
            }
        }
        server.gate.open()
        #expect(try await slow.value == true, "the in-flight request was answered")
        try await within { try await stopped.value }
        try await within { await client.waitUntilClosed() }
    }

    @Test func gracePeriodBoundsTheShutdown() async throws {
        let server = try await TestServer.start { $0.shutdownGracePeriod = .milliseconds(300) }
        let client = try await server.connect()
        let stuck = Task { try await client.call("test.block") }
        try await eventually { server.gate.running == 1 }
        try await within { try await server.stop() }
        await #expect(throws: ForecourtClient.Error.connectionClosed) { try await stuck.value }
        server.gate.open()
    }

    @Test func connectionsBeyondTheMaximumAreClosed() async throws {
        // The connections stay unauthenticated: a long unauthenticated timeout, so that none is
        // closed by it while the test runs on a loaded machine and the counts hold.
        try await withTestServer({
            $0.maximumConnections = 2
            $0.unauthenticatedTimeout = .minutes(5)
        }) { server in
            let first = try await server.connect()
            let second = try await server.connect()
            try await eventually { server.server.connectionCount == 2 }
            await #expect(throws: (any Error).self) { try await server.connect() }
            #expect(try await first.call("system.ping") == ["ok": true])
            await first.close()
            try await eventually { server.server.connectionCount == 1 }
            let third = try await server.connect()
            #expect(try await third.call("system.ping") == ["ok": true])
            #expect(try server.metrics.expectCounter("forecourt_connections_accepted_total").totalValue == 3)
            #expect(try server.metrics.expectCounter("forecourt_connections_rejected_total").totalValue == 1)
            #expect(try server.metrics.expectGauge("forecourt_connections").lastValue == 2)
            await second.close()
            await third.close()
            try await eventually { (try? server.metrics.expectGauge("forecourt_connections").lastValue) == 0 }
        }
    }

    /// The request metrics of docs/protocol.md ("Metrics"): one count per request by method and
    /// code (0 for success), unknown methods under `unknown` and broken envelopes under
    /// `invalid`, and a duration per method.
    @Test func requestsAreCountedByMethodAndCode() async throws {
        try await withTestServer { server in
            let client = try await server.connect()
            #expect(try await client.call("system.ping") == ["ok": true])
            try await client.authenticate(apiKey: TestServer.testKey)
            #expect(try await client.call("system.ping") == ["ok": true])
            await #expect(throws: (any Error).self) { try await client.call("no.such_method") }
            await #expect(throws: (any Error).self) { try await client.call("test.sleep", params: ["ms": "soon"]) }
            try await client.sendRaw(line: #"{"jsonrpc":"1.0","method":"system.ping","id":"old"}"#)
            _ = try #require(await client.receiveUnmatched())
            await client.close()
            let requests = { (method: String, code: Int) in
                try server.metrics.expectCounter(
                    "forecourt_rpc_requests_total", [("method", method), ("code", String(code))]
                ).totalValue
            }
            #expect(try requests("system.ping", 0) == 2)
            #expect(try requests("unknown", -32601) == 1)
            #expect(try requests("test.sleep", -32602) == 1)
            #expect(try requests("invalid", -32600) == 1)
            let durations = try server.metrics.expectTimer("forecourt_rpc_request_duration_seconds", [("method", "system.ping")])
            #expect(durations.values.count == 2)
            #expect(durations.values.allSatisfy { $0 >= 0 })
        }
    }

    @Test func reloadedCertificatesServeNewConnections() async throws {
        try await withTestServer { server in
            let before = try await server.connect()
            // A new CA and certificate replace the files; the open connection is untouched.
            for file in ["ca.pem", "ca-key.pem", "server.pem", "server-key.pem"] {
                try FileManager.default.removeItem(atPath: server.directory + "/" + file)
            }
            try DevCertificates.ensure(in: server.directory)
            try server.server.reloadCertificates()
            #expect(try await before.call("system.ping") == ["ok": true])
            let after = try await server.connect()
            #expect(try await after.call("system.ping") == ["ok": true])
            await before.close()
            await after.close()
        }
    }

    @Test func mutualTLSPassesTheClientCertificateFingerprint() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("forecourt-mtls-\(UUID().uuidString)").path
        let certificates = try DevCertificates.ensure(in: directory)
        let clientCertificate = try DevCertificates.issueClientCertificate(in: directory, name: "crm")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await withTestServer({
            $0.certificatePath = certificates.certificate
            $0.privateKeyPath = certificates.privateKey
            $0.clientCAPath = certificates.ca
        }) { server in
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(certificates.ca))
            tls.certificateChain = try NIOSSLCertificate.fromPEMFile(clientCertificate.certificate).map { .certificate($0) }
            tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: clientCertificate.privateKey, format: .pem))
            let client = try await server.connect(tls: tls)
            let fingerprint = try await client.call("test.fingerprint")
            #expect(fingerprint == .string(clientCertificate.fingerprint.hexString))
            await client.close()

            // Without a client certificate the handshake (or the first read) fails.
            do {
                let anonymous = try await ForecourtClient.connect(host: "127.0.0.1", port: server.port, caPath: certificates.ca)
                await #expect(throws: (any Error).self) { try await anonymous.call("system.ping") }
            } catch {}
        }
    }
}

struct CertificateReloaderTests {
    @Test func sighupReloadsTheCertificates() async throws {
        try await withTestServer { server in
            let reloads = Mutex(0)
            let reloader = CertificateReloader(
                server: server.server, logger: Logger(label: "test"),
                onReload: { result in if case .success = result { reloads.withLock { $0 += 1 } } })
            let running = Task { await reloader.run() }
            // The signal source starts with run(); repeat the signal until it has been seen
            // (generously: a loaded machine can take long to start the source).
            try await eventually(.seconds(60)) {
                kill(getpid(), SIGHUP)
                try? await Task.sleep(for: .milliseconds(20))
                return reloads.withLock { $0 } > 0
            }
            let client = try await server.connect()
            #expect(try await client.call("system.ping") == ["ok": true])
            await client.close()
            running.cancel()
            await running.value
        }
    }
}
