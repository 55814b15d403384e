import Foundation
import ForecourtCore
import RPC
import Testing
import TestSupport

/// `rpc.discover` (docs/protocol.md): the OpenRPC document generated from the method registry.
@Suite struct OpenRPCTests {
    /// Every method says what it takes and gives: a method registered without a schema (one
    /// added later included) fails here.
    @Test func everyMethodDeclaresItsSchema() async throws {
        try await withTestDatabase { db in
            let harness = DispatcherHarness(db)
            let undescribed = harness.wiring.registry.all.filter { $0.schema == nil }.map(\.name)
            #expect(undescribed.isEmpty, "methods without a MethodSchema: \(undescribed)")
            #expect(harness.wiring.registry["rpc.discover"] != nil)
        }
    }

    /// Callable before authentication; lists every registered method with its roles; equals
    /// docs/openrpc.json and validates against the OpenRPC meta-schema (Python's jsonschema).
    @Test func discoverServesTheCommittedValidDocument() async throws {
        try await withTestDatabase { db in
            let harness = DispatcherHarness(db)
            let anonymous = harness.session()
            let document = try await harness.call(anonymous, "rpc.discover").get()
            let methods = document["methods"]?.arrayValue ?? []
            #expect(methods.compactMap { $0["name"]?.stringValue }.sorted() == harness.wiring.registry.names)
            let create = try #require(methods.first { $0["name"] == "order.create" })
            #expect(create["x-roles"] == ["group_admin", "dealer_manager", "sales"])
            #expect(create["errors"]?.arrayValue?.contains { $0["code"] == -32005 } == false)
            #expect(create["errors"]?.arrayValue?.contains { $0["code"] == -32002 } == true)
            let ping = try #require(methods.first { $0["name"] == "system.ping" })
            #expect(ping["x-before-authentication"] == true)

            let served = FileManager.default.temporaryDirectory.appendingPathComponent("openrpc-\(UUID().uuidString).json")
            defer { try? FileManager.default.removeItem(at: served) }
            try Data(JSONWriter.write(document)).write(to: served)
            let committed = TestEnvironment.repositoryDirectory + "/docs/openrpc.json"
            var arguments = [TestEnvironment.repositoryDirectory + "/scripts/lib/openrpc_check.py", served.path, committed]
            if ProcessInfo.processInfo.environment["FORECOURT_UPDATE_OPENRPC"] == "1" { arguments.append("--update") }
            let (status, output) = try runPython(arguments)
            #expect(status == 0, "\(output)")
        }
    }
}

/// Runs the test Python (`FC_PYTHON`, the virtual environment `scripts/test` prepares); fails
/// rather than skipping when it is missing.
func runPython(_ arguments: [String]) throws -> (status: Int32, output: String) {
    guard let python = ProcessInfo.processInfo.environment["FC_PYTHON"],
        FileManager.default.isExecutableFile(atPath: python)
    else {
        throw TestSetupError("FC_PYTHON is not set or not executable: run the tests with scripts/test")
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: python)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}
