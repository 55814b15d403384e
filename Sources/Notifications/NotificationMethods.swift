import ForecourtCore
import RPC

/// `notification.list {"order_id", "limit"?, "after"?}` (docs/protocol.md, "notifications").
public enum NotificationMethods {
    public static func all(_ service: NotificationService) -> [RPCMethod] {
        [
            RPCMethod(
                "notification.list", roles: [.groupAdmin, .dealerManager, .sales, .crmSync, .auditor],
                schema: MethodSchema(
                    "The notifications queued for an order's customer, oldest first, with their delivery state.",
                    params: [.required("order_id", .uuid)] + MethodSchema.Parameter.listParameters,
                    result: .page(of: .notification), errors: .read + [.notFound]),
                decode: { params in (try params.uuid("order_id"), try params.listRequest()) },
                run: { context, input in
                    let (id, request) = input
                    return try await service.list(
                        caller: try context.caller, orderID: id, limit: request.limit, after: request.after)
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
        "last_error": Schema.string.orNull.described("a short code such as smtp_451, http_503, timeout, no_webhook, erased"),
    ])
}
