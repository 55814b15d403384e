import ForecourtCore

/// `rpc.discover {}` → this service's OpenRPC document, before authentication as well.
public enum DiscoveryMethods {
    static let schema = MethodSchema(
        "The OpenRPC 1.x document of this service: every method, its parameters and result as JSON Schema, its errors and the roles that may call it.",
        result: Schema(["type": "object", "required": ["openrpc", "info", "methods"]]))

    /// The method that describes `registry` and itself.
    public static func discover(_ registry: MethodRegistry, version: String) -> RPCMethod {
        var described = registry
        described.register(RPCMethod("rpc.discover", access: .anyone, schema: schema, decode: { _ in () }, run: { _, _ in JSON.null }))
        let document = OpenRPC.document(
            described, title: "Forecourt", version: version,
            description: "Vehicle-order back office: line-delimited JSON-RPC 2.0 over TLS (docs/protocol.md).")
        return RPCMethod("rpc.discover", access: .anyone, schema: schema, decode: { _ in () }, run: { _, _ in document })
    }
}
