import FieldCrypto
import ForecourtCore
import Foundation
import Orders
import RPC
import Testing
import TestSupport

/// `track.lookup`'s limits (issue 12, point 4): per group and per portal key, counted
/// atomically, with one fixed group for unknown VINs.
@Suite struct TrackingLimitTests {
    /// A valid VIN made of `first8`, its check digit and `last8`.
    static func vin(_ first8: String, _ last8: String) -> String {
        for digit in "0123456789X" where VIN.isValid(first8 + String(digit) + last8) {
            return first8 + String(digit) + last8
        }
        preconditionFailure("no check digit fits \(first8) \(last8)")
    }

    @Test func oneGroupsFailuresDoNotLockOutAnotherGroupsCustomer() async throws {
        try await withTestDatabase { db in
            let north = try await OrderWorld.make(db)
            let south = try await OrderWorld.make(db, harness: north.harness, name: "South")
            // Two VINs of two groups that end alike.
            _ = try await TrackingTests.trackedOrder(north, vin: Self.vin("1HGCM826", "3A004352"))
            _ = try await TrackingTests.trackedOrder(south, vin: Self.vin("2T1BU4EE", "3A004352"))
            for attempt in 1...TrackingService.failureLimit {
                let wrong = failure(await north.call(.portal, "track.lookup", ["vin_last8": "3A004352", "full_name": .string("Wrong \(attempt)")]))
                #expect(wrong?.code == -32003)
            }
            let limited = failure(await north.call(.portal, "track.lookup", ["vin_last8": "3A004352", "full_name": "José Müller"]))
            #expect(limited?.code == -32006)
            // The other group's portal finds its own customer's order.
            let found = try await south.call(.portal, "track.lookup", ["vin_last8": "3A004352", "full_name": "José Müller"]).get()
            #expect(found["stage"] == "paint")
            let owner = try db.ownerConnection()
            defer { owner.close() }
            let groups = try owner.query("SELECT dealer_group_id FROM forecourt.track_lookup_failures").rows.map {
                try $0.decode(0, as: UUID?.self)
            }
            #expect(groups == [north.fixture.group])
        }
    }

    @Test func aBurstOfConcurrentGuessesLearnsAtMostTheLimit() async throws {
        try await withTestDatabase(maximumConnections: 16) { db in
            let world = try await OrderWorld.make(db)
            _ = try await TrackingTests.trackedOrder(world, vin: Self.vin("1M8GDM9A", "KP042788"))
            // Every pool connection open first, so that the burst's transactions start together.
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<16 {
                    group.addTask { _ = try? await db.pool.withConnection { try $0.query("SELECT pg_sleep(0.05)") } }
                }
            }
            let codes = await withTaskGroup(of: Int.self) { group in
                for attempt in 0..<40 {
                    group.addTask {
                        let result = await world.call(.portal, "track.lookup", ["vin_last8": "KP042788", "full_name": .string("Guess \(attempt)")])
                        if case .failure(let error) = result { return error.code }
                        return 0
                    }
                }
                return await group.reduce(into: [Int]()) { $0.append($1) }
            }
            // No row existed when the burst began: still, only the limit's worth of guesses is answered.
            #expect(codes.filter { $0 == -32003 }.count <= TrackingService.failureLimit)
            #expect(codes.filter { $0 == -32003 }.count + codes.filter { $0 == -32006 }.count == 40)
        }
    }

    @Test func aPortalKeyHasABudgetOverEveryVIN() async throws {
        try await withTestDatabase { db in
            let world = try await OrderWorld.make(db)
            let other = try await OrderWorld.make(db, harness: world.harness, name: "Other")
            var limits = TrackingService.Limits()
            limits.failuresPerPrincipal = 3
            let tracking = TrackingService(database: world.harness.database, cipher: world.harness.cipher, limits: limits)
            func lookup(_ portal: Principal, _ last8: String) async -> DomainError.Code? {
                do {
                    _ = try await tracking.lookup(caller: portal, vinLast8: last8, fullName: "nobody")
                    return nil
                } catch let error as DomainError {
                    return error.code
                } catch {
                    return .internal
                }
            }
            let portal = world.fixture.principal(.portal)
            for last8 in ["AAAAAAA1", "AAAAAAA2", "AAAAAAA3"] {
                #expect(await lookup(portal, last8) == .notFound)
            }
            // A fourth VIN, never tried: the key's budget is spent.
            #expect(await lookup(portal, "AAAAAAA4") == .rateLimited)
            // Another key is not affected.
            #expect(await lookup(other.fixture.principal(.portal), "AAAAAAA4") == .notFound)
        }
    }

    @Test func unknownVINsDoNotFillTheKeyCache() async throws {
        try await withTestDatabase { db in
            let world = try await OrderWorld.make(db)
            _ = failure(await world.call(.portal, "track.lookup", ["vin_last8": "ZZZZZZZ0", "full_name": "Someone"]))
            let before = world.harness.cipher.cachedKeyCount
            for index in 1...4 {
                _ = failure(await world.call(.portal, "track.lookup", ["vin_last8": .string("ZZZZZZZ\(index)"), "full_name": "Someone"]))
            }
            #expect(world.harness.cipher.cachedKeyCount == before)
        }
    }
}
