import Delivery
import FieldCrypto
import ForecourtApp
import ForecourtCore
import Foundation
import Postgres
import RPC
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

extension DeliveryIntegrationTests {
    /// The dispatcher inside a real `forecourt serve` process: stopped with SIGTERM it gives back
    /// what it claimed; killed with SIGKILL mid-batch, at most one message goes twice.
    @Suite struct DispatcherProcessTests {
        /// The `forecourt` executable that `swift build` put beside the test bundle.
        static var executable: String {
            get throws {
                let candidates = [
                    URL(fileURLWithPath: CommandLine.arguments.first ?? "").deletingLastPathComponent().appendingPathComponent("forecourt").path,
                    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
                        .appendingPathComponent(".build/debug/forecourt").path,
                ]
                guard let path = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
                    throw TestSetupError("no forecourt executable beside the tests: build with swift build --build-tests")
                }
                return path
            }
        }

        /// Starts `forecourt serve` on the test database with the world's keyring.
        static func serve(_ world: DeliveryWorld, directory: String, relay: Relay, lease: Int) throws -> Process {
            let tls = try DevCertificates.ensure(in: directory + "/tls")
            let keyring = directory + "/keyring.json"
            if !FileManager.default.fileExists(atPath: keyring) { try world.harness.cipher.keyring.createNew(at: keyring) }
            let process = Process()
            process.executableURL = URL(fileURLWithPath: try executable)
            process.arguments = ["serve"]
            process.environment = [
                "FORECOURT_DATABASE_URL": world.db.ownerConnectionString, "FORECOURT_LISTEN": "127.0.0.1:\(try freePort())",
                "FORECOURT_TLS_CERT": tls.certificate, "FORECOURT_TLS_KEY": tls.privateKey, "FORECOURT_KEYRING": keyring,
                "FORECOURT_METRICS_LISTEN": "off", "FORECOURT_MIGRATIONS_DIR": TestEnvironment.migrationsDirectory,
                "FORECOURT_LOG_LEVEL": "error", "FORECOURT_SMTP_URL": "smtp://127.0.0.1:\(relay.port)?tls=off",
                "FORECOURT_MAIL_FROM": "orders@forecourt.test", "FORECOURT_DELIVERY_LEASE": String(lease),
                "FORECOURT_DELIVERY_RETRY_BASE": "0.05",
            ]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.standardError
            try process.run()
            return process
        }

        @Test func sigtermReleasesAndSigkillResendsAtMostOne() async throws {
            try await withTestDatabase(maximumConnections: 6) { db in
                let directory = FileManager.default.temporaryDirectory.appendingPathComponent("serve-\(UUID().uuidString)").path
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
                defer { try? FileManager.default.removeItem(atPath: directory) }
                // Each message takes the relay 150 ms, so a batch of 10 is still going when we stop it.
                let relay = try await Relay.start(delay: 0.15)
                defer { relay.stop() }
                let world = try await DeliveryWorld.make(db)
                let customer = try await world.customer()
                for _ in 0..<24 { _ = try await world.order(for: customer) }

                // 1. SIGTERM mid-batch: the message in flight is finished and recorded, the rest of
                //    the batch is given back at once (no lease is left to run out: 60 s).
                let first = try Self.serve(world, directory: directory, relay: relay, lease: 60)
                defer { if first.isRunning { kill(first.processIdentifier, SIGKILL) } }
                try await eventually(.seconds(30)) { relay.count >= 2 }
                kill(first.processIdentifier, SIGTERM)
                try await exited(first)
                let owner = try db.ownerConnection()
                defer { owner.close() }
                let claimed = try owner.query("SELECT count(*) FROM forecourt.notifications WHERE claimed_by IS NOT NULL").first!
                    .decode(0, as: Int.self)
                #expect(claimed == 0, "a stopped instance keeps no claim")
                let sentAfterStop = try await notificationRows(db).filter { $0.status == "sent" }.count
                #expect(sentAfterStop == relay.count, "everything the relay accepted was recorded")

                // 2. SIGKILL mid-batch: the killed instance's claims come due when its lease (3 s)
                //    ends, and a second instance sends the rest; one message may go twice, no more.
                let second = try Self.serve(world, directory: directory, relay: relay, lease: 3)
                defer { if second.isRunning { kill(second.processIdentifier, SIGKILL) } }
                let before = relay.count
                try await eventually(.seconds(30)) { relay.count >= before + 3 }
                kill(second.processIdentifier, SIGKILL)
                try await exited(second)
                let third = try Self.serve(world, directory: directory, relay: relay, lease: 3)
                // Whatever happens below, the process does not outlive the test.
                defer { if third.isRunning { kill(third.processIdentifier, SIGKILL) } }
                let allSent: Void? = try? await eventually(.seconds(40)) {
                    (try? await notificationRows(db).allSatisfy { $0.status == "sent" }) ?? false
                }
                #expect(allSent != nil, "the third instance sent every notification")
                kill(third.processIdentifier, SIGTERM)
                try await exited(third)
                let ids = relay.messages.compactMap { $0["notification"]?.stringValue }
                #expect(Set(ids).count == 24, "every notification arrived")
                #expect(ids.count - Set(ids).count <= 1, "at most one message was sent twice (\(ids.count - Set(ids).count))")
            }
        }
    }
}
