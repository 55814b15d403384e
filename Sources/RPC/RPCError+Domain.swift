import ForecourtCore

extension RPCError {
    /// The one mapping from domain errors to JSON-RPC errors (docs/protocol.md, "Errors").
    public init(_ error: DomainError) {
        let code: Int
        switch error.code {
        case .invalidRequest: code = -32600
        case .invalidParams: code = -32602
        case .unauthenticated: code = -32001
        case .forbidden: code = -32002
        case .notFound: code = -32003
        case .conflict: code = -32004
        case .invalidTransition: code = -32005
        case .rateLimited: code = -32006
        case .unavailable: code = -32007
        case .outcomeUnknown: code = -32008
        default: code = -32603
        }
        var data: JSONObject = ["reason": .string(error.code.reason)]
        if let field = error.field { data["field"] = .string(field) }
        if let retry = error.retryAfterMilliseconds { data["retry_after_ms"] = .int(retry) }
        self.init(code: code, message: error.message, data: .object(data))
    }

    /// An unexpected failure: the caller learns only the correlation id, which the server log repeats.
    public static func `internal`(correlationID: String) -> RPCError {
        RPCError(
            code: -32603,
            message: "Internal error",
            data: ["reason": "internal", "correlation_id": .string(correlationID)]
        )
    }
}
