import Foundation
import Postgres
import Testing
import TestSupport

@testable import Delivery

extension DeliveryIntegrationTests {
    /// A claim takes at most its batch, once: the pick runs once, not once per pending row
    /// (docs/performance.md, "Where the time goes").
    @Suite struct DeliveryClaimTests {
        @Test func aClaimTakesAtMostItsBatch() async throws {
            try await withTestDatabase(maximumConnections: 4) { db in
                let world = try await DeliveryWorld.make(db)
                let customer = try await world.customer()
                for _ in 0..<30 { _ = try await world.order(for: customer) }
                let pending = try await notificationRows(db).filter { $0.status == "pending" }
                #expect(pending.count >= 30)
                let instance = UUID()
                let queue = DeliveryQueue(database: world.harness.database, instance: instance)
                let claimed = try await queue.claim(channels: ["email", "sms"], limit: 10, lease: .seconds(30))
                #expect(claimed.count == 10)
                let leased = try await offloaded {
                    let owner = try db.ownerConnection()
                    defer { owner.close() }
                    return try owner.query("SELECT count(*) FROM forecourt.notifications WHERE claimed_by = \(instance)")
                        .first!.decode(0, as: Int.self)
                }
                #expect(leased == 10)
            }
        }

        /// An instance claims only the channels it sends, and its pick reads only those: 3,000 due
        /// emails wait (no relay anywhere) while it claims its one due `sms`. With one index over
        /// every channel the pick filtered the whole email backlog at every claim
        /// (docs/performance.md, "The dispatcher's pick per channel").
        @Test func aClaimReadsOnlyTheChannelsItSends() async throws {
            try await withTestDatabase(maximumConnections: 4) { db in
                let world = try await DeliveryWorld.make(db)
                let customer = try await world.customer(notifySMS: true)
                let order = try #require(try await world.order(for: customer)["id"]?.stringValue.flatMap(UUID.init(uuidString:)))
                let group = world.fixture.group
                try await offloaded {
                    let owner = try db.ownerConnection()
                    defer { owner.close() }
                    try owner.query(
                        """
                        INSERT INTO forecourt.notifications (dealer_group_id, id, order_id, kind, channel, revision, next_attempt_at)
                        SELECT \(group), gen_random_uuid(), \(order), 'delay', 'email', r, now() - interval '1 hour'
                        FROM generate_series(1, 3000) r
                        """)
                }
                let instance = UUID()
                let query = DeliveryQueue.claimQuery(channels: ["sms"], limit: 10, leaseSeconds: 30, instance: instance)
                let plan = try await world.harness.database.transaction(.delivery) { connection in
                    try connection.enqueue(DeliveryQueue.claimSettings)
                    return try connection.query(PostgresQuery(unsafeSQL: "EXPLAIN (ANALYZE, BUFFERS) " + query.sql, bindings: query.bindings))
                        .rows.map { try $0.decode(0, as: String.self) }.joined(separator: "\n")
                }
                // Rows read and thrown away: the email backlog, when the pick reads it.
                let discarded = plan.matches(of: /Rows Removed by Filter: (\d+)/).compactMap { Int($0.1) }.reduce(0, +)
                #expect(discarded < 100, "\(plan)")
                let claimed = try await offloaded {
                    let owner = try db.ownerConnection()
                    defer { owner.close() }
                    return try owner.query("SELECT channel FROM forecourt.notifications WHERE claimed_by = \(instance)")
                        .rows.map { try $0.decode(0, as: String.self) }
                }
                #expect(claimed == ["sms"])
            }
        }

        /// After an empty claim the dispatcher asks when the next notification of its channels
        /// comes due: the soonest retry, or the end of another instance's lease. With 3,000
        /// retries an hour away, one notification leased for two minutes and an email due in one
        /// (a channel it does not send), the answer is the lease's end, and the look ahead reads a
        /// few rows, not the backlog (docs/performance.md, "The dispatcher's idle look ahead").
        @Test func theIdleLookAheadReadsTheLeasesNotTheBacklog() async throws {
            try await withTestDatabase(maximumConnections: 4) { db in
                let world = try await DeliveryWorld.make(db)
                let customer = try await world.customer(notifySMS: true)
                let order = try #require(try await world.order(for: customer)["id"]?.stringValue.flatMap(UUID.init(uuidString:)))
                let group = world.fixture.group
                try await offloaded {
                    let owner = try db.ownerConnection()
                    defer { owner.close() }
                    try owner.query("UPDATE forecourt.notifications SET status = 'sent'")
                    try owner.query(
                        """
                        INSERT INTO forecourt.notifications (dealer_group_id, id, order_id, kind, channel, revision, next_attempt_at)
                        SELECT \(group), gen_random_uuid(), \(order), 'delay', 'sms', r, now() + interval '1 hour' + r * interval '1 second'
                        FROM generate_series(1, 3000) r
                        """)
                    try owner.query(
                        """
                        INSERT INTO forecourt.notifications (dealer_group_id, id, order_id, kind, channel, revision, next_attempt_at)
                        VALUES (\(group), gen_random_uuid(), \(order), 'delay', 'email', 0, now() + interval '1 minute')
                        """)
                    try owner.query("ANALYZE forecourt.notifications")
                }
                let queue = DeliveryQueue(database: world.harness.database, instance: UUID())
                let later = try #require(try await queue.nextDue(channels: ["sms"]))
                #expect(abs(later.timeIntervalSinceNow - 3601) < 30)
                try await offloaded {
                    let owner = try db.ownerConnection()
                    defer { owner.close() }
                    try owner.query(
                        """
                        INSERT INTO forecourt.notifications
                            (dealer_group_id, id, order_id, kind, channel, revision, next_attempt_at, claimed_by, claimed_until)
                        VALUES (\(group), gen_random_uuid(), \(order), 'delay', 'sms', 9999, now() - interval '1 minute',
                            gen_random_uuid(), now() + interval '2 minutes')
                        """)
                }
                let leaseEnd = try #require(try await queue.nextDue(channels: ["sms"]))
                #expect(abs(leaseEnd.timeIntervalSinceNow - 120) < 30)
                let query = DeliveryQueue.nextDueQuery(channels: ["sms"])
                let plan = try await world.harness.database.transaction(.delivery, readOnly: true) { connection in
                    try connection.enqueue(DeliveryQueue.claimSettings)
                    return try connection.query(PostgresQuery(unsafeSQL: "EXPLAIN (ANALYZE, BUFFERS) " + query.sql, bindings: query.bindings))
                        .rows.map { try $0.decode(0, as: String.self) }.joined(separator: "\n")
                }
                // Rows any node produced or threw away: the backlog, when the look ahead reads it.
                let produced = plan.matches(of: /actual time=[0-9.]+\.\.[0-9.]+ rows=(\d+) loops=(\d+)/).compactMap { match in
                    Int(match.1).flatMap { rows in Int(match.2).map { rows * $0 } }
                }
                let discarded = plan.matches(of: /Rows Removed by Filter: (\d+)/).compactMap { Int($0.1) }
                #expect((produced + discarded).max() ?? 0 < 100, "\(plan)")
            }
        }

        /// The dispatcher reads and records a notification it holds by primary key, whatever the
        /// statistics say of the backlog. ANALYZE saw 3,000 sent and none pending, then 3,000 came:
        /// the planner took the partial index of pending notifications for empty, and with
        /// `status = 'pending'` in these lookups it read them through it, the whole backlog per
        /// lookup (docs/performance.md, "The dispatcher's lookups by primary key").
        @Test func lookupsOfAClaimedNotificationUseThePrimaryKey() async throws {
            try await withTestDatabase(maximumConnections: 4) { db in
                let world = try await DeliveryWorld.make(db)
                let customer = try await world.customer()
                let order = try #require(try await world.order(for: customer)["id"]?.stringValue.flatMap(UUID.init(uuidString:)))
                let group = world.fixture.group
                let instance = UUID()
                let held = UUID()
                try await offloaded {
                    let owner = try db.ownerConnection()
                    defer { owner.close() }
                    // As in production: many notifications sent, none pending when ANALYZE ran...
                    try owner.query("UPDATE forecourt.notifications SET status = 'sent'")
                    try owner.query(
                        """
                        INSERT INTO forecourt.notifications (dealer_group_id, id, order_id, kind, channel, revision, status)
                        SELECT \(group), gen_random_uuid(), \(order), 'delay', 'email', r, 'sent'
                        FROM generate_series(1, 3000) r
                        """)
                    try owner.query("ANALYZE forecourt.notifications")
                    // ...then a backlog (a relay away), and the one this instance holds.
                    try owner.query(
                        """
                        INSERT INTO forecourt.notifications (dealer_group_id, id, order_id, kind, channel, revision, next_attempt_at)
                        SELECT \(group), gen_random_uuid(), \(order), 'delay', 'email', r, now() + interval '1 hour'
                        FROM generate_series(3001, 6000) r
                        """)
                    try owner.query(
                        """
                        INSERT INTO forecourt.notifications (dealer_group_id, id, order_id, kind, channel, revision,
                            claimed_by, claimed_until)
                        VALUES (\(group), \(held), \(order), 'delay', 'email', 6001, \(instance), now() + interval '30 seconds')
                        """)
                }
                let lookups = [
                    NotificationContext.loadQuery(group: group, id: held, instance: instance),
                    DeliveryService.recordQuery(
                        group: group, id: held, instance: instance, status: "sent", attempts: 1, code: nil, retryIn: nil),
                ]
                for lookup in lookups {
                    let plan = try await world.harness.database.transaction(.group(group)) { connection in
                        try connection.query(PostgresQuery(unsafeSQL: "EXPLAIN " + lookup.sql, bindings: lookup.bindings))
                            .rows.map { try $0.decode(0, as: String.self) }.joined(separator: "\n")
                    }
                    #expect(plan.contains("notifications_pkey"), "\(plan)")
                    #expect(!plan.contains("notifications_due"), "\(plan)")
                }
                // And the lease still guards them: the outcome of a notification held by another
                // instance is not recorded.
                let other = DeliveryService.recordQuery(
                    group: group, id: held, instance: UUID(), status: "sent", attempts: 1, code: nil, retryIn: nil)
                let changed = try await world.harness.database.transaction(.group(group)) { connection in
                    try connection.query(other).affectedRows
                }
                #expect(changed == 0)
            }
        }

        /// A claimed notification is a pending one: the database refuses anything else
        /// (migration 0017), which is what lets the lookups above test the lease alone.
        @Test func onlyPendingNotificationsCanBeClaimed() async throws {
            try await withTestDatabase(maximumConnections: 4) { db in
                let world = try await DeliveryWorld.make(db)
                let customer = try await world.customer()
                _ = try await world.order(for: customer)
                let error = await #expect(throws: PostgresError.self) {
                    try await offloaded {
                        let owner = try db.ownerConnection()
                        defer { owner.close() }
                        try owner.query(
                            """
                            UPDATE forecourt.notifications SET status = 'sent', claimed_by = gen_random_uuid(),
                                claimed_until = now() + interval '1 minute'
                            """)
                    }
                }
                #expect(error?.sqlState == "23514")
            }
        }
    }
}
