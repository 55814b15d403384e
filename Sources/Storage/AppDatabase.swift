import ForecourtCore
import Foundation
import Logging
import Postgres

/// The service's database: transactions in an `AccessScope`, with PostgreSQL failures
/// turned into the contract's errors.
///
/// Every transaction acts as `forecourt_app` and sets its scope for row-level security in
/// its first round trip, so a body can only ever see the rows of its scope, whatever SQL it
/// runs, and whatever happened to the session before (a pooler in transaction mode,
/// `RESET ROLE`, `DISCARD ALL`): docs/architecture.md, "Transactions".
public final class AppDatabase: Sendable {
    /// The role every transaction acts as: never owner, superuser or BYPASSRLS, whatever the
    /// login role is (it must be a member).
    public static let role = "forecourt_app"

    /// Made at the start of every transaction, with the role: bounds on every statement, and
    /// the schema. Transaction-local, so they hold through a pooler in transaction mode.
    public static let transactionSettings: [(name: String, value: String)] = [
        ("search_path", "forecourt, public"),
        ("statement_timeout", "30s"),
        ("lock_timeout", "10s"),
        ("idle_in_transaction_session_timeout", "60s"),
    ]

    /// For a session connection of the service that runs no transaction of this type (the
    /// `LISTEN` connection): the same role and bounds, for the whole session.
    public static let connectionSetup = [
        "SET ROLE forecourt_app",
        "SET search_path = forecourt, public",
        "SET statement_timeout = '30s'",
        "SET lock_timeout = '10s'",
        "SET idle_in_transaction_session_timeout = '60s'",
    ]

    /// A pool whose transactions act as `forecourt_app` with `transactionSettings`.
    /// `statementCache` false for PgBouncer in transaction mode (docs/operations.md).
    public static func poolConfiguration(
        connectionString: String, maximumConnections: Int, statementCache: Bool = true,
        acquireTimeout: Duration = .seconds(5)
    ) -> PostgresPool.Configuration {
        PostgresPool.Configuration(
            connectionString: connectionString, maximumConnections: maximumConnections, acquireTimeout: acquireTimeout,
            role: role, transactionSettings: transactionSettings, statementCache: statementCache)
    }

    public let pool: PostgresPool
    private let logger: Logger
    /// How many times a serialization failure or deadlock is retried before giving up.
    private let transientRetries = 3

    /// - Parameter pool: made with `poolConfiguration` (its transactions act as `forecourt_app`).
    public init(pool: PostgresPool, logger: Logger = Logger(label: "forecourt.storage")) {
        precondition(pool.configuration.role == Self.role, "AppDatabase needs a pool whose transactions act as \(Self.role)")
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
        let settings = Self.settings(scope, principal: principal)
        return try await retrying {
            try await pool.transaction(settings: settings, readOnly: readOnly, body)
        }
    }

    /// One statement as a transaction of its own, scoped to `scope`, in one round trip
    /// (`PostgresConnection.transaction(_:single:)`); retried as `transaction` is.
    public func transaction(
        _ scope: AccessScope,
        principal: UUID? = nil,
        readOnly: Bool = false,
        single statement: PostgresQuery
    ) async throws -> PostgresResult {
        let settings = Self.settings(scope, principal: principal)
        return try await retrying {
            try await pool.transaction(settings: settings, readOnly: readOnly, single: statement)
        }
    }

    /// The row-level-security settings of a scope, and the author of changes.
    private static func settings(_ scope: AccessScope, principal: UUID?) -> [(String, String)] {
        var settings = scope.settings.map { ($0.name, $0.value) }
        if let principal { settings.append(("forecourt.principal_id", principal.lowercasedText)) }
        return settings
    }

    private func retrying<T>(_ attempt: () async throws -> T) async throws -> T {
        var attempts = 0
        var lostConnectionRetried = false
        while true {
            attempts += 1
            do {
                return try await attempt()
            } catch let error as PostgresError {
                if error.isTransient, attempts <= transientRetries {
                    try await Task.sleep(for: .milliseconds(Int.random(in: 1...(10 * attempts))))
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
