/// A JSON-RPC 2.0 request id: a string, a number (echoed as sent) or null.
public enum RPCID: Sendable, Hashable {
    case string(String)
    case number(JSONNumber)
    case null

    public var json: JSON {
        switch self {
        case .string(let s): .string(s)
        case .number(let n): .number(n)
        case .null: .null
        }
    }

    /// The id of a JSON value, or nil when the value is not a valid id type.
    package init?(_ value: JSON) {
        switch value {
        case .string(let s): self = .string(s)
        case .number(let n): self = .number(n)
        case .null: self = .null
        default: return nil
        }
    }
}

/// A JSON-RPC 2.0 error object.
public struct RPCError: Error, Sendable, Equatable {
    public let code: Int
    public let message: String
    public let data: JSON?

    public init(code: Int, message: String, data: JSON? = nil) {
        self.code = code
        self.message = message
        self.data = data
    }

    public var json: JSON {
        var object: JSONObject = ["code": .int(code), "message": .string(message)]
        if let data { object["data"] = data }
        return .object(object)
    }

    /// The contract's `error.data.reason`, if present.
    public var reason: String? { data?["reason"]?.stringValue }

    package static func standard(_ code: Int, _ message: String, reason: String, detail: String? = nil) -> RPCError {
        var data: JSONObject = ["reason": .string(reason)]
        if let detail { data["detail"] = .string(detail) }
        return RPCError(code: code, message: message, data: .object(data))
    }

    public static func parseError(_ detail: String? = nil) -> RPCError {
        .standard(-32700, "Parse error", reason: "parse_error", detail: detail)
    }

    public static func invalidRequest(_ detail: String? = nil) -> RPCError {
        .standard(-32600, "Invalid Request", reason: "invalid_request", detail: detail)
    }

    public static let methodNotFound = RPCError.standard(-32601, "Method not found", reason: "method_not_found")
}

/// One request of a line (or of a batch), after the envelope was checked.
public struct RPCRequest: Sendable {
    /// Nil for a notification, which gets no response.
    public let id: RPCID?
    public let method: String
    /// Absent params are an empty object; positional params are kept to be refused with -32602.
    public let params: JSON

    public var isNotification: Bool { id == nil }

    public init(id: RPCID?, method: String, params: JSON = .object(JSONObject())) {
        self.id = id
        self.method = method
        self.params = params
    }

    /// The JSON text of the request, for clients.
    public var json: JSON {
        var object: JSONObject = ["jsonrpc": "2.0", "method": .string(method), "params": params]
        if let id { object["id"] = id.json }
        return .object(object)
    }

    /// Checks a JSON value against the JSON-RPC 2.0 request rules.
    /// - Returns: the request, or the error to answer with the id to answer it under.
    package static func validate(_ value: JSON) -> Result<RPCRequest, InvalidRequest> {
        guard case .object(let object) = value else {
            return .failure(InvalidRequest(.null, .invalidRequest("a request must be an object")))
        }
        if let name = object.duplicateKey {
            return .failure(InvalidRequest(.null, .invalidRequest("member \"\(name)\" appears twice")))
        }
        // The id is echoed when it is a valid id, even if the rest is wrong.
        var id: RPCID?
        if let rawID = object["id"] {
            guard let valid = RPCID(rawID) else {
                return .failure(InvalidRequest(.null, .invalidRequest("id must be a string, a number or null")))
            }
            id = valid
        }
        let answerID = id ?? .null
        guard object["jsonrpc"] == .string("2.0") else {
            return .failure(InvalidRequest(answerID, .invalidRequest("jsonrpc must be \"2.0\"")))
        }
        guard case .string(let method)? = object["method"] else {
            return .failure(InvalidRequest(answerID, .invalidRequest("method must be a string")))
        }
        let params = object["params"] ?? .object(JSONObject())
        switch params {
        case .object, .array: break
        default: return .failure(InvalidRequest(answerID, .invalidRequest("params must be an object or an array")))
        }
        for key in object.keys where !["jsonrpc", "id", "method", "params"].contains(key) {
            return .failure(InvalidRequest(answerID, .invalidRequest("unknown member \"\(key.prefix(64))\"")))
        }
        return .success(RPCRequest(id: id, method: method, params: params))
    }
}

/// A request object that breaks the envelope rules, with the id to answer under.
package struct InvalidRequest: Error {
    package let id: RPCID
    package let error: RPCError

    package init(_ id: RPCID, _ error: RPCError) {
        self.id = id
        self.error = error
    }
}

/// A response line.
public enum RPCResponse {
    public static func success(id: RPCID, result: JSON) -> JSON {
        ["jsonrpc": "2.0", "id": id.json, "result": result]
    }

    public static func failure(id: RPCID, error: RPCError) -> JSON {
        ["jsonrpc": "2.0", "id": id.json, "error": error.json]
    }
}
