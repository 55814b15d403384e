import ForecourtCore
import Foundation
import Orders
import RPC
import Testing
import TestSupport

@Suite struct TrackingTests {
    /// An order of `world` with `vin`, in stage paint.
    static func trackedOrder(_ world: OrderWorld, vin: String) async throws -> JSON {
        let order = try await world.newOrder()
        _ = try await world.event(order, "scheduled", at: "2026-11-01T08:00:00Z", ["vin": .string(vin), "eta": "2026-12-14"]).get()
        return try await world.event(order, "paint", at: "2026-11-03T08:00:00Z").get()
    }

    @Test func lookupMatchesNameVariantsAndReturnsOnlyTrackingFields() async throws {
        try await withTestDatabase { db in
            let world = try await OrderWorld.make(db)
            let order = try await Self.trackedOrder(world, vin: "1HGCM82633A004352")
            for name in ["José Müller", "  JOSE   muller ", "jose\tMÜLLER", "Ｊｏｓé Muller"] {
                let found = try await world.call(.portal, "track.lookup", ["vin_last8": "3a004352", "full_name": .string(name)]).get()
                #expect(found["order_number"] == order["order_number"], "\(name)")
                #expect(Set(found.objectValue?.keys ?? []) == ["order_number", "model", "stage", "on_hold", "eta", "delayed", "forecast", "stages"])
                #expect(found["stage"] == "paint")
                #expect(found["eta"] == "2026-12-14")
                let stages = found["stages"]?.arrayValue ?? []
                #expect(stages.map { $0["stage"]?.stringValue ?? "" } == OrderStage.progression.map(\.rawValue))
                #expect(stages.map { $0["state"]?.stringValue ?? "" }
                    == ["done", "done", "done", "current", "pending", "pending", "pending", "pending", "pending"])
                #expect(stages[1]["at"] == .string(RFC3339.format(RFC3339.parse("2026-11-01T08:00:00Z")!)))
                #expect(stages[2]["at"] == .null)  // skipped
                #expect(stages[4]["at"] == .null)
            }
            // Only portal keys may look up.
            #expect(failure(await world.call(.sales, "track.lookup", ["vin_last8": "3A004352", "full_name": "José Müller"]))?.code == -32002)
        }
    }

    @Test func wrongNameAndUnknownVINAreTheSameAndRateLimited() async throws {
        try await withTestDatabase { db in
            let world = try await OrderWorld.make(db)
            _ = try await Self.trackedOrder(world, vin: "1M8GDM9AXKP042788")
            let wrongName = failure(await world.call(.portal, "track.lookup", ["vin_last8": "KP042788", "full_name": "Jose Mueller"]))
            let unknownVIN = failure(await world.call(.portal, "track.lookup", ["vin_last8": "KP042789", "full_name": "José Müller"]))
            #expect(wrongName?.code == -32003)
            #expect(wrongName == unknownVIN)
            // Failures count per vin_last8, in the database (shared by every instance): another
            // harness (a second instance) sees the same count.
            let second = DispatcherHarness(db, cipher: world.harness.cipher)
            let portal2 = try await second.session(authenticatedWith: world.fixture.key(.portal))
            for attempt in 2...TrackingService.failureLimit {
                let harness = attempt.isMultiple(of: 2) ? second : world.harness
                let session = attempt.isMultiple(of: 2) ? portal2 : world.session(.portal)
                let error = failure(await harness.call(session, "track.lookup", ["vin_last8": "KP042788", "full_name": .string("Wrong \(attempt)")]))
                #expect(error?.code == -32003)
            }
            let limited = failure(await second.call(portal2, "track.lookup", ["vin_last8": "KP042788", "full_name": "José Müller"]))
            #expect(limited?.code == -32006)
            #expect((limited?.retryAfterMilliseconds ?? 0) > 0)
            // Other VINs are not affected.
            let other = failure(await world.call(.portal, "track.lookup", ["vin_last8": "KP042789", "full_name": "x"]))
            #expect(other?.code == -32003)
            // Once the window has passed, lookups work again.
            let owner = try db.ownerConnection()
            defer { owner.close() }
            try owner.query("UPDATE forecourt.track_lookup_failures SET window_started_at = now() - interval '1 hour'")
            let found = try await world.call(.portal, "track.lookup", ["vin_last8": "KP042788", "full_name": "José Müller"]).get()
            #expect(found["stage"] == "paint")
        }
    }

    @Test func portalKeysOfAnotherGroupSeeNothing() async throws {
        try await withTestDatabase { db in
            let world = try await OrderWorld.make(db)
            _ = try await Self.trackedOrder(world, vin: "1FTFW1ET9DFC10312")
            let other = try await OrderWorld.make(db, harness: world.harness, name: "Other")
            let hidden = failure(await other.call(.portal, "track.lookup", ["vin_last8": "DFC10312", "full_name": "José Müller"]))
            #expect(hidden?.code == -32003)
            let invalid = failure(await world.call(.portal, "track.lookup", ["vin_last8": "DFC1031", "full_name": "José Müller"]))
            #expect(invalid?.field == "vin_last8")
        }
    }
}

