import Customers
import FieldCrypto
import ForecourtCore
import Foundation
import InMemoryLogging
import Logging
import Postgres
import Synchronization
import RPC
import Testing
import TestSupport

/// A full customer's parameters with distinctive values.
func customerParams(_ tag: String, externalRef: String? = nil) -> JSON {
    var object: JSONObject = [
        "full_name": .string("Zebulon Quixley-\(tag)"),
        "email": .string("Zeb.Quixley.\(tag)@Example.ORG"),
        "phone": "+44 20-7946 0958",
        "address": [
            "line1": .string("17 Marmalade Lane \(tag)"), "line2": "Flat 9", "city": "Cambridgeshirebury",
            "region": "Anglia", "postal_code": "CB4 2ZZ", "country": "GB",
        ],
        "notify": ["email": true, "sms": false],
    ]
    if let externalRef { object["external_ref"] = .string(externalRef) }
    return .object(object)
}

/// Follows `customer.changes` from `after` until at least `count` items came (or 15 s
/// passed): a change becomes visible once every transaction older than it has ended, and
/// other tests' transactions run on the same cluster.
func readFeed(
    _ harness: DispatcherHarness, _ session: Session, after: JSON = .null, atLeast count: Int, limit: Int = 50
) async throws -> (items: [JSON], next: JSON) {
    var items: [JSON] = []
    var cursor = after
    let deadline = ContinuousClock.now + .seconds(15)
    while true {
        let params: JSON = cursor == .null ? ["limit": .int(limit)] : ["limit": .int(limit), "after": cursor]
        let page = try await harness.call(session, "customer.changes", params).get()
        items += page["items"]?.arrayValue ?? []
        cursor = page["next"] ?? .null
        if page["has_more"] == true { continue }
        if items.count >= count || ContinuousClock.now > deadline { return (items, cursor) }
        try await Task.sleep(for: .milliseconds(10))
    }
}

@Suite struct CustomerTests {
    @Test func createGetUpdate() async throws {
        try await withTestDatabase { db in
            let fixture = try db.makeGroup()
            let harness = DispatcherHarness(db)
            let sales = try await harness.session(authenticatedWith: fixture.key(.sales))
            let created = try await harness.call(sales, "customer.create", customerParams("a", externalRef: "CRM-1")).get()
            #expect(created["full_name"] == "Zebulon Quixley-a")
            #expect(created["email"] == "zeb.quixley.a@example.org")
            #expect(created["phone"] == "+442079460958")
            #expect(created["address"]?["city"] == "Cambridgeshirebury")
            #expect(created["notify"]?["email"] == true)
            #expect(created["version"] == 1)
            #expect(created["erased"] == false)
            #expect(created["dealer_group_id"] == fixture.group.json)
            let id = try #require(created["id"])
            #expect(try await harness.call(sales, "customer.get", ["id": id]).get() == created)

            // Partial: only the city and the SMS opt-in change.
            let updated = try await harness.call(
                sales, "customer.update", ["id": id, "version": 1, "address": ["city": "Ely"], "notify": ["sms": true]]
            ).get()
            #expect(updated["version"] == 2)
            #expect(updated["address"]?["city"] == "Ely")
            #expect(updated["address"]?["line1"] == "17 Marmalade Lane a")
            #expect(updated["notify"]?["email"] == true)
            #expect(updated["notify"]?["sms"] == true)
            #expect(updated["full_name"] == "Zebulon Quixley-a")
            // Stale.
            expectFailure(await harness.call(sales, "customer.update", ["id": id, "version": 1, "phone": .null]), code: -32004)
            // The same values again (email in another case normalises the same): no new version.
            let same = try await harness.call(
                sales, "customer.update", ["id": id, "version": 2, "email": "ZEB.QUIXLEY.A@example.org", "address": ["city": "Ely"]]
            ).get()
            #expect(same["version"] == 2)
            // Clearing is a change.
            let cleared = try await harness.call(sales, "customer.update", ["id": id, "version": 2, "phone": .null, "address": .null]).get()
            #expect(cleared["version"] == 3)
            #expect(cleared["phone"] == .null)
            #expect(cleared["address"]?["line1"] == .null)
            #expect(try await harness.call(sales, "customer.get", ["id": id]).get() == cleared)

            // external_ref is unique per group; the message names nothing.
            let other = try await harness.call(sales, "customer.create", customerParams("b", externalRef: "CRM-2")).get()
            let taken = await harness.call(sales, "customer.update", ["id": other["id"]!, "version": 1, "external_ref": "CRM-1"])
            expectFailure(taken, code: -32004)
            expectFailure(await harness.call(sales, "customer.create", customerParams("c", externalRef: "CRM-1")), code: -32004)
            // The same ref in another group is fine, and the first group's customer is invisible there.
            let otherGroup = try db.makeGroup(name: "Other")
            let otherSales = try await harness.session(authenticatedWith: otherGroup.key(.sales))
            _ = try await harness.call(otherSales, "customer.create", customerParams("d", externalRef: "CRM-1")).get()
            expectFailure(await harness.call(otherSales, "customer.get", ["id": id]), code: -32003)

            // Every mutation and every read is audited, without personal data.
            let owner = try db.ownerConnection()
            defer { owner.close() }
            let methods = try owner.query(
                "SELECT method FROM forecourt.audit_log WHERE dealer_group_id = \(fixture.group) AND object_type = 'customer' ORDER BY seq"
            ).rows.map { try $0.decode(0, as: String.self) }
            #expect(methods == ["customer.create", "customer.get", "customer.update", "customer.update", "customer.get", "customer.create"])
        }
    }

    @Test func validationNamesTheFieldAndNeverTheValue() async throws {
        try await withTestDatabase { db in
            let fixture = try db.makeGroup()
            let harness = DispatcherHarness(db)
            let admin = try await harness.session(authenticatedWith: fixture.key(.groupAdmin))
            let cases: [(JSON, String)] = [
                (["email": "a@example.org"], "full_name"),
                (["full_name": "   "], "full_name"),
                (["full_name": "Ann", "email": "secret-value@nodot"], "email"),
                (["full_name": "Ann", "email": "a@b@example.org"], "email"),
                (["full_name": "Ann", "phone": "020 7946 0958"], "phone"),
                (["full_name": "Ann", "phone": "+44 abc"], "phone"),
                (["full_name": "Ann", "address": ["line1": .string(String(repeating: "x", count: 201))]], "address.line1"),
                (["full_name": "Ann", "address": ["planet": "Mars"]], "address.planet"),
                (["full_name": "Ann", "notify": ["email": "yes"]], "notify.email"),
                (["full_name": .string(String(repeating: "n", count: 201))], "full_name"),
                (["full_name": "Ann", "shoe_size": 9], "shoe_size"),
            ]
            for (params, field) in cases {
                let result = await harness.call(admin, "customer.create", params)
                expectFailure(result, code: -32602, field: field, "\(params)")
                if case .failure(let error) = result {
                    #expect(!error.message.contains("secret-value"))
                    #expect(!error.message.contains("7946"))
                }
            }
            // A batch: the first bad record is named, and a repeated external_ref too.
            let good: JSON = ["external_ref": "R1", "full_name": "Ann", "source_updated_at": "2026-12-01T10:00:00Z"]
            let badEmail: JSON = ["external_ref": "R2", "full_name": "Bo", "email": "no", "source_updated_at": "2026-12-01T10:00:00Z"]
            expectFailure(
                await harness.call(admin, "customer.upsert_batch", ["records": [good, good, badEmail]]), code: -32602,
                field: "records[1].external_ref")
            expectFailure(
                await harness.call(admin, "customer.upsert_batch", ["records": [good, badEmail]]), code: -32602,
                field: "records[1].email")
            expectFailure(
                await harness.call(admin, "customer.upsert_batch", ["records": [["external_ref": "R3", "full_name": "Cy"]]]),
                code: -32602, field: "records[0].source_updated_at")
            expectFailure(await harness.call(admin, "customer.upsert_batch", ["records": []]), code: -32602, field: "records")
            // find takes exactly one key.
            expectFailure(await harness.call(admin, "customer.find", [:]), code: -32602)
            expectFailure(await harness.call(admin, "customer.find", ["email": "a@example.org", "phone": "+442079460958"]), code: -32602)
            expectFailure(await harness.call(admin, "customer.find", ["email": "nope"]), code: -32602, field: "email")
            // Nothing of it was written.
            let owner = try db.ownerConnection()
            defer { owner.close() }
            #expect(try owner.query("SELECT count(*) FROM forecourt.customers").first?.decode(0, as: Int.self) == 0)
            // update: full_name cannot be cleared.
            let created = try await harness.call(admin, "customer.create", ["full_name": "Ann"]).get()
            expectFailure(
                await harness.call(admin, "customer.update", ["id": created["id"]!, "version": 1, "full_name": .null]),
                code: -32602, field: "full_name")
        }
    }

    @Test func rolesFollowTheContract() async throws {
        try await withTestDatabase { db in
            let fixture = try db.makeGroup()
            let harness = DispatcherHarness(db)
            var id: JSON = .null
            for role in [Role.groupAdmin, .dealerManager, .sales, .crmSync] {
                let session = try await harness.session(authenticatedWith: fixture.key(role))
                let created = await harness.call(session, "customer.create", ["full_name": .string("By \(role.rawValue)")])
                #expect(throws: Never.self, "\(role)") { try created.get() }
                id = (try? created.get())?["id"] ?? id
            }
            let auditor = try await harness.session(authenticatedWith: fixture.key(.auditor))
            await #expect(throws: Never.self) { try await harness.call(auditor, "customer.get", ["id": id]).get() }
            await #expect(throws: Never.self) { try await harness.call(auditor, "customer.changes", [:]).get() }
            expectFailure(await harness.call(auditor, "customer.create", ["full_name": "No"]), code: -32002)
            expectFailure(await harness.call(auditor, "customer.erase", ["id": id]), code: -32002)
            for role in [Role.factory, .portal] {
                let session = try await harness.session(authenticatedWith: fixture.key(role))
                expectFailure(await harness.call(session, "customer.get", ["id": id]), code: -32002, "\(role)")
                expectFailure(await harness.call(session, "customer.find", ["external_ref": "x"]), code: -32002, "\(role)")
            }
        }
    }

    @Test func findByBlindIndexes() async throws {
        try await withTestDatabase { db in
            let fixture = try db.makeGroup()
            let harness = DispatcherHarness(db)
            let crm = try await harness.session(authenticatedWith: fixture.key(.crmSync))
            let a = try await harness.call(crm, "customer.create", customerParams("a", externalRef: "EXT-A")).get()
            let b = try await harness.call(crm, "customer.create", ["full_name": "Bea", "phone": "+49 30 1234567"]).get()
            let byEmail = try await harness.call(crm, "customer.find", ["email": "  ZEB.quixley.A@example.org "]).get()
            #expect(byEmail["items"]?.arrayValue?.map { $0["id"] } == [a["id"]])
            let byPhone = try await harness.call(crm, "customer.find", ["phone": "0049-30-123 4567"]).get()
            #expect(byPhone["items"]?.arrayValue?.map { $0["id"] } == [b["id"]])
            let byRef = try await harness.call(crm, "customer.find", ["external_ref": "EXT-A"]).get()
            #expect(byRef["items"]?.arrayValue == [a])
            let none = try await harness.call(crm, "customer.find", ["email": "nobody@example.org"]).get()
            #expect(none["items"]?.arrayValue == [])
            // Another group with the same email finds only its own.
            let other = try db.makeGroup(name: "Other")
            let otherCRM = try await harness.session(authenticatedWith: other.key(.crmSync))
            let theirs = try await harness.call(otherCRM, "customer.find", ["email": "zeb.quixley.a@example.org"]).get()
            #expect(theirs["items"]?.arrayValue == [])
        }
    }

    @Test func upsertBatchOutcomes() async throws {
        try await withTestDatabase { db in
            let fixture = try db.makeGroup()
            let harness = DispatcherHarness(db)
            let crm = try await harness.session(authenticatedWith: fixture.key(.crmSync))
            func record(_ ref: String, _ name: String, _ at: String, email: String? = nil) -> JSON {
                var object: JSONObject = ["external_ref": .string(ref), "full_name": .string(name), "source_updated_at": .string(at)]
                if let email { object["email"] = .string(email) }
                return .object(object)
            }
            let first = try await harness.call(
                crm, "customer.upsert_batch",
                ["records": [record("A", "Ann", "2026-12-01T10:00:00Z", email: "ann@example.org"), record("B", "Bo", "2026-12-01T10:00:00Z")]]
            ).get()
            #expect(first["results"]?.arrayValue?.map { $0["outcome"] } == ["created", "created"])
            #expect(first["results"]?.arrayValue?.map { $0["external_ref"] } == ["A", "B"])
            let idA = try #require(first["results"]?.arrayValue?.first?["id"])

            let second = try await harness.call(
                crm, "customer.upsert_batch",
                [
                    "records": [
                        record("A", "Ann", "2026-12-01T11:00:00Z", email: "ANN@example.org"),  // same content: unchanged
                        record("B", "Bo Changed", "2026-11-30T10:00:00Z"),  // older than stored: stale, checked first
                        record("C", "Cy", "2026-12-01T10:00:00Z"),
                    ]
                ]
            ).get()
            #expect(second["results"]?.arrayValue?.map { $0["outcome"] } == ["unchanged", "stale", "created"])
            #expect(second["results"]?.arrayValue?[0]["id"] == idA)
            let b = try await harness.call(crm, "customer.find", ["external_ref": "B"]).get()
            #expect(b["items"]?.arrayValue?.first?["full_name"] == "Bo")
            #expect(b["items"]?.arrayValue?.first?["version"] == 1)

            let third = try await harness.call(
                crm, "customer.upsert_batch",
                ["records": [record("A", "Ann Other", "2026-12-01T12:00:00Z"), record("B", "Bo", "2026-12-01T10:00:00Z")]]
            ).get()
            #expect(third["results"]?.arrayValue?.map { $0["outcome"] } == ["updated", "unchanged"])
            let a = try await harness.call(crm, "customer.get", ["id": idA]).get()
            #expect(a["full_name"] == "Ann Other")
            #expect(a["email"] == .null)  // a record is the whole state
            #expect(a["version"] == 2)

            // A bad record fails the batch and writes nothing, not even the good records before it.
            let owner = try db.ownerConnection()
            defer { owner.close() }
            let before = try owner.query("SELECT count(*), sum(version) FROM forecourt.customers").first
            let failed = await harness.call(
                crm, "customer.upsert_batch",
                ["records": [record("A", "Changed Again", "2026-12-02T12:00:00Z"), record("D", "Di", "2026-12-02T12:00:00Z", email: "x")]])
            expectFailure(failed, code: -32602, field: "records[1].email")
            let after = try owner.query("SELECT count(*), sum(version) FROM forecourt.customers").first
            #expect(try before?.decode(0, as: Int.self) == after?.decode(0, as: Int.self))
            #expect(try before?.decode(1, as: Int.self) == after?.decode(1, as: Int.self))
            // Audit: one row per created or updated customer.
            let audited = try owner.query(
                "SELECT count(*) FROM forecourt.audit_log WHERE method = 'customer.upsert_batch'"
            ).first?.decode(0, as: Int.self)
            #expect(audited == 4)
        }
    }

    /// A full batch of 1000, twice: the second is all unchanged.
    @Test func upsertBatchOfAThousand() async throws {
        try await withTestDatabase { db in
            let fixture = try db.makeGroup()
            let harness = DispatcherHarness(db)
            let crm = try await harness.session(authenticatedWith: fixture.key(.crmSync))
            let records: [JSON] = (0..<1000).map { i in
                [
                    "external_ref": .string("K\(i)"), "full_name": .string("Person \(i)"),
                    "email": .string("p\(i)@example.org"), "phone": .string("+4420794\(String(format: "%05d", i))"),
                    "address": ["line1": .string("\(i) High St"), "city": "Leeds"],
                    "source_updated_at": "2026-12-01T10:00:00Z",
                ]
            }
            let first = try await harness.call(crm, "customer.upsert_batch", ["records": .array(records)]).get()
            #expect(first["results"]?.arrayValue?.allSatisfy { $0["outcome"] == "created" } == true)
            let second = try await harness.call(crm, "customer.upsert_batch", ["records": .array(records)]).get()
            #expect(second["results"]?.arrayValue?.allSatisfy { $0["outcome"] == "unchanged" } == true)
            let found = try await harness.call(crm, "customer.find", ["email": "p999@example.org"]).get()
            #expect(found["items"]?.arrayValue?.first?["address"]?["line1"] == "999 High St")
        }
    }

    @Test func nothingInClearAtRest() async throws {
        try await withTestDatabase { db in
            let fixture = try db.makeGroup()
            let harness = DispatcherHarness(db)
            let crm = try await harness.session(authenticatedWith: fixture.key(.crmSync))
            let distinctive = ["Xanthippe Vorobyeva", "xanthippe.v@qqzx-mail.example", "+61491570156", "Wombatwhistle Road", "Quokkaville", "QX9 7ZZ"]
            let created = try await harness.call(
                crm, "customer.create",
                [
                    "full_name": .string(distinctive[0]), "email": .string(distinctive[1]), "phone": .string(distinctive[2]),
                    "address": ["line1": .string(distinctive[3]), "city": .string(distinctive[4]), "postal_code": .string(distinctive[5])],
                    "notify": ["email": true, "sms": true],
                ]
            ).get()
            // An order for them queues notifications: the outbox is in the dump too.
            let sales = try await harness.session(authenticatedWith: fixture.key(.sales))
            let customerID = try #require(created["id"]?.stringValue.flatMap(UUID.init(uuidString:)))
            _ = try await harness.call(sales, "order.create", orderParams(customer: customerID)).get()
            _ = try await harness.call(
                crm, "customer.upsert_batch",
                ["records": [["external_ref": "Z1", "full_name": .string(distinctive[0]), "email": .string(distinctive[1]), "source_updated_at": "2026-12-01T10:00:00Z"]]]
            ).get()
            _ = try await harness.call(crm, "customer.update", ["id": created["id"]!, "version": 1, "address": ["line2": .string(distinctive[3])]]).get()
            _ = try await harness.call(crm, "customer.changes", [:]).get()

            // Every row of every table of the schema, as text (bytea shows as hex).
            let owner = try db.ownerConnection()
            defer { owner.close() }
            let tables = try owner.query(
                "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables WHERE schemaname = 'forecourt'"
            ).rows.map { try $0.decode(0, as: String.self) }
            var everything = ""
            for table in tables {
                for row in try owner.query(PostgresQuery(unsafeSQL: "SELECT t::text FROM \(table) t")).rows {
                    everything += try row.decode(0, as: String.self) + "\n"
                }
            }
            #expect(everything.contains(created["id"]!.stringValue!))  // the dump did see the customer
            let queued = try owner.query("SELECT count(*) FROM forecourt.notifications").first?.decode(0, as: Int.self)
            #expect((queued ?? 0) > 0)  // and notifications
            // And pg_dump of the whole database, as an operator's backup would be.
            everything += try await pgDump(db.ownerConnectionString)
            for value in distinctive {
                let lowered = value.lowercased()
                let hex = Array(value.utf8).hexString
                #expect(!everything.lowercased().contains(lowered), "\(value) in clear")
                #expect(!everything.lowercased().contains(hex), "\(value) as hex")
            }
        }
    }

    /// Every log line of customer calls, at the most verbose level, successes and failures
    /// alike, holds none of the personal values sent.
    @Test func noPersonalDataInLogLines() async throws {
        try await withTestDatabase { db in
            let fixture = try db.makeGroup()
            let logs = InMemoryLogHandler()
            var logger = Logger(label: "test") { _ in logs }
            logger.logLevel = .trace
            let harness = DispatcherHarness(db, logger: logger)
            let crm = try await harness.session(authenticatedWith: fixture.key(.crmSync))
            let secrets = ["Quillon Vexmoor", "quillon.vexmoor@example.net", "+442079460123", "9 Zephyr Close"]
            let created = try await harness.call(
                crm, "customer.create",
                ["full_name": .string(secrets[0]), "email": .string(secrets[1]), "phone": .string(secrets[2]),
                 "address": ["line1": .string(secrets[3])]]).get()
            _ = try await harness.call(crm, "customer.find", ["email": .string(secrets[1])]).get()
            _ = await harness.call(crm, "customer.update", ["id": created["id"]!, "version": 1, "email": .string("not-an-email " + secrets[0])])
            _ = await harness.call(
                crm, "customer.upsert_batch",
                ["records": [["external_ref": "L1", "full_name": .string(secrets[0]), "phone": .string("0 " + secrets[2] + "x"), "source_updated_at": "2026-12-01T10:00:00Z"]]])
            _ = await harness.call(crm, "customer.erase", ["id": created["id"]!])
            let lines = logs.entries.map { entry in
                "\(entry.level) \(entry.message) \(entry.metadata) \(entry.error.map { String(describing: $0) } ?? "")"
            }
            let text = lines.joined(separator: "\n")
            #expect(lines.count >= 5)  // one line per call at least: the check reads real output
            for secret in secrets {
                #expect(!text.localizedCaseInsensitiveContains(secret), "\(secret) in a log line")
            }
        }
    }

    @Test func equalValuesGiveDifferentCiphertextsAndCopiesDoNotOpen() async throws {
        try await withTestDatabase { db in
            let fixture = try db.makeGroup()
            let harness = DispatcherHarness(db)
            let sales = try await harness.session(authenticatedWith: fixture.key(.sales))
            let a = try await harness.call(sales, "customer.create", ["full_name": "Twin", "email": "twin@example.org"]).get()
            let b = try await harness.call(sales, "customer.create", ["full_name": "Twin", "email": "twin@example.org"]).get()
            let idA = try #require(UUID(uuidString: a["id"]?.stringValue ?? ""))
            let idB = try #require(UUID(uuidString: b["id"]?.stringValue ?? ""))
            let owner = try db.ownerConnection()
            defer { owner.close() }
            func column(_ name: String, _ id: UUID) throws -> [UInt8]? {
                try owner.query(PostgresQuery(unsafeSQL: "SELECT \(name) FROM forecourt.customers WHERE id = $1", bindings: {
                    var b = PostgresBindings(); b.append(id); return b
                }())).first?.decode(0, as: [UInt8]?.self)
            }
            let emailA = try #require(try column("email", idA))
            let emailB = try #require(try column("email", idB))
            #expect(emailA != emailB)
            #expect(try column("full_name", idA) != column("full_name", idB))
            // The blind index is what equality leaks, by design.
            #expect(try column("email_bidx", idA) == column("email_bidx", idB))

            // B's email envelope copied into A: A no longer opens, and says so.
            try owner.query("UPDATE forecourt.customers SET email = \(emailB) WHERE id = \(idA)")
            let swapped = await harness.call(sales, "customer.get", ["id": a["id"]!])
            expectFailure(swapped, code: -32603)
            if case .failure(let error) = swapped { #expect(!error.message.contains("twin")) }
            // A's name envelope into its own email column: also refused (the column is bound).
            let nameA = try #require(try column("full_name", idA))
            try owner.query("UPDATE forecourt.customers SET email = \(nameA) WHERE id = \(idA)")
            expectFailure(await harness.call(sales, "customer.get", ["id": a["id"]!]), code: -32603)
            // B is untouched.
            #expect(try await harness.call(sales, "customer.get", ["id": b["id"]!]).get()["email"] == "twin@example.org")
        }
    }

    @Test func rotateThenReencrypt() async throws {
        try await withTestDatabase { db in
            let fixture = try db.makeGroup()
            let old = FieldCipher(keyring: .generate())
            let before = DispatcherHarness(db, cipher: old)
            let crm = try await before.session(authenticatedWith: fixture.key(.crmSync))
            var records: [JSON] = []
            for i in 0..<30 {
                records.append([
                    "external_ref": .string("R\(i)"), "full_name": .string("Rotated \(i)"), "email": .string("r\(i)@example.org"),
                    "phone": .string("+3361234\(String(format: "%04d", i))"), "source_updated_at": "2026-12-01T10:00:00Z",
                ])
            }
            _ = try await before.call(crm, "customer.upsert_batch", ["records": .array(records)]).get()
            let erased = try await before.call(crm, "customer.create", ["full_name": "Gone"]).get()
            _ = try await before.call(crm, "customer.erase", ["id": erased["id"]!]).get()

            let rotated = FieldCipher(keyring: try old.keyring.rotated())
            let after = DispatcherHarness(db, cipher: rotated)
            let crm2 = try await after.session(authenticatedWith: fixture.key(.crmSync))
            // Before re-encryption, old rows are readable and findable under the new keyring.
            let found = try await after.call(crm2, "customer.find", ["email": "r7@example.org"]).get()
            #expect(found["items"]?.arrayValue?.first?["full_name"] == "Rotated 7")
            // A write under the new key mixes keys in the table.
            _ = try await after.call(crm2, "customer.create", ["full_name": "New", "email": "new@example.org"]).get()
            // The same content under the new keyring is still recognised as unchanged.
            let again = try await after.call(crm2, "customer.upsert_batch", ["records": .array(Array(records.prefix(3)))]).get()
            #expect(again["results"]?.arrayValue?.map { $0["outcome"] } == ["unchanged", "unchanged", "unchanged"])

            let owner = try db.ownerConnection()
            defer { owner.close() }
            let feedBefore = try owner.query("SELECT max(change_seq) FROM forecourt.customers").first?.decode(0, as: Int.self)
            var lines = 0
            let summary = try CustomerReencryption.run(connection: owner, cipher: rotated, batchSize: 7) { _ in lines += 1 }
            #expect(summary.rewritten == 30)
            #expect(summary.failedIDs.isEmpty)
            #expect(lines == 5)  // 30 rows in batches of 7
            // Nothing left under the old key: neither the key_id column nor any envelope header.
            let oldID = Int32(old.newestKeyID)
            let leftovers = try owner.query(
                """
                SELECT count(*) FROM forecourt.customers c, unnest(ARRAY[full_name, email, phone, address_line1, address_line2,
                    city, region, postal_code, country]) AS e(envelope)
                WHERE e.envelope IS NOT NULL AND substring(e.envelope FROM 2 FOR 4) = int4send(\(oldID))
                """
            ).first?.decode(0, as: Int.self)
            #expect(leftovers == 0)
            #expect(try owner.query("SELECT count(*) FROM forecourt.customers WHERE key_id <> \(Int32(rotated.newestKeyID))").first?.decode(0, as: Int.self) == 0)
            // The feed did not see re-encryption (no new change stamps).
            #expect(try owner.query("SELECT max(change_seq) FROM forecourt.customers").first?.decode(0, as: Int.self) == feedBefore)
            // Resumable: a second run finds nothing to do.
            #expect(try CustomerReencryption.run(connection: owner, cipher: rotated).rewritten == 0)

            // Everyone readable, found by the indexes of the new key, and unchanged by content.
            for i in [0, 13, 29] {
                let items = try await after.call(crm2, "customer.find", ["email": .string("r\(i)@example.org")]).get()["items"]
                #expect(items?.arrayValue?.first?["full_name"] == .string("Rotated \(i)"))
                let byPhone = try await after.call(crm2, "customer.find", ["phone": .string("+3361234\(String(format: "%04d", i))")]).get()
                #expect(byPhone["items"]?.arrayValue?.count == 1)
            }
            let feed = try await readFeed(after, crm2, atLeast: 32, limit: 10)
            #expect(feed.items.count == 32)
            let unchanged = try await after.call(crm2, "customer.upsert_batch", ["records": .array(Array(records.suffix(2)))]).get()
            #expect(unchanged["results"]?.arrayValue?.map { $0["outcome"] } == ["unchanged", "unchanged"])
            // Blind indexes were recomputed: the old key's index of r5 matches nothing any more.
            let oldIndex = old.blindIndex("r5@example.org", group: fixture.group, kind: .email)
            #expect(try owner.query("SELECT count(*) FROM forecourt.customers WHERE email_bidx = \(oldIndex)").first?.decode(0, as: Int.self) == 0)
        }
    }

    @Test func eraseDestroysAndShowsInFeedAndAudit() async throws {
        try await withTestDatabase { db in
            let fixture = try db.makeGroup()
            let harness = DispatcherHarness(db)
            let manager = try await harness.session(authenticatedWith: fixture.key(.dealerManager))
            let created = try await harness.call(manager, "customer.create", customerParams("erase", externalRef: "ER-1")).get()
            let id = try #require(created["id"])
            let erased = try await harness.call(manager, "customer.erase", ["id": id]).get()
            #expect(erased == ["id": id, "erased": true])
            let got = try await harness.call(manager, "customer.get", ["id": id]).get()
            #expect(got["erased"] == true)
            #expect(got["full_name"] == .null)
            #expect(got["email"] == .null)
            #expect(got["external_ref"] == "ER-1")
            #expect(got["version"] == 2)
            // Again: nothing changes.
            _ = try await harness.call(manager, "customer.erase", ["id": id]).get()
            #expect(try await harness.call(manager, "customer.get", ["id": id]).get()["version"] == 2)
            expectFailure(await harness.call(manager, "customer.update", ["id": id, "version": 2, "full_name": "Back"]), code: -32005)
            expectFailure(await harness.call(manager, "customer.erase", ["id": UUID().json]), code: -32003)
            // A sync does not bring it back.
            let sync = try await harness.call(
                manager, "customer.upsert_batch",
                ["records": [["external_ref": "ER-1", "full_name": "Back", "source_updated_at": "2030-01-01T00:00:00Z"]]]
            ).get()
            #expect(sync["results"]?.arrayValue?.first?["outcome"] == "stale")
            let found = try await harness.call(manager, "customer.find", ["email": "zeb.quixley.erase@example.org"]).get()
            #expect(found["items"]?.arrayValue == [])

            let owner = try db.ownerConnection()
            defer { owner.close() }
            let leftovers = try owner.query(
                """
                SELECT num_nonnulls(full_name, email, phone, address_line1, address_line2, city, region, postal_code, country,
                    email_bidx, phone_bidx, name_bidx, content_mac, key_id), erased_at IS NOT NULL
                FROM forecourt.customers WHERE id = \(UUID(uuidString: id.stringValue!)!)
                """
            ).first
            #expect(try leftovers?.decode(0, as: Int.self) == 0)
            #expect(try leftovers?.decode(1, as: Bool.self) == true)
            let audit = try owner.query(
                "SELECT principal_id, outcome FROM forecourt.audit_log WHERE method = 'customer.erase'"
            ).rows
            #expect(audit.count == 1)
            #expect(try audit.first?.decode(0, as: UUID?.self) == fixture.principal(.dealerManager).id)

            let items = try await readFeed(harness, manager, atLeast: 1).items
            #expect(items.count == 1)  // once, at its latest change
            #expect(
                items.first
                    == [
                        "id": id, "external_ref": "ER-1", "erased": true, "version": 2,
                        "origin": fixture.principal(.dealerManager).id.json,
                    ])
        }
    }
}
