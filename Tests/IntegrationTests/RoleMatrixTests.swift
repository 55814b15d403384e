import ForecourtCore
import Foundation
import RPC
import Synchronization
import Testing
import TestSupport

/// Who may do what, as data: every registered method × every role × the object it names, one
/// call each through the real dispatcher on a real database (docs/security.md, "Threats").
///
/// Each cell of `table` is the outcome for an object of the caller's own dealer (or own group
/// where objects have no dealer), of the other dealer of its group, and of another group:
/// `ok/ok/-32003`; one value stands for all three. Callers are the keys of group A (its dealer
/// 0 for dealer roles; the factory key spans every group, the portal key is group A's).
///
/// Besides the written outcomes, two rules are checked for every cell: a refused reference to
/// another group's object is answered exactly as a reference to no object at all (nothing
/// tells that it exists), and a successful answer about another group's object mentions none
/// of that group's ids (the factory aside, which spans every group).
@Suite struct RoleMatrixTests {
    static let roles: [Role] = [.groupAdmin, .dealerManager, .sales, .crmSync, .auditor, .factory, .portal]

    /// A row per method; `order.record_event` has a row per kind of event. Cells: own/sibling/other.
    static let table = """
        method                        group_admin     dealer_manager    sales             crm_sync        auditor         factory         portal
        system.ping                   ok              ok                ok                ok              ok              ok              ok
        rpc.discover                  ok              ok                ok                ok              ok              ok              ok
        session.authenticate          ok              ok                ok                ok              ok              ok              ok
        session.whoami                ok              ok                ok                ok              ok              ok              ok
        key.create                    ok/ok/-32003    ok/-32002/-32002  -32002            -32002          -32002          -32002          -32002
        key.list                      ok              ok                -32002            -32002          ok              -32002          -32002
        key.revoke                    ok/ok/-32003    ok/-32003/-32003  -32002            -32002          -32002          -32002          -32002
        dealer.create                 ok              -32002            -32002            -32002          -32002          -32002          -32002
        dealer.get                    ok/ok/-32003    ok/ok/-32003      ok/ok/-32003      ok/ok/-32003    ok/ok/-32003    -32002          -32002
        dealer.list                   ok              ok                ok                ok              ok              -32002          -32002
        dealer.update                 ok/ok/-32003    -32002            -32002            -32002          -32002          -32002          -32002
        customer.create               ok              ok                ok                ok              -32002          -32002          -32002
        customer.get                  ok/ok/-32003    ok/ok/-32003      ok/ok/-32003      ok/ok/-32003    ok/ok/-32003    -32002          -32002
        customer.update               ok/ok/-32003    ok/ok/-32003      ok/ok/-32003      ok/ok/-32003    -32002          -32002          -32002
        customer.find                 ok              ok                ok                ok              ok              -32002          -32002
        customer.upsert_batch         ok              ok                ok                ok              -32002          -32002          -32002
        customer.changes              ok              ok                ok                ok              ok              -32002          -32002
        customer.erase                ok/ok/-32003    ok/ok/-32003      ok/ok/-32003      ok/ok/-32003    -32002          -32002          -32002
        order.create                  ok/ok/-32003    ok/-32003/-32003  ok/-32003/-32003  -32002          -32002          -32002          -32002
        order.get                     ok/ok/-32003    ok/-32003/-32003  ok/-32003/-32003  ok/ok/-32003    ok/ok/-32003    ok              -32002
        order.list                    ok              ok                ok                ok              ok              ok              -32002
        order.amend                   ok/ok/-32003    ok/-32003/-32003  ok/-32003/-32003  -32002          -32002          -32002          -32002
        order.cancel                  ok/ok/-32003    ok/-32003/-32003  ok/-32003/-32003  -32002          -32002          -32002          -32002
        order.record_event:scheduled  -32002          -32002            -32002            -32002          -32002          ok              -32002
        order.record_event:at_dealer  ok/ok/-32003    ok/-32003/-32003  ok/-32003/-32003  -32002          -32002          ok              -32002
        order.record_event:delivered  ok/ok/-32003    ok/-32003/-32003  ok/-32003/-32003  -32002          -32002          -32002          -32002
        order.timeline                ok/ok/-32003    ok/-32003/-32003  ok/-32003/-32003  ok/ok/-32003    ok/ok/-32003    ok              -32002
        track.lookup                  -32002          -32002            -32002            -32002          -32002          -32002          ok/ok/-32003
        events.subscribe              ok/ok/-32003    ok/-32003/-32003  ok/-32003/-32003  ok/ok/-32003    ok/ok/-32003    ok              -32002
        events.unsubscribe            ok/-32003/-32003 ok/-32003/-32003 ok/-32003/-32003  ok/-32003/-32003 ok/-32003/-32003 ok/-32003/-32003 -32002
        notification.list             ok/ok/-32003    ok/-32003/-32003  ok/-32003/-32003  ok/ok/-32003    ok/ok/-32003    -32002          -32002
        webhook.create                ok              -32002            -32002            -32002          -32002          -32002          -32002
        webhook.list                  ok              -32002            -32002            -32002          -32002          -32002          -32002
        webhook.delete                ok/ok/-32003    -32002            -32002            -32002          -32002          -32002          -32002
        audit.list                    ok              -32002            -32002            -32002          ok              -32002          -32002
        """

    enum Variant: String, CaseIterable, Sendable {
        case own, sibling, other
        /// Ids of no object at all.
        case missing
    }

    /// An outcome: 0 for success, else the error code.
    struct Row {
        let name: String
        let method: String
        let cells: [Role: [Variant: Int]]
    }

    static func parse() throws -> [Row] {
        var rows: [Row] = []
        for line in table.split(separator: "\n").dropFirst() {
            let fields = line.split(whereSeparator: \.isWhitespace).map(String.init)
            guard fields.count == roles.count + 1 else { throw TestSetupError("row \(fields.first ?? "") has \(fields.count) fields") }
            var cells: [Role: [Variant: Int]] = [:]
            for (role, cell) in zip(roles, fields.dropFirst()) {
                let outcomes = try cell.split(separator: "/").map { text -> Int in
                    if text == "ok" { return 0 }
                    guard let code = Int(text) else { throw TestSetupError("bad cell \(cell)") }
                    return code
                }
                guard outcomes.count == 1 || outcomes.count == 3 else { throw TestSetupError("bad cell \(cell)") }
                cells[role] = [.own: outcomes[0], .sibling: outcomes[outcomes.count == 3 ? 1 : 0], .other: outcomes.last!]
            }
            let name = fields[0]
            rows.append(Row(name: name, method: String(name.split(separator: ":").first!), cells: cells))
        }
        return rows
    }

    @Test func everyRegisteredMethodHasARowAndEveryRowAMethod() async throws {
        try await withTestDatabase { db in
            let harness = DispatcherHarness(db)
            let rows = try Self.parse()
            let registered = Set(harness.wiring.registry.names)
            let covered = Set(rows.map(\.method))
            #expect(registered.subtracting(covered).isEmpty, "methods without a row: \(registered.subtracting(covered).sorted())")
            #expect(covered.subtracting(registered).isEmpty, "rows of no method: \(covered.subtracting(registered).sorted())")
            #expect(Set(Self.roles) == Set(Role.allCases), "a column per role")
            #expect(Set(rows.map(\.name)).count == rows.count, "one row per name")
            // The table agrees with what each method declares (the dispatcher's first check).
            for row in rows {
                guard let method = harness.wiring.registry[row.method] else { continue }
                for role in Self.roles where !method.admits(role) {
                    #expect(row.cells[role]?.values.allSatisfy { $0 == -32002 } == true, "\(row.name) as \(role.rawValue)")
                }
            }
        }
    }

    @Test func everyCellHasItsWrittenOutcome() async throws {
        try await withTestDatabase(maximumConnections: 6) { db in
            let world = try await MatrixWorld.make(db)
            var cells = 0
            for row in try Self.parse() {
                let target = try #require(MatrixWorld.targets[row.name], "no target for \(row.name)")
                for role in Self.roles {
                    for variant in [Variant.own, .sibling, .other] {
                        let expected = row.cells[role]![variant]!
                        let (code, response) = try await world.run(row.name, target, role: role, variant: variant)
                        cells += 1
                        #expect(code == expected, "\(row.name) as \(role.rawValue), \(variant.rawValue): \(response)")
                        if variant == .other, code == 0, role != .factory, row.method != "session.authenticate" {
                            let leaked = world.otherGroupIdentifiers.filter { response.contains($0) }
                            #expect(leaked.isEmpty, "\(row.name) as \(role.rawValue) names the other group's \(leaked)")
                        }
                        if variant == .other, expected != 0, target.references {
                            let (missing, answer) = try await world.run(row.name, target, role: role, variant: .missing)
                            #expect(missing == code, "\(row.name) as \(role.rawValue): another group's object (\(code)) vs none (\(missing): \(answer))")
                        }
                    }
                }
            }
            #expect(cells == 35 * 7 * 3)
        }
    }
}

/// Two groups with everything the methods name: for each, dealers (from `makeGroup`), two
/// customers, an order at each dealer with a VIN, a webhook; fresh objects for calls that change them.
struct MatrixWorld {
    typealias Variant = RoleMatrixTests.Variant

    struct Target: Sendable {
        /// Whether the params name an object (so that `missing` means something).
        var references = true
        let params: @Sendable (MatrixWorld, Cell) async throws -> JSON
    }

    /// One call: who calls, about which object, on which connection.
    struct Cell {
        let role: Role
        let variant: Variant
        let session: Session
        /// Whether the role may call the method at all (fresh objects are made only then).
        let admitted: Bool
    }

    struct Side {
        let fixture: GroupFixture
        let admin: Session
        /// Customer 0 and 1, with their external refs and names.
        let customers: [(id: UUID, ref: String, name: String)]
        /// An order at each dealer (index = dealer), with its VIN.
        let orders: [(id: UUID, number: String, vin: String)]
        let webhook: UUID
    }

    let harness: DispatcherHarness
    let a: Side
    let b: Side
    let otherGroupIdentifiers: [String]

    static func make(_ db: TestDatabase) async throws -> MatrixWorld {
        let harness = DispatcherHarness(db)
        var serial = Int.random(in: 0..<900_000)
        func side(_ name: String, plant: Character) async throws -> Side {
            let fixture = try db.makeGroup(name: name)
            let admin = try await harness.session(authenticatedWith: fixture.key(.groupAdmin))
            let factory = try await harness.session(authenticatedWith: fixture.key(.factory))
            var customers: [(UUID, String, String)] = []
            for index in 0..<2 {
                let ref = "crm-\(name)-\(index)-\(UUID().uuidString.prefix(8))"
                let full = "Ada \(name) \(index)"
                let customer = try await harness.call(
                    admin, "customer.create",
                    ["full_name": .string(full), "external_ref": .string(ref), "email": .string("ada\(index)@example.com"),
                     "notify": ["email": true, "sms": false]]
                ).get()
                customers.append((try uuid(customer["id"]), ref, full))
            }
            var orders: [(UUID, String, String)] = []
            for dealer in fixture.dealers {
                let order = try await harness.call(
                    admin, "order.create", orderParams(customer: customers[0].0, dealer: dealer)
                ).get()
                serial += 1
                let vin = testVIN(serial, plant: plant)
                _ = try await harness.call(
                    factory, "order.record_event",
                    ["id": order["id"]!, "event": "scheduled", "occurred_at": .string(RFC3339.format(Date())), "vin": .string(vin)]
                ).get()
                orders.append((try uuid(order["id"]), order["order_number"]?.stringValue ?? "", vin))
            }
            let webhook = try await harness.call(admin, "webhook.create", webhookParams).get()
            return Side(fixture: fixture, admin: admin, customers: customers, orders: orders, webhook: try uuid(webhook["id"]))
        }
        let a = try await side("A", plant: "A")
        let b = try await side("B", plant: "B")
        let bIDs = [b.fixture.group] + b.fixture.dealers + b.customers.map(\.id) + b.orders.map(\.id) + [b.webhook]
        let identifiers = bIDs.map { $0.uuidString.lowercased() } + b.orders.map(\.number) + b.fixture.dealerCodes
        return MatrixWorld(harness: harness, a: a, b: b, otherGroupIdentifiers: identifiers)
    }

    /// Serials of the VINs of fresh orders (plant V: the sides' own orders use A and B).
    static let freshVINs = Atomic<Int>(0)

    static let webhookParams: JSON = [
        "url": "https://sms.example.com/forecourt", "secret": "a-secret-of-enough-length", "kinds": ["shipped"],
    ]

    /// Runs one cell on a connection of its own; returns the outcome (0 or the code) and the answer's text.
    func run(_ name: String, _ target: Target, role: Role, variant: Variant) async throws -> (Int, String) {
        let session = try await harness.session(authenticatedWith: a.fixture.key(role))
        let method = String(name.split(separator: ":").first!)
        let admitted = harness.wiring.registry[method]?.admits(role) ?? false
        let params = try await target.params(self, Cell(role: role, variant: variant, session: session, admitted: admitted))
        switch await harness.call(session, method, params) {
        case .success(let result): return (0, JSONWriter.string(result))
        case .failure(let error): return (error.code, error.description)
        }
    }

    // MARK: the objects a cell names

    func side(_ variant: Variant) -> Side { variant == .other ? b : a }

    /// The caller's dealer (own), the other dealer of its group (sibling), another group's dealer.
    func dealer(_ variant: Variant) -> UUID {
        switch variant {
        case .own: a.fixture.dealers[0]
        case .sibling: a.fixture.dealers[1]
        case .other: b.fixture.dealers[0]
        case .missing: UUID()
        }
    }

    func customer(_ variant: Variant) -> UUID {
        switch variant {
        case .own: a.customers[0].id
        case .sibling: a.customers[1].id
        case .other: b.customers[0].id
        case .missing: UUID()
        }
    }

    func order(_ variant: Variant) -> UUID {
        switch variant {
        case .own: a.orders[0].id
        case .sibling: a.orders[1].id
        case .other: b.orders[0].id
        case .missing: UUID()
        }
    }

    /// A new order at the variant's dealer, when the caller may change orders at all; with a
    /// VIN (as the factory gives one when it schedules the order) for events past `shipped`.
    func freshOrder(_ cell: Cell, withVIN: Bool = false) async throws -> UUID {
        guard cell.admitted, cell.variant != .missing else { return order(cell.variant) }
        let side = side(cell.variant)
        let order = try await harness.call(
            side.admin, "order.create", orderParams(customer: side.customers[0].id, dealer: dealer(cell.variant))
        ).get()
        if withVIN {
            let factory = try await harness.session(authenticatedWith: side.fixture.key(.factory))
            _ = try await harness.call(
                factory, "order.record_event",
                ["id": order["id"]!, "event": "scheduled", "occurred_at": .string(RFC3339.format(Date())),
                 "vin": .string(testVIN(Self.freshVINs.add(1, ordering: .relaxed).newValue, plant: "V"))]
            ).get()
        }
        return try Self.uuid(order["id"])
    }

    func freshCustomer(_ cell: Cell) async throws -> UUID {
        guard cell.admitted, cell.variant != .missing else { return customer(cell.variant) }
        let customer = try await harness.call(side(cell.variant).admin, "customer.create", ["full_name": "Bo Fresh"]).get()
        return try Self.uuid(customer["id"])
    }

    /// A new sales key of the variant's dealer.
    func freshKey(_ cell: Cell) async throws -> UUID {
        guard cell.variant != .missing else { return UUID() }
        guard cell.admitted else { return side(cell.variant).fixture.principal(.sales).id }
        let key = try await harness.call(
            side(cell.variant).admin, "key.create",
            ["role": "sales", "dealer_id": dealer(cell.variant).json, "label": "matrix"]
        ).get()
        return try Self.uuid(key["id"])
    }

    func freshWebhook(_ cell: Cell) async throws -> UUID {
        guard cell.variant != .missing else { return UUID() }
        guard cell.admitted else { return side(cell.variant).webhook }
        return try Self.uuid(try await harness.call(side(cell.variant).admin, "webhook.create", Self.webhookParams).get()["id"])
    }

    func dealerVersion(_ id: UUID) async throws -> Int {
        guard id != a.fixture.dealers[0], id != a.fixture.dealers[1], id != b.fixture.dealers[0] else {
            let side = id == b.fixture.dealers[0] ? b : a
            return try await harness.call(side.admin, "dealer.get", ["id": id.json]).get()["version"]?.intValue ?? 1
        }
        return 1
    }

    static func uuid(_ value: JSON?) throws -> UUID {
        guard let text = value?.stringValue, let id = UUID(uuidString: text) else { throw TestSetupError("no id in \(String(describing: value))") }
        return id
    }

    static func event(_ kind: String) -> Target {
        Target { world, cell in
            ["id": try await world.freshOrder(cell, withVIN: kind != "scheduled").json, "event": .string(kind), "occurred_at": .string(RFC3339.format(Date()))]
        }
    }

    static let none = Target(references: false) { _, _ in [:] }

    static let targets: [String: Target] = [
        "system.ping": none,
        "rpc.discover": none,
        "session.authenticate": Target(references: false) { world, cell in
            ["api_key": .string(world.side(cell.variant).fixture.key(cell.role))]
        },
        "session.whoami": none,
        "key.create": Target { world, cell in
            ["role": "sales", "dealer_id": world.dealer(cell.variant).json, "label": "matrix"]
        },
        "key.list": none,
        "key.revoke": Target { world, cell in ["id": try await world.freshKey(cell).json] },
        "dealer.create": Target(references: false) { _, _ in
            ["code": .string("M" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(9)), "name": "Matrix"]
        },
        "dealer.get": Target { world, cell in ["id": world.dealer(cell.variant).json] },
        "dealer.list": none,
        "dealer.update": Target { world, cell in
            let id = world.dealer(cell.variant)
            return ["id": id.json, "version": .int(try await world.dealerVersion(id)), "name": .string("Renamed \(UUID().uuidString.prefix(4))")]
        },
        "customer.create": Target(references: false) { _, _ in ["full_name": "Cy Matrix", "email": "cy@example.com"] },
        "customer.get": Target { world, cell in ["id": world.customer(cell.variant).json] },
        "customer.update": Target { world, cell in
            ["id": try await world.freshCustomer(cell).json, "version": 1, "full_name": "Bo Renamed"]
        },
        "customer.find": Target { world, cell in
            let ref = cell.variant == .missing ? "no-such-ref" : cell.variant == .sibling ? world.a.customers[1].ref : world.side(cell.variant).customers[0].ref
            return ["external_ref": .string(ref)]
        },
        "customer.upsert_batch": Target { world, cell in
            let ref = cell.variant == .missing ? "no-such-ref-\(UUID().uuidString.prefix(8))" : world.side(cell.variant).customers[0].ref
            // The customer's own name: the record changes nothing that track.lookup relies on.
            let name = cell.variant == .missing ? "Ada Batch" : world.side(cell.variant).customers[0].name
            return ["records": [["external_ref": .string(ref), "full_name": .string(name), "source_updated_at": .string(RFC3339.format(Date()))]]]
        },
        "customer.changes": none,
        "customer.erase": Target { world, cell in ["id": try await world.freshCustomer(cell).json] },
        "order.create": Target { world, cell in
            let customer = cell.variant == .sibling ? world.customer(.own) : world.customer(cell.variant)
            return orderParams(customer: customer, dealer: world.dealer(cell.variant))
        },
        "order.get": Target { world, cell in ["id": world.order(cell.variant).json] },
        "order.list": Target { world, cell in ["dealer_id": world.dealer(cell.variant).json] },
        "order.amend": Target { world, cell in
            ["id": try await world.freshOrder(cell).json, "version": 1, "exterior_color": "Flame Red"]
        },
        "order.cancel": Target { world, cell in
            ["id": try await world.freshOrder(cell).json, "version": 1, "reason": "changed mind"]
        },
        "order.record_event:scheduled": event("scheduled"),
        "order.record_event:at_dealer": event("at_dealer"),
        "order.record_event:delivered": event("delivered"),
        "order.timeline": Target { world, cell in ["id": world.order(cell.variant).json] },
        "track.lookup": Target { world, cell in
            let (vin, name): (String, String) =
                switch cell.variant {
                case .own: (world.a.orders[0].vin, world.a.customers[0].name)
                case .sibling: (world.a.orders[1].vin, world.a.customers[0].name)
                case .other: (world.b.orders[0].vin, world.b.customers[0].name)
                case .missing: (testVIN(999_999, plant: "Z"), "Nobody Atall")
                }
            return ["vin_last8": .string(String(vin.suffix(8))), "full_name": .string(name)]
        },
        "events.subscribe": Target { world, cell in ["dealer_id": world.dealer(cell.variant).json] },
        "events.unsubscribe": Target { world, cell in
            // Own: a subscription of this connection; sibling: of another connection of the
            // group; other: of another group's connection.
            let subscriber: Session? =
                switch cell.variant {
                case .own: cell.admitted ? cell.session : nil
                case .sibling: world.a.admin
                case .other: world.b.admin
                case .missing: nil
                }
            guard let subscriber else { return ["subscription": UUID().json] }
            let subscription = try await world.harness.call(subscriber, "events.subscribe", [:]).get()
            return ["subscription": subscription["subscription"] ?? .null]
        },
        "notification.list": Target { world, cell in ["order_id": world.order(cell.variant).json] },
        "webhook.create": Target(references: false) { _, _ in webhookParams },
        "webhook.list": none,
        "webhook.delete": Target { world, cell in ["id": try await world.freshWebhook(cell).json] },
        "audit.list": none,
    ]
}
