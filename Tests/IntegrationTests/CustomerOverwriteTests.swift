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
}
