import Audit
import FieldCrypto
import ForecourtCore
import Foundation
import Postgres
import RPC
import Storage

/// `customer.*`: the customers of the caller's group, their personal fields encrypted at rest.
///
/// Encryption and blind indexes happen in this process (`FieldCipher`); PostgreSQL only ever
/// sees envelopes, indexes and MACs. Where a row id is known before the transaction, fields
/// are sealed before it starts, so a transaction holds its connection and locks only for SQL.
public final class CustomerService: Sendable {
    let database: AppDatabase
    let cipher: FieldCipher
    let cursors: CursorCodec

    /// The most customers `customer.find` returns.
    public static let findLimit = 100

    public init(database: AppDatabase, cipher: FieldCipher, cursors: CursorCodec) {
        self.database = database
        self.cipher = cipher
        self.cursors = cursors
    }

    func crypto(_ group: UUID) -> CustomerCrypto {
        CustomerCrypto(cipher: cipher, group: group)
    }

    // MARK: create, get, update

    /// `customer.create`.
    public func create(caller: Principal, externalRef: String?, content: CustomerContent) async throws -> Customer {
        let group = try caller.requireGroup()
        let id = UUID.random()
        let sealed = try crypto(group).seal(content, id: id)
        return try await database.transaction(.group(group), principal: caller.id) { connection in
            let stored = try Self.uniqueExternalRef {
                try Self.insert(connection, group: group, sealed: sealed, externalRef: externalRef, sourceUpdatedAt: nil)
            }
            try AuditLog.record(
                connection, group: group, principal: caller, method: "customer.create", objectType: "customer", objectID: id)
            return stored.customer(content)
        }
    }

    static let externalRefTaken = DomainError.conflict("external_ref is already used by another customer of this group")

    /// Runs a write whose only unique value is `external_ref`, turning its violation into our message.
    static func uniqueExternalRef<T>(_ write: () throws -> T) throws -> T {
        do {
            return try write()
        } catch let error as PostgresError where error.kind == .uniqueViolation {
            throw externalRefTaken
        }
    }

    /// `customer.get`. A customer whose fields fail to decrypt is an error, never empty data.
    /// The read is audited (docs/security.md, "Audit"), in the transaction that reads.
    public func get(caller: Principal, id: UUID) async throws -> Customer {
        let group = try caller.requireGroup()
        let stored = try await database.transaction(.group(group), principal: caller.id) { connection in
            let stored = try Self.select(connection, group: group, id: id, forUpdate: false)
            if stored != nil {
                try AuditLog.record(
                    connection, group: group, principal: caller, method: "customer.get", objectType: "customer", objectID: id)
            }
            return stored
        }
        guard let stored else { throw DomainError.notFound("customer") }
        return try stored.open(crypto(group))
    }

    /// `customer.update`: a partial update of the version the caller read. Only a real change
    /// moves the version (and writes, audits and appears in the feed).
    public func update(caller: Principal, id: UUID, version: Int, patch: CustomerPatch) async throws -> Customer {
        let group = try caller.requireGroup()
        let crypto = crypto(group)
        return try await database.transaction(.group(group), principal: caller.id) { connection in
                guard let current = try Self.select(connection, group: group, id: id, forUpdate: true) else {
                    throw DomainError.notFound("customer")
                }
                guard current.version == version else { throw DomainError.staleVersion() }
                guard !current.erased else { throw DomainError.invalidTransition("the customer has been erased") }
                let currentContent = try crypto.open(
                    current.envelopes, id: id, notifyEmail: current.notifyEmail, notifySMS: current.notifySMS)
                let content = patch.applied(to: currentContent)
                let externalRef = patch.externalRef.applied(to: current.externalRef)
                if content == currentContent, externalRef == current.externalRef {
                    return current.customer(currentContent)
                }
                // One row: sealing inside the transaction costs microseconds, and the current
                // content is needed first to know whether anything changes.
                let sealed = try crypto.seal(content, id: id)
                let updated = try Self.uniqueExternalRef {
                    try Self.update(connection, group: group, sealed: sealed, externalRef: externalRef)
                }
                try AuditLog.record(
                    connection, group: group, principal: caller, method: "customer.update", objectType: "customer", objectID: id)
                return updated.customer(content)
        }
    }

    // MARK: find

    /// What `customer.find` looks for: exactly one of these.
    public enum Lookup: Sendable {
        /// A normalised email address.
        case email(String)
        /// A phone number in E.164.
        case phone(String)
        case externalRef(String)
    }

    /// `customer.find`: exact matches through the blind indexes (never by decrypting rows).
    /// Searches for the index under every key, so rows not yet re-encrypted after a rotation
    /// are still found.
    public func find(caller: Principal, _ lookup: Lookup) async throws -> [Customer] {
        let group = try caller.requireGroup()
        let limit = Self.findLimit
        let cipher = cipher
        let stored: [StoredCustomer] = try await database.transaction(.group(group), principal: caller.id) { connection in
            let found: [StoredCustomer]
            switch lookup {
            case .externalRef(let ref):
                found = try connection.query(
                    """
                    SELECT \(unsafeSQL: StoredCustomer.columns) FROM forecourt.customers
                    WHERE dealer_group_id = \(group) AND external_ref = \(ref)
                    """
                ).rows.map { try StoredCustomer(row: $0) }
            case .email(let email):
                found = try Self.find(
                    connection, group: group, column: "email_bidx",
                    candidates: cipher.blindIndexCandidates(email, group: group, kind: .email), limit: limit)
            case .phone(let phone):
                found = try Self.find(
                    connection, group: group, column: "phone_bidx",
                    candidates: cipher.blindIndexCandidates(phone, group: group, kind: .phone), limit: limit)
            }
            try AuditLog.recordMany(
                connection, group: group, principal: caller, method: "customer.find", objectType: "customer",
                objects: found.map { (id: $0.id, outcome: "ok") })
            return found
        }
        let crypto = crypto(group)
        return try stored.map { try $0.open(crypto) }
    }

    /// The customers whose blind index in `column` (chosen by code) is one of `candidates`.
    private static func find(
        _ connection: PostgresConnection, group: UUID, column: String, candidates: [[UInt8]], limit: Int
    ) throws -> [StoredCustomer] {
        try connection.query(
            """
            SELECT \(unsafeSQL: StoredCustomer.columns) FROM forecourt.customers
            WHERE dealer_group_id = \(group) AND \(unsafeSQL: column) = ANY(\(candidates)::bytea[])
            ORDER BY created_at, id LIMIT \(limit)
            """
        ).rows.map { try StoredCustomer(row: $0) }
    }

    // MARK: erase

    /// `customer.erase`: every ciphertext, blind index and the content MAC become NULL for
    /// good; the row stays as a tombstone (orders point at it) with a new version, so the
    /// erasure reaches the change feed. Erasing an erased customer changes nothing.
    public func erase(caller: Principal, id: UUID) async throws {
        let group = try caller.requireGroup()
        try await database.transaction(.group(group), principal: caller.id) { connection in
            let erased = try connection.query(
                """
                UPDATE forecourt.customers SET
                    full_name = NULL, email = NULL, phone = NULL, address_line1 = NULL, address_line2 = NULL,
                    city = NULL, region = NULL, postal_code = NULL, country = NULL,
                    email_bidx = NULL, phone_bidx = NULL, name_bidx = NULL, content_mac = NULL, key_id = NULL,
                    notify_email = false, notify_sms = false,
                    erased_at = now(), updated_at = now(), version = version + 1
                WHERE dealer_group_id = \(group) AND id = \(id) AND erased_at IS NULL
                """
            ).affectedRows
            if erased == 0 {
                let exists = try connection.query(
                    "SELECT 1 FROM forecourt.customers WHERE dealer_group_id = \(group) AND id = \(id)"
                ).count > 0
                guard exists else { throw DomainError.notFound("customer") }
                return
            }
            // Nothing more is sent to an erased customer: what was still queued fails as `erased`
            // (the dispatcher also checks at send time, for a message claimed meanwhile).
            try connection.query(
                """
                UPDATE forecourt.notifications n SET status = 'failed', last_error = 'erased', claimed_by = NULL,
                    claimed_until = NULL
                FROM forecourt.orders o
                WHERE n.dealer_group_id = \(group) AND n.status = 'pending' AND o.dealer_group_id = \(group)
                    AND o.id = n.order_id AND o.customer_id = \(id)
                """)
            try AuditLog.record(
                connection, group: group, principal: caller, method: "customer.erase", objectType: "customer", objectID: id)
        }
    }

    // MARK: SQL

    static func select(_ connection: PostgresConnection, group: UUID, id: UUID, forUpdate: Bool) throws -> StoredCustomer? {
        try connection.query(
            """
            SELECT \(unsafeSQL: StoredCustomer.columns) FROM forecourt.customers
            WHERE dealer_group_id = \(group) AND id = \(id) \(unsafeSQL: forUpdate ? "FOR UPDATE" : "")
            """
        ).first.map { try StoredCustomer(row: $0) }
    }

    static func insert(
        _ connection: PostgresConnection, group: UUID, sealed: SealedCustomer, externalRef: String?, sourceUpdatedAt: Date?
    ) throws -> StoredCustomer {
        let e = sealed.envelopes
        let row = try connection.query(
            """
            INSERT INTO forecourt.customers (
                dealer_group_id, id, external_ref, key_id, full_name, email, phone, address_line1, address_line2, city,
                region, postal_code, country, email_bidx, phone_bidx, name_bidx, content_mac, notify_email, notify_sms,
                source_updated_at, customer_key)
            VALUES (
                \(group), \(sealed.id), \(externalRef), \(sealed.keyID), \(e[0]), \(e[1]), \(e[2]), \(e[3]), \(e[4]), \(e[5]),
                \(e[6]), \(e[7]), \(e[8]), \(sealed.emailIndex), \(sealed.phoneIndex), \(sealed.nameIndex), \(sealed.contentMAC),
                \(sealed.notifyEmail), \(sealed.notifySMS), \(sourceUpdatedAt), \(sealed.customerKey))
            RETURNING \(unsafeSQL: StoredCustomer.columns)
            """
        ).first
        guard let row else { throw DomainError.notFound("customer") }
        return try StoredCustomer(row: row)
    }

    static func update(_ connection: PostgresConnection, group: UUID, sealed: SealedCustomer, externalRef: String?) throws
        -> StoredCustomer
    {
        let e = sealed.envelopes
        let row = try connection.query(
            """
            UPDATE forecourt.customers SET
                external_ref = \(externalRef), key_id = \(sealed.keyID), full_name = \(e[0]), email = \(e[1]), phone = \(e[2]),
                address_line1 = \(e[3]), address_line2 = \(e[4]), city = \(e[5]), region = \(e[6]), postal_code = \(e[7]),
                country = \(e[8]), email_bidx = \(sealed.emailIndex), phone_bidx = \(sealed.phoneIndex),
                name_bidx = \(sealed.nameIndex), content_mac = \(sealed.contentMAC), notify_email = \(sealed.notifyEmail),
                notify_sms = \(sealed.notifySMS), customer_key = coalesce(customer_key, \(sealed.customerKey)),
                version = version + 1, updated_at = now()
            WHERE dealer_group_id = \(group) AND id = \(sealed.id)
            RETURNING \(unsafeSQL: StoredCustomer.columns)
            """
        ).first
        guard let row else { throw DomainError.notFound("customer") }
        return try StoredCustomer(row: row)
    }
}
