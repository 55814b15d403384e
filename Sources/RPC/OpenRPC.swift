import ForecourtCore

/// The OpenRPC 1.x document of a method registry (docs/protocol.md, "rpc.discover"): every
/// method with its parameters (by name) and result as JSON Schema, the errors it may give and,
/// in `x-roles`, the roles that may call it (`x-before-authentication` for the few that need no
/// session). Generated from the registry, so it cannot drift from what is served.
public enum OpenRPC {
    public static let version = "1.2.6"

    public static func document(_ registry: MethodRegistry, title: String, version: String, description: String) -> JSON {
        [
            "openrpc": .string(Self.version),
            "info": ["title": .string(title), "version": .string(version), "description": .string(description)],
            "methods": .array(registry.all.map(method)),
        ]
    }

    static func method(_ method: RPCMethod) -> JSON {
        var object: JSONObject = ["name": .string(method.name)]
        let roles: [Role]
        var errors: [DomainError.Code] = [.invalidParams]
        switch method.access {
        case .anyone:
            roles = Role.allCases
            object["x-before-authentication"] = true
        case .roles(let admitted):
            roles = Role.allCases.filter(admitted.contains)
            errors += [.unauthenticated, .forbidden]
        }
        if let schema = method.schema {
            object["summary"] = .string(schema.summary)
            object["paramStructure"] = "by-name"
            object["params"] = .array(
                schema.params.map { ["name": .string($0.name), "required": .bool($0.required), "schema": $0.schema.json] })
            object["result"] = ["name": .string(method.name + ".result"), "schema": schema.result.json]
            errors += schema.errors
        } else {
            // Still a valid document; the test that every method has a schema fails on it.
            object["paramStructure"] = "by-name"
            object["params"] = []
            object["result"] = ["name": .string(method.name + ".result"), "schema": [:]]
        }
        errors.append(.internal)
        var seen = Set<DomainError.Code>()
        object["errors"] = .array(
            errors.filter { seen.insert($0).inserted }.map { code in
                let error = RPCError(DomainError(code, code.reason))
                return ["code": .int(error.code), "message": .string(code.reason), "data": ["reason": .string(code.reason)]]
            })
        object["x-roles"] = .array(roles.map { .string($0.rawValue) })
        if method.isMutating { object["x-mutating"] = true }
        return .object(object)
    }
}
