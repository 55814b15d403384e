import ForecourtCore
import RPC

/// `webhook.create`, `webhook.list`, `webhook.delete` (docs/protocol.md, "webhooks"): group admins only.
public enum WebhookMethods {
    public static func all(_ service: NotificationService) -> [RPCMethod] {
        [
            RPCMethod(
                "webhook.create", roles: [.groupAdmin], mutating: true,
                decode: { try NewWebhook.decode($0, allowInsecure: service.allowsInsecureWebhooks) },
                run: { context, new in try await service.createWebhook(caller: try context.caller, new) }),
            RPCMethod(
                "webhook.list", roles: [.groupAdmin],
                decode: { try $0.listRequest() },
                run: { context, request in
                    try await service.listWebhooks(caller: try context.caller, limit: request.limit, after: request.after)
                }),
            RPCMethod(
                "webhook.delete", roles: [.groupAdmin], mutating: true,
                decode: { try $0.uuid("id") },
                run: { context, id in
                    try await service.deleteWebhook(caller: try context.caller, id: id)
                    return ["id": id.json, "deleted": true] as JSON
                }),
        ]
    }
}
