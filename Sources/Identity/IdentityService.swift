import Audit
import ForecourtCore
import Foundation
import Logging
import Postgres
import RPC
import Storage

/// Sessions and API keys: authentication, revalidation of open sessions, and `key.*`.
public final class IdentityService: SessionAuthority {
    private let database: AppDatabase
    private let cursors: CursorCodec
    private let failures: FailureLimiter

    public init(database: AppDatabase, cursors: CursorCodec, failures: FailureLimiter = FailureLimiter()) {
        self.database = database
        self.cursors = cursors
        self.failures = failures
    }

    // MARK: Sessions

    /// Authenticates `session` with an API key. Wrong, revoked or malformed keys are all the
    /// same -32001; repeated failures from one source address are rate limited.
    public func authenticate(apiKey: String, session: Session) async throws -> Principal {
        let source = session.remoteAddress ?? "unknown"
        if let wait = failures.retryAfter(source) {
            throw DomainError.rateLimited(retryAfterMilliseconds: Int(wait.components.seconds * 1000) + 1)
        }
        let wrongKey = DomainError(.unauthenticated, "invalid API key")
        guard APIKey.isWellFormed(apiKey) else {
            failures.recordFailure(source)
            throw wrongKey
        }
        let hash = APIKey.hash(of: apiKey)
        guard let record = try await activeKey(hash: hash) else {
            failures.recordFailure(source)
            throw wrongKey
        }
        session.authenticate(record.principal, credential: Session.Credential(keyID: record.id, keyHash: hash))
        return record.principal
    }

    public func revalidate(_ session: Session) async throws -> Bool {
        guard let credential = session.credential else { return true }
        return try await activeKey(hash: credential.keyHash)?.id == credential.keyID
    }

    /// A client certificate is registered as a key whose hash is the certificate's SHA-256.
    public func authenticate(certificateFingerprint: [UInt8], session: Session) async throws {
        guard let record = try await activeKey(hash: certificateFingerprint) else { return }
        session.authenticate(
            record.principal, credential: Session.Credential(keyID: record.id, keyHash: certificateFingerprint))
    }

    private func activeKey(hash: [UInt8]) async throws -> KeyRecord? {
        try await database.transaction(.authentication(keyHash: hash), readOnly: true) { connection in
            let result = try connection.query(
                """
                SELECT \(unsafeSQL: KeyRecord.columns) FROM forecourt.api_keys
                WHERE key_hash = \(hash) AND revoked_at IS NULL
                """)
            return try result.first.map(KeyRecord.init)
        }
    }

    // MARK: Keys

    /// Creates a key for `caller`'s group. Group admins make any group-scoped role;
    /// dealer managers make `sales` keys of their own dealer.
    public func createKey(
        caller: Principal, role: Role, dealerID requestedDealer: UUID?, label: String
    ) async throws -> (KeyRecord, APIKey) {
        let group = try caller.requireGroup()
        var dealerID = requestedDealer
        switch caller.role {
        case .groupAdmin:
            guard role != .factory else {
                throw DomainError.forbidden("factory keys are made by the operator (forecourt key create)")
            }
        case .dealerManager:
            guard role == .sales else { throw DomainError.forbidden("a dealer manager creates sales keys only") }
            dealerID = dealerID ?? caller.dealerID
            guard dealerID == caller.dealerID else {
                throw DomainError.forbidden("a dealer manager creates keys of its own dealer only")
            }
        default:
            throw DomainError.forbidden()
        }
        do {
            try KeyRecord.validate(role: role, group: group, dealer: dealerID, label: label)
        } catch {
            throw DomainError.invalidParams(error.parameter == .label ? "label" : "dealer_id", error.message)
        }
        let key = APIKey.generate()
        let dealer = dealerID
        let record = try await database.transaction(.group(group), principal: caller.id) { connection in
            do {
                return try KeyRecord.create(
                    connection, role: role, group: group, dealer: dealer, label: label, keyHash: key.hash,
                    prefix: key.prefix, createdBy: caller)
            } catch is KeyRequestError {
                throw DomainError.notFound("dealer")
            }
        }
        return (record, key)
    }

    /// The keys the caller may see: all of the group for admins and auditors, its dealer's for managers.
    public func listKeys(caller: Principal, limit: Int, after: String?) async throws -> Page<KeyRecord> {
        let group = try caller.requireGroup()
        let scopeTag = group.uuidString.lowercased()
        var afterTime: Date?
        var afterID: UUID?
        if let after {
            let text = try cursors.decode(after, list: "key.list", scope: scopeTag)
            let parts = text.split(separator: "|")
            guard parts.count == 2, let micros = Int64(parts[0]), let id = UUID(uuidString: String(parts[1])) else {
                throw DomainError.invalidParams("after", "not a cursor returned by this list")
            }
            afterTime = Date(timeIntervalSince1970: Double(micros) / 1_000_000)
            afterID = id
        }
        let (positionTime, positionID) = (afterTime, afterID)
        let dealerFilter = caller.role == .dealerManager ? caller.dealerID : nil
        let records = try await database.transaction(.group(group), readOnly: true) { connection in
            let result = try connection.query(
                """
                SELECT \(unsafeSQL: KeyRecord.columns) FROM forecourt.api_keys
                WHERE dealer_group_id = \(group)
                  AND (\(dealerFilter)::uuid IS NULL OR dealer_id = \(dealerFilter))
                  AND (\(positionTime)::timestamptz IS NULL OR (created_at, id) > (\(positionTime), \(positionID)))
                ORDER BY created_at, id
                LIMIT \(limit + 1)
                """)
            return try result.rows.map(KeyRecord.init)
        }
        let items = Array(records.prefix(limit))
        let next = records.count > limit ? items.last.map { last in
            cursors.encode(
                "\(Int64((last.createdAt.timeIntervalSince1970 * 1_000_000).rounded()))|\(last.id.uuidString)",
                list: "key.list", scope: scopeTag)
        } : nil
        return Page(items: items, next: next)
    }

    /// Revokes a key the caller may manage; revoking a revoked key changes nothing.
    public func revokeKey(caller: Principal, id: UUID) async throws -> KeyRecord {
        let group = try caller.requireGroup()
        return try await database.transaction(.group(group), principal: caller.id) { connection in
            let found = try connection.query(
                "SELECT \(unsafeSQL: KeyRecord.columns) FROM forecourt.api_keys WHERE dealer_group_id = \(group) AND id = \(id) FOR UPDATE"
            ).first.map(KeyRecord.init)
            guard let found, Self.mayManage(caller, found) else { throw DomainError.notFound("key") }
            if found.revokedAt != nil { return found }
            let updated = try connection.query(
                """
                UPDATE forecourt.api_keys SET revoked_at = now()
                WHERE dealer_group_id = \(group) AND id = \(id)
                RETURNING \(unsafeSQL: KeyRecord.columns)
                """)
            guard let row = updated.first else { throw DomainError.notFound("key") }
            try AuditLog.record(
                connection, group: group, principal: caller, method: "key.revoke", objectType: "api_key", objectID: id)
            return try KeyRecord(row: row)
        }
    }

    static func mayManage(_ caller: Principal, _ key: KeyRecord) -> Bool {
        switch caller.role {
        case .groupAdmin: key.dealerGroupID == caller.dealerGroupID
        case .dealerManager: key.dealerID == caller.dealerID && key.role == .sales
        default: false
        }
    }
}
