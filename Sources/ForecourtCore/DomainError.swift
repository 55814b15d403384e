/// The one error type area services throw for outcomes a client should see.
///
/// A struct around a private code enum (as postgres-nio's `PSQLError`): callers switch on
/// `code`, and `description` is deliberately generic. Messages are written by our own code
/// and must never contain customer personal data, SQL or key material; the RPC layer maps
/// each code to its JSON-RPC error in one place.
public struct DomainError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The kind of failure, one per application error code of the contract.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Base: String, Sendable {
            case invalidRequest = "invalid_request"
            case invalidParams = "invalid_params"
            case unauthenticated
            case forbidden
            case notFound = "not_found"
            case conflict
            case invalidTransition = "invalid_transition"
            case rateLimited = "rate_limited"
            case unavailable
            case outcomeUnknown = "outcome_unknown"
            case `internal`
        }
        fileprivate let base: Base

        public static let invalidRequest = Code(base: .invalidRequest)
        public static let invalidParams = Code(base: .invalidParams)
        public static let unauthenticated = Code(base: .unauthenticated)
        public static let forbidden = Code(base: .forbidden)
        public static let notFound = Code(base: .notFound)
        public static let conflict = Code(base: .conflict)
        public static let invalidTransition = Code(base: .invalidTransition)
        public static let rateLimited = Code(base: .rateLimited)
        public static let unavailable = Code(base: .unavailable)
        public static let outcomeUnknown = Code(base: .outcomeUnknown)
        public static let `internal` = Code(base: .internal)

        /// The `error.data.reason` string of the contract.
        public var reason: String { base.rawValue }
        public var description: String { base.rawValue }
    }

    public let code: Code
    /// A short message written by Forecourt's own code; safe to show to the caller.
    public let message: String
    /// For `invalidParams`: the path of the offending parameter relative to `params`.
    public let field: String?
    /// For `rateLimited`: how long the caller should wait.
    public let retryAfterMilliseconds: Int?

    public init(_ code: Code, _ message: String, field: String? = nil, retryAfterMilliseconds: Int? = nil) {
        self.code = code
        self.message = message
        self.field = field
        self.retryAfterMilliseconds = retryAfterMilliseconds
    }

    public var description: String {
        var text = "\(code.reason): \(message)"
        if let field { text += " (field \(field))" }
        return text
    }

    public static func invalidParams(_ field: String, _ message: String) -> DomainError {
        DomainError(.invalidParams, message, field: field)
    }

    public static func notFound(_ what: String) -> DomainError {
        DomainError(.notFound, "\(what) not found")
    }

    public static func conflict(_ message: String) -> DomainError {
        DomainError(.conflict, message)
    }

    public static func forbidden(_ message: String = "not allowed for this principal") -> DomainError {
        DomainError(.forbidden, message)
    }

    public static func invalidTransition(_ message: String) -> DomainError {
        DomainError(.invalidTransition, message)
    }

    public static func staleVersion() -> DomainError {
        DomainError(.conflict, "version is stale: the object changed since it was read")
    }

    public static func rateLimited(retryAfterMilliseconds: Int) -> DomainError {
        DomainError(.rateLimited, "too many requests; retry later", retryAfterMilliseconds: retryAfterMilliseconds)
    }

    public static let unauthenticated = DomainError(.unauthenticated, "not authenticated")
    public static let unavailable = DomainError(.unavailable, "the database is unavailable; the call did nothing and may be retried")
    public static let outcomeUnknown = DomainError(
        .outcomeUnknown,
        "the database connection broke while committing; retry with the same idempotency key"
    )
}
