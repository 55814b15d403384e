import FieldCrypto
import ForecourtCore
import Foundation
import Identity
import Postgres
import RPC
import Testing
import TestSupport

/// `scripts/seed` at a tiny size: the data is what the service itself would have written.
@Suite struct SeedScriptTests {
    @Test func seedMakesConsistentOrdersTheServiceReads() async throws {
        try await withTestDatabase { db in
            let run = try await runScript(
                "seed", ["--url", db.ownerConnectionString, "--groups", "2", "--dealers", "2", "--customers", "100",
                         "--orders", "400", "--events", "10", "--seed", "0.25"])
            #expect(run.status == 0, "\(run.output)")
            let summary = try #require(run.jsonLine("seed: "), "\(run.output)")
            #expect(summary["orders"] as? Int == 400)
            let groups = try #require(summary["group_ids"] as? [String]).compactMap(UUID.init(uuidString:))
            #expect(groups.count == 2)

            let owner = try db.ownerConnection()
            defer { owner.close() }
            func count(_ sql: PostgresQuery) throws -> Int { try owner.query(sql).first!.decode(0, as: Int.self) }

            #expect(try count("SELECT count(*) FROM forecourt.orders") == 400)
            #expect(try count("SELECT count(*) FROM forecourt.customers") == 100)
            // About ten events per order, every order with exactly one `ordered` event.
            let events = try count("SELECT count(*) FROM forecourt.order_events")
            #expect((3200...4800).contains(events), "\(events) events")
            #expect(try count(
                "SELECT count(*) FROM forecourt.orders o WHERE (SELECT count(*) FROM forecourt.order_events e WHERE e.order_id = o.id AND e.event = 'ordered') <> 1"
            ) == 0)
            // A realistic mix: delivered history, orders in production, cancellations, holds, late events.
            let stages = Set(try owner.query("SELECT DISTINCT stage FROM forecourt.orders").rows.map { try $0.decode(0, as: String.self) })
            #expect(stages.isSuperset(of: ["delivered", "cancelled"]))
            #expect(stages.count >= 4, "\(stages)")
            #expect(try count("SELECT count(*) FROM forecourt.order_events WHERE late") > 0)
            #expect(try count("SELECT count(*) FROM forecourt.order_events WHERE event = 'hold'") > 0)
            #expect(try count("SELECT count(*) FROM forecourt.order_events WHERE event = 'eta'") > 0)
            // The stage is the last stage event that was not late; shipped orders have a valid VIN.
            #expect(try count(
                """
                SELECT count(*) FROM forecourt.orders o WHERE o.stage <> (
                    SELECT e.event FROM forecourt.order_events e
                    WHERE e.order_id = o.id AND NOT e.late AND e.event IN ('ordered', 'scheduled', 'frame', 'paint', 'trim',
                        'final_inspection', 'shipped', 'at_dealer', 'delivered', 'cancelled')
                    ORDER BY e.occurred_at DESC, e.seq DESC LIMIT 1)
                """) == 0)
            let vins = try owner.query("SELECT vin FROM forecourt.orders WHERE vin IS NOT NULL").rows.map { try $0.decode(0, as: String.self) }
            #expect(!vins.isEmpty)
            #expect(vins.allSatisfy(VIN.isValid))
            #expect(try count(
                "SELECT count(*) FROM forecourt.orders WHERE vin IS NULL AND stage IN ('shipped', 'at_dealer', 'delivered')") == 0)
            // On hold exactly when the last hold or release is a hold; nothing left to deliver.
            #expect(try count(
                """
                SELECT count(*) FROM forecourt.orders o WHERE o.on_hold IS DISTINCT FROM coalesce((
                    SELECT e.event = 'hold' FROM forecourt.order_events e
                    WHERE e.order_id = o.id AND e.event IN ('hold', 'release') ORDER BY e.occurred_at DESC LIMIT 1), false)
                """) == 0)
            #expect(try count("SELECT count(*) FROM forecourt.notifications WHERE status = 'pending'") == 0)

            // The service reads the seeded orders and numbers new ones after them.
            let cipher = FieldCipher(keyring: .generate())
            let harness = DispatcherHarness(db, cipher: cipher)
            let key = APIKey.generate()
            _ = try KeyRecord.insert(
                owner, role: .groupAdmin, group: groups[0], dealer: nil, label: "seed admin", keyHash: key.hash,
                prefix: key.prefix, createdBy: nil)
            let session = try await harness.session(authenticatedWith: key.secret)
            let page = try await harness.call(session, "order.list", ["limit": 20]).get()
            let first = try #require(page["items"]?.arrayValue?.first)
            let id = try #require(first["id"])
            let got = try await harness.call(session, "order.get", ["id": id]).get()
            #expect(got["order_number"] == first["order_number"])
            let timeline = try await harness.call(session, "order.timeline", ["id": id]).get()
            #expect(timeline["events"]?.arrayValue?.first?["event"] == "ordered")
            _ = try await harness.call(session, "order.list", ["delayed": true]).get()

            let dealer = try owner.query(
                "SELECT id, code, next_order_seq FROM forecourt.dealers WHERE dealer_group_id = \(groups[0]) ORDER BY code LIMIT 1"
            ).first!
            let dealerID: UUID = try dealer.decode(0)
            let code: String = try dealer.decode(1)
            let next: Int = try dealer.decode(2)
            #expect(try count("SELECT count(*) FROM forecourt.orders WHERE dealer_id = \(dealerID)") == next - 1)
            let customer = try db.insertTestCustomer(group: groups[0], cipher: cipher, fullName: "Ada Seed")
            let created = try await harness.call(
                session, "order.create", orderParams(customer: customer, dealer: dealerID)).get()
            #expect(created["order_number"]?.stringValue == "\(code)-" + String(format: "%06d", next))
        }
    }

    @Test func seedRefusesBadArguments() async throws {
        let run = try await runScript("seed", ["--url", "host=/nowhere", "--orders", "many"])
        #expect(run.status == 2)
        #expect(run.output.contains("--orders"))
    }
}
