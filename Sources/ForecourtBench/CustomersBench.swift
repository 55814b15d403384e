import ArgumentParser
import Customers
import Dealers
import FieldCrypto
import ForecourtCore
import Foundation
import Postgres
import Storage

/// `forecourt-bench customers`: `customer.upsert_batch` throughput through `CustomerService`
/// (validation done, encryption, blind indexes, content MACs, outcomes, audit rows), beside a
/// plain SQL insert of rows of the same shape and sizes (no crypto, no outcome logic) as the
/// ceiling the database allows.
struct CustomersBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "customers",
        abstract: "Records per second of customer.upsert_batch (batches of 1000) against a plain SQL insert."
    )

    @Option(name: .customLong("database-url"), help: "A migrated database (default: $FORECOURT_DATABASE_URL).")
    var databaseURL: String?

    @Option(help: "Batches per measurement.")
    var batches = 30

    @Option(name: .customLong("batch-size"), help: "Records per batch (1 to 1000).")
    var batchSize = 1000

    @Option(help: "Concurrent clients, each sending its own batches.")
    var clients = 1

    func validate() throws {
        guard (1...1000).contains(batchSize) else { throw ValidationError("--batch-size must be 1 to 1000") }
        guard batches >= 1, (1...16).contains(clients) else { throw ValidationError("--batches >= 1, --clients 1 to 16") }
    }

    func run() async throws {
        guard let url = databaseURL ?? ProcessInfo.processInfo.environment["FORECOURT_DATABASE_URL"], !url.isEmpty else {
            throw ValidationError("FORECOURT_DATABASE_URL: not set (or pass --database-url)")
        }
        let owner = try PostgresConnection(connectionString: url)
        let group = try DealerGroups.create(on: owner, name: "bench \(UUID().uuidString.prefix(8))")
        owner.close()

        let pool = PostgresPool(
            configuration: AppDatabase.poolConfiguration(connectionString: url, maximumConnections: clients + 1))
        let database = AppDatabase(pool: pool)
        let cipher = FieldCipher(keyring: .generate())
        let service = CustomerService(database: database, cipher: cipher, cursors: .ephemeral())
        let caller = Principal(id: UUID(), role: .crmSync, dealerGroupID: group, dealerID: nil, label: "bench")
        // Plain copies: the measuring tasks must not capture the command.
        let (batches, clients, size) = (self.batches, self.clients, self.batchSize)
        let total = batches * size

        print("customers: \(batches) batches of \(size) records, \(clients) client(s), \(ProcessInfo.processInfo.activeProcessorCount) cores")
        // Warm up: connections, prepared statements, derived keys.
        _ = try await service.upsertBatch(caller: caller, makeRecords(prefix: "warm", count: size, revision: 0))

        func measure(_ label: String, _ body: @escaping @Sendable (Int) async throws -> Void) async throws -> Double {
            let clock = ContinuousClock()
            let started = clock.now
            let cpuBefore = processCPUSeconds()
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                for client in 0..<clients {
                    tasks.addTask {
                        for batch in stride(from: client, to: batches, by: clients) { try await body(batch) }
                    }
                }
                try await tasks.waitForAll()
            }
            let elapsed = clock.now - started
            let seconds = elapsed.inSeconds
            let rate = Double(total) / seconds
            // This process's CPU (sealing, encoding) per 1000 records; the rest of
            // `cores × wall time` is PostgreSQL's, or idle.
            let cpuPerThousand = (processCPUSeconds() - cpuBefore) * 1000 / Double(total) * 1000
            print(
                "  \(label.padding(toLength: 44, withPad: " ", startingAt: 0)) \(String(format: "%9.0f", rate)) records/s"
                    + "  (\(String(format: "%.2f", seconds)) s; this process \(String(format: "%.0f", cpuPerThousand)) ms CPU per 1000)")
            return rate
        }

        // Inputs are made before each measurement: what is timed is the service (or the SQL).
        let first = (0..<batches).map { makeRecords(prefix: "b\($0)", count: size, revision: 0) }
        let created = try await measure("upsert_batch, all created") { batch in
            _ = try await service.upsertBatch(caller: caller, first[batch])
        }
        let second = (0..<batches).map { makeRecords(prefix: "b\($0)", count: size, revision: 1) }
        let updated = try await measure("upsert_batch, all updated") { batch in
            _ = try await service.upsertBatch(caller: caller, second[batch])
        }
        let unchanged = try await measure("upsert_batch, all unchanged") { batch in
            _ = try await service.upsertBatch(caller: caller, second[batch])
        }
        // The ceiling: the same number of rows with values of the same sizes, in one INSERT
        // ... SELECT FROM unnest per batch, in a transaction of the same scope, nothing else.
        let sizes = first[0][0].content.sealedSizes
        let plain = (0..<batches).map { PlainBatch(prefix: "plain\($0)", count: size, sizes: sizes) }
        let ceiling = try await measure("plain SQL INSERT (ceiling)") { batch in
            try await plain[batch].insert(database, group: group)
        }
        print("")
        print("| measurement | records/s |")
        print("|---|---:|")
        print("| `customer.upsert_batch`, created | \(Int(created)) |")
        print("| `customer.upsert_batch`, updated | \(Int(updated)) |")
        print("| `customer.upsert_batch`, unchanged | \(Int(unchanged)) |")
        print("| plain SQL `INSERT ... SELECT FROM unnest` (ceiling) | \(Int(ceiling)) |")
        await pool.shutdown()
    }
}

/// User and system CPU time of this process so far, in seconds.
private func processCPUSeconds() -> Double {
    var usage = rusage()
    #if canImport(Glibc)
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    #else
    getrusage(RUSAGE_SELF, &usage)
    #endif
    let seconds = usage.ru_utime.tv_sec + usage.ru_stime.tv_sec
    let micros = usage.ru_utime.tv_usec + usage.ru_stime.tv_usec
    return Double(seconds) + Double(micros) / 1_000_000
}

/// Realistic records: every personal field set, ~20 to 40 characters each.
private func makeRecords(prefix: String, count: Int, revision: Int) -> [CustomerUpsertRecord] {
    (0..<count).map { i in
        CustomerUpsertRecord(
            externalRef: "\(prefix)-\(i)",
            content: CustomerContent(
                fullName: "Customer \(prefix) \(i) Rev\(revision)", email: "c\(i).\(prefix)@example.org",
                phone: "+44207\(String(format: "%07d", i))",
                address: CustomerAddress(
                    line1: "\(i) Long Street", line2: "Apartment \(revision)", city: "Manchester", region: "Greater Manchester",
                    postalCode: "M1 \(i % 10)AB", country: "GB"),
                notifyEmail: true, notifySMS: i % 2 == 0),
            sourceUpdatedAt: Date(timeIntervalSince1970: 1_790_000_000 + Double(revision)))
    }
}

extension CustomerContent {
    /// The sizes of the envelopes of this content (plaintext + 33 bytes each).
    fileprivate var sealedSizes: [Int?] {
        [fullName, email, phone, address.line1, address.line2, address.city, address.region, address.postalCode, address.country]
            .map { $0.map { $0.utf8.count + FieldCipher.minimumEnvelopeSize } }
    }
}

/// Random bytes, eight per call to the system generator (one call per byte made preparing the
/// inputs take longer than measuring).
private func randomBytes(_ count: Int) -> [UInt8] {
    var generator = SystemRandomNumberGenerator()
    var bytes: [UInt8] = []
    bytes.reserveCapacity(count + 8)
    while bytes.count < count {
        withUnsafeBytes(of: generator.next() as UInt64) { bytes.append(contentsOf: $0) }
    }
    return Array(bytes.prefix(count))
}

/// One batch of rows like the service writes, for plain SQL: random bytes for envelopes,
/// indexes and MACs, made before the timing starts.
private struct PlainBatch: Sendable {
    let ids: [UUID]
    let refs: [String]
    let envelopes: [[[UInt8]?]]
    let indexes: [[[UInt8]]]
    let macs: [[UInt8]]
    let flags: [Bool]
    let dates: [Date]

    init(prefix: String, count: Int, sizes: [Int?]) {
        ids = (0..<count).map { _ in UUID() }
        refs = (0..<count).map { "\(prefix)-\($0)" }
        envelopes = sizes.map { size in (0..<count).map { _ in size.map(randomBytes) } }
        indexes = (0..<3).map { _ in (0..<count).map { _ in randomBytes(32) } }
        macs = (0..<count).map { _ in randomBytes(32) }
        flags = (0..<count).map { $0 % 2 == 0 }
        dates = [Date](repeating: Date(), count: count)
    }

    func insert(_ database: AppDatabase, group: UUID) async throws {
        let e = envelopes
        let (ids, refs, indexes, macs, flags, dates) = (ids, refs, indexes, macs, flags, dates)
        try await database.transaction(.group(group)) { connection in
            try connection.query(
                """
                INSERT INTO forecourt.customers (
                    dealer_group_id, id, external_ref, key_id, full_name, email, phone, address_line1, address_line2, city,
                    region, postal_code, country, email_bidx, phone_bidx, name_bidx, content_mac, notify_email, notify_sms,
                    source_updated_at)
                SELECT \(group), u.id, u.ref, 1, u.f0, u.f1, u.f2, u.f3, u.f4, u.f5, u.f6, u.f7, u.f8,
                    u.ei, u.pi, u.ni, u.mac, u.ne, u.ns, u.sua
                FROM unnest(
                    \(ids)::uuid[], \(refs)::text[], \(e[0])::bytea[], \(e[1])::bytea[], \(e[2])::bytea[], \(e[3])::bytea[],
                    \(e[4])::bytea[], \(e[5])::bytea[], \(e[6])::bytea[], \(e[7])::bytea[], \(e[8])::bytea[],
                    \(indexes[0])::bytea[], \(indexes[1])::bytea[], \(indexes[2])::bytea[], \(macs)::bytea[],
                    \(flags)::bool[], \(flags)::bool[], \(dates)::timestamptz[]
                ) AS u(id, ref, f0, f1, f2, f3, f4, f5, f6, f7, f8, ei, pi, ni, mac, ne, ns, sua)
                """)
        }
    }
}
