import Audit
import FieldCrypto
import ForecourtCore
import Foundation
import Postgres
import RPC
import Storage

/// One record of `customer.upsert_batch`: the whole state of a customer in the CRM.
public struct CustomerUpsertRecord: Sendable {
    public var externalRef: String
    public var content: CustomerContent
    /// The CRM's last-modified time of the record: an older one than stored is `stale`.
    public var sourceUpdatedAt: Date

    public init(externalRef: String, content: CustomerContent, sourceUpdatedAt: Date) {
        self.externalRef = externalRef
        self.content = content
        self.sourceUpdatedAt = sourceUpdatedAt
    }
}

/// What `customer.upsert_batch` did with one record.
public enum CustomerUpsertOutcome: String, Sendable {
    case created, updated, unchanged, stale
}

/// One entry of `customer.upsert_batch`'s `results`, in the order of the records.
public struct CustomerUpsertResult: Sendable, Equatable, JSONRepresentable {
    public let externalRef: String
    public let id: UUID
    public let outcome: CustomerUpsertOutcome

    public var json: JSON { ["external_ref": .string(externalRef), "id": id.json, "outcome": .string(outcome.rawValue)] }
}

extension CustomerService {
    /// The most records in one `customer.upsert_batch`.
    public static let batchLimit = 1000

    /// `customer.upsert_batch`: all records in one transaction, in bulk statements.
    ///
    /// Records must already be valid and their `external_ref`s distinct (the method checks,
    /// naming `records[i].field`). Outcomes, checked in this order against the locked row:
    /// no row: `created`; erased, or `source_updated_at` older than stored: `stale` (an
    /// erasure is never undone by a sync); same content MAC: `unchanged` (nothing written);
    /// else `updated`.
    ///
    /// The envelopes are bound to the row id, so the ids of existing customers are read
    /// first, then every record is sealed in parallel outside any transaction, then one
    /// short transaction locks the rows that were read, decides the outcomes and writes with
    /// one statement per kind of write. A locked row that changed between the read and the
    /// lock is sealed again inside the transaction. Records with no row are inserted without
    /// a lock: if another call created one of their `external_ref`s meanwhile, the unique
    /// index refuses the insert and the whole batch runs again, now finding those rows.
    /// Inserts go in `external_ref` order, so two batches creating the same refs wait for
    /// each other instead of deadlocking.
    public func upsertBatch(caller: Principal, _ records: [CustomerUpsertRecord]) async throws -> [CustomerUpsertResult] {
        let group = try caller.requireGroup()
        guard (1...Self.batchLimit).contains(records.count) else {
            throw DomainError.invalidParams("records", "records must have 1 to \(Self.batchLimit) elements")
        }
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try await upsertOnce(caller: caller, group: group, records)
            } catch let error as DomainError where error == Self.externalRefTaken && attempt < 3 {
                // Another batch created one of these external_refs first: run again, now as updates.
                continue
            }
        }
    }

    /// A stored customer as far as the outcome of an upsert is concerned.
    struct UpsertTarget: Sendable {
        let id: UUID
        let sourceUpdatedAt: Date?
        let contentMAC: [UInt8]?
        let keyID: Int?
        let erased: Bool

        static let columns = "external_ref, id, source_updated_at, content_mac, key_id, erased_at IS NOT NULL"

        init(row: PostgresRow) throws {
            id = try row.decode(1)
            sourceUpdatedAt = try row.decode(2)
            contentMAC = try row.decode(3)
            keyID = try row.decode(4)
            erased = try row.decode(5)
        }

        /// The outcome for a record with content MAC `mac` (under the newest key).
        func outcome(_ record: CustomerUpsertRecord, mac: [UInt8], crypto: CustomerCrypto) -> CustomerUpsertOutcome {
            if erased { return .stale }
            // In stored precision: the same time sent again is not older than itself.
            if let stored = sourceUpdatedAt, record.sourceUpdatedAt.postgresMicroseconds < stored.postgresMicroseconds {
                return .stale
            }
            if let stored = contentMAC {
                if stored == mac { return .unchanged }
                // Written under an older key and not yet re-encrypted: its MAC is that key's.
                if keyID != Int(crypto.cipher.newestKeyID), crypto.contentMACCandidates(record.content).contains(stored) {
                    return .unchanged
                }
            }
            return .updated
        }
    }

    private func upsertOnce(caller: Principal, group: UUID, _ records: [CustomerUpsertRecord]) async throws
        -> [CustomerUpsertResult]
    {
        let crypto = crypto(group)
        let refs = records.map(\.externalRef)
        // 1. What is stored now, without locks: enough to know which records will be written
        //    and the row ids their envelopes must be bound to.
        let known: [String: UpsertTarget] = try await database.transaction(.group(group), readOnly: true) { connection in
            var known: [String: UpsertTarget] = [:]
            for row in try connection.query(
                """
                SELECT \(unsafeSQL: UpsertTarget.columns) FROM forecourt.customers
                WHERE dealer_group_id = \(group) AND external_ref = ANY(\(refs)::text[])
                """
            ).rows {
                known[try row.decode(0, as: String.self)] = try UpsertTarget(row: row)
            }
            return known
        }
        // 2. Seal, outside any transaction, only the records that look like writes: a CRM
        //    resending unchanged or stale records costs one MAC each, not nine envelopes.
        var toSeal: [(index: Int, id: UUID)] = []
        var macs: [[UInt8]] = []
        macs.reserveCapacity(records.count)
        for (index, record) in records.enumerated() {
            let mac = crypto.contentMAC(record.content)
            macs.append(mac)
            if let target = known[record.externalRef] {
                if target.outcome(record, mac: mac, crypto: crypto) == .updated { toSeal.append((index, target.id)) }
            } else {
                toSeal.append((index, UUID.random()))
            }
        }
        let sealedList = try await Self.sealInParallel(
            toSeal.map { (records[$0.index].content, $0.id, macs[$0.index]) }, crypto: crypto)
        var sealed = [SealedCustomer?](repeating: nil, count: records.count)
        for (entry, value) in zip(toSeal, sealedList) { sealed[entry.index] = value }
        let presealed = sealed
        let macList = macs

        let knownRefs = Array(known.keys)

        // 3. One short transaction: lock, decide against what is locked, write in bulk.
        return try await database.transaction(.group(group), principal: caller.id) { connection in
            var locked: [String: UpsertTarget] = [:]
            // Locks in id order, so two batches over the same customers cannot deadlock.
            if !knownRefs.isEmpty {
                for row in try connection.query(
                    """
                    SELECT \(unsafeSQL: UpsertTarget.columns) FROM forecourt.customers
                    WHERE dealer_group_id = \(group) AND external_ref = ANY(\(knownRefs)::text[])
                    ORDER BY id FOR UPDATE
                    """
                ).rows {
                    locked[try row.decode(0, as: String.self)] = try UpsertTarget(row: row)
                }
            }
            var results: [CustomerUpsertResult] = []
            results.reserveCapacity(records.count)
            var creates: [(SealedCustomer, CustomerUpsertRecord)] = []
            var updates: [(SealedCustomer, CustomerUpsertRecord)] = []
            for (index, record) in records.enumerated() {
                guard let row = locked[record.externalRef] else {
                    let fresh: SealedCustomer
                    if let ready = presealed[index], known[record.externalRef] == nil {
                        fresh = ready
                    } else {
                        // Its customer took another external_ref since step 1: a new customer.
                        fresh = try crypto.seal(record.content, id: UUID.random(), contentMAC: macList[index])
                    }
                    creates.append((fresh, record))
                    results.append(CustomerUpsertResult(externalRef: record.externalRef, id: fresh.id, outcome: .created))
                    continue
                }
                let outcome = row.outcome(record, mac: macList[index], crypto: crypto)
                if outcome == .updated {
                    let ready: SealedCustomer
                    if let pre = presealed[index], pre.id == row.id {
                        ready = pre
                    } else {
                        // The row changed (or appeared) between step 1 and the lock.
                        ready = try crypto.seal(record.content, id: row.id, contentMAC: macList[index])
                    }
                    updates.append((ready, record))
                }
                results.append(CustomerUpsertResult(externalRef: record.externalRef, id: row.id, outcome: outcome))
            }
            if !creates.isEmpty {
                creates.sort { $0.1.externalRef < $1.1.externalRef }
                try Self.uniqueExternalRef { try Self.insertMany(connection, group: group, creates) }
            }
            if !updates.isEmpty {
                try Self.overwrite(connection, group: group, updates.map { ($0, $1.sourceUpdatedAt) }, as: .change)
            }
            let written = results.filter { $0.outcome == .created || $0.outcome == .updated }
            if !written.isEmpty {
                try AuditLog.recordMany(
                    connection, group: group, principal: caller, method: "customer.upsert_batch", objectType: "customer",
                    objects: written.map { ($0.id, $0.outcome.rawValue) })
            }
            return results
        }
    }

    /// Seals every record, in as many chunks as there are processors (AES-GCM and HMAC are
    /// the bulk of a batch's CPU time).
    static func sealInParallel(
        _ items: [(content: CustomerContent, id: UUID, contentMAC: [UInt8])], crypto: CustomerCrypto
    ) async throws -> [SealedCustomer] {
        func seal(_ item: (content: CustomerContent, id: UUID, contentMAC: [UInt8])) throws -> SealedCustomer {
            try crypto.seal(item.content, id: item.id, contentMAC: item.contentMAC)
        }
        let workers = max(1, min(ProcessInfo.processInfo.activeProcessorCount, items.count / 64))
        if workers == 1 {
            return try items.map(seal)
        }
        let chunk = (items.count + workers - 1) / workers
        return try await withThrowingTaskGroup(of: (Int, [SealedCustomer]).self) { tasks in
            for start in stride(from: 0, to: items.count, by: chunk) {
                let slice = Array(items[start..<min(start + chunk, items.count)])
                // On the shared pool's threads, whatever executor the caller's task prefers (a
                // request's event loop, which must not be held for this long).
                tasks.addTask(executorPreference: globalConcurrentExecutor) {
                    (start, try slice.map(seal))
                }
            }
            var parts: [(Int, [SealedCustomer])] = []
            for try await part in tasks { parts.append(part) }
            return parts.sorted { $0.0 < $1.0 }.flatMap(\.1)
        }
    }

    /// The columns of the bulk statements, one array per column.
    private struct Columns {
        var ids: [UUID] = []
        var refs: [String?] = []
        var envelopes: [[[UInt8]?]] = Array(repeating: [], count: CustomerContent.encryptedColumns.count)
        var emailIndexes: [[UInt8]?] = []
        var phoneIndexes: [[UInt8]?] = []
        var nameIndexes: [[UInt8]] = []
        var macs: [[UInt8]] = []
        var customerKeys: [[UInt8]] = []
        var notifyEmail: [Bool] = []
        var notifySMS: [Bool] = []
        var sourceUpdatedAt: [Date?] = []
        var keyID: Int32 = 0

        init(_ rows: [(sealed: SealedCustomer, externalRef: String?, sourceUpdatedAt: Date?)]) {
            for (sealed, externalRef, sourceUpdatedAt) in rows {
                ids.append(sealed.id)
                refs.append(externalRef)
                for column in envelopes.indices { envelopes[column].append(sealed.envelopes[column]) }
                emailIndexes.append(sealed.emailIndex)
                phoneIndexes.append(sealed.phoneIndex)
                nameIndexes.append(sealed.nameIndex)
                macs.append(sealed.contentMAC)
                customerKeys.append(sealed.customerKey)
                notifyEmail.append(sealed.notifyEmail)
                notifySMS.append(sealed.notifySMS)
                self.sourceUpdatedAt.append(sourceUpdatedAt)
                keyID = sealed.keyID
            }
        }

        /// `INSERT INTO customers (...) SELECT ... FROM unnest(...)` of every row, between
        /// `prefix` and `suffix`: fixed SQL text of the caller, never request data.
        func insert(group: UUID, prefix: String = "", suffix: String = "") -> PostgresQuery {
            let e = envelopes
            return """
                \(unsafeSQL: prefix)
                INSERT INTO forecourt.customers AS t (
                    dealer_group_id, id, external_ref, key_id, full_name, email, phone, address_line1, address_line2, city,
                    region, postal_code, country, email_bidx, phone_bidx, name_bidx, content_mac, notify_email, notify_sms,
                    source_updated_at, customer_key)
                SELECT \(group), u.id, u.ref, \(keyID), u.f0, u.f1, u.f2, u.f3, u.f4, u.f5, u.f6, u.f7, u.f8,
                    u.ei, u.pi, u.ni, u.mac, u.ne, u.ns, u.sua, u.ck
                FROM unnest(
                    \(ids)::uuid[], \(refs)::text[], \(e[0])::bytea[], \(e[1])::bytea[], \(e[2])::bytea[], \(e[3])::bytea[],
                    \(e[4])::bytea[], \(e[5])::bytea[], \(e[6])::bytea[], \(e[7])::bytea[], \(e[8])::bytea[],
                    \(emailIndexes)::bytea[], \(phoneIndexes)::bytea[], \(nameIndexes)::bytea[], \(macs)::bytea[],
                    \(notifyEmail)::bool[], \(notifySMS)::bool[], \(sourceUpdatedAt)::timestamptz[], \(customerKeys)::bytea[]
                ) AS u(id, ref, f0, f1, f2, f3, f4, f5, f6, f7, f8, ei, pi, ni, mac, ne, ns, sua, ck)
                \(unsafeSQL: suffix)
                """
        }
    }

    private static func insertMany(
        _ connection: PostgresConnection, group: UUID, _ rows: [(SealedCustomer, CustomerUpsertRecord)]
    ) throws {
        try connection.query(Columns(rows.map { ($0, $1.externalRef, $1.sourceUpdatedAt) }).insert(group: group))
    }

    /// How `overwrite` changes a row besides its sealed fields.
    enum Overwrite {
        /// A new content: `version` moves, the row gets a feed stamp and the CRM's time.
        case change
        /// The same content under the newest key: nothing else changes, not even the stamp.
        case reencryption
    }

    /// Replaces the sealed fields of existing, locked customers (matched by `SealedCustomer.id`).
    ///
    /// Written as `INSERT ... ON CONFLICT (primary key) DO UPDATE`: every row is found by one
    /// probe of the primary key, whatever the planner believes. An `UPDATE ... FROM unnest(...)`
    /// is planned from statistics, and with none (a group's first sync into a fresh table) or
    /// with the tenant policy's filter multiplying the group's own, PostgreSQL picks a nested
    /// loop that compares every customer of the group with every record: 30 s for 1000 records
    /// against 30,000 customers. The rows are locked by the caller, so the insert arm never
    /// runs; if it did, this throws and the transaction rolls back.
    static func overwrite(
        _ connection: PostgresConnection, group: UUID,
        _ rows: [(sealed: SealedCustomer, sourceUpdatedAt: Date?)], as kind: Overwrite
    ) throws {
        let change =
            switch kind {
            case .change:
                """
                , source_updated_at = EXCLUDED.source_updated_at, version = t.version + 1, updated_at = now(),
                -- The feed stamp (migration 0005): set here, the trigger does not run per row.
                change_xid = pg_current_xact_id(), change_seq = nextval('forecourt.customer_change_seq'),
                changed_by = forecourt.current_principal()
                """
            case .reencryption: ""
            }
        let statement = Columns(rows.map { ($0.sealed, nil, $0.sourceUpdatedAt) }).insert(
            group: group, prefix: "WITH written AS (",
            suffix: """
                ON CONFLICT (dealer_group_id, id) DO UPDATE SET
                    key_id = EXCLUDED.key_id, full_name = EXCLUDED.full_name, email = EXCLUDED.email,
                    phone = EXCLUDED.phone, address_line1 = EXCLUDED.address_line1,
                    address_line2 = EXCLUDED.address_line2, city = EXCLUDED.city, region = EXCLUDED.region,
                    postal_code = EXCLUDED.postal_code, country = EXCLUDED.country, email_bidx = EXCLUDED.email_bidx,
                    phone_bidx = EXCLUDED.phone_bidx, name_bidx = EXCLUDED.name_bidx, content_mac = EXCLUDED.content_mac,
                    notify_email = EXCLUDED.notify_email, notify_sms = EXCLUDED.notify_sms,
                    customer_key = coalesce(t.customer_key, EXCLUDED.customer_key) \(change)
                -- A row the conflict arm updated has the updating transaction in xmax; an inserted one has 0.
                RETURNING t.xmax::text = '0' AS inserted
                )
                SELECT count(*) FILTER (WHERE inserted) FROM written
                """)
        let inserted = try connection.query(statement).first?.decode(0, as: Int.self)
        guard inserted == 0 else {
            throw DomainError(.internal, "a customer to overwrite was not found")
        }
    }
}
