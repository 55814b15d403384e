import FieldCrypto
import ForecourtCore
import Foundation
import Postgres
import RPC
import Storage
import Testing
import TestSupport

@testable import ForecourtApp

/// `forecourt dev`'s demo (docs/operations.md, "Development cluster"): seeded once, realistic,
/// and the three commands it prints work.
@Suite struct DemoDataTests {
    @Test func demoHasAStoryWorthOpening() async throws {
        try await withTestDatabase(maximumConnections: 4) { db in
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("demo-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let keysFile = directory + "/dev-keys.json"
            let keyring = Keyring.generate()
            let fresh = try DemoData.ensure(connectionString: db.ownerConnectionString, keysFile: keysFile)
            #expect(fresh.story == nil)
            let owner = try db.ownerConnection()
            defer { owner.close() }
            let story = try await DemoStory.seed(
                database: AppDatabase(pool: db.pool), cipher: FieldCipher(keyring: keyring), owner: owner, keys: fresh)

            let harness = DispatcherHarness(db, cipher: FieldCipher(keyring: keyring))
            func key(_ role: Role) throws -> String { try #require(fresh.keys.first { $0.role == role.rawValue }?.apiKey) }
            let admin = try await harness.session(authenticatedWith: try key(.groupAdmin))
            let crm = try await harness.session(authenticatedWith: try key(.crmSync))
            let portal = try await harness.session(authenticatedWith: try key(.portal))
            #expect(fresh.dealers.count == 2)

            // Customers: a few dozen, some non-ASCII, some opted out of everything.
            let customers = try await harness.call(crm, "customer.changes", ["limit": 500]).get()["items"]?.arrayValue ?? []
            #expect(customers.count >= 30)
            #expect(customers.contains { $0["full_name"]?.stringValue.map { !$0.allSatisfy(\.isASCII) } == true })
            #expect(customers.filter { $0["notify"] == ["email": false, "sms": false] }.count >= 3)

            // Orders in every stage, holds, a cancellation, delayed ones, delivered history of one model.
            let orders = try await harness.call(admin, "order.list", ["limit": 500]).get()["items"]?.arrayValue ?? []
            let stages = Set(orders.compactMap { $0["stage"]?.stringValue })
            #expect(stages == Set(OrderStage.allCases.map(\.rawValue)))
            #expect(orders.filter { $0["on_hold"] == true }.count >= 2)
            #expect(orders.filter { $0["stage"] == "delivered" && $0["model"]?["code"] == "AURORA" }.count >= 20)
            let dealersWithOrders = Set(orders.compactMap { $0["dealer_id"]?.stringValue })
            #expect(dealersWithOrders.count == 2)
            let late = try owner.query("SELECT count(*) FROM forecourt.order_events WHERE late").first?.decode(0, as: Int.self)
            #expect((late ?? 0) >= 1)
            let kinds = try owner.query("SELECT DISTINCT kind FROM forecourt.notifications").rows.map { try $0.decode(0, as: String.self) }
            #expect(Set(kinds).isSuperset(of: ["order_confirmation", "production_scheduled", "vin_assigned", "shipped", "delivered", "delay"]))
            let created = try owner.query("SELECT min(created_at) FROM forecourt.orders").first?.decode(0, as: Date.self)
            #expect((created ?? Date()) < Date().addingTimeInterval(-200 * 86_400), "delivered history reaches months back")

            // The three commands forecourt dev prints.
            let timeline = try await harness.call(admin, "order.timeline", ["id": .string(story.timelineOrderID)]).get()
            let events = timeline["events"]?.arrayValue ?? []
            #expect(events.filter { $0["event"] == "eta" }.count == 2)
            let tracked = try await harness.call(
                portal, "track.lookup",
                ["vin_last8": .string(story.trackingVINLast8), "full_name": .string(story.trackingName)]).get()
            #expect(tracked["stage"] == "shipped")
            #expect(tracked["forecast"] != nil && tracked["forecast"] != .null, "enough delivered history for the forecast")
            let shown = try await harness.call(admin, "order.get", ["id": .string(story.timelineOrderID)]).get()
            #expect(shown["forecast"]?["p50"]?.stringValue != nil)
            let delayed = try await harness.call(admin, "order.list", ["delayed": true]).get()["items"]?.arrayValue ?? []
            #expect(delayed.count >= 3)
            #expect(delayed.contains { $0["id"]?.stringValue == story.timelineOrderID })

            // Seeded once: the keys file remembers the group, so a second run makes nothing new.
            let again = try DemoData.ensure(connectionString: db.ownerConnectionString, keysFile: keysFile)
            #expect(again.groupID == fresh.groupID)
            let groups = try owner.query("SELECT count(*) FROM forecourt.dealer_groups").first?.decode(0, as: Int.self)
            #expect(groups == 1)
        }
    }
}
