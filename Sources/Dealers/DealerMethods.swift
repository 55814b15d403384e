import ForecourtCore
import RPC

/// `dealer.create`, `get`, `list`, `update` (docs/protocol.md, "dealers"). Every principal of a group
/// may read its dealers; only group admins create and change them.
public enum DealerMethods {
    static let readers: Set<Role> = [.groupAdmin, .dealerManager, .sales, .crmSync, .auditor]

    public static func all(_ service: DealerService) -> [RPCMethod] {
        [
            RPCMethod(
                "dealer.create", roles: [.groupAdmin], mutating: true, schema: .dealerCreate,
                decode: { params in
                    DealerService.NewDealer(
                        code: try DealerRules.code(try params.string("code", maxLength: 12)),
                        name: try params.string("name", maxLength: 200),
                        region: try params.optionalString("region", maxLength: 100),
                        timezone: try DealerRules.timezone(try params.optionalString("timezone", maxLength: 64)))
                },
                run: { context, new in try await service.create(caller: try context.caller, new) }),
            RPCMethod(
                "dealer.get", roles: readers, schema: .dealerGet, decode: { try $0.uuid("id") },
                run: { context, id in try await service.get(caller: try context.caller, id: id) }),
            RPCMethod(
                "dealer.list", roles: readers, schema: .dealerList,
                decode: { try $0.listRequest() },
                run: { context, input in
                    try await service.list(caller: try context.caller, limit: input.limit, after: input.after)
                }),
            RPCMethod(
                "dealer.update", roles: [.groupAdmin], mutating: true, schema: .dealerUpdate,
                decode: { params in
                    let timezone = try params.patchString("timezone", maxLength: 64)
                    if case .set(let name) = timezone { _ = try DealerRules.timezone(name) }
                    return DealerService.DealerPatch(
                        id: try params.uuid("id"), version: try params.int("version", in: 1...Int(Int32.max)),
                        name: try params.optionalString("name", maxLength: 200),
                        region: try params.patchString("region", maxLength: 100), timezone: timezone)
                },
                run: { context, patch in try await service.update(caller: try context.caller, patch) }),
        ]
    }
}
