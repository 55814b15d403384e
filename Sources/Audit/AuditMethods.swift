import ForecourtCore
import RPC

/// `audit.list {"after"?, "limit"?}` for group admins and auditors.
public enum AuditMethods {
    public static func all(_ service: AuditService) -> [RPCMethod] {
        [
            RPCMethod(
                "audit.list", roles: [.groupAdmin, .auditor],
                schema: MethodSchema(
                    "Who did what, when, to which object, oldest first; no personal data.",
                    params: MethodSchema.Parameter.listParameters, result: .page(of: .auditEntry), errors: .read),
                decode: { try $0.listRequest() },
                run: { context, input in
                    try await service.list(caller: try context.caller, limit: input.limit, after: input.after)
                }),
        ]
    }
}

extension Schema {
    /// One entry of `audit.list`.
    static let auditEntry = Schema.object([
        "seq": .integer, "occurred_at": .dateTime, "principal_id": Schema.uuid.orNull, "principal_role": .string,
        "method": .string, "object_type": Schema.string.orNull, "object_id": Schema.uuid.orNull, "outcome": .string,
    ])
}
