import ForecourtCore
import RPC

/// `notification.list {"order_id"}` (docs/protocol.md, "notifications").
public enum NotificationMethods {
    public static func all(_ service: NotificationService) -> [RPCMethod] {
        [
            RPCMethod(
                "notification.list", roles: [.groupAdmin, .dealerManager, .sales, .crmSync, .auditor],
                schema: MethodSchema(
                    "The notifications queued for an order's customer.", params: [.required("order_id", .uuid)],
                    result: .object(["items": .array(.notification)]), errors: .read + [.notFound]),
                decode: { try $0.uuid("order_id") },
                run: { context, id in
                    ["items": try await service.list(caller: try context.caller, orderID: id).json] as JSON
                }),
        ]
    }
}

extension Schema {
    /// One item of `notification.list` (docs/protocol.md, "notifications").
    static let notification = Schema.object([
        "id": .uuid,
        "kind": .oneOf(NotificationKind.allCases.map(\.rawValue)),
        "channel": .oneOf(["email", "sms"]),
        "status": .oneOf(["pending", "sent", "failed"]),
        "attempts": .integer, "created_at": .dateTime, "sent_at": Schema.dateTime.orNull,
    ]).adding("last_error", Schema.string.orNull)
}
