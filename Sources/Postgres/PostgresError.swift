import CLibPQ

/// An error from PostgreSQL or from talking to it.
///
/// Its `description` is deliberately generic: the server's message and detail often quote
/// the values of a row (customer data), and the SQL text is of no use to a caller. What is
/// kept is what code can act on: the kind, the SQLSTATE and the constraint name.
public struct PostgresError: Error, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        /// Could not connect (bad address, credentials, database, TLS).
        case connectionFailed
        /// The connection broke before or while a statement ran; nothing was committed.
        case connectionLost
        /// The connection broke while COMMIT was in flight: the transaction may or may not have committed.
        case commitOutcomeUnknown
        case uniqueViolation
        case foreignKeyViolation
        case checkViolation
        case notNullViolation
        case exclusionViolation
        case serializationFailure
        case deadlockDetected
        case insufficientPrivilege
        /// A statement or lock timeout, or a cancel request.
        case queryCanceled
        /// Class 22: a value PostgreSQL would not accept (out of range, bad format).
        case invalidData
        /// A `RAISE EXCEPTION` in a trigger or function (SQLSTATE P0001 and friends).
        case raised
        /// No connection became free within the pool's acquire timeout.
        case poolTimeout
        /// The pool is shut down.
        case poolClosed
        /// A result column did not have the type or shape the code asked for.
        case decoding
        case other
    }

    public let kind: Kind
    /// The five-character SQLSTATE, when the server sent one.
    public let sqlState: String?
    /// The constraint a violation names, when the server sent one (schema object names, not data).
    public let constraintName: String?
    /// For `decoding`: which column and type were involved (names only).
    public let context: String?

    public init(_ kind: Kind, sqlState: String? = nil, constraintName: String? = nil, context: String? = nil) {
        self.kind = kind
        self.sqlState = sqlState
        self.constraintName = constraintName
        self.context = context
    }

    public var description: String {
        var text = "PostgreSQL error: \(kind.rawValue)"
        if let sqlState { text += " (SQLSTATE \(sqlState))" }
        if let constraintName { text += " on constraint \(constraintName)" }
        if let context { text += " [\(context)]" }
        return text
    }

    /// Whether retrying the whole transaction may succeed.
    public var isTransient: Bool {
        kind == .serializationFailure || kind == .deadlockDetected
    }

    /// The kind a SQLSTATE belongs to.
    static func kind(forSQLState state: String) -> Kind {
        switch state {
        case "23505": return .uniqueViolation
        case "23503": return .foreignKeyViolation
        case "23514": return .checkViolation
        case "23502": return .notNullViolation
        case "23P01": return .exclusionViolation
        case "40001": return .serializationFailure
        case "40P01": return .deadlockDetected
        case "42501": return .insufficientPrivilege
        case "57014", "55P03": return .queryCanceled
        // Server shutting down or crashed: the session is gone.
        case "57P01", "57P02", "57P03": return .connectionLost
        default: break
        }
        if state.hasPrefix("08") { return .connectionLost }
        if state.hasPrefix("22") { return .invalidData }
        if state.hasPrefix("P0") { return .raised }
        return .other
    }

    /// The error a failed result carries.
    ///
    /// An error without a SQLSTATE did not come from the server: libpq made it because the
    /// conversation failed (no result at all, a write that failed, the socket closed, the
    /// protocol out of step). That is a lost connection whatever `PQstatus` says: in pipeline
    /// mode libpq reports "server closed the connection unexpectedly" for a failed write while
    /// the status is still `CONNECTION_OK` (found by `scripts/faults` under `pg_ctl restart`;
    /// `ConnectionLossTests`).
    static func from(result: OpaquePointer?, connection: OpaquePointer) -> PostgresError {
        guard let result, let state = field(result, "C") else { return PostgresError(.connectionLost) }
        let constraint = field(result, "n")
        var kind = kind(forSQLState: state)
        if kind == .other, PQstatus(connection) != CONNECTION_OK { kind = .connectionLost }
        return PostgresError(kind, sqlState: state, constraintName: constraint)
    }

    /// `PG_DIAG_*` field codes are single characters (`C` SQLSTATE, `n` constraint name).
    private static func field(_ result: OpaquePointer, _ code: Unicode.Scalar) -> String? {
        guard let pointer = PQresultErrorField(result, Int32(code.value)) else { return nil }
        return String(cString: pointer)
    }
}
