import Audit
import ForecourtCore
import Foundation
import Logging
import Postgres
import RPC
import Storage
import Synchronization

/// Sessions and API keys: authentication, revalidation of open sessions, and `key.*`.
public final class IdentityService: SessionAuthority {
    private let database: AppDatabase
    private let cursors: CursorCodec
    private let failures: FailureLimiter
    private let sessions = OpenSessions()
    private let unknownFingerprints = UnknownFingerprints()
    private let certificateLookups = Atomic<Int>(0)
    /// How long a limited source's failed attempt is held before it is answered (-32006).
    let failureDelay: Duration

    public init(
        database: AppDatabase, cursors: CursorCodec, failures: FailureLimiter = FailureLimiter(),
        failureDelay: Duration = .seconds(1)
    ) {
        self.database = database
        self.cursors = cursors
        self.failures = failures
        self.failureDelay = failureDelay
    }

    // MARK: Sessions

    /// Authenticates `session` with an API key. Wrong, revoked or malformed keys are all the
    /// same -32001. A correct key always works, whatever else comes from its address: the
    /// limiter only counts failures, per source address (an IPv6 /64). Once a source has failed
    /// `failures.limit` times in a window, each further failure from it is held for
    /// `failureDelay` and answered -32006 with `retry_after_ms`; with one request in flight per
    /// unauthenticated connection and a cap on such connections per address (the listener's),
    /// that bounds the lookups a failing source can cause, and nobody else behind the same
    /// address waits for it.
    public func authenticate(apiKey: String, session: Session) async throws -> Principal {
        let source = session.source
        var record: KeyRecord?
        var hash: [UInt8] = []
        if APIKey.isWellFormed(apiKey) {
            hash = APIKey.hash(of: apiKey)
            record = try await activeKey(hash: hash)
        }
        guard let record else {
            if let wait = failures.recordFailure(source) {
                try? await Task.sleep(for: failureDelay)
                throw DomainError.rateLimited(retryAfterMilliseconds: max(1, Int(wait.milliseconds)))
            }
            throw DomainError(.unauthenticated, "invalid API key")
        }
        authenticated(session, record: record, keyHash: hash)
        return record.principal
    }

    private func authenticated(_ session: Session, record: KeyRecord, keyHash: [UInt8]) {
        session.authenticate(record.principal, credential: Session.Credential(keyID: record.id, keyHash: keyHash))
        sessions.add(session, keyID: record.id)
    }

    public func revalidate(_ session: Session) async throws -> Bool {
        guard let credential = session.credential else { return true }
        return try await activeKey(hash: credential.keyHash)?.id == credential.keyID
    }

    /// A client certificate is registered as a key whose hash is the certificate's SHA-256. An
    /// unregistered one is remembered for 30 seconds (a certificate registered meanwhile works
    /// once that has passed).
    public func authenticate(certificateFingerprint: [UInt8], session: Session) async throws {
        guard !unknownFingerprints.contains(certificateFingerprint) else { return }
        certificateLookups.add(1, ordering: .relaxed)
        guard let record = try await activeKey(hash: certificateFingerprint) else {
            unknownFingerprints.insert(certificateFingerprint)
            return
        }
        authenticated(session, record: record, keyHash: certificateFingerprint)
    }

    /// How many client-certificate fingerprints were looked up in the database (for tests).
    public var certificateLookupCount: Int { certificateLookups.load(ordering: .relaxed) }

    /// The number of authenticated sessions this instance watches for revocation.
    public var openSessionCount: Int { sessions.count }

    /// One round of the revocation watcher (`forecourt serve` runs it every second): ends the
    /// authentication of every open session whose key was revoked in the last ten minutes, and
    /// marks the others checked as of the round's start, so that neither the dispatcher nor the
    /// event hub needs a query of its own per session. A session last checked more than nine
    /// minutes before is left to check itself: a revocation older than the window would not be
    /// seen here. Returns how many sessions it ended.
    @discardableResult
    public func checkRevocations() async throws -> Int {
        let started = ContinuousClock.now
        let revoked = try await database.transaction(.revocations, readOnly: true) { connection in
            Set(try connection.query("SELECT id FROM forecourt.api_keys WHERE revoked_at IS NOT NULL").rows.map {
                try $0.decode(0, as: UUID.self)
            })
        }
        var ended = 0
        for (keyID, session) in sessions.all() {
            if revoked.contains(keyID) {
                if session.deauthenticate(ifKey: keyID) { ended += 1 }
            } else if let checked = session.validatedAt, checked > started - .seconds(9 * 60) {
                session.markValidated(keyID: keyID, at: started)
            }
        }
        return ended
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
