import ForecourtCore
import RPC

/// `session.authenticate` and `session.whoami` (docs/protocol.md, "session / system").
public enum SessionMethods {
    public static func all(_ service: IdentityService) -> [RPCMethod] {
        [
            RPCMethod(
                "session.authenticate", access: .anyone, schema: .sessionAuthenticate,
                decode: { try $0.string("api_key", maxLength: 200) },
                run: { context, apiKey in
                    let principal = try await service.authenticate(apiKey: apiKey, session: context.session)
                    return (["principal": principal.json] as JSON)
                }),
            RPCMethod(
                "session.whoami", roles: Role.all(), schema: .sessionWhoami, decode: { _ in () },
                run: { context, _ in (["principal": try context.caller.json] as JSON) }),
        ]
    }
}
