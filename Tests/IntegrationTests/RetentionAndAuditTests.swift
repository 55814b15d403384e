import ForecourtCore
import Foundation
import Orders
import RPC
import Storage
import Testing
import TestSupport

/// Issue 12, point 11: expired rows are purged after their documented retention (and never
/// before), and reads of personal data are audited as writes are.
@Suite struct RetentionAndAuditTests {
    @Test func idempotencyKeysArePurgedAfterADayAndNeverBefore() async throws {
        try await withTestDatabase { db in
            let world = try await OrderWorld.make(db)
            let old = try await world.newOrder(key: "old")
            _ = try await world.newOrder(key: "young")
            let owner = try db.ownerConnection()
            defer { owner.close() }
            try owner.query("UPDATE forecourt.idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = 'old'")
            try owner.query("UPDATE forecourt.idempotency_keys SET created_at = now() - interval '23 hours' WHERE key = 'young'")
            // Asked to purge everything older than a second, the database still keeps a day.
            let purged = try await Purges.idempotencyKeys(world.harness.database, retention: .seconds(1))
            #expect(purged == 1)
            let left = try owner.query("SELECT key FROM forecourt.idempotency_keys ORDER BY key").rows.map {
                try $0.decode(0, as: String.self)
            }
            #expect(left == ["young"])
            // A key past its retention is new again: the same call makes a second order.
            let again = try await world.newOrder(key: "old")
            #expect(again["id"] != old["id"])
        }
    }

    @Test func expiredLookupCountersArePurged() async throws {
        try await withTestDatabase { db in
            let world = try await OrderWorld.make(db)
            for last8 in ["BBBBBBB1", "BBBBBBB2"] {
                _ = failure(await world.call(.portal, "track.lookup", ["vin_last8": .string(last8), "full_name": "x"]))
            }
            let owner = try db.ownerConnection()
            defer { owner.close() }
            try owner.query(
                "UPDATE forecourt.track_lookup_failures SET window_started_at = now() - interval '16 minutes' WHERE vin_last8 = 'BBBBBBB1'")
            try owner.query("UPDATE forecourt.track_lookup_budgets SET window_started_at = now() - interval '16 minutes'")
            #expect(try await Purges.trackingCounters(world.harness.database) == 2)
            let left = try owner.query("SELECT vin_last8 FROM forecourt.track_lookup_failures").rows.map {
                try $0.decode(0, as: String.self)
            }
            #expect(left == ["BBBBBBB2"])
        }
    }

    @Test func readsOfPersonalDataAreAudited() async throws {
        try await withTestDatabase { db in
            let fixture = try db.makeGroup()
            let harness = DispatcherHarness(db)
            let sales = try await harness.session(authenticatedWith: fixture.key(.sales))
            let crm = try await harness.session(authenticatedWith: fixture.key(.crmSync))
            let created = try await harness.call(
                sales, "customer.create", ["full_name": "Ada Quill", "email": "ada@example.org", "external_ref": "R-1"]
            ).get()
            let id = try #require(created["id"]?.stringValue)
            _ = try await harness.call(sales, "customer.get", ["id": .string(id)]).get()
            _ = try await harness.call(sales, "customer.find", ["email": "ADA@example.org"]).get()
            _ = try await harness.call(sales, "customer.find", ["email": "nobody@example.org"]).get()
            _ = try await harness.call(crm, "customer.changes", [:]).get()
            // A customer of another group is not found, and nothing is audited for it.
            let other = try db.makeGroup(name: "Other")
            let stranger = try await harness.session(authenticatedWith: other.key(.sales))
            _ = failure(await harness.call(stranger, "customer.get", ["id": .string(id)]))

            let owner = try db.ownerConnection()
            defer { owner.close() }
            let rows = try owner.query(
                """
                SELECT method, principal_role, object_id::text FROM forecourt.audit_log
                WHERE object_type = 'customer' ORDER BY seq
                """
            ).rows.map { (try $0.decode(0, as: String.self), try $0.decode(1, as: String.self), try $0.decode(2, as: String.self)) }
            #expect(rows.map(\.0) == ["customer.create", "customer.get", "customer.find", "customer.changes"])
            #expect(rows.map(\.1) == ["sales", "sales", "sales", "crm_sync"])
            #expect(Set(rows.map(\.2)) == [id])
        }
    }
}
