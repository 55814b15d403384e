import ForecourtCore
import Foundation
import RPC
import Testing
import TestSupport

@Suite struct IdentityTests {
    @Test func authenticateAndWhoami() async throws {
        try await withTestDatabase { db in
            let fixture = try db.makeGroup()
            let harness = DispatcherHarness(db)
            let session = harness.session()
            let result = try await harness.call(session, "session.authenticate", ["api_key": .string(fixture.key(.sales))]).get()
            #expect(result["principal"]?["role"] == "sales")
            #expect(result["principal"]?["dealer_id"] == fixture.dealers[0].json)
            #expect(result["principal"]?["dealer_group_id"] == fixture.group.json)
            let whoami = try await harness.call(session, "session.whoami").get()
            #expect(whoami == result)
        }
    }

    @Test func factoryPrincipalHasNoGroup() async throws {
        try await withTestDatabase { db in
            let fixture = try db.makeGroup()
            let harness = DispatcherHarness(db)
            let session = try await harness.session(authenticatedWith: fixture.key(.factory))
            let whoami = try await harness.call(session, "session.whoami").get()
            #expect(whoami["principal"]?["dealer_group_id"] == .null)
            #expect(whoami["principal"]?["dealer_id"] == .null)
        }
    }

    @Test func wrongKeysAreUnauthenticatedAndRateLimited() async throws {
        try await withTestDatabase { db in
            _ = try db.makeGroup()
            let harness = DispatcherHarness(db)
            let session = harness.session(address: "10.0.0.9")
            for attempt in 0..<10 {
                let key = attempt.isMultiple(of: 2) ? "nonsense" : "fck_" + String(repeating: "A", count: 43)
                let error = await harness.call(session, "session.authenticate", ["api_key": .string(key)])
                #expect(throws: CallError.self) { try error.get() }
                if case .failure(let failure) = error { #expect(failure.code == -32001) }
            }
            guard case .failure(let limited) = await harness.call(session, "session.authenticate", ["api_key": "nonsense"]) else {
                Issue.record("expected a rate limit")
                return
            }
            #expect(limited.code == -32006)
            // Another address is not affected.
            let other = harness.session(address: "10.0.0.10")
            let fine = try requireFailure(await harness.call(other, "session.authenticate", ["api_key": "nonsense"]))
            #expect(fine.code == -32001)
        }
    }

    @Test func beforeAuthenticationOnlyPingAndAuthenticateWork() async throws {
        try await withTestDatabase { db in
            let harness = DispatcherHarness(db)
            let session = harness.session()
            let ping = try await harness.call(session, "system.ping").get()
            #expect(ping == ["ok": true])
            for method in ["session.whoami", "key.list", "no.such.method"] {
                guard case .failure(let error) = await harness.call(session, method) else {
                    Issue.record("\(method) answered before authentication")
                    continue
                }
                #expect(error.code == -32001)
            }
        }
    }

    @Test func keyLifecycleAndRevocationOfOpenSessions() async throws {
        try await withTestDatabase { db in
            let fixture = try db.makeGroup()
            var limits = Dispatcher.Limits()
            limits.revalidationInterval = .milliseconds(50)
            let harness = DispatcherHarness(db, limits: limits)
            let admin = try await harness.session(authenticatedWith: fixture.key(.groupAdmin))
            let created = try await harness.call(
                admin, "key.create", ["role": "sales", "dealer_id": fixture.dealers[1].json, "label": "front desk"]
            ).get()
            let apiKey = try #require(created["api_key"]?.stringValue)
            #expect(apiKey.hasPrefix("fck_"))
            #expect(created["prefix"]?.stringValue == String(apiKey.prefix(12)))
            let id = try #require(created["id"])

            let user = try await harness.session(authenticatedWith: apiKey)
            #expect(try await harness.call(user, "session.whoami").get()["principal"]?["label"] == "front desk")

            // The secret is never listed, only its prefix.
            let list = try await harness.call(admin, "key.list").get()
            let items = try #require(list["items"]?.arrayValue)
            #expect(items.contains { $0["id"] == id })
            #expect(!JSONWriter.string(list).contains(apiKey))

            let revoked = try await harness.call(admin, "key.revoke", ["id": id]).get()
            #expect(revoked["revoked_at"] != .null)
            // New sessions fail at once...
            guard case .failure(let fresh) = await harness.call(harness.session(), "session.authenticate", ["api_key": .string(apiKey)]) else {
                Issue.record("a revoked key authenticated")
                return
            }
            #expect(fresh.code == -32001)
            // ...and the open one within the revalidation interval.
            try await Task.sleep(for: .milliseconds(100))
            guard case .failure(let open) = await harness.call(user, "session.whoami") else {
                Issue.record("a revoked key kept working")
                return
            }
            #expect(open.code == -32001)
        }
    }

    @Test func keyRulesPerRole() async throws {
        try await withTestDatabase { db in
            let fixture = try db.makeGroup()
            let other = try db.makeGroup(name: "Other")
            let harness = DispatcherHarness(db)
            let manager = try await harness.session(authenticatedWith: fixture.key(.dealerManager))
            // A dealer manager makes sales keys of its own dealer, nothing else.
            _ = try await harness.call(manager, "key.create", ["role": "sales", "label": "s"]).get()
            for params: JSON in [
                ["role": "group_admin", "label": "x"],
                ["role": "sales", "dealer_id": fixture.dealers[1].json, "label": "x"],
            ] {
                guard case .failure(let error) = await harness.call(manager, "key.create", params) else {
                    Issue.record("manager made \(params)")
                    continue
                }
                #expect(error.code == -32002)
            }
            // Sales, CRM, factory and portal principals cannot see keys at all (auditors list them).
            for role in [Role.sales, .crmSync, .factory, .portal] {
                let session = try await harness.session(authenticatedWith: fixture.key(role))
                guard case .failure(let error) = await harness.call(session, "key.list") else {
                    Issue.record("\(role) listed keys")
                    continue
                }
                #expect(error.code == -32002)
            }
            // Another group's key or dealer is not found, never forbidden.
            let admin = try await harness.session(authenticatedWith: fixture.key(.groupAdmin))
            guard case .failure(let foreignKey) = await harness.call(admin, "key.revoke", ["id": other.principal(.sales).id.json]) else {
                Issue.record("revoked another group's key")
                return
            }
            #expect(foreignKey.code == -32003)
            let foreignDealer = try requireFailure(await harness.call(
                admin, "key.create", ["role": "sales", "dealer_id": other.dealers[0].json, "label": "x"]))
            #expect(foreignDealer.code == -32003)
            // Unknown members and bad values name the field.
            let bad = try requireFailure(await harness.call(admin, "key.create", ["role": "wizard", "label": "x"]))
            #expect(bad.code == -32602)
            #expect(bad.field == "role")
        }
    }

    @Test func keyListPagesWithSignedCursors() async throws {
        try await withTestDatabase { db in
            let fixture = try db.makeGroup()
            let harness = DispatcherHarness(db)
            let admin = try await harness.session(authenticatedWith: fixture.key(.groupAdmin))
            var seen: [JSON] = []
            var after: JSON = .null
            repeat {
                var params: JSON = ["limit": 2]
                if after != .null, case .object(var object) = params {
                    object.members.append((key: "after", value: after))
                    params = .object(object)
                }
                let page = try await harness.call(admin, "key.list", params).get()
                seen += page["items"]?.arrayValue ?? []
                after = page["next"] ?? .null
            } while after != .null
            // Every group key but the factory one (which has no group).
            #expect(seen.count == Role.allCases.count - 1)
            #expect(Set(seen.compactMap { $0["id"]?.stringValue }).count == seen.count)
            let forged = try requireFailure(await harness.call(admin, "key.list", ["after": "AAAAAAAAAAAAAAAAAAAAAAAAAAAA"]))
            #expect(forged.code == -32602)
            #expect(forged.field == "after")
        }
    }

    /// Issue 12, point 12: auditors read everything of their group, keys included, and change nothing.
    @Test func auditorsListKeysAndRevokeNone() async throws {
        try await withTestDatabase { db in
            let fixture = try db.makeGroup()
            _ = try db.makeGroup(name: "Other")
            let harness = DispatcherHarness(db)
            let auditor = try await harness.session(authenticatedWith: fixture.key(.auditor))
            let listed = try await harness.call(auditor, "key.list", ["limit": 500]).get()
            let items = try #require(listed["items"]?.arrayValue)
            #expect(items.count == Role.allCases.count - 1)
            #expect(items.allSatisfy { $0["dealer_group_id"] == fixture.group.json })
            #expect(failure(await harness.call(auditor, "key.revoke", ["id": fixture.principal(.sales).id.json]))?.code == -32002)
            #expect(failure(await harness.call(auditor, "key.create", ["role": "auditor", "label": "x"]))?.code == -32002)
        }
    }
}
