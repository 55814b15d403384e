import ForecourtCore
import RPC

/// `key.create`, `key.list` and `key.revoke` (docs/protocol.md, "keys"). Keys with no group
/// (`factory`, global `portal`) are the command line's (`forecourt key`).
public enum KeyMethods {
    public static func all(_ service: IdentityService) -> [RPCMethod] {
        [
            RPCMethod(
                "key.create", roles: [.groupAdmin, .dealerManager], mutating: true, schema: .keyCreate,
                decode: { params in
                    (
                        role: try params.enumValue("role", Role.self),
                        dealerID: try params.optionalUUID("dealer_id"),
                        label: try params.string("label", maxLength: 200)
                    )
                },
                run: { context, input in
                    let (record, key) = try await service.createKey(
                        caller: try context.caller, role: input.role, dealerID: input.dealerID, label: input.label)
                    guard case .object(var object) = record.json else { return record.json }
                    object.members.append((key: "api_key", value: .string(key.secret)))
                    return JSON.object(object)
                }),
            RPCMethod(
                // Auditors read everything of their group, keys included (never a secret).
                "key.list", roles: [.groupAdmin, .dealerManager, .auditor], schema: .keyList,
                decode: { try $0.listRequest() },
                run: { context, input in
                    try await service.listKeys(caller: try context.caller, limit: input.limit, after: input.after)
                }),
            RPCMethod(
                "key.revoke", roles: [.groupAdmin, .dealerManager], mutating: true, schema: .keyRevoke,
                decode: { try $0.uuid("id") },
                run: { context, id in try await service.revokeKey(caller: try context.caller, id: id) }),
        ]
    }
}
