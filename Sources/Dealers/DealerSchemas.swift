import ForecourtCore
import RPC

/// The JSON Schemas of `dealer.*` for `rpc.discover` (docs/protocol.md, "dealers").
extension Schema {
    static let dealer = Schema.object([
        "id": .uuid, "dealer_group_id": .uuid, "code": .string, "name": .string, "region": Schema.string.orNull,
        "timezone": Schema.string.orNull, "version": .integer, "created_at": .dateTime, "updated_at": .dateTime,
    ])
    static let dealerCode = Schema([
        "type": "string", "pattern": "^[A-Za-z0-9]{2,12}$", "description": "maker-assigned; taken in upper case",
        "examples": ["DLR01"],
    ])
    static let timezone = Schema.string(maxLength: 64).described("an IANA time zone").example("Europe/London")
}

extension MethodSchema {
    static let dealerCreate = MethodSchema(
        "Adds a dealer to the caller's group; its code is unique across the service.",
        params: [
            .required("code", .dealerCode), .required("name", .string(maxLength: 200)),
            .optional("region", .string(maxLength: 100)), .optional("timezone", .timezone),
        ],
        result: .dealer, errors: .write + [.conflict])
    static let dealerGet = MethodSchema(
        "One dealer of the caller's group.", params: [.required("id", .uuid)], result: .dealer, errors: .read + [.notFound])
    static let dealerList = MethodSchema(
        "The group's dealers.", params: Parameter.listParameters, result: .page(of: .dealer), errors: .read)
    static let dealerUpdate = MethodSchema(
        "Renames or moves a dealer; null clears region or timezone.",
        params: [
            .required("id", .uuid), .required("version", .integer(1...Int(Int32.max))),
            .optional("name", .string(maxLength: 200)), .optional("region", Schema.string(maxLength: 100).orNull),
            .optional("timezone", Schema.timezone.orNull),
        ],
        result: .dealer, errors: .write + [.notFound, .conflict])
}
