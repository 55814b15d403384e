import ForecourtCore
import RPC

/// The JSON Schemas of `session.*` and `key.*` for `rpc.discover` (docs/protocol.md, "system and
/// session", "keys").
extension Schema {
    static let role = Schema.oneOf(Role.allCases.map(\.rawValue))
    static let principal = Schema.object([
        "id": .uuid, "role": .role, "dealer_group_id": Schema.uuid.orNull, "dealer_id": Schema.uuid.orNull,
        "label": .string,
    ])
    static let keyRecord = Schema.object([
        "id": .uuid, "role": .role, "dealer_group_id": Schema.uuid.orNull, "dealer_id": Schema.uuid.orNull,
        "label": .string, "prefix": .string, "created_at": .dateTime, "revoked_at": Schema.dateTime.orNull,
    ])
}

extension MethodSchema {
    static let sessionAuthenticate = MethodSchema(
        "Authenticates the connection with an API key.", params: [.required("api_key", .string(maxLength: 200))],
        result: .object(["principal": .principal]), errors: .read + [.unauthenticated, .rateLimited])
    static let sessionWhoami = MethodSchema(
        "The connection's principal.", result: .object(["principal": .principal]))
    static let keyCreate = MethodSchema(
        "Creates an API key of the caller's group; api_key is shown this once.",
        params: [
            .required("role", .role), .optional("dealer_id", Schema.uuid.described("dealer_manager and sales keys")),
            .required("label", .string(maxLength: 200)),
        ],
        result: Schema.keyRecord.adding("api_key", .string), errors: .write + [.notFound])
    static let keyList = MethodSchema(
        "The keys the caller may manage (never their secrets).", params: Parameter.listParameters,
        result: .page(of: .keyRecord), errors: .read)
    static let keyRevoke = MethodSchema(
        "Revokes a key: new sessions at once, open ones within seconds.", params: [.required("id", .uuid)],
        result: .keyRecord, errors: .write + [.notFound])
}
