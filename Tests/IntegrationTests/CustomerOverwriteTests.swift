import ForecourtCore
import Foundation
import Postgres
import Testing
import TestSupport

@testable import Customers

@Suite struct CustomerOverwriteTests {
    /// `overwrite` is an `INSERT ... ON CONFLICT DO UPDATE` that must only ever update: given
    /// a customer that does not exist, it throws and leaves no row behind.
    @Test func overwriteNeverCreatesACustomer() async throws {
        try await withTestDatabase { db in
            let fixture = try db.makeGroup()
            let harness = DispatcherHarness(db)
            let crypto = CustomerCrypto(cipher: harness.cipher, group: fixture.group)
            let missing = try crypto.seal(CustomerContent(fullName: "Nobody Here"), id: UUID())
            await #expect(throws: DomainError.self) {
                try await harness.database.transaction(.group(fixture.group)) { connection in
                    try CustomerService.overwrite(connection, group: fixture.group, [(missing, Date())], as: .change)
                }
            }
            let owner = try db.ownerConnection()
            defer { owner.close() }
            #expect(try owner.query("SELECT count(*) FROM forecourt.customers WHERE id = \(missing.id)").first?.decode(0, as: Int.self) == 0)

            // An existing customer is overwritten: new content, a new version and a new feed stamp.
            let created = try await harness.wiring.customers.upsertBatch(
                caller: fixture.principal(.crmSync),
                [CustomerUpsertRecord(externalRef: "O1", content: CustomerContent(fullName: "First Name"), sourceUpdatedAt: Date())])
            let id = created[0].id
            let stampBefore = try owner.query("SELECT change_seq FROM forecourt.customers WHERE id = \(id)").first?.decode(0, as: Int.self)
            let replacement = try crypto.seal(CustomerContent(fullName: "Second Name"), id: id)
            try await harness.database.transaction(.group(fixture.group)) { connection in
                try CustomerService.overwrite(connection, group: fixture.group, [(replacement, Date())], as: .change)
            }
            let row = try #require(try owner.query("SELECT version, change_seq FROM forecourt.customers WHERE id = \(id)").first)
            #expect(try row.decode(0, as: Int.self) == 2)
            #expect(try row.decode(1, as: Int.self) != stampBefore)
            let fetched = try await harness.wiring.customers.get(caller: fixture.principal(.crmSync), id: id)
            #expect(fetched.content?.fullName == "Second Name")
        }
    }

    /// Batches racing to create the same `external_ref`s: one creates each customer, the
    /// others find it (after the unique index turned their insert away) and report it
    /// unchanged; no duplicate, no error.
    @Test func concurrentBatchesCreatingTheSameRefs() async throws {
        try await withTestDatabase(maximumConnections: 10) { db in
            let fixture = try db.makeGroup()
            let service = DispatcherHarness(db).wiring.customers
            let crm = fixture.principal(.crmSync)
            let at = Date()
            let records = (0..<300).map { i in
                CustomerUpsertRecord(externalRef: "RACE-\(i)", content: CustomerContent(fullName: "Racer \(i)"), sourceUpdatedAt: at)
            }
            let batches = 4
            let results = try await withThrowingTaskGroup(of: [CustomerUpsertResult].self) { tasks in
                for batch in 0..<batches {
                    // Each batch in its own order, so their inserts interleave.
                    let ordered = batch % 2 == 0 ? records : records.reversed()
                    tasks.addTask { try await service.upsertBatch(caller: crm, ordered) }
                }
                var all: [CustomerUpsertResult] = []
                for try await part in tasks { all += part }
                return all
            }
            #expect(results.count == batches * records.count)
            for (ref, outcomes) in Dictionary(grouping: results, by: \.externalRef) {
                let created = outcomes.filter { $0.outcome == .created }
                #expect(created.count == 1, "\(ref)")
                #expect(outcomes.filter { $0.outcome == .unchanged }.count == batches - 1, "\(ref)")
                #expect(Set(outcomes.map(\.id)).count == 1, "\(ref)")
            }
            let owner = try db.ownerConnection()
            defer { owner.close() }
            let stored = try owner.query(
                "SELECT count(*) FROM forecourt.customers WHERE dealer_group_id = \(fixture.group) AND external_ref LIKE 'RACE-%'"
            ).first?.decode(0, as: Int.self)
            #expect(stored == records.count)
        }
    }
}
