import Customers
import ForecourtCore
import Foundation
import Postgres
import RPC
import Storage
import Testing
import TestSupport

/// What the reader of the feed has seen, shared with the test body.
private actor FeedObserver {
    var latest: [UUID: Int] = [:]
    var problems: [String] = []
    var writersDone = false

    func saw(_ page: CustomerChangePage) {
        var onPage: Set<UUID> = []
        for item in page.items {
            let id = item.customer.id
            if !onPage.insert(id).inserted { problems.append("customer twice on one page") }
            if let previous = latest[id], previous >= item.customer.version {
                problems.append("version \(item.customer.version) after \(previous)")
            }
            latest[id] = item.customer.version
        }
    }

    func finishWriters() { writersDone = true }
}

/// Every customer's version in the group now, read as the owner.
private func finalVersions(_ connectionString: String, group: UUID) throws -> [UUID: Int] {
    let owner = try PostgresConnection(connectionString: connectionString)
    defer { owner.close() }
    var versions: [UUID: Int] = [:]
    for row in try owner.query("SELECT id, version FROM forecourt.customers WHERE dealer_group_id = \(group)").rows {
        versions[try row.decode(0)] = try row.decode(1)
    }
    return versions
}

@Suite struct CustomerFeedTests {
    /// Writers whose transactions take their ids and sequence numbers early and commit late,
    /// out of order, while a reader follows `next`: the reader must end up with every
    /// customer at its final version, each version increasing, never twice on a page.
    @Test func feedMissesNothingUnderConcurrentWriters() async throws {
        try await withTestDatabase(maximumConnections: 12) { db in
            let fixture = try db.makeGroup()
            let harness = DispatcherHarness(db)
            let service = harness.wiring.customers
            let crm = fixture.principal(.crmSync)
            let group = fixture.group
            let seed = (0..<40).map { i in
                CustomerUpsertRecord(
                    externalRef: "F\(i)", content: CustomerContent(fullName: "Feed \(i)"), sourceUpdatedAt: Date())
            }
            let ids = try await service.upsertBatch(caller: crm, seed).map(\.id)
            let observer = FeedObserver()
            let database = harness.database
            let writers = 6

            try await withThrowingTaskGroup(of: Void.self) { tasks in
                // The reader, following `next` with small pages until it has seen every
                // customer at its final version, or gives up 30 s after the writers finished
                // (a missed change is never seen). The clock starts then, not before: how long
                // the writers take depends on the machine's load.
                let ownerConnectionString = db.ownerConnectionString
                tasks.addTask {
                    var cursor: String? = nil
                    var deadline: ContinuousClock.Instant?
                    while deadline.map({ ContinuousClock.now < $0 }) ?? true {
                        let page = try await service.changes(caller: crm, after: cursor, limit: 7)
                        await observer.saw(page)
                        cursor = page.next
                        if page.hasMore { continue }
                        if await observer.writersDone {
                            if deadline == nil { deadline = .now + .seconds(30) }
                            let final = try await offloaded { try finalVersions(ownerConnectionString, group: group) }
                            if await observer.latest == final { return }
                        }
                        try await Task.sleep(for: .milliseconds(5))
                    }
                }
                tasks.addTask {
                    try await withThrowingTaskGroup(of: Void.self) { writerTasks in
                        for writer in 0..<writers {
                            writerTasks.addTask {
                                let mine = ids.enumerated().filter { $0.offset % writers == writer }.map(\.element)
                                for round in 0..<12 {
                                    let id = mine[round % mine.count]
                                    // Sleep after the write: the change's xid and sequence are
                                    // taken, the commit comes later, after others' commits.
                                    let pause = Double.random(in: 0...0.04)
                                    try await database.transaction(.group(group), principal: crm.id) { connection in
                                        try connection.query(
                                            "UPDATE forecourt.customers SET version = version + 1, updated_at = now() WHERE dealer_group_id = \(group) AND id = \(id)"
                                        )
                                        try connection.query("SELECT pg_sleep(\(pause))")
                                    }
                                }
                            }
                        }
                        // And writes through the service, new customers included.
                        writerTasks.addTask {
                            for round in 0..<5 {
                                let batch = (0..<20).map { i in
                                    CustomerUpsertRecord(
                                        externalRef: "N\(round)-\(i)", content: CustomerContent(fullName: "New \(round) \(i)"),
                                        sourceUpdatedAt: Date())
                                }
                                _ = try await service.upsertBatch(caller: crm, batch)
                            }
                        }
                        try await writerTasks.waitForAll()
                    }
                    await observer.finishWriters()
                }
                try await tasks.waitForAll()
            }

            let ownerConnectionString = db.ownerConnectionString
            let expected = try await offloaded { try finalVersions(ownerConnectionString, group: group) }
            #expect(expected.count == 140)
            let seen = await observer.latest
            let missed = expected.filter { seen[$0.key] != $0.value }
            #expect(missed.isEmpty, "\(missed.count) customers not seen at their final version")
            let problems = await observer.problems
            #expect(problems.isEmpty, "\(problems.prefix(3))")
            // Every item carries its origin.
            let page = try await service.changes(caller: crm, after: nil, limit: 5)
            #expect(page.items.allSatisfy { $0.origin == crm.id })
        }
    }

    @Test func feedCursorsAreCheckedAndNextIsNeverNull() async throws {
        try await withTestDatabase { db in
            let fixture = try db.makeGroup()
            let harness = DispatcherHarness(db)
            let crm = try await harness.session(authenticatedWith: fixture.key(.crmSync))
            let empty = try await harness.call(crm, "customer.changes", [:]).get()
            #expect(empty["items"]?.arrayValue == [])
            #expect(empty["has_more"] == false)
            let next = try #require(empty["next"]?.stringValue)
            let created = try await harness.call(crm, "customer.create", ["full_name": "After The Cursor"]).get()
            let items = try await readFeed(harness, crm, after: .string(next), atLeast: 1).items
            #expect(items.map { $0["id"] } == [created["id"]])
            #expect(items.first?["origin"] == fixture.principal(.crmSync).id.json)
            #expect(items.first?["full_name"] == "After The Cursor")
            expectFailure(await harness.call(crm, "customer.changes", ["after": "bm90IGEgY3Vyc29y"]), code: -32602, field: "after")
            // Another group's cursor is refused.
            let other = try db.makeGroup(name: "Other")
            let otherCRM = try await harness.session(authenticatedWith: other.key(.crmSync))
            expectFailure(await harness.call(otherCRM, "customer.changes", ["after": .string(next)]), code: -32602, field: "after")
            expectFailure(await harness.call(crm, "customer.changes", ["limit": 0]), code: -32602, field: "limit")
        }
    }
}
