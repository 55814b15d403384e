import ForecourtCore
import Foundation
import RPC
import Testing
import TestSupport

@Suite struct DealerTests {
    @Test func createGetListUpdate() async throws {
        try await withTestDatabase { db in
            let fixture = try db.makeGroup()
            let harness = DispatcherHarness(db)
            let admin = try await harness.session(authenticatedWith: fixture.key(.groupAdmin))
            let created = try await harness.call(
                admin, "dealer.create", ["code": "nw042", "name": "Northwest Motors", "timezone": "Europe/Berlin"]
            ).get()
            #expect(created["code"] == "NW042")
            #expect(created["version"] == 1)
            #expect(created["region"] == .null)
            let id = try #require(created["id"])
            #expect(try await harness.call(admin, "dealer.get", ["id": id]).get() == created)

            let updated = try await harness.call(admin, "dealer.update", ["id": id, "version": 1, "region": "North"]).get()
            #expect(updated["version"] == 2)
            #expect(updated["region"] == "North")
            #expect(updated["name"] == "Northwest Motors")
            // The same version again is stale.
            guard case .failure(let stale) = await harness.call(admin, "dealer.update", ["id": id, "version": 1, "name": "X"]) else {
                Issue.record("a stale update succeeded")
                return
            }
            #expect(stale.code == -32004)
            // A no-op update keeps the version.
            let same = try await harness.call(admin, "dealer.update", ["id": id, "version": 2, "region": "North"]).get()
            #expect(same["version"] == 2)

            var codes: [String] = []
            var after: JSON = .null
            repeat {
                let params: JSON = after == .null ? ["limit": 1] : ["limit": 1, "after": after]
                let page = try await harness.call(admin, "dealer.list", params).get()
                codes += (page["items"]?.arrayValue ?? []).compactMap { $0["code"]?.stringValue }
                after = page["next"] ?? .null
            } while after != .null
            #expect(codes == (fixture.dealerCodes + ["NW042"]).sorted())
        }
    }

    @Test func codesAreUniqueAcrossGroupsAndRevealNothing() async throws {
        try await withTestDatabase { db in
            let a = try db.makeGroup(name: "A")
            let b = try db.makeGroup(name: "B")
            let harness = DispatcherHarness(db)
            let adminB = try await harness.session(authenticatedWith: b.key(.groupAdmin))
            guard case .failure(let taken) = await harness.call(adminB, "dealer.create", ["code": .string(a.dealerCodes[0]), "name": "Copy"])
            else {
                Issue.record("a taken code was accepted")
                return
            }
            #expect(taken.code == -32004)
            #expect(!taken.message.contains(a.group.uuidString.lowercased()))
            #expect(!taken.message.contains("Dealer"))
            // Another group's dealer is not found.
            let hidden = try requireFailure(await harness.call(adminB, "dealer.get", ["id": a.dealers[0].json]))
            #expect(hidden.code == -32003)
        }
    }

    @Test func validationNamesTheField() async throws {
        try await withTestDatabase { db in
            let fixture = try db.makeGroup()
            let harness = DispatcherHarness(db)
            let admin = try await harness.session(authenticatedWith: fixture.key(.groupAdmin))
            let cases: [(JSON, String)] = [
                (["code": "A", "name": "x"], "code"),
                (["code": "AB-1", "name": "x"], "code"),
                (["code": "AB1", "name": ""], "name"),
                (["code": "AB1", "name": "x", "timezone": "Mars/Olympus"], "timezone"),
                (["code": "AB1", "name": "x", "colour": "red"], "colour"),
                (["code": 12, "name": "x"], "code"),
            ]
            for (params, field) in cases {
                guard case .failure(let error) = await harness.call(admin, "dealer.create", params) else {
                    Issue.record("accepted \(params)")
                    continue
                }
                #expect(error.code == -32602)
                #expect(error.field == field)
            }
        }
    }

    /// Every role against one method it may call and one it may not (-32002, before anything runs).
    @Test func roleMatrix() async throws {
        try await withTestDatabase { db in
            let fixture = try db.makeGroup()
            let harness = DispatcherHarness(db)
            let dealer = fixture.dealers[0].json
            let matrix: [(Role, allowed: (String, JSON), forbidden: (String, JSON))] = [
                (.groupAdmin, ("dealer.create", ["code": "RM001", "name": "x"]), ("track.lookup", ["vin_last8": "12345678", "full_name": "x"])),
                (.dealerManager, ("key.create", ["role": "sales", "label": "x"]), ("dealer.create", ["code": "RM002", "name": "x"])),
                (.sales, ("dealer.get", ["id": dealer]), ("key.list", [:])),
                (.crmSync, ("dealer.list", [:]), ("dealer.update", ["id": dealer, "version": 1])),
                (.auditor, ("dealer.get", ["id": dealer]), ("key.create", ["role": "sales", "label": "x"])),
                (.factory, ("session.whoami", [:]), ("dealer.list", [:])),
                (.portal, ("session.whoami", [:]), ("dealer.get", ["id": dealer])),
            ]
            for (role, allowed, forbidden) in matrix {
                let session = try await harness.session(authenticatedWith: fixture.key(role))
                let ok = await harness.call(session, allowed.0, allowed.1)
                #expect(throws: Never.self, "\(role) \(allowed.0)") { try ok.get() }
                guard case .failure(let error) = await harness.call(session, forbidden.0, forbidden.1) else {
                    Issue.record("\(role) may call \(forbidden.0)")
                    continue
                }
                #expect(error.code == -32002, "\(role) \(forbidden.0)")
            }
        }
    }
}
