import ForecourtCore
import Foundation
import Logging
import Postgres

/// The service's database: transactions in an `AccessScope`, with PostgreSQL failures
/// turned into the contract's errors.
///
/// Every transaction sets its scope for row-level security first, so a body can only ever
/// see the rows of its scope, whatever SQL it runs.
public final class AppDatabase: Sendable {
    /// Run on every connection of the service: act as `forecourt_app` (never owner,
    /// superuser or BYPASSRLS, whatever the login role is), and bound every statement.
    public static let connectionSetup = [
        "SET ROLE forecourt_app",
        "SET search_path = forecourt, public",
        "SET statement_timeout = '30s'",
        "SET lock_timeout = '10s'",
        "SET idle_in_transaction_session_timeout = '60s'",
    ]

    public let pool: PostgresPool
    private let logger: Logger
    /// How many times a serialization failure or deadlock is retried before giving up.
    private let transientRetries = 3

    public init(pool: PostgresPool, logger: Logger = Logger(label: "forecourt.storage")) {
        self.pool = pool
        self.logger = logger
    }

    /// Runs `body` in one transaction scoped to `scope`; `principal` is recorded as the author
    /// of changes (change feeds). Retries serialization failures and deadlocks, and a
    /// connection lost before COMMIT once (nothing was committed then).
    @discardableResult
    public func transaction<T: Sendable>(
        _ scope: AccessScope,
        principal: UUID? = nil,
        readOnly: Bool = false,
        _ body: @escaping @Sendable (PostgresConnection) throws -> T
    ) async throws -> T {
        var settings = scope.settings.map { ($0.name, $0.value) }
        if let principal { settings.append(("forecourt.principal_id", principal.uuidString.lowercased())) }
        var attempt = 0
        var lostConnectionRetried = false
        while true {
            attempt += 1
            do {
                return try await pool.transaction(settings: settings, readOnly: readOnly, body)
            } catch let error as PostgresError {
                if error.isTransient, attempt <= transientRetries {
                    try await Task.sleep(for: .milliseconds(Int.random(in: 1...(10 * attempt))))
                    continue
                }
                if error.kind == .connectionLost, !lostConnectionRetried {
                    lostConnectionRetried = true
                    continue
                }
                throw Self.domainError(for: error, logger: logger)
            }
        }
    }

    /// The contract's error for a PostgreSQL failure that no service handled itself.
    static func domainError(for error: PostgresError, logger: Logger) -> any Error {
        switch error.kind {
        case .connectionFailed, .connectionLost, .poolTimeout, .poolClosed:
            logger.warning("database unavailable", metadata: ["db.error": .string(error.kind.rawValue)])
            return DomainError.unavailable
        case .commitOutcomeUnknown:
            logger.error("connection lost during COMMIT", metadata: ["db.error": .string(error.kind.rawValue)])
            return DomainError.outcomeUnknown
        case .queryCanceled, .serializationFailure, .deadlockDetected:
            return DomainError(.unavailable, "the database did not complete the call in time; it did nothing and may be retried")
        case .uniqueViolation:
            return DomainError.conflict("a value that must be unique is already taken")
        default:
            // Left as is: the dispatcher logs it with a correlation id and answers -32603.
            return error
        }
    }
}
