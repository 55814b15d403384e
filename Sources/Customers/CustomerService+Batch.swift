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
    /// short transaction locks the rows, decides the outcomes and writes with one statement
    /// per kind of write. A row that appeared (or changed its `external_ref`) between the
    /// read and the lock is sealed again inside the transaction.
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
            if let stored = sourceUpdatedAt, record.sourceUpdatedAt < stored { return .stale }
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
                toSeal.append((index, UUID()))
            }
        }
        let sealedList = try await Self.sealInParallel(
            toSeal.map { records[$0.index] }, ids: toSeal.map(\.id), crypto: crypto)
        var sealed = [SealedCustomer?](repeating: nil, count: records.count)
        for (entry, value) in zip(toSeal, sealedList) { sealed[entry.index] = value }
        let presealed = sealed
        let macList = macs

        // 3. One short transaction: lock, decide against what is locked, write in bulk.
        return try await database.transaction(.group(group), principal: caller.id) { connection in
            var locked: [String: UpsertTarget] = [:]
            // Locks in id order, so two batches over the same customers cannot deadlock.
            for row in try connection.query(
                """
                SELECT \(unsafeSQL: UpsertTarget.columns) FROM forecourt.customers
                WHERE dealer_group_id = \(group) AND external_ref = ANY(\(refs)::text[])
                ORDER BY id FOR UPDATE
                """
            ).rows {
                locked[try row.decode(0, as: String.self)] = try UpsertTarget(row: row)
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
                        fresh = try crypto.seal(record.content, id: UUID())
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
                        ready = try crypto.seal(record.content, id: row.id)
                    }
                    updates.append((ready, record))
                }
                results.append(CustomerUpsertResult(externalRef: record.externalRef, id: row.id, outcome: outcome))
            }
            if !creates.isEmpty {
                try Self.uniqueExternalRef { try Self.insertMany(connection, group: group, creates) }
            }
            if !updates.isEmpty {
                try Self.updateMany(connection, group: group, updates)
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
    static func sealInParallel(_ records: [CustomerUpsertRecord], ids: [UUID], crypto: CustomerCrypto) async throws
        -> [SealedCustomer]
    {
        let workers = max(1, min(ProcessInfo.processInfo.activeProcessorCount, records.count / 64))
        if workers == 1 {
            return try zip(records, ids).map { try crypto.seal($0.content, id: $1) }
        }
        let chunk = (records.count + workers - 1) / workers
        return try await withThrowingTaskGroup(of: (Int, [SealedCustomer]).self) { tasks in
            for start in stride(from: 0, to: records.count, by: chunk) {
                let end = min(start + chunk, records.count)
                let slice = Array(zip(records[start..<end], ids[start..<end]))
                tasks.addTask {
                    (start, try slice.map { try crypto.seal($0.content, id: $1) })
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
        var refs: [String] = []
        var envelopes: [[[UInt8]?]] = Array(repeating: [], count: CustomerContent.encryptedColumns.count)
        var emailIndexes: [[UInt8]?] = []
        var phoneIndexes: [[UInt8]?] = []
        var nameIndexes: [[UInt8]] = []
        var macs: [[UInt8]] = []
        var notifyEmail: [Bool] = []
        var notifySMS: [Bool] = []
        var sourceUpdatedAt: [Date] = []
        var keyID: Int32 = 0

        init(_ rows: [(SealedCustomer, CustomerUpsertRecord)]) {
            for (sealed, record) in rows {
                ids.append(sealed.id)
                refs.append(record.externalRef)
                for column in envelopes.indices { envelopes[column].append(sealed.envelopes[column]) }
                emailIndexes.append(sealed.emailIndex)
                phoneIndexes.append(sealed.phoneIndex)
                nameIndexes.append(sealed.nameIndex)
                macs.append(sealed.contentMAC)
                notifyEmail.append(sealed.notifyEmail)
                notifySMS.append(sealed.notifySMS)
                sourceUpdatedAt.append(record.sourceUpdatedAt)
                keyID = sealed.keyID
            }
        }
    }

    private static func insertMany(
        _ connection: PostgresConnection, group: UUID, _ rows: [(SealedCustomer, CustomerUpsertRecord)]
    ) throws {
        let c = Columns(rows)
        let e = c.envelopes
        try connection.query(
            """
            INSERT INTO forecourt.customers (
                dealer_group_id, id, external_ref, key_id, full_name, email, phone, address_line1, address_line2, city,
                region, postal_code, country, email_bidx, phone_bidx, name_bidx, content_mac, notify_email, notify_sms,
                source_updated_at)
            SELECT \(group), u.id, u.ref, \(c.keyID), u.f0, u.f1, u.f2, u.f3, u.f4, u.f5, u.f6, u.f7, u.f8,
                u.ei, u.pi, u.ni, u.mac, u.ne, u.ns, u.sua
            FROM unnest(
                \(c.ids)::uuid[], \(c.refs)::text[], \(e[0])::bytea[], \(e[1])::bytea[], \(e[2])::bytea[], \(e[3])::bytea[],
                \(e[4])::bytea[], \(e[5])::bytea[], \(e[6])::bytea[], \(e[7])::bytea[], \(e[8])::bytea[],
                \(c.emailIndexes)::bytea[], \(c.phoneIndexes)::bytea[], \(c.nameIndexes)::bytea[], \(c.macs)::bytea[],
                \(c.notifyEmail)::bool[], \(c.notifySMS)::bool[], \(c.sourceUpdatedAt)::timestamptz[]
            ) AS u(id, ref, f0, f1, f2, f3, f4, f5, f6, f7, f8, ei, pi, ni, mac, ne, ns, sua)
            """)
    }

    private static func updateMany(
        _ connection: PostgresConnection, group: UUID, _ rows: [(SealedCustomer, CustomerUpsertRecord)]
    ) throws {
        let c = Columns(rows)
        let e = c.envelopes
        try connection.query(
            """
            UPDATE forecourt.customers AS t SET
                key_id = \(c.keyID), full_name = u.f0, email = u.f1, phone = u.f2, address_line1 = u.f3,
                address_line2 = u.f4, city = u.f5, region = u.f6, postal_code = u.f7, country = u.f8,
                email_bidx = u.ei, phone_bidx = u.pi, name_bidx = u.ni, content_mac = u.mac,
                notify_email = u.ne, notify_sms = u.ns, source_updated_at = u.sua,
                version = t.version + 1, updated_at = now()
            FROM unnest(
                \(c.ids)::uuid[], \(e[0])::bytea[], \(e[1])::bytea[], \(e[2])::bytea[], \(e[3])::bytea[],
                \(e[4])::bytea[], \(e[5])::bytea[], \(e[6])::bytea[], \(e[7])::bytea[], \(e[8])::bytea[],
                \(c.emailIndexes)::bytea[], \(c.phoneIndexes)::bytea[], \(c.nameIndexes)::bytea[], \(c.macs)::bytea[],
                \(c.notifyEmail)::bool[], \(c.notifySMS)::bool[], \(c.sourceUpdatedAt)::timestamptz[]
            ) AS u(id, f0, f1, f2, f3, f4, f5, f6, f7, f8, ei, pi, ni, mac, ne, ns, sua)
            WHERE t.dealer_group_id = \(group) AND t.id = u.id
            """)
    }
}
