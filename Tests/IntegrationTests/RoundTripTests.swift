import ForecourtCore
import Foundation
import RPC
import Testing
import TestSupport

/// What each order call costs in network round trips to PostgreSQL: the design of the
/// transaction path (docs/architecture.md, "Transactions"), pinned so that a change that adds
/// one shows here rather than only in a benchmark.
@Suite struct RoundTripTests {
    /// The fewest round trips one of three identical calls made (a session's periodic
    /// revocation check may add one to a call).
    private func roundTrips(_ world: OrderWorld, _ call: () async throws -> Void) async throws -> Int {
        var fewest = Int.max
        for _ in 0..<3 {
            let before = world.db.pool.roundTrips
            try await call()
            fewest = min(fewest, world.db.pool.roundTrips - before)
        }
        return fewest
    }

    @Test func eachOrderCallCostsWhatTheDesignSays() async throws {
        try await withTestDatabase(maximumConnections: 1) { db in
            let world = try await OrderWorld.make(db)
            let order = try await world.newOrder()
            let id = order["id"]!
            _ = try await world.event(order, "scheduled", at: "2026-11-01T10:00:00Z", ["vin": .string(testVIN(7))]).get()
            let vinLast8 = String(testVIN(7).suffix(8))

            // Reads: the transaction's start, the statement and its end, together.
            #expect(try await roundTrips(world) { _ = try await world.call(.groupAdmin, "order.get", ["id": id]).get() } == 1)
            #expect(try await roundTrips(world) { _ = try await world.call(.factory, "order.get", ["id": id]).get() } == 1)
            #expect(try await roundTrips(world) { _ = try await world.call(.groupAdmin, "order.list", [:]).get() } == 1)
            #expect(try await roundTrips(world) { _ = try await world.call(.groupAdmin, "order.timeline", ["id": id]).get() } == 1)

            // Writes: the start with the lock (and the checks that follow it), then every write,
            // the read back and COMMIT.
            #expect(try await roundTrips(world) { _ = try await world.newOrder() } == 2)
            var minute = 0
            #expect(
                try await roundTrips(world) {
                    minute += 1
                    _ = try await world.event(
                        order, "eta", at: "2026-11-02T10:\(minute < 10 ? "0" : "")\(minute):00Z",
                        ["eta": "2027-03-01", "reason": "other"]
                    ).get()
                } == 2)
            let fresh = try await world.newOrder()
            var version = fresh["version"]?.intValue ?? 1
            #expect(
                try await roundTrips(world) {
                    let amended = try await world.call(
                        .sales, "order.amend", ["id": fresh["id"]!, "version": .int(version), "exterior_color": .string("Red \(version)")]
                    ).get()
                    version = amended["version"]?.intValue ?? version
                } == 2)

            // track.lookup: the counters and the candidates, then the locked counters, the
            // order, its stage dates and COMMIT (or the failure counted and COMMIT).
            #expect(
                try await roundTrips(world) {
                    _ = try await world.call(.portal, "track.lookup", ["vin_last8": .string(vinLast8), "full_name": "José Müller"]).get()
                } == 2)
        }
    }
}
