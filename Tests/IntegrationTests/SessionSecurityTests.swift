import FieldCrypto
import ForecourtClient
import ForecourtCore
import Foundation
import Identity
import NIOCore
import NIOPosix
import Orders
import Postgres
import RPC
import Testing
import TestSupport

@testable import ForecourtApp

/// Issue 12, points 1, 5, 6 and 10: revocation reaches sessions that send nothing, the
/// authentication limiter never refuses a correct key, unknown client certificates are cached,
/// and an address in use names its setting.
@Suite struct SessionSecurityTests {
    @Test func aCorrectKeyWorksFromAnAddressThatKeepsFailing() async throws {
        try await withTestDatabase { db in
            let fixture = try db.makeGroup()
            let harness = DispatcherHarness(db)
            let noisy = harness.session(address: "198.51.100.7")
            var codes: [Int] = []
            for attempt in 0..<12 {
                let key = attempt.isMultiple(of: 2) ? "nonsense" : "fck_" + String(repeating: "B", count: 43)
                codes.append(failure(await harness.call(noisy, "session.authenticate", ["api_key": .string(key)]))?.code ?? 0)
            }
            #expect(codes.prefix(10).allSatisfy { $0 == -32001 })
            #expect(codes.suffix(2).allSatisfy { $0 == -32006 })
            // Someone else behind the same address (or the same client, with the right key) gets in.
            let colleague = harness.session(address: "198.51.100.7")
            let principal = try await harness.call(colleague, "session.authenticate", ["api_key": .string(fixture.key(.sales))]).get()
            #expect(principal["principal"]?["role"] == "sales")
            _ = try await harness.call(noisy, "session.authenticate", ["api_key": .string(fixture.key(.auditor))]).get()
            // An IPv6 neighbour in the same /64 shares the count; another /64 does not.
            let neighbour = harness.session(address: "2001:db8:1:2::99")
            for _ in 0..<10 { _ = failure(await harness.call(neighbour, "session.authenticate", ["api_key": "x"])) }
            let sameSubnet = harness.session(address: "2001:db8:1:2:ffff::1")
            #expect(failure(await harness.call(sameSubnet, "session.authenticate", ["api_key": "x"]))?.code == -32006)
            let otherSubnet = harness.session(address: "2001:db8:1:3::1")
            #expect(failure(await harness.call(otherSubnet, "session.authenticate", ["api_key": "x"]))?.code == -32001)
        }
    }

    @Test func aFullLimiterTableKeepsTheWindowsItHas() {
        let limiter = FailureLimiter(failures: 3, per: .seconds(60), capacity: 4)
        for _ in 0..<3 { limiter.recordFailure("bad") }
        #expect(limiter.retryAfter("bad") != nil)
        // Many other sources fill the table and overflow it.
        for index in 0..<50 { limiter.recordFailure("passer-by \(index)") }
        #expect(limiter.retryAfter("bad") != nil, "a full table must not reset the windows it holds")
        // The newcomers share one window, which they have used up.
        #expect(limiter.retryAfter("someone new") != nil)
    }

    @Test func unknownClientCertificatesAreLookedUpOnce() async throws {
        try await withTestDatabase { db in
            _ = try db.makeGroup()
            let harness = DispatcherHarness(db)
            let fingerprint = [UInt8](repeating: 0x5a, count: 32)
            for _ in 0..<5 {
                let probe = Session(remoteAddress: "203.0.113.5", clientCertificateFingerprint: fingerprint)
                for _ in 0..<3 { #expect(failure(await harness.call(probe, "session.whoami"))?.code == -32001) }
            }
            #expect(harness.wiring.identity.certificateLookupCount == 1)
        }
    }

    @Test func theWatcherEndsRevokedSessionsThatSendNothing() async throws {
        try await withTestDatabase { db in
            let fixture = try db.makeGroup()
            let harness = DispatcherHarness(db)
            let quiet = try await harness.session(authenticatedWith: fixture.key(.crmSync))
            let other = try await harness.session(authenticatedWith: fixture.key(.auditor))
            #expect(try await harness.wiring.identity.checkRevocations() == 0)
            let owner = try db.ownerConnection()
            defer { owner.close() }
            _ = try KeyRecord.revoke(owner, id: fixture.principal(.crmSync).id)
            #expect(try await harness.wiring.identity.checkRevocations() == 1)
            #expect(!quiet.isAuthenticated)
            #expect(other.isAuthenticated)
        }
    }

    /// The contract's figure over TLS with `forecourt serve`'s wiring: no push reaches a session
    /// more than 5 seconds after its key was revoked, though the client sends nothing.
    @Test func noPushReachesARevokedSessionFiveSecondsOn() async throws {
        try await withTestDatabase(maximumConnections: 6) { db in
            let world = try await OrderWorld.make(db)
            try await withTestService(db) { service in
                let listener = try await service.connect(apiKey: world.fixture.key(.dealerManager))
                _ = try await listener.call("events.subscribe")
                let pushes = Task {
                    var times: [ContinuousClock.Instant] = []
                    for await _ in listener.notifications { times.append(.now) }
                    return times
                }
                _ = try await world.newOrder()
                let owner = try db.ownerConnection()
                defer { owner.close() }
                try await Task.sleep(for: .milliseconds(500))
                _ = try KeyRecord.revoke(owner, id: world.fixture.principal(.dealerManager).id)
                let revokedAt = ContinuousClock.now
                // Orders keep changing for six seconds.
                while revokedAt.duration(to: .now) < .seconds(6) {
                    _ = try await world.newOrder()
                    try await Task.sleep(for: .milliseconds(250))
                }
                await listener.close()
                let times = await pushes.value
                #expect(times.count >= 1, "the first order reached the subscriber")
                #expect(times.allSatisfy { revokedAt.duration(to: $0) < .seconds(5) })
            }
        }
    }

    @Test func anAddressInUseNamesItsSetting() async throws {
        try await withTestDatabase { db in
            let occupied = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .bind(host: "127.0.0.1", port: 0).get()
            defer { occupied.close(promise: nil) }
            let port = try #require(occupied.localAddress?.port)
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("bind-\(UUID().uuidString)").path
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let tls = try DevCertificates.ensure(in: directory + "/tls")
            let keyring = directory + "/keyring.json"
            try Keyring.generate().createNew(at: keyring)
            for (setting, listen, metrics) in [("FORECOURT_LISTEN", port, 0), ("FORECOURT_METRICS_LISTEN", 0, port)] {
                let configuration = ServiceConfiguration(
                    databaseURL: db.ownerConnectionString, listenPort: listen, tlsCertificatePath: tls.certificate,
                    tlsKeyPath: tls.privateKey, keyringPath: keyring, metricsHost: "127.0.0.1", metricsPort: metrics,
                    databasePoolSize: 2, migrationsDirectory: TestEnvironment.migrationsDirectory, logLevel: "error",
                    reloadsCertificatesOnSIGHUP: false)
                let error = await #expect(throws: ServiceRunner.StartupError.self) {
                    try await ServiceRunner.run(configuration, metrics: .init(), onListening: { _ in })
                }
                let line = error.map(String.init(describing:)) ?? ""
                #expect(line.hasPrefix("\(setting): "), "\(line)")
                #expect(line.contains("127.0.0.1:\(port)"), "\(line)")
                #expect(line.contains("address already in use"), "\(line)")
                #expect(!line.contains("\n"))
            }
        }
    }
}
