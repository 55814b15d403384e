import FieldCrypto
import ForecourtCore
import Foundation
import Orders
import Postgres
import RPC
import Testing
import TestSupport

/// The error of a call that should have failed, or a recorded issue.
func failure(_ result: Result<JSON, CallError>, _ comment: Comment? = nil, sourceLocation: SourceLocation = #_sourceLocation) -> CallError? {
    switch result {
    case .success(let value):
        Issue.record("expected an error, got \(value)\(comment.map { " (\($0))" } ?? "")", sourceLocation: sourceLocation)
        return nil
    case .failure(let error):
        return error
    }
}

/// An RFC 3339 time `hours` before now (for rules that compare with the clock).
func ago(hours: Double) -> String { RFC3339.format(Date(timeIntervalSinceNow: -hours * 3600)) }

/// A world for order tests: a group with customers, a harness and sessions per role.
struct OrderWorld {
    let db: TestDatabase
    let fixture: GroupFixture
    let harness: DispatcherHarness
    let customer: UUID
    var sessions: [Role: Session] = [:]

    static func make(_ db: TestDatabase, harness: DispatcherHarness? = nil, name: String = "Müller Motors") async throws -> OrderWorld {
        let fixture = try db.makeGroup(name: name)
        let harness = harness ?? DispatcherHarness(db)
        let customer = try db.insertTestCustomer(group: fixture.group, cipher: harness.cipher, fullName: "José Müller")
        var world = OrderWorld(db: db, fixture: fixture, harness: harness, customer: customer)
        for role in Role.allCases {
            world.sessions[role] = try await harness.session(authenticatedWith: fixture.key(role))
        }
        return world
    }

    func session(_ role: Role) -> Session { sessions[role]! }

    func call(_ role: Role, _ method: String, _ params: JSON = [:]) async -> Result<JSON, CallError> {
        await harness.call(session(role), method, params)
    }

    /// A new order of dealer 0, made by its sales key.
    func newOrder(key: String = UUID().uuidString) async throws -> JSON {
        try await call(.sales, "order.create", orderParams(customer: customer, key: key)).get()
    }

    func event(_ order: JSON, _ event: String, at time: String, by role: Role = .factory, _ extra: JSONObject = [:]) async
        -> Result<JSON, CallError>
    {
        var params: JSONObject = ["id": order["id"] ?? .null, "event": .string(event), "occurred_at": .string(time)]
        params.members.append(contentsOf: extra.members)
        return await call(role, "order.record_event", .object(params))
    }
}

@Suite struct OrderTests {
    @Test func createGetAndNumbers() async throws {
        try await withTestDatabase { db in
            let world = try await OrderWorld.make(db)
            let order = try await world.newOrder()
            #expect(order["order_number"]?.stringValue == "\(world.fixture.dealerCodes[0])-000001")
            #expect(order["stage"] == "ordered")
            #expect(order["version"] == 1)
            #expect(order["dealer_id"] == world.fixture.dealers[0].json)
            #expect(order["customer_id"] == world.customer.json)
            #expect(order["model"] == ["code": "XC40", "year": 2027, "trim": "Plus"])
            #expect(order["options"] == ["TOW", "PANO"])
            #expect(order["delayed"] == false)
            #expect(order["promised_eta"] == .null)
            let byID = try await world.call(.auditor, "order.get", ["id": order["id"]!]).get()
            #expect(byID == order)
            let byNumber = try await world.call(.crmSync, "order.get", ["order_number": order["order_number"]!]).get()
            #expect(byNumber == order)
            // The factory sees the order without its customer.
            let factory = try await world.call(.factory, "order.get", ["id": order["id"]!]).get()
            #expect(factory["customer_id"] == .null)
            #expect(factory["order_number"] == order["order_number"])

            // Without options (an empty array) and without interior colour or trim.
            let second = try await world.call(
                .sales, "order.create",
                ["customer_id": world.customer.json, "model": ["code": "ex30", "year": 2027], "exterior_color": "Moss",
                 "idempotency_key": "plain"]).get()
            #expect(second["order_number"]?.stringValue == "\(world.fixture.dealerCodes[0])-000002")
            #expect(second["options"] == [])
            #expect(second["model"] == ["code": "EX30", "year": 2027, "trim": nil])
            #expect(second["interior_color"] == .null)

            // order_confirmation is queued on the channels the customer opted into (email only).
            let notes = try await world.call(.sales, "notification.list", ["order_id": order["id"]!]).get()
            let items = notes["items"]?.arrayValue ?? []
            #expect(items.count == 1)
            #expect(items.first?["kind"] == "order_confirmation")
            #expect(items.first?["channel"] == "email")
            #expect(items.first?["status"] == "pending")
        }
    }

    @Test func validationNamesTheField() async throws {
        try await withTestDatabase { db in
            let world = try await OrderWorld.make(db)
            let customer = world.customer.json
            let cases: [(JSON, String)] = [
                (["customer_id": customer, "model": ["code": "XC40"], "exterior_color": "Red", "idempotency_key": "a"], "model.year"),
                (["customer_id": customer, "model": ["code": "X C", "year": 2027], "exterior_color": "Red", "idempotency_key": "a"], "model.code"),
                (["customer_id": customer, "model": ["code": "XC40", "year": 2027], "idempotency_key": "a"], "exterior_color"),
                (["customer_id": customer, "model": ["code": "XC40", "year": 2027], "exterior_color": "Red"], "idempotency_key"),
                (["customer_id": customer, "model": ["code": "XC40", "year": 2027], "exterior_color": "Red", "options": ["A", "A"], "idempotency_key": "a"], "options[1]"),
                (["customer_id": customer, "model": ["code": "XC40", "year": 2027], "exterior_color": "Red", "idempotency_key": "a", "colour": "x"], "colour"),
            ]
            for (params, field) in cases {
                guard let error = failure(await world.call(.sales, "order.create", params), "\(field)") else { continue }
                #expect(error.code == -32602)
                #expect(error.field == field)
            }
            // A group admin names the dealer.
            let admin = failure(await world.call(.groupAdmin, "order.create", orderParams(customer: world.customer)))
            #expect(admin?.field == "dealer_id")
            let ok = try await world.call(
                .groupAdmin, "order.create", orderParams(customer: world.customer, dealer: world.fixture.dealers[1])).get()
            #expect(ok["order_number"]?.stringValue == "\(world.fixture.dealerCodes[1])-000001")
        }
    }

    @Test func idempotencyKeyReturnsTheFirstOrder() async throws {
        try await withTestDatabase { db in
            let world = try await OrderWorld.make(db)
            let first = try await world.newOrder(key: "K-1")
            let again = try await world.newOrder(key: "K-1")
            #expect(again["id"] == first["id"])
            #expect(again["order_number"] == first["order_number"])
            let other = failure(await world.call(.sales, "order.create", orderParams(customer: world.customer, key: "K-1", color: "Red")))
            #expect(other?.code == -32004)
            // The failed call took no number.
            let next = try await world.newOrder(key: "K-2")
            #expect(next["order_number"]?.stringValue == "\(world.fixture.dealerCodes[0])-000002")
        }
    }

    @Test func racingDuplicateCreatesMakeOneOrder() async throws {
        try await withTestDatabase(maximumConnections: 8) { db in
            let world = try await OrderWorld.make(db)
            let params = orderParams(customer: world.customer, key: "RACE")
            let ids = try await withThrowingTaskGroup(of: JSON.self) { group in
                for _ in 0..<8 {
                    // Each racer on a session of its own, like separate connections.
                    let session = try await world.harness.session(authenticatedWith: world.fixture.key(.sales))
                    group.addTask { try await world.harness.call(session, "order.create", params).get()["id"] ?? .null }
                }
                var ids: [JSON] = []
                for try await id in group { ids.append(id) }
                return ids
            }
            #expect(ids.count == 8)
            #expect(Set(ids.compactMap(\.stringValue)).count == 1)
            let owner = try db.ownerConnection()
            defer { owner.close() }
            let count: Int = try owner.query("SELECT count(*) FROM forecourt.orders").first!.decode(0)
            #expect(count == 1)
            // The racers took one number between them: the next order has the next one.
            let next = try await world.newOrder(key: "AFTER-RACE")
            #expect(next["order_number"]?.stringValue == "\(world.fixture.dealerCodes[0])-000002")
        }
    }

    @Test func numbersHaveNoGapsAfterFailedCalls() async throws {
        try await withTestDatabase { db in
            let world = try await OrderWorld.make(db)
            _ = try await world.newOrder()
            // An unknown customer fails after the key is claimed; a customer of another group too.
            let unknown = failure(await world.call(.sales, "order.create", orderParams(customer: UUID())))
            #expect(unknown?.code == -32003)
            let other = try await OrderWorld.make(db, harness: world.harness, name: "Other")
            let foreign = failure(await world.call(.sales, "order.create", orderParams(customer: other.customer)))
            #expect(foreign?.code == -32003)
            let next = try await world.newOrder()
            #expect(next["order_number"]?.stringValue == "\(world.fixture.dealerCodes[0])-000002")
            // The failed calls' keys were released with everything else: the same key works now.
        }
    }

    @Test func amendAndCancelFollowTheLifecycle() async throws {
        try await withTestDatabase { db in
            let world = try await OrderWorld.make(db)
            let order = try await world.newOrder()
            let id = order["id"]!
            let amended = try await world.call(
                .sales, "order.amend", ["id": id, "version": 1, "exterior_color": "Red", "interior_color": nil]).get()
            #expect(amended["exterior_color"] == "Red")
            #expect(amended["interior_color"] == .null)
            #expect(amended["version"] == 2)
            #expect(failure(await world.call(.sales, "order.amend", ["id": id, "version": 1, "exterior_color": "Blue"]))?.code == -32004)
            // No real change, no new version.
            let same = try await world.call(.sales, "order.amend", ["id": id, "version": 2, "exterior_color": "Red"]).get()
            #expect(same["version"] == 2)

            _ = try await world.event(order, "scheduled", at: "2026-11-01T08:00:00Z", ["scheduled_week": "2026-W51"]).get()
            #expect(failure(await world.call(.sales, "order.amend", ["id": id, "version": 3, "exterior_color": "Blue"]))?.code == -32005)
            _ = try await world.event(order, "frame", at: "2026-11-02T08:00:00Z").get()
            #expect(failure(await world.call(.sales, "order.cancel", ["id": id, "version": 4, "reason": "changed mind"]))?.code == -32005)

            let second = try await world.newOrder()
            let cancelled = try await world.call(
                .dealerManager, "order.cancel", ["id": second["id"]!, "version": 1, "reason": "customer withdrew"]).get()
            #expect(cancelled["stage"] == "cancelled")
            #expect(failure(await world.event(second, "frame", at: "2026-11-02T08:00:00Z"))?.code == -32005)
            #expect(failure(await world.call(.sales, "order.cancel", ["id": second["id"]!, "version": 2, "reason": "x"]))?.code == -32005)
        }
    }

    @Test func factoryFeedRules() async throws {
        try await withTestDatabase { db in
            let world = try await OrderWorld.make(db)
            let order = try await world.newOrder()
            let scheduled = try await world.event(order, "scheduled", at: "2026-11-01T08:00:00Z", ["scheduled_week": "2026-W51"]).get()
            #expect(scheduled["stage"] == "scheduled")
            #expect(scheduled["scheduled_week"] == "2026-W51")
            #expect(scheduled["customer_id"] == .null)  // the factory's view
            // Skips are allowed.
            let paint = try await world.event(order, "paint", at: "2026-11-03T08:00:00Z").get()
            #expect(paint["stage"] == "paint")
            let version = paint["version"]

            // A late event for an earlier stage is kept, and changes nothing else.
            let late = try await world.event(order, "frame", at: "2026-11-02T08:00:00Z").get()
            #expect(late["stage"] == "paint")
            #expect(late["version"] == version)
            // An exact repeat is a no-op.
            let repeated = try await world.event(order, "paint", at: "2026-11-03T08:00:00Z", ["note": "again"]).get()
            #expect(repeated["version"] == version)
            let timeline = try await world.call(.auditor, "order.timeline", ["id": order["id"]!]).get()
            let events = timeline["events"]?.arrayValue ?? []
            // In occurred_at order: `ordered` was recorded at creation (now), after the feed's past times.
            #expect(events.map { $0["event"]?.stringValue ?? "" } == ["scheduled", "frame", "paint", "ordered"])
            #expect(events.first(where: { $0["event"] == "frame" })?["late"] == true)
            #expect(events.first(where: { $0["event"] == "paint" })?["late"] == false)
            #expect(events.first(where: { $0["event"] == "paint" })?["source"] == "factory")

            // VINs: check digit, allowed stages, required by shipped.
            let badVIN = failure(await world.event(order, "trim", at: "2026-11-04T08:00:00Z", ["vin": "1HGCM82643A004352"]))
            #expect(badVIN?.code == -32602)
            #expect(badVIN?.field == "vin")
            let holdVIN = failure(await world.event(order, "hold", at: "2026-11-04T08:00:00Z", ["vin": "1HGCM82633A004352", "reason": "damage"]))
            #expect(holdVIN?.field == "vin")
            let noVIN = failure(await world.event(order, "shipped", at: "2026-11-05T08:00:00Z"))
            #expect(noVIN?.code == -32602)
            #expect(noVIN?.field == "vin")
            let trim = try await world.event(order, "trim", at: "2026-11-04T08:00:00Z", ["vin": "1hgcm82633a004352"]).get()
            #expect(trim["vin"] == "1HGCM82633A004352")
            let otherVIN = failure(await world.event(order, "final_inspection", at: "2026-11-04T09:00:00Z", ["vin": "1M8GDM9AXKP042788"]))
            #expect(otherVIN?.code == -32004)
            // A VIN is unique across the service.
            let second = try await world.newOrder()
            let taken = failure(await world.event(second, "scheduled", at: "2026-11-04T08:00:00Z", ["vin": "1HGCM82633A004352"]))
            #expect(taken?.code == -32004)

            // Who records what.
            #expect(failure(await world.event(order, "delivered", at: "2026-11-09T08:00:00Z"))?.code == -32002)
            #expect(failure(await world.event(order, "paint", at: "2026-11-09T08:00:00Z", by: .sales))?.code == -32002)
            #expect(failure(await world.event(order, "at_dealer", at: "2026-11-09T08:00:00Z", by: .auditor))?.code == -32002)
            _ = try await world.event(order, "shipped", at: "2026-11-05T08:00:00Z").get()
            _ = try await world.event(order, "at_dealer", at: "2026-11-08T08:00:00Z", by: .sales).get()
            let delivered = try await world.event(order, "delivered", at: "2026-11-09T08:00:00Z", by: .dealerManager).get()
            #expect(delivered["stage"] == "delivered")
            #expect(delivered["customer_id"] == world.customer.json)

            let kinds = Set(
                (try await world.call(.sales, "notification.list", ["order_id": order["id"]!]).get()["items"]?.arrayValue ?? [])
                    .compactMap { $0["kind"]?.stringValue })
            #expect(kinds == ["order_confirmation", "production_scheduled", "vin_assigned", "shipped", "delivered"])
        }
    }

    @Test func holdsETAsAndDelays() async throws {
        try await withTestDatabase { db in
            let world = try await OrderWorld.make(db)
            let order = try await world.newOrder()
            let id = order["id"]!
            #expect(failure(await world.event(order, "hold", at: "2026-11-01T08:00:00Z"))?.field == "reason")
            #expect(failure(await world.event(order, "hold", at: "2026-11-01T08:00:00Z", ["reason": "gremlins"]))?.field == "reason")
            let held = try await world.event(order, "hold", at: "2026-11-01T08:00:00Z", ["reason": "parts_shortage", "note": "seats"]).get()
            #expect(held["on_hold"] == true)
            #expect(held["hold_reason"] == "parts_shortage")
            #expect(held["delayed"] == true)
            let delayedList = try await world.call(.groupAdmin, "order.list", ["delayed": true]).get()
            #expect(delayedList["items"]?.arrayValue?.map { $0["id"] } == [id])
            // A release older than the hold is late: the order stays on hold.
            let stale = try await world.event(order, "release", at: "2026-11-01T07:00:00Z").get()
            #expect(stale["on_hold"] == true)
            let released = try await world.event(order, "release", at: "2026-11-02T08:00:00Z").get()
            #expect(released["on_hold"] == false)
            #expect(released["delayed"] == false)

            let first = try await world.event(order, "scheduled", at: ago(hours: 2), ["eta": "2026-12-14"]).get()
            #expect(first["promised_eta"] == "2026-12-14")
            #expect(first["eta"] == "2026-12-14")
            #expect(failure(await world.event(order, "eta", at: ago(hours: 1), ["eta": "2026-12-21"]))?.field == "reason")
            let later = try await world.event(order, "eta", at: ago(hours: 1), ["eta": "2026-12-21", "reason": "carrier_delay"]).get()
            #expect(later["promised_eta"] == "2026-12-14")
            #expect(later["eta"] == "2026-12-21")
            #expect(later["delayed"] == true)
            let notDelayed = try await world.call(.groupAdmin, "order.list", ["delayed": false]).get()
            #expect(notDelayed["items"]?.arrayValue?.isEmpty == true)

            let timeline = try await world.call(.sales, "order.timeline", ["id": id]).get()["events"]?.arrayValue ?? []
            let revision = timeline.first { $0["event"] == "eta" }
            #expect(revision?["reason"] == "carrier_delay")
            #expect(revision?["eta"] == "2026-12-21")
            #expect(timeline.first { $0["event"] == "hold" }?["note"] == "seats")
            // One delay notification per revision: the hold and the later ETA.
            let delays = (try await world.call(.sales, "notification.list", ["order_id": id]).get()["items"]?.arrayValue ?? [])
                .filter { $0["kind"] == "delay" }
            #expect(delays.count == 2)
        }
    }

    /// A new order's overdue time comes with its INSERT (docs/architecture.md, "Delays"): the
    /// default of `ordered` for a young group, the group's own pace once it has a history (as
    /// computed at most `DelayRule.paceLifetime` ago).
    @Test func newOrdersAreOverdueByTheRuleFromTheStart() async throws {
        try await withTestDatabase { db in
            let world = try await OrderWorld.make(db)
            let owner = try db.ownerConnection()
            defer { owner.close() }
            func overdueDays(_ order: JSON) throws -> Double {
                try owner.query(
                    """
                    SELECT extract(epoch FROM overdue_at - stage_entered_at)::float8 / 86400 FROM forecourt.orders
                    WHERE id = \(UUID(uuidString: order["id"]!.stringValue!)!) AND stage_entered_at = created_at
                    """
                ).first!.decode(0)
            }
            let young = try await world.newOrder()
            #expect(abs(try overdueDays(young) - 14) < 0.01)
            // The group's orders usually wait 20 days to be scheduled: p90 × 1.5 = 30 days.
            let past = try #require(UUID(uuidString: young["id"]?.stringValue ?? ""))
            for _ in 0..<30 {
                try owner.query(
                    """
                    INSERT INTO forecourt.stage_durations (dealer_group_id, stage, order_id, seconds)
                    VALUES (\(world.fixture.group), 'ordered', \(past), 1728000)
                    """)
            }
            // The group's pace of `ordered` was computed for the first order: it serves for a
            // minute (DelayRule.paceLifetime), then the next order computes it again.
            let soon = try await world.newOrder()
            #expect(abs(try overdueDays(soon) - 14) < 0.01)
            try owner.query(
                """
                UPDATE forecourt.stage_paces SET computed_at = computed_at - make_interval(secs => \(DelayRule.paceLifetime + 1))
                WHERE dealer_group_id = \(world.fixture.group)
                """)
            let later = try await world.newOrder()
            #expect(abs(try overdueDays(later) - 30) < 0.01)
        }
    }

    @Test func overdueStagesFollowTheGroupsHistory() async throws {
        try await withTestDatabase { db in
            let world = try await OrderWorld.make(db)
            let owner = try db.ownerConnection()
            defer { owner.close() }
            // The group's frames usually take 10 days; p90 × 1.5 = 15 days beats the 3-day default.
            // (Durations belong to an order of the group: one past order stands for them all.)
            let past = try #require(UUID(uuidString: try await world.newOrder()["id"]?.stringValue ?? ""))
            for _ in 0..<30 {
                try owner.query(
                    """
                    INSERT INTO forecourt.stage_durations (dealer_group_id, stage, order_id, seconds)
                    VALUES (\(world.fixture.group), 'frame', \(past), 864000)
                    """)
            }
            let order = try await world.newOrder()
            _ = try await world.event(order, "frame", at: "2026-11-01T00:00:00Z").get()
            let days: Double = try owner.query(
                "SELECT extract(epoch FROM overdue_at - stage_entered_at)::float8 / 86400 FROM forecourt.orders WHERE id = \(UUID(uuidString: order["id"]!.stringValue!)!)"
            ).first!.decode(0)
            #expect(abs(days - 15) < 0.01)
            // Entered long ago: overdue, so delayed, and found by the delayed filter.
            let reread = try await world.call(.sales, "order.get", ["id": order["id"]!]).get()
            #expect(reread["delayed"] == true)
            let list = try await world.call(.sales, "order.list", ["delayed": true]).get()
            #expect(list["items"]?.arrayValue?.count == 1)
        }
    }

    /// Both halves of the delayed rule, paged: held or late-ETA orders and overdue ones,
    /// newest first, each once (one is both held and overdue), none of the punctual ones.
    @Test func delayedListPagesOverBothHalvesOfTheRule() async throws {
        try await withTestDatabase { db in
            let world = try await OrderWorld.make(db)
            let owner = try db.ownerConnection()
            defer { owner.close() }
            var expected: [JSON] = []
            for index in 0..<9 {
                let order = try await world.newOrder()
                switch index % 3 {
                case 0:
                    _ = try await world.event(order, "hold", at: ago(hours: 1), ["reason": "damage"]).get()
                    expected.append(order["id"]!)
                case 1:
                    try owner.query(
                        "UPDATE forecourt.orders SET overdue_at = now() - interval '1 hour' WHERE id = \(UUID(uuidString: order["id"]!.stringValue!)!)")
                    if index == 4 { _ = try await world.event(order, "hold", at: ago(hours: 1), ["reason": "other"]).get() }
                    expected.append(order["id"]!)
                default:
                    break  // punctual
                }
            }
            var seen: [JSON] = []
            var after: JSON = .null
            repeat {
                let params: JSON = after == .null ? ["delayed": true, "limit": 2] : ["delayed": true, "limit": 2, "after": after]
                let page = try await world.call(.sales, "order.list", params).get()
                seen += page["items"]?.arrayValue?.compactMap { $0["id"] } ?? []
                after = page["next"] ?? .null
            } while after != .null
            #expect(seen == expected.reversed())
            let punctual = try await world.call(.sales, "order.list", ["delayed": false]).get()
            #expect(punctual["items"]?.arrayValue?.count == 3)
        }
    }

    @Test func listPagesNewestFirstWithFilters() async throws {
        try await withTestDatabase { db in
            let world = try await OrderWorld.make(db)
            var created: [JSON] = []
            for _ in 0..<7 { created.append(try await world.newOrder()["id"]!) }
            _ = try await world.call(.groupAdmin, "order.create", orderParams(customer: world.customer, dealer: world.fixture.dealers[1])).get()
            var seen: [JSON] = []
            var after: JSON = .null
            repeat {
                let params: JSON = after == .null ? ["limit": 3, "dealer_id": world.fixture.dealers[0].json]
                    : ["limit": 3, "dealer_id": world.fixture.dealers[0].json, "after": after]
                let page = try await world.call(.groupAdmin, "order.list", params).get()
                seen += page["items"]?.arrayValue?.compactMap { $0["id"] } ?? []
                after = page["next"] ?? .null
                // Concurrent inserts do not disturb the pages already handed out.
                if seen.count == 3 { _ = try await world.newOrder() }
            } while after != .null
            #expect(seen == created.reversed())
            // Sales see only their dealer's orders; asking for another dealer gives nothing.
            let sales = try await world.call(.sales, "order.list", ["limit": 500]).get()
            #expect(sales["items"]?.arrayValue?.count == 8)
            let foreign = try await world.call(.sales, "order.list", ["dealer_id": world.fixture.dealers[1].json]).get()
            #expect(foreign["items"]?.arrayValue?.isEmpty == true)
            let stage = try await world.call(.auditor, "order.list", ["stage": "scheduled"]).get()
            #expect(stage["items"]?.arrayValue?.isEmpty == true)
            #expect(failure(await world.call(.auditor, "order.list", ["after": "forged"]))?.code == -32602)
            #expect(failure(await world.call(.auditor, "order.list", ["limit": 0]))?.code == -32602)
        }
    }

    @Test func otherDealersAndGroupsSeeNothing() async throws {
        try await withTestDatabase { db in
            let world = try await OrderWorld.make(db)
            let other = try await OrderWorld.make(db, harness: world.harness, name: "Other group")
            let mine = try await world.call(
                .groupAdmin, "order.create", orderParams(customer: world.customer, dealer: world.fixture.dealers[1])).get()
            // Dealer 0's sales key and another group's keys: -32003, never -32002.
            for (session, label) in [(world.session(.sales), "other dealer"), (other.session(.groupAdmin), "other group"),
                                     (other.session(.auditor), "other auditor")] {
                let get = failure(await world.harness.call(session, "order.get", ["id": mine["id"]!]), "\(label)")
                #expect(get?.code == -32003, "\(label)")
                let byNumber = failure(await world.harness.call(session, "order.get", ["order_number": mine["order_number"]!]))
                #expect(byNumber?.code == -32003, "\(label)")
                #expect(failure(await world.harness.call(session, "order.timeline", ["id": mine["id"]!]))?.code == -32003)
                #expect(failure(await world.harness.call(session, "notification.list", ["order_id": mine["id"]!]))?.code == -32003)
            }
            #expect(failure(await world.call(.sales, "order.cancel", ["id": mine["id"]!, "version": 1, "reason": "x"]))?.code == -32003)
            #expect(failure(await world.event(mine, "at_dealer", at: "2026-11-01T00:00:00Z", by: .sales))?.code == -32003)
            #expect(failure(await other.event(mine, "at_dealer", at: "2026-11-01T00:00:00Z", by: .groupAdmin))?.code == -32003)
            let otherList = try await other.call(.groupAdmin, "order.list", [:]).get()
            #expect(otherList["items"]?.arrayValue?.isEmpty == true)
            // The factory sees every group's orders.
            let factory = try await other.call(.factory, "order.get", ["id": mine["id"]!]).get()
            #expect(factory["id"] == mine["id"])
            // Dealer roles may not create for another dealer.
            let cross = failure(await world.call(.sales, "order.create", orderParams(customer: world.customer, dealer: world.fixture.dealers[1])))
            #expect(cross?.code == -32003)
        }
    }

    @Test func auditListShowsStateChanges() async throws {
        try await withTestDatabase { db in
            let world = try await OrderWorld.make(db)
            let order = try await world.newOrder()
            _ = try await world.event(order, "scheduled", at: "2026-11-01T08:00:00Z").get()
            var methods: [String] = []
            var after: JSON = .null
            repeat {
                let page = try await world.call(.auditor, "audit.list", after == .null ? ["limit": 1] : ["limit": 1, "after": after]).get()
                for item in page["items"]?.arrayValue ?? [] {
                    methods.append(item["method"]?.stringValue ?? "")
                    #expect(item["object_id"] == order["id"])
                    #expect(item["principal_id"] != .null)
                }
                after = page["next"] ?? .null
            } while after != .null
            #expect(methods == ["order.create", "order.record_event"])
            #expect(failure(await world.call(.sales, "audit.list"))?.code == -32002)
        }
    }
}
