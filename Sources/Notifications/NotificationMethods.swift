import ForecourtCore
import RPC

/// `notification.list {"order_id", "limit"?, "after"?}` (docs/protocol.md, "notifications").
public enum NotificationMethods {
    public static func all(_ service: NotificationService) -> [RPCMethod] {
        [
            RPCMethod(
                "notification.list", roles: [.groupAdmin, .dealerManager, .sales, .crmSync, .auditor],
                decode: { params in (try params.uuid("order_id"), try params.listRequest()) },
                run: { context, input in
                    let (id, request) = input
                    return try await service.list(
                        caller: try context.caller, orderID: id, limit: request.limit, after: request.after)
                }),
        ]
    }
}
