import ArgumentParser
import Testing

@testable import ForecourtApp

/// `forecourt call` against a test server (its output goes to stdout; the exit code is checked).
struct CallCommandTests {
    @Test func hostPortParsing() {
        #expect(CallCommand.parseHostPort("127.0.0.1:7443").map { $0 == ("127.0.0.1", 7443) } == true)
        #expect(CallCommand.parseHostPort("localhost:1").map { $0 == ("localhost", 1) } == true)
        #expect(CallCommand.parseHostPort("[::1]:7443").map { $0 == ("::1", 7443) } == true)
        #expect(CallCommand.parseHostPort("::1:7443") == nil, "IPv6 needs brackets")
        #expect(CallCommand.parseHostPort("host") == nil)
        #expect(CallCommand.parseHostPort("host:0") == nil)
        #expect(CallCommand.parseHostPort("host:65536") == nil)
        #expect(CallCommand.parseHostPort(":7443") == nil)
        #expect(CallCommand.parseHostPort("[]:7443") == nil)
    }

    @Test func callsAndReportsErrorsWithExitCodeOne() async throws {
        try await withTestServer { server in
            let connect = ["--connect", "127.0.0.1:\(server.port)", "--ca", server.certificates.ca]
            let ping = try CallCommand.parse(["system.ping"] + connect)
            try await ping.run()

            let authenticated = try CallCommand.parse(["test.push", #"{"count": 0}"#, "--key", TestServer.testKey] + connect)
            try await authenticated.run()

            let unauthenticated = try CallCommand.parse(["test.push", #"{"count": 0}"#] + connect)
            await #expect(throws: ExitCode(1)) { try await unauthenticated.run() }

            let wrongKey = try CallCommand.parse(["system.ping", "--key", "nope"] + connect)
            await #expect(throws: ExitCode(1)) { try await wrongKey.run() }

            let badJSON = try CallCommand.parse(["system.ping", "{"] + connect)
            await #expect(throws: (any Error).self) { try await badJSON.run() }

            let unreachable = try CallCommand.parse(["system.ping", "--connect", "127.0.0.1:1", "--ca", server.certificates.ca])
            await #expect(throws: ExitCode(2)) { try await unreachable.run() }
        }
    }
}
