import Customers
import FieldCrypto
import ForecourtCore
import Foundation
import Orders
import Postgres
import RPC
import Testing
import TestSupport

@testable import ForecourtApp

/// The `analytics` schema over data written through the API (docs/analytics.md): exact KPI
/// figures, the customer pseudonym, the delivery forecast, no personal data in any view, and
/// analyst access over real login roles.
@Suite struct AnalyticsTests {
    static let views = [
        "orders", "order_events", "stage_durations", "dealer_kpis", "eta_accuracy", "notification_delivery",
        "forecast_accuracy",
    ]

    /// An order of `world`'s dealer 0 (or of `dealer` by the group admin) placed at `createdAt`
    /// (backdated by the owner, as an import would), with `model`.
    static func order(_ world: OrderWorld, createdAt: String, model: String = "XC40", dealer: UUID? = nil) async throws -> JSON {
        var params = orderParams(customer: world.customer, dealer: dealer)
        if case .object(var object) = params {
            object["model"] = ["code": .string(model), "year": 2027]
            params = .object(object)
        }
        let order = try await world.call(dealer == nil ? .sales : .groupAdmin, "order.create", params).get()
        let owner = try world.db.ownerConnection()
        defer { owner.close() }
        let id = try #require(order["id"]?.stringValue.flatMap(UUID.init(uuidString:)))
        try owner.query("UPDATE forecourt.orders SET created_at = \(createdAt)::timestamptz WHERE id = \(id)")
        return order
    }

    /// The rows of `sql` as the owner reads them, each column as PostgreSQL prints it ("null"
    /// for NULL).
    static func rows(_ db: TestDatabase, _ sql: String) throws -> [[String: String]] {
        let owner = try db.ownerConnection()
        defer { owner.close() }
        let wrapped: PostgresQuery = """
            SELECT r.n, e.key, coalesce(e.value, 'null')
            FROM (SELECT row_number() OVER () AS n, x.* FROM (\(unsafeSQL: sql)) x) r, jsonb_each_text(to_jsonb(r) - 'n') e
            ORDER BY r.n
            """
        var rows: [Int: [String: String]] = [:]
        for row in try owner.query(wrapped).rows {
            rows[try row.decode(0, as: Int.self), default: [:]][try row.decode(1, as: String.self)] = try row.decode(2, as: String.self)
        }
        return rows.keys.sorted().map { rows[$0]! }
    }

    @Test func kpiFiguresAreExactForAKnownDataSet() async throws {
        try await withTestDatabase { db in
            let world = try await OrderWorld.make(db)
            let group = world.fixture.group
            let dealerA = world.fixture.dealers[0]
            // O1: promised 2026-02-10, delivered 2026-02-01 after 31 days: on time.
            let o1 = try await Self.order(world, createdAt: "2026-01-01T00:00:00Z")
            _ = try await world.event(o1, "scheduled", at: "2026-01-05T00:00:00Z", ["vin": .string(testVIN(1)), "eta": "2026-02-10"]).get()
            _ = try await world.event(o1, "delivered", at: "2026-02-01T00:00:00Z", by: .sales).get()
            // O2: promised 2026-02-01, revised to 2026-02-15, delivered 2026-02-11 after 41 days: 10 days late.
            let o2 = try await Self.order(world, createdAt: "2026-01-01T00:00:00Z")
            _ = try await world.event(o2, "scheduled", at: "2026-01-06T00:00:00Z", ["vin": .string(testVIN(2)), "eta": "2026-02-01"]).get()
            _ = try await world.event(o2, "eta", at: "2026-01-20T00:00:00Z", ["eta": "2026-02-15", "reason": "carrier_delay"]).get()
            _ = try await world.event(o2, "delivered", at: "2026-02-11T00:00:00Z", by: .sales).get()
            // O3: scheduled, on hold; a late repeat of `scheduled` moves nothing.
            let o3 = try await Self.order(world, createdAt: "2026-01-01T00:00:00Z")
            _ = try await world.event(o3, "scheduled", at: "2026-01-07T00:00:00Z", ["eta": "2027-03-01"]).get()
            _ = try await world.event(o3, "hold", at: "2026-01-08T00:00:00Z", ["reason": "parts_shortage"]).get()
            let late = try await world.event(o3, "scheduled", at: "2026-01-09T00:00:00Z").get()
            #expect(late["stage"] == "scheduled")
            // O4: cancelled.
            let o4 = try await Self.order(world, createdAt: "2026-01-02T00:00:00Z")
            _ = try await world.call(.sales, "order.cancel", ["id": o4["id"]!, "version": 1, "reason": "changed their mind"]).get()
            // O5: another model, no promised ETA, delivered after 20 days.
            let o5 = try await Self.order(world, createdAt: "2026-01-01T00:00:00Z", model: "EX30")
            _ = try await world.event(o5, "scheduled", at: "2026-01-03T00:00:00Z", ["vin": .string(testVIN(5))]).get()
            _ = try await world.event(o5, "delivered", at: "2026-01-21T00:00:00Z", by: .sales).get()

            let kpis = try Self.rows(db, "SELECT * FROM analytics.dealer_kpis WHERE dealer_group_id = '\(group)' ORDER BY dealer_code")
            #expect(kpis.count == 2)
            let a = try #require(kpis.first { $0["dealer_id"] == dealerA.uuidString.lowercased() })
            #expect(a["orders_total"] == "5")
            #expect(a["orders_open"] == "1")
            #expect(a["orders_delivered"] == "3")
            #expect(a["orders_cancelled"] == "1")
            #expect(a["orders_on_hold"] == "1")
            #expect(a["orders_delayed"] == "2")  // O3 on hold, O2's ETA later than promised
            #expect(a["median_days_to_delivery"] == "31.00")  // of 20, 31, 41
            #expect(a["p90_days_to_delivery"] == "39.00")  // 31 + 0.8 × 10
            #expect(a["on_time_rate"] == "0.5000")  // O1 of O1, O2
            #expect(a["delivered_with_promise"] == "2")
            let b = try #require(kpis.first { $0["dealer_id"] == world.fixture.dealers[1].uuidString.lowercased() })
            #expect(b["orders_total"] == "0")
            #expect(b["median_days_to_delivery"] == "null")
            #expect(b["on_time_rate"] == "null")

            let eta = try Self.rows(db, "SELECT * FROM analytics.eta_accuracy WHERE dealer_group_id = '\(group)' ORDER BY model_code")
            #expect(eta.map { $0["model_code"] } == ["EX30", "XC40"])
            #expect(eta[1]["delivered"] == "2")
            #expect(eta[1]["delivered_with_promise"] == "2")
            #expect(eta[1]["delivered_on_time"] == "1")
            #expect(eta[1]["mean_days_late"] == "5.00")  // (0 + 10) / 2
            #expect(eta[1]["mean_days_after_promise"] == "0.50")  // (-9 + 10) / 2
            #expect(eta[1]["mean_days_after_last_eta"] == "-6.50")  // (-9 + -4) / 2
            #expect(eta[0]["delivered"] == "1")
            #expect(eta[0]["delivered_with_promise"] == "0")
            #expect(eta[0]["mean_days_late"] == "null")

            // One order's row, and its stage durations from the timeline (the late event ignored).
            let orders = try Self.rows(db, "SELECT * FROM analytics.orders WHERE order_id = '\(UUID(uuidString: o2["id"]!.stringValue!)!)'")
            #expect(orders.count == 1)
            #expect(orders.first?["days_to_delivery"] == "41.00")
            #expect(orders.first?["on_time"] == "false")
            #expect(orders.first?["promised_eta"] == "2026-02-01")
            #expect(orders.first?["eta"] == "2026-02-15")
            #expect(orders.first?["dealer_code"] == world.fixture.dealerCodes[0])
            let o2Stages = try Self.rows(
                db, "SELECT stage, hours, left_at IS NULL AS current FROM analytics.stage_durations WHERE order_id = '\(UUID(uuidString: o2["id"]!.stringValue!)!)' ORDER BY stage_rank")
            #expect(o2Stages.map { $0["stage"] } == ["ordered", "scheduled", "delivered"])
            #expect(o2Stages[1]["hours"] == "864.00")  // 2026-01-06 to 2026-02-11: 36 days
            #expect(o2Stages[2]["current"] == "true")
            let o3Stages = try Self.rows(
                db, "SELECT stage, entered_at::text, hours FROM analytics.stage_durations WHERE order_id = '\(UUID(uuidString: o3["id"]!.stringValue!)!)' ORDER BY stage_rank")
            #expect(o3Stages.map { $0["stage"] } == ["ordered", "scheduled"])
            #expect(o3Stages[1]["entered_at"] == "2026-01-07 00:00:00+00")
            #expect(o3Stages[1]["hours"] == "null")
            let events = try Self.rows(
                db, "SELECT event, late, reason FROM analytics.order_events WHERE order_id = '\(UUID(uuidString: o3["id"]!.stringValue!)!)' ORDER BY seq")
            #expect(events.map { $0["event"] } == ["ordered", "scheduled", "hold", "scheduled"])
            #expect(events.map { $0["late"] } == ["false", "false", "false", "true"])
            #expect(events[2]["reason"] == "parts_shortage")
            // The cancellation's free-text reason is not shown.
            let cancel = try Self.rows(
                db, "SELECT reason FROM analytics.order_events WHERE order_id = '\(UUID(uuidString: o4["id"]!.stringValue!)!)' AND event = 'cancelled'")
            #expect(cancel.first?["reason"] == "null")
        }
    }

    @Test func customerKeyIsAStablePseudonymPerCustomerAndGroup() async throws {
        try await withTestDatabase { db in
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kr-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let keyring = Keyring.generate()
            try keyring.createNew(at: directory + "/keyring.json")
            let harness = DispatcherHarness(db, cipher: FieldCipher(keyring: keyring))
            let first = try await OrderWorld.make(db, harness: harness, name: "First Group")
            let second = try await OrderWorld.make(db, harness: harness, name: "Second Group")
            // Two customers in the first group (one by create, one by a CRM batch), one in the second.
            let ada = try await first.call(.sales, "customer.create", customerParams("ada")).get()
            let batch = try await first.call(
                .crmSync, "customer.upsert_batch",
                ["records": [["external_ref": "CRM-9", "full_name": "Bo Batch", "source_updated_at": "2026-01-01T00:00:00Z"]]]
            ).get()
            let bo = try #require(batch["results"]?.arrayValue?.first?["id"])
            let cy = try await second.call(.sales, "customer.create", customerParams("cy")).get()
            var orders: [(customer: JSON, order: JSON)] = []
            for (world, customer) in [(first, ada["id"]!), (first, ada["id"]!), (first, bo), (second, cy["id"]!)] {
                let params = orderParams(customer: UUID(uuidString: customer.stringValue!)!)
                orders.append((customer, try await world.call(.sales, "order.create", params).get()))
            }
            func key(_ order: JSON) throws -> String? {
                try Self.rows(db, "SELECT customer_key FROM analytics.orders WHERE order_id = '\(UUID(uuidString: order["id"]!.stringValue!)!)'")
                    .first?["customer_key"]
            }
            let keys = try orders.map { try key($0.order) }
            #expect(keys.allSatisfy { $0 != nil && $0 != "null" && $0!.count == 64 })
            #expect(keys[0] == keys[1], "the same customer's orders share a key")
            #expect(keys[0] != keys[2], "two customers of a group differ")
            #expect(Set(keys).count == 3)
            #expect(!keys.contains { key in orders.contains { $0.customer.stringValue?.replacingOccurrences(of: "-", with: "") == key } })
            // It is the service's keyed MAC, and no other group's key gives it.
            let adaID = UUID(uuidString: ada["id"]!.stringValue!)!
            let expected = CustomerPseudonym.key(cipher: harness.cipher, group: first.fixture.group, customer: adaID)
            #expect(keys[0] == expected.map { String(format: "%02x", $0) }.joined())
            #expect(CustomerPseudonym.key(cipher: harness.cipher, group: second.fixture.group, customer: adaID) != expected)

            // Stable: an update, a key rotation and re-encryption leave it as it was.
            _ = try await first.call(.sales, "customer.update", ["id": ada["id"]!, "version": 1, "full_name": "Ada Renamed"]).get()
            let rotated = try keyring.rotated()
            #expect(CustomerPseudonym.key(cipher: FieldCipher(keyring: rotated), group: first.fixture.group, customer: adaID) == expected)
            let owner = try db.ownerConnection()
            defer { owner.close() }
            _ = try CustomerReencryption.run(connection: owner, cipher: FieldCipher(keyring: rotated))
            #expect(try key(orders[0].order) == keys[0])

            // Rows without one (older than the migration) get the same value from the backfill.
            try owner.query("UPDATE forecourt.customers SET customer_key = NULL")
            #expect(try key(orders[0].order) == "null")
            try AnalystCommand.Backfill.parse([
                "--database-url", db.ownerConnectionString, "--keyring", directory + "/keyring.json", "--batch-size", "2",
            ]).run()
            #expect(try orders.map { try key($0.order) } == keys)
        }
    }

    @Test func forecastIsAbsentBelowItsThresholdAndBracketsKnownDurations() async throws {
        try await withTestDatabase { db in
            let world = try await OrderWorld.make(db)
            let day = 86_400.0
            let now = Date()
            func at(_ date: Date) -> JSON { .string(RFC3339.format(date)) }
            /// A past order scheduled at `start`, at the dealer 25 + i days and delivered 30 + i days later.
            func deliveredHistory(_ i: Int) async throws {
                let order = try await world.newOrder()
                let start = now.addingTimeInterval(-200 * day + Double(i) * day)
                _ = try await world.event(order, "scheduled", at: RFC3339.format(start), ["vin": .string(testVIN(100 + i))]).get()
                _ = try await world.event(order, "at_dealer", at: RFC3339.format(start.addingTimeInterval((25 + Double(i)) * day)), by: .sales).get()
                let delivered = try await world.event(
                    order, "delivered", at: RFC3339.format(start.addingTimeInterval((30 + Double(i)) * day)), by: .sales).get()
                #expect(delivered["forecast"] == .null, "a delivered order has no forecast")
            }
            for i in 0..<19 { try await deliveredHistory(i) }

            // 19 delivered orders: no forecast yet, for the model or the group.
            let early = try await world.newOrder()
            #expect(early["forecast"] == .null)
            let scheduledEarly = try await world.event(early, "scheduled", at: RFC3339.format(now.addingTimeInterval(-3600)), ["vin": .string(testVIN(900))]).get()
            #expect(scheduledEarly["forecast"] == .null)

            try await deliveredHistory(19)
            // 20: an order entering `scheduled` now is forecast from the 20 scheduled-to-delivered
            // times, 30 to 49 days: p50 39.5 days, p90 47.1 days after it entered.
            let entered = now.addingTimeInterval(-3600)
            let order = try await world.newOrder()
            let scheduled = try await world.event(order, "scheduled", at: RFC3339.format(entered), ["vin": .string(testVIN(901))]).get()
            func date(_ offset: Double) -> String { DeliveryForecast.utcDate(entered.addingTimeInterval(offset * day)).description }
            #expect(scheduled["forecast"] == ["p50": .string(date(39.5)), "p90": .string(date(47.1)), "basis": 20])
            let got = try await world.call(.auditor, "order.get", ["id": order["id"]!]).get()
            #expect(got["forecast"] == scheduled["forecast"])
            let factory = try await world.call(.factory, "order.get", ["id": order["id"]!]).get()
            #expect(factory["forecast"] == scheduled["forecast"])
            let listed = try await world.call(.auditor, "order.list", ["stage": "scheduled"]).get()
            #expect(listed["items"]?.arrayValue?.first { $0["id"] == order["id"] }?["forecast"] == scheduled["forecast"])
            let tracked = try await world.call(.portal, "track.lookup", ["vin_last8": .string(String(testVIN(901).suffix(8))), "full_name": "José Müller"]).get()
            #expect(tracked["forecast"] == scheduled["forecast"])
            // The order scheduled before the 20th delivery is forecast now too (read time), but
            // what was recorded for it when it was scheduled stays none.
            let earlyNow = try await world.call(.auditor, "order.get", ["id": early["id"]!]).get()
            #expect(earlyNow["forecast"]?["basis"] == 20)

            // Another model falls back to the whole group's figures.
            let other = try await world.call(.sales, "order.create", {
                guard case .object(var object) = orderParams(customer: world.customer) else { return JSON.null }
                object["model"] = ["code": "EX90", "year": 2027]
                return .object(object)
            }()).get()
            let otherScheduled = try await world.event(other, "scheduled", at: RFC3339.format(entered), ["vin": .string(testVIN(902))]).get()
            #expect(otherScheduled["forecast"] == scheduled["forecast"])

            // It narrows as stages pass: from at_dealer every past order took 5 days.
            let atDealer = try await world.event(order, "at_dealer", at: RFC3339.format(now.addingTimeInterval(-1800)), by: .sales).get()
            let narrowed = DeliveryForecast.utcDate(now.addingTimeInterval(-1800 + 5 * day)).description
            #expect(atDealer["forecast"] == ["p50": .string(narrowed), "p90": .string(narrowed), "basis": 20])

            // Delivered today, inside both dates recorded when it was scheduled.
            _ = try await world.event(order, "delivered", at: RFC3339.format(now), by: .sales).get()
            let accuracy = try Self.rows(db, "SELECT * FROM analytics.forecast_accuracy WHERE dealer_group_id = '\(world.fixture.group)'")
            #expect(accuracy.count == 1)
            #expect(accuracy.first?["delivered_with_forecast"] == "1")
            #expect(accuracy.first?["within_p50"] == "1")
            #expect(accuracy.first?["within_p90"] == "1")
            let recorded = try Self.rows(
                db, "SELECT forecast_p50::text, forecast_p90::text FROM analytics.orders WHERE order_id = '\(UUID(uuidString: order["id"]!.stringValue!)!)'")
            #expect(recorded.first?["forecast_p50"] == date(39.5))
            #expect(recorded.first?["forecast_p90"] == date(47.1))
            let earlyRecorded = try Self.rows(
                db, "SELECT forecast_p50 FROM analytics.orders WHERE order_id = '\(UUID(uuidString: early["id"]!.stringValue!)!)'")
            #expect(earlyRecorded.first?["forecast_p50"] == "null")
        }
    }

    @Test func noPersonalValueWrittenThroughTheAPIAppearsInAnyView() async throws {
        try await withTestDatabase { db in
            let world = try await OrderWorld.make(db)
            let distinctive = [
                "Quillon Vantablack-Oyelaran", "quillon.v.oyelaran@example.net", "+46701234599", "Kvarngatan 77B",
                "Stensjöbacka", "SE-41319", "Gothenburgia",
            ]
            let customer = try await world.call(
                .sales, "customer.create",
                [
                    "full_name": .string(distinctive[0]), "email": .string(distinctive[1]), "phone": .string(distinctive[2]),
                    "address": ["line1": .string(distinctive[3]), "city": .string(distinctive[4]),
                                "postal_code": .string(distinctive[5]), "region": .string(distinctive[6]), "country": "SE"],
                    "notify": ["email": true, "sms": true],
                ]
            ).get()
            let id = UUID(uuidString: customer["id"]!.stringValue!)!
            let order = try await world.call(.sales, "order.create", orderParams(customer: id)).get()
            _ = try await world.event(order, "scheduled", at: "2026-11-01T08:00:00Z", ["note": .string("call \(distinctive[0]) on \(distinctive[2])")]).get()
            let other = try await world.call(.sales, "order.create", orderParams(customer: id)).get()
            _ = try await world.call(.sales, "order.cancel", ["id": other["id"]!, "version": 1, "reason": .string("\(distinctive[0]) moved to \(distinctive[4])")]).get()

            let owner = try db.ownerConnection()
            defer { owner.close() }
            var text = ""
            for view in Self.views {
                for row in try owner.query("SELECT v::text FROM analytics.\(unsafeSQL: view) v").rows {
                    text += try row.decode(0, as: String.self) + "\n"
                }
            }
            #expect(text.contains(order["order_number"]!.stringValue!), "the views hold the orders")
            let haystack = text.lowercased()
            for value in distinctive + ["Quillon", "Oyelaran", "701234599", "Kvarngatan", id.uuidString.lowercased()] {
                #expect(!haystack.contains(value.lowercased()), "\(value) appears in a view")
            }
            // Nor does any stored ciphertext or index, in hex as a view would print it.
            let stored = try owner.query(
                "SELECT encode(full_name, 'hex'), encode(email_bidx, 'hex'), encode(name_bidx, 'hex') FROM forecourt.customers WHERE id = \(id)"
            ).first!
            for column in 0..<3 {
                let hex: String = try stored.decode(column)
                #expect(!haystack.contains(String(hex.prefix(24))))
            }
        }
    }

    @Test func analystLoginsSeeTheirGroupsWhateverTheySet() async throws {
        try await withTestDatabase { db in
            let first = try db.makeGroup(name: "Visible Group")
            let second = try db.makeGroup(name: "Hidden Group")
            let owner = try db.ownerConnection()
            defer { owner.close() }
            let suffix = UUID().uuidString.prefix(8).lowercased()
            let limited = "fc_an_one_\(suffix)", everything = "fc_an_all_\(suffix)", service = "fc_an_svc_\(suffix)"
            for role in [limited, everything, service] { try owner.execute(unsafeSQL: "CREATE ROLE \(role) LOGIN") }
            try owner.execute(unsafeSQL: "GRANT forecourt_app TO \(service)")
            defer { for role in [limited, everything, service] { try? owner.execute(unsafeSQL: "DROP ROLE IF EXISTS \(role)") } }

            // grant: refuses what it must, is idempotent, says what it did.
            #expect(throws: (any Error).self) { try AnalystCommand.grant(on: owner, role: "fc_no_such_role", group: nil) }
            #expect(throws: (any Error).self) { try AnalystCommand.grant(on: owner, role: service, group: nil) }
            #expect(throws: (any Error).self) { try AnalystCommand.grant(on: owner, role: "forecourt_app", group: nil) }
            #expect(throws: (any Error).self) { try AnalystCommand.grant(on: owner, role: limited, group: UUID()) }
            #expect(try AnalystCommand.grant(on: owner, role: limited, group: first.group).hasPrefix("granted forecourt_analyst to \(limited)"))
            #expect(try AnalystCommand.grant(on: owner, role: limited, group: first.group).hasSuffix("nothing changed"))
            #expect(try AnalystCommand.grant(on: owner, role: everything, group: nil).contains("every dealer group"))

            func login(_ role: String) throws -> PostgresConnection {
                try PostgresConnection(connectionString: TestEnvironment.connectionString(database: db.name) + " user=\(role)")
            }
            func groups(_ connection: PostgresConnection) throws -> Set<UUID> {
                var seen = Set<UUID>()
                for view in ["orders", "dealer_kpis", "notification_delivery", "stage_durations"] {
                    for row in try connection.query("SELECT DISTINCT dealer_group_id FROM analytics.\(unsafeSQL: view)").rows {
                        seen.insert(try row.decode(0))
                    }
                }
                return seen
            }
            let analyst = try login(limited)
            defer { analyst.close() }
            #expect(try groups(analyst) == [first.group])
            // Nothing it may set widens it.
            try analyst.execute(unsafeSQL: "SET forecourt.dealer_group_id = '\(second.group.uuidString.lowercased())'")
            _ = try analyst.query("SELECT set_config('forecourt.scope', 'factory', false)")
            #expect(try groups(analyst) == [first.group])
            try analyst.execute(unsafeSQL: "RESET ALL")
            try analyst.execute(unsafeSQL: "SET ROLE forecourt_analyst")
            #expect(try groups(analyst) == [first.group])
            try analyst.execute(unsafeSQL: "RESET ROLE")
            #expect(try groups(analyst) == [first.group])
            #expect(throws: (any Error).self) { try analyst.execute(unsafeSQL: "SET ROLE \(everything)") }
            #expect(throws: (any Error).self) { try analyst.execute(unsafeSQL: "SET SESSION AUTHORIZATION \(everything)") }
            #expect(throws: (any Error).self) { try analyst.query("SELECT count(*) FROM forecourt.orders") }

            let wide = try login(everything)
            defer { wide.close() }
            #expect(try groups(wide) == [first.group, second.group])

            // revoke: idempotent, and the login reads nothing more.
            #expect(try AnalystCommand.revoke(on: owner, role: limited).hasPrefix("revoked forecourt_analyst from \(limited)"))
            #expect(try AnalystCommand.revoke(on: owner, role: limited).hasSuffix("nothing changed"))
            // (Connecting at all is for the service's and the analysts' roles: migration 0006.)
            #expect(throws: (any Error).self) {
                let revoked = try login(limited)
                defer { revoked.close() }
                _ = try revoked.query("SELECT count(*) FROM analytics.orders")
            }
        }
    }
}
