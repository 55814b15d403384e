import ForecourtCore
import RPC

/// `webhook.create`, `webhook.list`, `webhook.delete` (docs/protocol.md, "webhooks"): group admins only.
public enum WebhookMethods {
    public static func all(_ service: NotificationService) -> [RPCMethod] {
        [
            RPCMethod(
                "webhook.create", roles: [.groupAdmin], mutating: true, schema: .webhookCreate,
                decode: { try NewWebhook.decode($0, allowInsecure: service.allowsInsecureWebhooks) },
                run: { context, new in try await service.createWebhook(caller: try context.caller, new) }),
            RPCMethod(
                "webhook.list", roles: [.groupAdmin], schema: .webhookList,
                decode: { try $0.listRequest() },
                run: { context, request in
                    try await service.listWebhooks(caller: try context.caller, limit: request.limit, after: request.after)
                }),
            RPCMethod(
                "webhook.delete", roles: [.groupAdmin], mutating: true, schema: .webhookDelete,
                decode: { try $0.uuid("id") },
                run: { context, id in
                    try await service.deleteWebhook(caller: try context.caller, id: id)
                    return ["id": id.json, "deleted": true] as JSON
                }),
        ]
    }
}

extension Schema {
    /// A webhook as `webhook.*` shows it: never its secret.
    static let webhook = Schema.object([
        "id": .uuid, "url": .string, "kinds": .array(.oneOf(NotificationKind.allCases.map(\.rawValue)), minItems: 1),
        "created_at": .dateTime,
    ])
}

extension MethodSchema {
    static let webhookCreate = MethodSchema(
        "Adds a webhook to which the group's sms notifications of the given kinds are POSTed, signed with the secret.",
        params: [
            .required("url", Schema.string(maxLength: 2000).described("https:// to a public address").example("https://sms.example.com/forecourt")),
            .required("secret", .string(maxLength: 200, minLength: 16)),
            .required("kinds", .array(.oneOf(NotificationKind.allCases.map(\.rawValue)), minItems: 1, maxItems: 6)),
        ],
        result: .webhook, errors: .write + [.conflict])
    static let webhookList = MethodSchema(
        "The group's webhooks, oldest first.", params: MethodSchema.Parameter.listParameters, result: .page(of: .webhook),
        errors: .read)
    static let webhookDelete = MethodSchema(
        "Deletes a webhook of the group; deliveries still owed to it are dropped.", params: [.required("id", .uuid)],
        result: .object(["id": .uuid, "deleted": .boolean]), errors: .write + [.notFound])
}
