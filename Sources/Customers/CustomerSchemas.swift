import ForecourtCore
import RPC

/// The JSON Schemas of `customer.*` for `rpc.discover` (docs/protocol.md, "customers").
extension Schema {
    static let address = Schema.object([
        "line1": Schema.string.orNull, "line2": Schema.string.orNull, "city": Schema.string.orNull,
        "region": Schema.string.orNull, "postal_code": Schema.string.orNull, "country": Schema.string.orNull,
    ])
    static let customer = Schema.object([
        "id": .uuid, "dealer_group_id": .uuid, "external_ref": Schema.string.orNull,
        "full_name": Schema.string.orNull, "email": Schema.string.orNull, "phone": Schema.string.orNull,
        "address": .address, "notify": .object(["email": .boolean, "sms": .boolean]), "version": .integer,
        "created_at": .dateTime, "updated_at": .dateTime, "erased": .boolean,
    ])
    static let customerChange = Schema([
        "oneOf": [
            Schema.customer.adding("origin", Schema.uuid.orNull).json,
            Schema.object([
                "id": .uuid, "external_ref": Schema.string.orNull, "erased": .boolean, "version": .integer,
                "origin": Schema.uuid.orNull,
            ]).json,
        ],
    ])

    static let addressParameter = Schema.partialObject([
        "line1": Schema.string(maxLength: CustomerRules.addressLineLength).orNull,
        "line2": Schema.string(maxLength: CustomerRules.addressLineLength).orNull,
        "city": Schema.string(maxLength: CustomerRules.cityLength).orNull,
        "region": Schema.string(maxLength: CustomerRules.regionLength).orNull,
        "postal_code": Schema.string(maxLength: CustomerRules.postalCodeLength).orNull,
        "country": Schema.string(maxLength: CustomerRules.countryLength).orNull,
    ])
    static let notifyParameter = Schema.partialObject(["email": .boolean, "sms": .boolean])
    static let email = Schema.string(maxLength: CustomerRules.emailLength).described("one @ and a dot in the domain")
        .example("jose.mueller@example.com")
    static let phone = Schema.string(maxLength: CustomerRules.phoneLength).described("E.164 after removing spaces and dashes")
        .example("+44 20 7946 0958")

    /// A customer's fields in `customer.create` and a record of `customer.upsert_batch`.
    static func customerContent(extra: KeyValuePairs<String, Schema>, required: [String]) -> Schema {
        var properties: JSONObject = [
            "full_name": Schema.string(maxLength: CustomerRules.fullNameLength).json, "email": Schema.email.orNull.json,
            "phone": Schema.phone.orNull.json, "address": Schema.addressParameter.json, "notify": Schema.notifyParameter.json,
        ]
        for (name, schema) in extra { properties[name] = schema.json }
        return Schema([
            "type": "object", "properties": .object(properties), "additionalProperties": false,
            "required": .array((["full_name"] + required).map(JSON.string)),
        ])
    }
}

extension MethodSchema {
    private static let contentParameters: [Parameter] = [
        .required("full_name", .string(maxLength: CustomerRules.fullNameLength)),
        .optional("email", Schema.email.orNull), .optional("phone", Schema.phone.orNull),
        .optional("address", .addressParameter), .optional("notify", .notifyParameter),
        .optional("external_ref", Schema.string(maxLength: CustomerRules.externalRefLength).orNull),
    ]

    static let customerCreate = MethodSchema(
        "Creates a customer; personal fields are encrypted before they reach the database.",
        params: contentParameters, result: .customer, errors: .write + [.conflict])
    static let customerGet = MethodSchema(
        "One customer of the caller's group.", params: [.required("id", .uuid)], result: .customer,
        errors: .read + [.notFound])
    static let customerUpdate = MethodSchema(
        "Changes the named fields; null clears one.",
        params: [.required("id", .uuid), .required("version", .integer(1...Int(Int32.max)))]
            + contentParameters.map { .optional($0.name, $0.schema) },
        result: .customer, errors: .write + [.notFound, .conflict])
    static let customerFind = MethodSchema(
        "Customers with exactly this email, phone or external_ref (give one), found by blind index.",
        params: [
            .optional("email", .email), .optional("phone", .phone),
            .optional("external_ref", .string(maxLength: CustomerRules.externalRefLength)),
        ],
        result: .object(["items": .array(.customer, maxItems: CustomerService.findLimit)]), errors: .read)
    static let customerUpsertBatch = MethodSchema(
        "Creates or updates up to 1000 customers by external_ref, all or nothing.",
        params: [
            .required(
                "records",
                .array(
                    .customerContent(
                        extra: [
                            "external_ref": .string(maxLength: CustomerRules.externalRefLength),
                            "source_updated_at": .dateTime,
                        ],
                        required: ["external_ref", "source_updated_at"]),
                    minItems: 1, maxItems: CustomerService.batchLimit))
        ],
        result: .object([
            "results": .array(
                .object(["external_ref": .string, "id": .uuid, "outcome": .oneOf(["created", "updated", "unchanged", "stale"])]))
        ]),
        errors: .write)
    static let customerChanges = MethodSchema(
        "The group's customers changed after the cursor, oldest change first; next is always the cursor to keep.",
        params: Parameter.listParameters,
        result: .object(["items": .array(.customerChange), "next": .cursor, "has_more": .boolean]), errors: .read)
    static let customerErase = MethodSchema(
        "Destroys a customer's personal fields for good; orders stay.", params: [.required("id", .uuid)],
        result: .object(["id": .uuid, "erased": .boolean]), errors: .write + [.notFound])
}
