import ForecourtCore
import Foundation
import Logging
import RPC
import Testing

/// Envelope rules, batch bounds, hostile input and `Params` field paths, through the `Dispatcher`.
struct EnvelopeTests {
    let dispatcher = makeTestDispatcher()

    func respond(_ line: String, session: Session = authenticatedSession()) async throws -> JSON {
        let bytes = try #require(await dispatcher.handle(line: Array(line.utf8), session: session))
        return try JSONParser().parse(bytes)
    }

    @Test(arguments: [#""1.0""#, #""2""#, "2.0", "null", #""2.0 ""#])
    func wrongVersionIsInvalidRequest(version: String) async throws {
        let response = try await respond(#"{"jsonrpc": \#(version), "method": "get_data", "id": 7}"#)
        #expect(response["error"]?["code"] == .int(-32600))
        #expect(response["error"]?["data"]?["reason"] == "invalid_request")
        #expect(response["id"] == .int(7), "a valid id is echoed")
    }

    @Test func missingVersionIsInvalidRequest() async throws {
        let response = try await respond(#"{"method": "get_data", "id": "a"}"#)
        #expect(response["error"]?["code"] == .int(-32600))
        #expect(response["id"] == "a")
    }

    @Test(arguments: ["{}", "[]", "true", "false", #"{"a":1}"#, "[1]"])
    func badIDTypesAreInvalidRequestWithNullID(id: String) async throws {
        let response = try await respond(#"{"jsonrpc": "2.0", "method": "get_data", "id": \#(id)}"#)
        #expect(response["error"]?["code"] == .int(-32600))
        #expect(response["id"] == .null)
    }

    @Test func idsAreEchoedExactly() async throws {
        for id in ["1.50", "-0", "12345678901234567890", "1e3", #""x\"y""#, "null"] {
            let line = #"{"jsonrpc": "2.0", "method": "get_data", "id": \#(id)}"#
            let bytes = try #require(await dispatcher.handle(line: Array(line.utf8), session: authenticatedSession()))
            let text = String(decoding: bytes, as: UTF8.self)
            #expect(text.contains(#""id":\#(id)"#), "id \(id) echoed as sent in \(text)")
        }
    }

    @Test func positionalParamsAreInvalidParams() async throws {
        let response = try await respond(#"{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}"#)
        #expect(response["error"]?["code"] == .int(-32602))
        #expect(response["error"]?["data"]?["reason"] == "invalid_params")
        #expect(response["id"] == .int(1))
    }

    @Test func batchOfOneHundredIsServedAndOneHundredOneIsRefused() async throws {
        func batch(_ count: Int) -> String {
            "[" + (0..<count).map { #"{"jsonrpc":"2.0","method":"get_data","id":\#($0)}"# }.joined(separator: ",") + "]"
        }
        let hundred = try await respond(batch(100))
        #expect(hundred.arrayValue?.count == 100)
        #expect(hundred.arrayValue?.allSatisfy { $0["result"] == ["hello", 5] } == true)

        let tooMany = try await respond(batch(101))
        #expect(tooMany.arrayValue == nil, "one error for the whole batch, not an array")
        #expect(tooMany["error"]?["code"] == .int(-32600))
        #expect(tooMany["id"] == .null)
    }

    @Test func deepNestingIsAParseErrorNotACrash() async throws {
        for depth in [65, 1000, 100_000] {
            let line = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
            let response = try await respond(line)
            #expect(response["error"]?["code"] == .int(-32700))
            #expect(response["id"] == .null)
        }
        let objects = String(repeating: #"{"a":"#, count: 50_000) + "1" + String(repeating: "}", count: 50_000)
        #expect(try await respond(objects)["error"]?["code"] == .int(-32700))
        // Unclosed nesting too.
        #expect(try await respond(String(repeating: "[", count: 200_000))["error"]?["code"] == .int(-32700))
    }

    @Test func duplicateMembersAreRefused() async throws {
        let response = try await respond(#"{"jsonrpc": "2.0", "method": "get_data", "method": "x", "id": 1}"#)
        #expect(response["error"]?["code"] == .int(-32600))
    }

    @Test func paramsErrorsNameTheField() async throws {
        func field(_ params: String) async throws -> JSON? {
            let response = try await respond(#"{"jsonrpc": "2.0", "method": "test.records", "params": \#(params), "id": 1}"#)
            #expect(response["error"]?["code"] == .int(-32602), "\(params)")
            return response["error"]?["data"]?["field"]
        }
        let good = #"{"email": "a@b.c"}"#
        #expect(try await field(#"{"records": [\#(good), \#(good), \#(good), {"email": 5}]}"#) == "records[3].email")
        #expect(try await field(#"{"records": [\#(good), {}]}"#) == "records[1].email")
        #expect(try await field(#"{"records": [\#(good), 7]}"#) == "records[1]")
        #expect(try await field(#"{"records": [{"email": "x", "address": {"city": 1}}]}"#) == "records[0].address.city")
        #expect(try await field(#"{"records": [{"email": "x", "address": {"city": "y", "zip": 1}}]}"#) == "records[0].address.zip")
        #expect(try await field(#"{"records": [\#(good)], "extra": true}"#) == "extra")
        #expect(try await field(#"{}"#) == "records")
        #expect(try await field(#"{"records": []}"#) == "records")

        let ok = try await respond(#"{"jsonrpc": "2.0", "method": "test.records", "params": {"records": [\#(good)]}, "id": 1}"#)
        #expect(ok["result"] == .int(1))
    }

    @Test func unauthenticatedSessionsLearnNothing() async throws {
        let anonymous = Session(remoteAddress: nil)
        for method in ["get_data", "no.such.method"] {
            let response = try await respond(#"{"jsonrpc": "2.0", "method": "\#(method)", "id": 1}"#, session: anonymous)
            #expect(response["error"]?["code"] == .int(-32001))
            #expect(response["error"]?["data"]?["reason"] == "unauthenticated")
        }
    }
}
