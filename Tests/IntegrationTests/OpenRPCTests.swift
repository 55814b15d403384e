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
            let command = arguments
            let (status, output) = try await offloaded { try runPython(command) }
            #expect(status == 0, "\(output)")
        }
    }
}

/// Each method's declared parameters against what its `Params` decoding accepts: every
/// declared name is read, required ones are required, example values of the schema are
/// accepted, and an undeclared member is refused. (The schemas describe; `Params` validates;
/// this keeps the two saying the same.)
@Suite struct MethodSchemaParamsTests {
    /// The one parameter that satisfies a rule between optional members ("id or order_number",
    /// "exactly one of email, phone, external_ref"), and the members that exclude it.
    static let alternatives: [String: (base: [String], exclusive: Set<String>)] = [
        "order.get": (["id"], ["order_number"]),
        "order.record_event": (["id"], ["order_number"]),
        "customer.find": (["email"], ["phone", "external_ref"]),
    ]

    @Test func schemasMatchParamsDecoding() async throws {
        try await withTestDatabase { db in
            let harness = DispatcherHarness(db)
            for method in harness.wiring.registry.all {
                let schema = try #require(method.schema, "\(method.name) has no schema")
                let declared = Dictionary(uniqueKeysWithValues: schema.params.map { ($0.name, $0) })
                let required = schema.params.filter(\.required)
                let (base, exclusive) = Self.alternatives[method.name] ?? ([], [])
                func params(_ names: [String]) -> JSON {
                    .object(JSONObject(names.compactMap { name in declared[name].map { (key: name, value: Self.example($0.schema.json)) } }))
                }
                func check(_ names: [String]) -> DomainError? {
                    do {
                        try method.checkParams(params(names))
                        return nil
                    } catch let error as DomainError {
                        return error
                    } catch {
                        return DomainError(.internal, "\(error)")
                    }
                }
                let minimal = required.map(\.name) + base
                #expect(check(minimal) == nil, "\(method.name): required parameters with example values: \(String(describing: check(minimal)))")
                for parameter in schema.params where !parameter.required && !base.contains(parameter.name) {
                    let names = (exclusive.contains(parameter.name) ? required.map(\.name) : minimal) + [parameter.name]
                    #expect(check(names) == nil, "\(method.name): optional \(parameter.name): \(String(describing: check(names)))")
                }
                for parameter in required {
                    let error = check(minimal.filter { $0 != parameter.name })
                    #expect(error?.code == .invalidParams && error?.field == parameter.name, "\(method.name): \(parameter.name) is declared required")
                }
                var unknown = params(minimal)
                if case .object(var object) = unknown {
                    object["zz_undeclared"] = 1
                    unknown = .object(object)
                }
                #expect(throws: DomainError.self, "\(method.name) refuses undeclared members") { try method.checkParams(unknown) }
            }
        }
    }

    /// A value the schema describes: its first example, else the least value of its type.
    static func example(_ schema: JSON) -> JSON {
        if let first = schema["examples"]?.arrayValue?.first { return first }
        if let options = schema["oneOf"]?.arrayValue, let first = options.first { return example(first) }
        if let values = schema["enum"]?.arrayValue, let first = values.first { return first }
        switch schema["type"]?.stringValue {
        case "string":
            switch schema["format"]?.stringValue {
            case "uuid": return .string(UUID().uuidString.lowercased())
            case "date-time": return .string(RFC3339.format(Date().addingTimeInterval(-3600)))
            case "date": return "2026-12-14"
            default:
                let length = schema["minLength"].flatMap { if case .number(let n) = $0 { Int(n.text) } else { nil } } ?? 1
                return .string(String(repeating: "x", count: max(length, 1)))
            }
        case "integer":
            if case .number(let minimum)? = schema["minimum"] { return .number(minimum) }
            return 1
        case "boolean": return true
        case "array":
            let count = schema["minItems"].flatMap { if case .number(let n) = $0 { Int(n.text) } else { nil } } ?? 0
            return .array(Array(repeating: example(schema["items"] ?? [:]), count: count))
        case "object":
            var object = JSONObject()
            let required = Set((schema["required"]?.arrayValue ?? []).compactMap(\.stringValue))
            if case .object(let properties)? = schema["properties"] {
                for (name, property) in properties.members where required.contains(name) { object[name] = example(property) }
            }
            return .object(object)
        default:
            return .null
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
