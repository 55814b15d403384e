import Events
import ForecourtCore
import Foundation
import Orders
import Postgres
import RPC
import Testing
import TestSupport

/// Issue 12, points 1, 2 and 9: who a push may reach, and what it may hold.
@Suite struct EventSecurityTests {
    @Test func subscribingToAnotherGroupsDealerIsNotFound() async throws {
        try await withTestDatabase { db in
            let world = try await OrderWorld.make(db)
            let other = try await OrderWorld.make(db, harness: world.harness, name: "Other")
            for role in [Role.groupAdmin, .auditor, .crmSync] {
                let foreign = await world.call(role, "events.subscribe", ["dealer_id": other.fixture.dealers[0].json])
                #expect(failure(foreign)?.code == -32003, "\(role)")
                let unknown = await world.call(role, "events.subscribe", ["dealer_id": UUID().json])
                #expect(failure(unknown)?.code == -32003, "\(role)")
                _ = try await world.call(role, "events.subscribe", ["dealer_id": world.fixture.dealers[1].json]).get()
            }
            #expect(failure(await world.call(.sales, "events.subscribe", ["dealer_id": world.fixture.dealers[1].json]))?.code == -32003)
            // The factory spans every group.
            _ = try await world.call(.factory, "events.subscribe", ["dealer_id": other.fixture.dealers[0].json]).get()
        }
    }

    /// Anyone who can connect to the database can NOTIFY: what is pushed comes from the tables.
    @Test func forgedNotificationsPushNothingTheTablesDoNotSay() async throws {
        try await withTestDatabase(maximumConnections: 6) { db in
            let world = try await OrderWorld.make(db)
            let other = try await OrderWorld.make(db, harness: world.harness, name: "Other")
            try await withEvents(world.harness, db) { _ in
                let admin = PushRecorder(world.session(.groupAdmin))
                let sales = PushRecorder(world.session(.sales))
                _ = try await world.call(.groupAdmin, "events.subscribe").get()
                _ = try await world.call(.sales, "events.subscribe").get()
                // An order of dealer 1: the admin sees it, the dealer-0 sales key must not.
                let order = try await world.call(
                    .groupAdmin, "order.create", orderParams(customer: world.customer, dealer: world.fixture.dealers[1])).get()
                try await eventually { admin.messages.count == 1 }
                let orderID = try #require(order["id"]?.stringValue)
                let seq = try #require(admin.messages[0]["params"]?["event"]?["seq"]?.intValue)
                let group = world.fixture.group.uuidString.lowercased()
                let dealer0 = world.fixture.dealers[0].uuidString.lowercased()
                let owner = try db.ownerConnection()
                defer { owner.close() }
                for payload in [
                    // The real change again, claiming the sales key's dealer.
                    "\(group) \(dealer0) \(orderID) ordered \(seq)",
                    // Free text where the event goes, no entry named.
                    "\(group) \(dealer0) \(orderID) <forged> -",
                    // An entry that does not exist.
                    "\(group) \(dealer0) \(orderID) delivered \(seq + 1000)",
                    // The order named under another group.
                    "\(other.fixture.group.uuidString.lowercased()) \(dealer0) \(orderID) ordered \(seq)",
                ] {
                    try owner.query("SELECT pg_notify(\(OrderService.notifyChannel), \(payload))")
                }
                // A real change after the forgeries: it is the only other push, and only to the admin.
                _ = try await world.event(order, "scheduled", at: "2026-11-01T08:00:00Z").get()
                try await eventually { admin.messages.count == 2 }
                try await Task.sleep(for: .milliseconds(300))
                #expect(admin.messages.count == 2)
                #expect(admin.messages[1]["params"]?["event"]?["event"] == "scheduled")
                #expect(sales.messages.isEmpty)
                let everything = JSONWriter.string(.array(admin.messages))
                #expect(!everything.contains("forged"))
            }
        }
    }

    @Test func aRevokedKeysSubscriptionsStopWithoutAnyRequest() async throws {
        try await withTestDatabase(maximumConnections: 6) { db in
            var limits = Dispatcher.Limits()
            limits.revalidationInterval = .milliseconds(100)
            let world = try await OrderWorld.make(db, harness: DispatcherHarness(db, limits: limits))
            try await withEvents(world.harness, db) { _ in
                let created = try await world.call(
                    .groupAdmin, "key.create", ["role": "sales", "dealer_id": world.fixture.dealers[0].json, "label": "kiosk"]
                ).get()
                let kiosk = try await world.harness.session(authenticatedWith: try #require(created["api_key"]?.stringValue))
                let revokedRecorder = PushRecorder(kiosk)
                let witness = PushRecorder(world.session(.dealerManager))
                _ = try await world.harness.call(kiosk, "events.subscribe").get()
                _ = try await world.call(.dealerManager, "events.subscribe").get()
                _ = try await world.newOrder()
                try await eventually { revokedRecorder.messages.count == 1 && witness.messages.count == 1 }

                _ = try await world.call(.groupAdmin, "key.revoke", ["id": try #require(created["id"])]).get()
                // The revoked session sends nothing from here on.
                try await Task.sleep(for: .milliseconds(300))
                _ = try await world.newOrder()
                try await eventually { witness.messages.count == 2 }
                try await Task.sleep(for: .milliseconds(200))
                #expect(revokedRecorder.messages.count == 1)
                #expect(!kiosk.isAuthenticated)
            }
        }
    }

    @Test func authenticatingAgainWithAWeakerKeyEndsTheOldSubscriptions() async throws {
        try await withTestDatabase(maximumConnections: 6) { db in
            let world = try await OrderWorld.make(db)
            try await withEvents(world.harness, db) { _ in
                let session = try await world.harness.session(authenticatedWith: world.fixture.key(.groupAdmin))
                let recorder = PushRecorder(session)
                _ = try await world.harness.call(session, "events.subscribe").get()
                _ = try await world.harness.call(session, "session.authenticate", ["api_key": .string(world.fixture.key(.sales))]).get()
                // Neither another dealer's order nor the sales key's own reaches the admin's subscription.
                _ = try await world.call(
                    .groupAdmin, "order.create", orderParams(customer: world.customer, dealer: world.fixture.dealers[1])).get()
                _ = try await world.newOrder()
                let witness = PushRecorder(world.session(.auditor))
                _ = try await world.call(.auditor, "events.subscribe").get()
                let last = try await world.newOrder()
                // The hub handles notifications in order: once the last order reached the
                // witness, the earlier ones were handled too (they may reach the witness as
                // well, if the hub got to them after it subscribed).
                try await eventually { witness.messages.contains { $0["params"]?["order"]?["id"] == last["id"] } }
                try await Task.sleep(for: .milliseconds(200))
                #expect(recorder.messages.isEmpty)
            }
        }
    }
}
