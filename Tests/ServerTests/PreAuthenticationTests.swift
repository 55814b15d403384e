import ForecourtClient
import Foundation
import NIOCore
import RPC
import Server
import Testing
import TestSupport

/// Issue 12, points 1 and 6: what a connection may do before it authenticates, and that server
/// pushes do not keep a connection alive.
@Suite(.timeLimit(.minutes(2)))
struct PreAuthenticationTests {
    @Test func beforeAuthenticationRequestsAreHandledOneAtATime() async throws {
        try await withTestServer({ $0.unauthenticatedTimeout = .minutes(1) }) { server in
            let client = try await server.connect()
            let calls = Task {
                try await withThrowingTaskGroup(of: JSON.self) { group in
                    for _ in 0..<5 { group.addTask { try await client.call("test.block") } }
                    return try await group.reduce(into: 0) { count, _ in count += 1 }
                }
            }
            try await eventually { server.gate.running == 1 }
            try await Task.sleep(for: .milliseconds(300))
            #expect(server.gate.started == 1, "the others wait; none is failed")
            server.gate.open()
            #expect(try await calls.value == 5)
            #expect(server.gate.maximumRunning == 1)
            await client.close()
        }
    }

    @Test func beforeAuthenticationLinesAreSmall() async throws {
        try await withTestServer { server in
            let value = String(repeating: "x", count: 20_000)
            let authenticated = try await server.connect()
            try await authenticated.authenticate(apiKey: TestServer.testKey)
            // Once authenticated, the configured maximum (1 MiB) applies.
            #expect(try await authenticated.call("test.echo", params: ["value": .string(value)]) == .string(value))
            await authenticated.close()

            let stranger = try await server.connect()
            try await stranger.sendRaw(line: #"{"jsonrpc":"2.0","method":"test.echo","params":{"value":""# + value + #""},"id":1}"#)
            let response = try #require(await stranger.receiveUnmatched())
            #expect(response["id"] == .null)
            #expect(response["error"]?["code"] == .int(-32600))
            #expect(response["error"]?["data"]?["detail"]?.stringValue?.contains("8192") == true)
            try await within { await stranger.waitUntilClosed() }
        }
    }

    @Test func unauthenticatedConnectionsPerAddressAreCapped() async throws {
        try await withTestServer({
            $0.maximumUnauthenticatedPerAddress = 3
            $0.unauthenticatedTimeout = .minutes(1)
        }) { server in
            var open: [ForecourtClient] = []
            for _ in 0..<3 {
                let client = try await server.connect()
                #expect(try await client.call("system.ping") == ["ok": true])
                open.append(client)
            }
            // A fourth from the same address is closed at once.
            await #expect(throws: (any Error).self) {
                let fourth = try await server.connect()
                _ = try await fourth.call("system.ping")
            }
            // Authenticating frees a place; authenticated connections are not capped per address.
            try await open[0].authenticate(apiKey: TestServer.testKey)
            let next = try await server.connect()
            #expect(try await next.call("system.ping") == ["ok": true])
            try await next.authenticate(apiKey: TestServer.testKey)
            let another = try await server.connect()
            #expect(try await another.call("system.ping") == ["ok": true])
            for client in open + [next, another] { await client.close() }
        }
    }

    @Test func pushesDoNotKeepAnIdleConnectionOpen() async throws {
        // The idle timer runs from the TLS handshake: 5 s leave room for connecting and
        // authenticating on a loaded machine.
        try await withTestServer({ $0.idleTimeout = .seconds(5) }) { server in
            let client = try await server.connect()
            try await client.authenticate(apiKey: TestServer.testKey)
            // Pushes every 100 ms for 40 seconds; the client sends nothing more.
            _ = try await client.call("test.pushLater", params: ["count": 400, "every_ms": 100])
            let started = ContinuousClock.now
            try await within(.seconds(60)) { await client.waitUntilClosed() }
            // Closed about 5 s after the last request (margin for a loaded machine), long before the pushes end.
            #expect(started.duration(to: .now) < .seconds(25))
        }
    }
}
