/// `system.ping {}` → `{"ok": true}` (docs/protocol.md, "session / system"), allowed before
/// authentication so that a client or a load balancer can check the connection.
public enum SystemMethods {
    public static func all() -> [RPCMethod] {
        [
            RPCMethod(
                "system.ping", access: .anyone,
                schema: MethodSchema("Checks the connection.", result: .object(["ok": .boolean])),
                decode: { _ in () }, run: { _, _ in (["ok": true] as JSON) }),
        ]
    }
}
