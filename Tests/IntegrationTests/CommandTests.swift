import ArgumentParser
import FieldCrypto
import ForecourtClient
import ForecourtCore
import EmbeddedMigrations
import Foundation
import Postgres
import RPC
import Server
import Testing
import TestSupport

@testable import ForecourtApp

/// The CLI's operator commands, start-up checks, and `serve` end to end over TLS.
@Suite struct CommandTests {
    @Test func missingOrBadSettingsNameTheSetting() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cfg-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let certificate = directory + "/cert.pem"
        _ = FileManager.default.createFile(atPath: certificate, contents: Data("x".utf8))
        let complete = [
            "FORECOURT_DATABASE_URL": "host=/nowhere", "FORECOURT_TLS_CERT": certificate, "FORECOURT_TLS_KEY": certificate,
            "FORECOURT_KEYRING": certificate, "FORECOURT_MIGRATIONS_DIR": TestEnvironment.migrationsDirectory,
        ]
        #expect(throws: Never.self) { try ServiceConfiguration.load(environment: complete) }
        let cases: [(String, String?)] = [
            ("FORECOURT_DATABASE_URL", nil), ("FORECOURT_TLS_CERT", nil), ("FORECOURT_TLS_KEY", directory + "/missing.pem"),
            ("FORECOURT_KEYRING", nil), ("FORECOURT_LISTEN", "localhost"), ("FORECOURT_DB_POOL_SIZE", "0"),
            ("FORECOURT_METRICS_LISTEN", "x:99999"), ("FORECOURT_MIGRATIONS_DIR", directory + "/none"),
        ]
        for (setting, value) in cases {
            var environment = complete
            environment[setting] = value
            let error = #expect(throws: ConfigurationError.self) { try ServiceConfiguration.load(environment: environment) }
            #expect(error?.setting == setting)
            #expect(error.map { !String(describing: $0).contains("\n") } == true)
        }
    }

    /// The binary carries its migrations: exactly the files of migrations/ (names and bytes),
    /// and `forecourt migrate` with neither --migrations nor FORECOURT_MIGRATIONS_DIR applies them.
    @Test func migrationsAreEmbeddedInTheBinary() async throws {
        let embedded = try Migrator(files: EmbeddedMigrations.files).migrations
        let files = try Migrator(directory: TestEnvironment.migrationsDirectory).migrations
        #expect(!embedded.isEmpty)
        #expect(embedded == files)
        #expect(ProcessInfo.processInfo.environment["FORECOURT_MIGRATIONS_DIR"] == nil)
        #expect(try MigrationSource.directory(nil) == nil)
        try await withEmptyTestDatabase { db in
            try MigrateCommand.parse(["--database-url", db.ownerConnectionString]).run()
            let owner = try db.ownerConnection()
            defer { owner.close() }
            let applied = try owner.query("SELECT version, checksum FROM public.forecourt_schema_migrations ORDER BY version")
                .rows.map { (try $0.decode(0, as: Int.self), try $0.decode(1, as: String.self)) }
            #expect(applied.map(\.0) == files.map(\.version))
            #expect(applied.map(\.1) == files.map(\.checksum))
        }
    }

    @Test func migrateGroupAndKeyCommands() async throws {
        try await withEmptyTestDatabase { db in
            let url = db.ownerConnectionString
            let migrations = TestEnvironment.migrationsDirectory
            try MigrateCommand.parse(["--database-url", url, "--migrations", migrations, "--status"]).run()
            try MigrateCommand.parse(["--database-url", url, "--migrations", migrations]).run()
            let owner = try db.ownerConnection()
            defer { owner.close() }
            let pending = try Migrator(directory: migrations).status(on: owner).pending
            #expect(pending.isEmpty)

            try GroupCommand.Create.parse(["--database-url", url, "Northern Group"]).run()
            let group = try #require(
                try owner.query("SELECT id FROM forecourt.dealer_groups WHERE name = 'Northern Group'").first?.decode(0, as: UUID.self))

            // Scopes are checked before anything is written.
            for arguments in [
                ["--role", "factory", "--group", group.uuidString, "--label", "f"],
                ["--role", "sales", "--group", group.uuidString, "--label", "s"],
                ["--role", "auditor", "--label", "a"],
                ["--role", "wizard", "--group", group.uuidString, "--label", "w"],
                ["--role", "auditor", "--group", UUID().uuidString, "--label", "a"],
            ] {
                #expect(throws: (any Error).self, "\(arguments)") {
                    try KeyCommand.Create.parse(["--database-url", url] + arguments).run()
                }
            }
            try KeyCommand.Create.parse(["--database-url", url, "--role", "group_admin", "--group", group.uuidString, "--label", "admin"]).run()
            try KeyCommand.Create.parse(["--database-url", url, "--role", "factory", "--label", "feed"]).run()
            let keys = try owner.query("SELECT role, dealer_group_id FROM forecourt.api_keys ORDER BY role").rows.map {
                (try $0.decode(0, as: String.self), try $0.decode(1, as: UUID?.self))
            }
            #expect(keys.map(\.0) == ["factory", "group_admin"])
            #expect(keys[0].1 == nil)
            #expect(keys[1].1 == group)
            // The operator's key.create is in the group's audit log.
            let audit = try owner.query("SELECT count(*) FROM forecourt.audit_log WHERE method = 'key.create'").first!.decode(0, as: Int.self)
            #expect(audit == 1)
        }
    }

    /// `keyring generate`, `rotate` and `reencrypt` as an operator runs them: generate never
    /// overwrites, rotate keeps the old key, reencrypt moves every customer and webhook secret
    /// to the new key in batches and leaves them readable.
    @Test func keyringGenerateRotateReencrypt() async throws {
        try await withTestDatabase { db in
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kr-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let path = directory + "/keyring.json"
            try KeyringCommand.Generate.parse(["--output", path]).run()
            #expect(throws: (any Error).self) { try KeyringCommand.Generate.parse(["--output", path]).run() }

            let fixture = try db.makeGroup()
            let before = DispatcherHarness(db, cipher: FieldCipher(keyring: try Keyring.load(path: path)))
            let crm = try await before.session(authenticatedWith: fixture.key(.crmSync))
            for i in 0..<5 {
                _ = try await before.call(crm, "customer.create", ["full_name": .string("Keyring \(i)")]).get()
            }
            let admin = try await before.session(authenticatedWith: fixture.key(.groupAdmin))
            let secret = "a-secret-of-enough-length"
            let webhook = try await before.call(
                admin, "webhook.create",
                ["url": "https://sms.example.com/forecourt", "secret": .string(secret), "kinds": ["shipped"]]
            ).get()
            let webhookID = try #require(webhook["id"]?.stringValue.flatMap(UUID.init(uuidString:)))

            try KeyringCommand.Rotate.parse(["--keyring", path]).run()
            let rotated = try Keyring.load(path: path)
            #expect(rotated.keys.map(\.id) == [1, 2])
            try KeyringCommand.Reencrypt.parse(
                ["--database-url", db.ownerConnectionString, "--keyring", path, "--batch-size", "2"]
            ).run()

            let owner = try db.ownerConnection()
            defer { owner.close() }
            let keys = try owner.query(
                "SELECT DISTINCT key_id FROM forecourt.customers WHERE dealer_group_id = \(fixture.group)"
            ).rows.map { try $0.decode(0, as: Int.self) }
            #expect(keys == [Int(rotated.newest.id)])
            // The webhook's signing secret moved too, and still opens for its own row only.
            let sealed = try #require(
                try owner.query("SELECT secret FROM forecourt.webhooks WHERE id = \(webhookID)").first?.decode(0, as: [UInt8].self))
            let newCipher = FieldCipher(keyring: rotated)
            #expect(try newCipher.keyID(ofEnvelope: sealed) == rotated.newest.id)
            let context = FieldContext(group: fixture.group, table: "webhooks", column: "secret", row: webhookID)
            #expect(try newCipher.openString(sealed, context: context) == secret)
            let after = DispatcherHarness(db, cipher: FieldCipher(keyring: rotated))
            let crm2 = try await after.session(authenticatedWith: fixture.key(.crmSync))
            let found = try await after.call(crm2, "customer.changes", [:]).get()["items"]?.arrayValue ?? []
            #expect(found.count == 5)
        }
    }

    @Test func serveRefusesADatabaseWithPendingMigrations() async throws {
        try await withEmptyTestDatabase { db in
            let error = #expect(throws: ServiceRunner.StartupError.self) {
                try ServiceRunner.checkDatabase(
                    url: db.ownerConnectionString, statementCache: true, migrationsDirectory: TestEnvironment.migrationsDirectory)
            }
            #expect(error?.description.hasPrefix("FORECOURT_DATABASE_URL") == true)
        }
    }

    /// A client certificate registered with `forecourt key create --client-certificate` authenticates
    /// a mutual-TLS connection with no API key.
    @Test func clientCertificateAuthenticatesOverMutualTLS() async throws {
        try await withTestDatabase { db in
            let fixture = try db.makeGroup()
            try await withTestService(db, mutualTLS: true) { service in
                let client = try DevCertificates.issueClientCertificate(in: service.directory, name: "crm")
                try KeyCommand.Create.parse([
                    "--database-url", db.ownerConnectionString, "--role", "crm_sync", "--group", fixture.group.uuidString,
                    "--label", "crm by certificate", "--client-certificate", client.certificate,
                ]).run()
                let connection = try await service.connect(clientCertificate: client.certificate, privateKey: client.privateKey)
                let whoami = try await connection.call("session.whoami")
                #expect(whoami["principal"]?["role"] == "crm_sync")
                #expect(whoami["principal"]?["label"] == "crm by certificate")
                await connection.close()
            }
        }
    }

    /// `forecourt serve`'s wiring over real TLS: roles, scopes and a revoked key on an open session.
    @Test func servesOverTLSAndRevocationReachesOpenSessions() async throws {
        try await withTestDatabase { db in
            let fixture = try db.makeGroup()
            try await withTestService(db) { service in
                let admin = try await service.connect(apiKey: fixture.key(.groupAdmin))
                let created = try await admin.call("key.create", params: ["role": "auditor", "label": "temp"])
                let apiKey = try #require(created["api_key"]?.stringValue)

                let auditor = try await service.connect(apiKey: apiKey)
                #expect(try await auditor.call("dealer.list")["items"]?.arrayValue?.count == 2)
                do {
                    _ = try await auditor.call("dealer.create", params: ["code": "NOPE1", "name": "x"])
                    Issue.record("an auditor created a dealer")
                } catch ForecourtClient.Error.rpc(let code, _, _) {
                    #expect(code == -32002)
                }

                _ = try await admin.call("key.revoke", params: ["id": created["id"] ?? .null])
                // Within 5 seconds (the dispatcher re-checks every 2), the open session stops working.
                var revokedCode: Int?
                for _ in 0..<50 where revokedCode == nil {
                    do {
                        _ = try await auditor.call("dealer.list")
                        try await Task.sleep(for: .milliseconds(100))
                    } catch ForecourtClient.Error.rpc(let code, _, _) {
                        revokedCode = code
                    }
                }
                #expect(revokedCode == -32001)
                await admin.close()
                await auditor.close()
            }
        }
    }
}
