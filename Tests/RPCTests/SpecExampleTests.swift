import ForecourtCore
import Foundation
import Logging
import RPC
import Testing

/// The examples of the JSON-RPC 2.0 specification, section 7, through the `Dispatcher`.
///
/// Forecourt methods take named parameters only, so the examples whose params are an array
/// are answered with -32602 (same id) where the specification's toy server computes a result;
/// every other example gets exactly the specified answer. Error objects are compared on
/// `code` and `message` (ours add `data.reason`), objects regardless of member order.
struct SpecExampleTests {
    let dispatcher = makeTestDispatcher()

    @Test func namedParameters() async throws {
        try await expect(
            #"{"jsonrpc": "2.0", "method": "subtract", "params": {"subtrahend": 23, "minuend": 42}, "id": 3}"#,
            #"{"jsonrpc": "2.0", "result": 19, "id": 3}"#)
        try await expect(
            #"{"jsonrpc": "2.0", "method": "subtract", "params": {"minuend": 42, "subtrahend": 23}, "id": 4}"#,
            #"{"jsonrpc": "2.0", "result": 19, "id": 4}"#)
    }

    @Test func positionalParametersAreInvalidParams() async throws {
        // Specification: result 19 and -19; Forecourt: -32602, params must be named.
        for (line, id) in [
            (#"{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}"#, "1"),
            (#"{"jsonrpc": "2.0", "method": "subtract", "params": [23, 42], "id": 2}"#, "2"),
        ] {
            try await expect(line, #"{"jsonrpc": "2.0", "error": {"code": -32602, "message": "params must be an object: methods take named parameters"}, "id": \#(id)}"#)
            let response = try #require(await respond(line))
            #expect(response["error"]?["data"]?["reason"] == "invalid_params")
        }
    }

    @Test func notificationsGetNoResponse() async throws {
        // Even a notification that fails (positional params, unknown method) is not answered.
        #expect(await respond(#"{"jsonrpc": "2.0", "method": "update", "params": [1,2,3,4,5]}"#) == nil)
        #expect(await respond(#"{"jsonrpc": "2.0", "method": "foobar"}"#) == nil)
        #expect(await respond(#"{"jsonrpc": "2.0", "method": "update", "params": {"values": [1,2,3]}}"#) == nil)
    }

    @Test func methodNotFound() async throws {
        try await expect(
            #"{"jsonrpc": "2.0", "method": "foobar", "id": "1"}"#,
            #"{"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "1"}"#)
    }

    @Test func parseErrors() async throws {
        try await expect(
            #"{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]"#,
            #"{"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": null}"#)
        try await expect(
            #"[{"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},{"jsonrpc": "2.0", "method"]"#,
            #"{"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": null}"#)
    }

    @Test func invalidRequests() async throws {
        try await expect(
            #"{"jsonrpc": "2.0", "method": 1, "params": "bar"}"#,
            #"{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}"#)
        try await expect(
            "[]", #"{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}"#)
        try await expect(
            "[1]", #"[{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}]"#)
        try await expect(
            "[1,2,3]",
            #"[{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null},{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null},{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}]"#
        )
    }

    @Test func mixedBatch() async throws {
        // The specification's batch, with positional params answered -32602 (entries "1" and "2").
        try await expect(
            #"[{"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},{"jsonrpc": "2.0", "method": "notify_hello", "params": [7]},{"jsonrpc": "2.0", "method": "subtract", "params": [42,23], "id": "2"},{"foo": "boo"},{"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},{"jsonrpc": "2.0", "method": "get_data", "id": "9"}]"#,
            #"[{"jsonrpc": "2.0", "error": {"code": -32602, "message": "params must be an object: methods take named parameters"}, "id": "1"},{"jsonrpc": "2.0", "error": {"code": -32602, "message": "params must be an object: methods take named parameters"}, "id": "2"},{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null},{"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "5"},{"jsonrpc": "2.0", "result": ["hello", 5], "id": "9"}]"#
        )
        // The same batch with named params gives the specification's answer exactly.
        try await expect(
            #"[{"jsonrpc": "2.0", "method": "sum", "params": {"values": [1,2,4]}, "id": "1"},{"jsonrpc": "2.0", "method": "notify_hello", "params": {"value": 7}},{"jsonrpc": "2.0", "method": "subtract", "params": {"minuend": 42, "subtrahend": 23}, "id": "2"},{"foo": "boo"},{"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},{"jsonrpc": "2.0", "method": "get_data", "id": "9"}]"#,
            #"[{"jsonrpc": "2.0", "result": 7, "id": "1"},{"jsonrpc": "2.0", "result": 19, "id": "2"},{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null},{"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "5"},{"jsonrpc": "2.0", "result": ["hello", 5], "id": "9"}]"#
        )
    }

    @Test func notificationBatchGetsNothing() async throws {
        #expect(
            await respond(
                #"[{"jsonrpc": "2.0", "method": "notify_sum", "params": [1,2,4]},{"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}]"#
            ) == nil)
        #expect(
            await respond(
                #"[{"jsonrpc": "2.0", "method": "notify_sum", "params": {"values": [1,2,4]}},{"jsonrpc": "2.0", "method": "notify_hello", "params": {"value": 7}}]"#
            ) == nil)
    }

    // MARK: helpers

    func respond(_ line: String) async -> JSON? {
        guard let bytes = await dispatcher.handle(line: Array(line.utf8), session: authenticatedSession()) else { return nil }
        return try? JSONParser().parse(bytes)
    }

    func expect(_ line: String, _ expected: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let response = try #require(await respond(line), "no response to \(line)", sourceLocation: sourceLocation)
        let wanted = try JSONParser().parse(expected)
        #expect(normalized(response) == normalized(wanted), "to \(line)", sourceLocation: sourceLocation)
    }
}

/// Members sorted by name and `error.data` dropped, for comparing with the specification's texts.
func normalized(_ value: JSON) -> JSON {
    switch value {
    case .array(let elements):
        return .array(elements.map(normalized))
    case .object(let object):
        var members = object.members
        if object["jsonrpc"] != nil, case .object(var error)? = object["error"] {
            error["data"] = nil
            members = members.map { $0.key == "error" ? (key: "error", value: .object(error)) : $0 }
        }
        return .object(JSONObject(members.sorted { $0.key < $1.key }.map { (key: $0.key, value: normalized($0.value)) }))
    default:
        return value
    }
}

func authenticatedSession() -> Session {
    let session = Session(remoteAddress: "127.0.0.1")
    session.authenticate(
        Principal(id: UUID(), role: .groupAdmin, dealerGroupID: UUID(), dealerID: nil, label: "test"), credential: nil)
    return session
}

/// The specification's toy methods, with named parameters.
func makeTestDispatcher() -> Dispatcher {
    let everyone = Set(Role.allCases)
    var registry = MethodRegistry()
    registry.register(
        RPCMethod(
            "subtract", roles: everyone,
            decode: { p in (try p.int("minuend", in: -1_000_000...1_000_000), try p.int("subtrahend", in: -1_000_000...1_000_000)) },
            run: { _, input in input.0 - input.1 }))
    registry.register(
        RPCMethod(
            "sum", roles: everyone,
            decode: { p in try p.optionalArray("values", count: 0...100) ?? [] },
            run: { _, values in values.reduce(0) { $0 + ($1.intValue ?? 0) } }))
    registry.register(
        RPCMethod("notify_hello", roles: everyone, decode: { p in try p.optionalInt("value", in: 0...100) }, run: { _, _ in JSON.null }))
    registry.register(
        RPCMethod("notify_sum", roles: everyone, decode: { p in try p.optionalArray("values", count: 0...100) }, run: { _, _ in JSON.null }))
    registry.register(
        RPCMethod("update", roles: everyone, decode: { p in try p.optionalArray("values", count: 0...100) }, run: { _, _ in JSON.null }))
    registry.register(RPCMethod("get_data", roles: everyone, decode: { _ in () }, run: { _, _ in ["hello", 5] as JSON }))
    registry.register(
        RPCMethod(
            "test.records", roles: everyone,
            decode: { p -> Int in
                let records = try p.objects("records", count: 1...10)
                return try records.map { record in
                    (try record.string("email"), try record.optionalObject("address").map { try $0.string("city") })
                }.count
            },
            run: { _, count in count }))
    return Dispatcher(registry: registry, authority: nil, logger: Logger(label: "test"))
}
