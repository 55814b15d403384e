import ForecourtCore
import RPC

/// `audit.list {"after"?, "limit"?}` for group admins and auditors.
public enum AuditMethods {
    public static func all(_ service: AuditService) -> [RPCMethod] {
        [
            RPCMethod(
                "audit.list", roles: [.groupAdmin, .auditor], decode: { try $0.listRequest() },
                run: { context, input in
                    try await service.list(caller: try context.caller, limit: input.limit, after: input.after)
                }),
        ]
    }
}
