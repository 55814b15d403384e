import ArgumentParser
import ForecourtCore
import Foundation
import Identity
import Postgres
import RPC
import Storage
import Testing
import TestSupport

@testable import ForecourtApp

/// Issue 12, points 8, 9 and 12: keys with no group are listed and revoked by the operator;
/// the database refuses connections from roles that are not the service's or the analysts';
/// a `forecourt_app` that bypasses row-level security is refused.
@Suite struct OperatorSecurityTests {
    @Test func keysOfNoGroupAreListedAndRevokedWithTheCommandLine() async throws {
        try await withTestDatabase { db in
            let fixture = try db.makeGroup()
            let owner = try db.ownerConnection()
            defer { owner.close() }
            let secret = APIKey.generate()
            let globalPortal = try KeyRecord.insert(
                owner, role: .portal, group: nil, dealer: nil, label: "maker website", keyHash: secret.hash,
                prefix: secret.prefix, createdBy: nil)
            let url = db.ownerConnectionString

            let all = try KeyCommand.List.parse(["--database-url", url]).lines(owner)
            #expect(all.count == 1 + Role.allCases.count + 1)
            for id in [globalPortal.id, fixture.principal(.factory).id, fixture.principal(.sales).id] {
                #expect(all.contains { $0.hasPrefix(id.uuidString.lowercased()) })
            }
            let ofGroup = try KeyCommand.List.parse(["--database-url", url, "--group", fixture.group.uuidString]).lines(owner)
            #expect(ofGroup.count == 1 + Role.allCases.count - 1)
            let json = try KeyCommand.List.parse(["--database-url", url, "--json"]).lines(owner)
            #expect(json.count == Role.allCases.count + 1)
            // Never a secret, nor its hash.
            let printed = (all + json).joined(separator: "\n")
            for key in fixture.keys.values + [secret.secret] {
                #expect(!printed.contains(key))
                #expect(!printed.contains(APIKey.hash(of: key).hexString))
            }

            // The factory key works, then is revoked by the operator: new sessions fail at once,
            // the open one at its next check.
            var limits = Dispatcher.Limits()
            limits.revalidationInterval = .milliseconds(50)
            let harness = DispatcherHarness(db, limits: limits)
            let feed = try await harness.session(authenticatedWith: fixture.key(.factory))
            let website = try await harness.session(authenticatedWith: secret.secret)
            for id in [fixture.principal(.factory).id, globalPortal.id] {
                try KeyCommand.Revoke.parse(["--database-url", url, id.uuidString]).run()
            }
            try await Task.sleep(for: .milliseconds(100))
            for session in [feed, website] {
                #expect(failure(await harness.call(session, "session.whoami"))?.code == -32001)
            }
            #expect(failure(await harness.call(harness.session(), "session.authenticate", ["api_key": .string(fixture.key(.factory))]))?.code == -32001)
            // Twice is harmless; an unknown id is an error.
            try KeyCommand.Revoke.parse(["--database-url", url, globalPortal.id.uuidString]).run()
            #expect(throws: (any Error).self) { try KeyCommand.Revoke.parse(["--database-url", url, UUID().uuidString]).run() }
            // A group's key revoked by the operator is in the group's audit log.
            try KeyCommand.Revoke.parse(["--database-url", url, fixture.principal(.crmSync).id.uuidString]).run()
            let audited = try owner.query(
                "SELECT principal_role, object_id FROM forecourt.audit_log WHERE method = 'key.revoke'"
            ).rows.map { (try $0.decode(0, as: String.self), try $0.decode(1, as: UUID.self)) }
            #expect(audited.map(\.0) == ["operator"])
            #expect(audited.map(\.1) == [fixture.principal(.crmSync).id])
            let listed = try KeyCommand.List.parse(["--database-url", url]).lines(owner)
            // Revocation shows in the list (column revoked_at).
            #expect(listed.dropFirst().filter { $0.split(separator: "\t")[6] != "-" }.count == 3)
        }
    }

    @Test func onlyTheServiceAndAnalystRolesMayConnect() async throws {
        try await withEmptyTestDatabase { db in
            let owner = try db.ownerConnection()
            defer { owner.close() }
            try Migrator(directory: TestEnvironment.migrationsDirectory).migrate(on: owner)
            let suffix = UUID().uuidString.prefix(8).lowercased()
            let stranger = "fc_stranger_\(suffix)"
            let service = "fc_service_\(suffix)"
            try owner.execute(unsafeSQL: "CREATE ROLE \(stranger) LOGIN; CREATE ROLE \(service) LOGIN IN ROLE forecourt_app")
            defer { try? owner.execute(unsafeSQL: "DROP ROLE \(stranger); DROP ROLE \(service)") }
            func mayConnect(_ role: String) throws -> Bool {
                try owner.query("SELECT has_database_privilege(\(role), current_database(), 'CONNECT')").first!.decode(0)
            }
            #expect(try mayConnect(stranger) == false)
            #expect(try mayConnect(service) == true)
            #expect(try mayConnect("forecourt_analyst") == true)
        }
    }

    @Test func aServiceRoleThatWouldBypassRowLevelSecurityIsRefused() async throws {
        try await withTestDatabase { db in
            let owner = try db.ownerConnection()
            defer { owner.close() }
            #expect(try AppRole.problems(owner) == [])
            let suffix = UUID().uuidString.prefix(8).lowercased()
            let names = ["super", "bypass", "member", "plain"].map { "fc_role_\($0)_\(suffix)" }
            try owner.execute(
                unsafeSQL: """
                    CREATE ROLE \(names[0]) NOLOGIN SUPERUSER; CREATE ROLE \(names[1]) NOLOGIN BYPASSRLS;
                    CREATE ROLE \(names[2]) NOLOGIN IN ROLE \(names[1]); CREATE ROLE \(names[3]) NOLOGIN;
                    """)
            defer { try? owner.execute(unsafeSQL: "DROP ROLE \(names[2]); " + [0, 1, 3].map { "DROP ROLE \(names[$0]);" }.joined()) }
            #expect(try AppRole.problems(owner, role: names[0]).first?.contains("superuser") == true)
            #expect(try AppRole.problems(owner, role: names[1]).first?.contains("BYPASSRLS") == true)
            #expect(try AppRole.problems(owner, role: names[2]).first?.contains("member of a superuser or BYPASSRLS role") == true)
            #expect(try AppRole.problems(owner, role: names[3]) == [])
            #expect(try AppRole.problems(owner, role: "fc_no_such_role").first?.contains("does not exist") == true)
            let line = try #require(try AppRole.check(owner, role: names[0]))
            #expect(!line.contains("\n"))
        }
    }

    /// `forecourt migrate` and `forecourt serve`'s start-up act on what `AppRole.check` finds
    /// (the kinds it finds are the test above). Making forecourt_app a superuser or BYPASSRLS
    /// here would open every other test's database of the cluster while it runs: instead, in
    /// this database only, the `forecourt` schema goes to a role forecourt_app is a member of.
    @Test func migrateAndServeRefuseAServiceRoleThatWouldBypassRowLevelSecurity() async throws {
        try await withTestDatabase { db in
            let owner = try db.ownerConnection()
            defer { owner.close() }
            let url = db.ownerConnectionString
            let migrations = TestEnvironment.migrationsDirectory
            let schemaOwner = "fc_schema_owner_\(UUID().uuidString.prefix(8).lowercased())"
            try owner.execute(
                unsafeSQL: """
                    CREATE ROLE \(schemaOwner) NOLOGIN; ALTER SCHEMA forecourt OWNER TO \(schemaOwner);
                    GRANT \(schemaOwner) TO \(AppRole.name);
                    """)
            defer {
                try? owner.execute(
                    unsafeSQL: """
                        REVOKE \(schemaOwner) FROM \(AppRole.name); ALTER SCHEMA forecourt OWNER TO CURRENT_USER;
                        DROP ROLE \(schemaOwner);
                        """)
            }
            let refused = #expect(throws: ServiceRunner.StartupError.self) {
                try ServiceRunner.checkDatabase(url: url, statementCache: true, migrationsDirectory: migrations)
            }
            #expect(refused?.description.hasPrefix("FORECOURT_DATABASE_URL: row-level security would not hold") == true)
            #expect(throws: ExitCode(1)) { try MigrateCommand.parse(["--database-url", url, "--migrations", migrations]).run() }

            // Once the membership is gone, both go ahead.
            try owner.execute(unsafeSQL: "REVOKE \(schemaOwner) FROM \(AppRole.name)")
            try ServiceRunner.checkDatabase(url: url, statementCache: true, migrationsDirectory: migrations)
            try MigrateCommand.parse(["--database-url", url, "--migrations", migrations]).run()
        }
    }
}
