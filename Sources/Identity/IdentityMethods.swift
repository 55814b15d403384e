import ForecourtCore
import RPC

/// `system.ping`, `session.*` and `key.*` (API.md section 4).
public enum IdentityMethods {
    public static func all(_ service: IdentityService) -> [RPCMethod] {
        [
            RPCMethod("system.ping", access: .anyone, decode: { _ in () }, run: { _, _ in (["ok": true] as JSON) }),
            RPCMethod(
                "session.authenticate", access: .anyone,
                decode: { try $0.string("api_key", maxLength: 200) },
                run: { context, apiKey in
                    let principal = try await service.authenticate(apiKey: apiKey, session: context.session)
                    return (["principal": principal.json] as JSON)
                }),
            RPCMethod(
                "session.whoami", roles: Role.all(), decode: { _ in () },
                run: { context, _ in (["principal": try context.caller.json] as JSON) }),
            RPCMethod(
                "key.create", roles: [.groupAdmin, .dealerManager], mutating: true,
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
                "key.list", roles: [.groupAdmin, .dealerManager],
                decode: { try $0.listRequest() },
                run: { context, input in
                    try await service.listKeys(caller: try context.caller, limit: input.limit, after: input.after)
                }),
            RPCMethod(
                "key.revoke", roles: [.groupAdmin, .dealerManager], mutating: true,
                decode: { try $0.uuid("id") },
                run: { context, id in try await service.revokeKey(caller: try context.caller, id: id) }),
        ]
    }
}
