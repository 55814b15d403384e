import Foundation
import Postgres
import Testing
import TestSupport

@testable import Delivery

extension DeliveryIntegrationTests {
    /// A claim takes at most its batch, once: the pick runs once, not once per pending row
    /// (docs/performance.md, "Where the time goes").
    @Suite struct DeliveryClaimTests {
        @Test func aClaimTakesAtMostItsBatch() async throws {
            try await withTestDatabase(maximumConnections: 4) { db in
                let world = try await DeliveryWorld.make(db)
                let customer = try await world.customer()
                for _ in 0..<30 { _ = try await world.order(for: customer) }
                let pending = try await notificationRows(db).filter { $0.status == "pending" }
                #expect(pending.count >= 30)
                let instance = UUID()
                let queue = DeliveryQueue(database: world.harness.database, instance: instance)
                let claimed = try await queue.claim(channels: ["email", "sms"], limit: 10, lease: .seconds(30))
                #expect(claimed.count == 10)
                let leased = try await offloaded {
                    let owner = try db.ownerConnection()
                    defer { owner.close() }
                    return try owner.query("SELECT count(*) FROM forecourt.notifications WHERE claimed_by = \(instance)")
                        .first!.decode(0, as: Int.self)
                }
                #expect(leased == 10)
            }
        }
    }
}
