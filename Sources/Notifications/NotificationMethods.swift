import ForecourtCore
import RPC

/// `notification.list {"order_id"}` (docs/protocol.md, "notifications").
public enum NotificationMethods {
    public static func all(_ service: NotificationService) -> [RPCMethod] {
        [
            RPCMethod(
                "notification.list", roles: [.groupAdmin, .dealerManager, .sales, .crmSync, .auditor],
                decode: { try $0.uuid("order_id") },
                run: { context, id in
                    ["items": try await service.list(caller: try context.caller, orderID: id).json] as JSON
                }),
        ]
    }
}
