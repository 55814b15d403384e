import ForecourtCore
import RPC

/// `events.subscribe {"dealer_id"?}` and `events.unsubscribe {"subscription"}`.
public enum EventMethods {
    static let readers: Set<Role> = [.groupAdmin, .dealerManager, .sales, .crmSync, .auditor, .factory]

    public static func all(_ hub: EventHub) -> [RPCMethod] {
        [
            RPCMethod(
                "events.subscribe", roles: readers,
                schema: MethodSchema(
                    "Subscribes this connection to order.updated pushes for every order change the principal may see.",
                    params: [.optional("dealer_id", .uuid)], result: .object(["subscription": .uuid]),
                    errors: [.notFound, .invalidRequest]),
                decode: { try $0.optionalUUID("dealer_id") },
                run: { context, dealer in
                    let id = try await hub.subscribe(session: context.session, principal: try context.caller, dealerID: dealer)
                    return ["subscription": id.json] as JSON
                }),
            RPCMethod(
                "events.unsubscribe", roles: readers,
                schema: MethodSchema(
                    "Ends a subscription of this connection.", params: [.required("subscription", .uuid)],
                    result: .object(["ok": .boolean]), errors: [.notFound]),
                decode: { try $0.uuid("subscription") },
                run: { context, id in
                    guard hub.unsubscribe(session: context.session, id: id) else { throw DomainError.notFound("subscription") }
                    return ["ok": true] as JSON
                }),
        ]
    }
}
