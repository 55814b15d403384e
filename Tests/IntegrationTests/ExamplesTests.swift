import ForecourtClient
import ForecourtCore
import Foundation
import RPC
import Synchronization
import Testing
import TestSupport

/// The integrators' examples of examples/, run against a real service over TLS.
@Suite struct ExamplesTests {
    static let directory = TestEnvironment.repositoryDirectory + "/examples/python"

    /// Runs one example script to its end; its standard output, one JSON text per line.
    func runPython(_ script: String, _ arguments: [String], service: TestService, key: String) async throws -> [JSON] {
        let (process, output) = try startPython(script, arguments, service: service, key: key)
        // Waited for off the cooperative threads: the service it talks to runs on them.
        try await exited(process)
        let text = try String(contentsOfFile: output, encoding: .utf8)
        #expect(process.terminationStatus == 0, "\(script): \(text)")
        return try lines(text)
    }

    func startPython(_ script: String, _ arguments: [String], service: TestService, key: String) throws -> (Process, String) {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("example-\(UUID().uuidString).out").path
        _ = FileManager.default.createFile(atPath: output, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", Self.directory + "/" + script] + arguments
        process.currentDirectoryURL = URL(fileURLWithPath: Self.directory)
        var environment = ProcessInfo.processInfo.environment
        environment["FORECOURT_CONNECT"] = "127.0.0.1:\(service.port)"
        environment["FORECOURT_CA"] = service.certificates.ca
        environment["FORECOURT_API_KEY"] = key
        environment["PYTHONDONTWRITEBYTECODE"] = "1"
        process.environment = environment
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        return (process, output)
    }

    func lines(_ text: String) throws -> [JSON] {
        try text.split(separator: "\n").map { try JSONParser().parse(Array($0.utf8)) }
    }

    @Test func pythonCRMSyncPushesPullsAndSkipsItsEchoes() async throws {
        try await withTestDatabase { db in
            let fixture = try db.makeGroup()
            try await withTestService(db) { service in
                let state = FileManager.default.temporaryDirectory.appendingPathComponent("crm-\(UUID().uuidString)").path
                defer { try? FileManager.default.removeItem(atPath: state) }
                try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
                let records: JSON = [
                    ["external_ref": "CRM-1", "full_name": "José Müller", "email": "jose@example.com", "source_updated_at": "2026-11-01T09:00:00Z"],
                    ["external_ref": "CRM-2", "full_name": "Zoë Fairfax", "phone": "+44 20 7946 0102", "source_updated_at": "2026-11-01T09:00:00Z"],
                    ["external_ref": "CRM-3", "full_name": "Ana Núñez", "notify": ["email": true, "sms": false], "source_updated_at": "2026-11-01T09:00:00Z"],
                ]
                let recordsFile = state + "/export.json"
                try Data(JSONWriter.write(records)).write(to: URL(fileURLWithPath: recordsFile))
                let crm = fixture.key(.crmSync)

                // First cycle: three created, and no changes of others (its own come back as echoes).
                let first = try await runPython("crm_sync.py", ["--once", "--state", state, "--records", recordsFile], service: service, key: crm)
                #expect(first.count == 1)
                #expect(first.first?["pushed"] == ["created": 3])
                #expect(first.first?["changes"] == [])
                #expect(FileManager.default.fileExists(atPath: state + "/changes-cursor.json"))

                // A dealer's change is pulled once, from the stored cursor.
                let sales = try await service.connect(apiKey: fixture.key(.sales))
                let created = try await sales.call("customer.create", params: ["full_name": "Søren Ødegaard"])
                await sales.close()
                try await eventually(.seconds(20)) {
                    let next = (try? await runPython("crm_sync.py", ["--once", "--state", state], service: service, key: crm)) ?? []
                    return next.first?["changes"]?.arrayValue?.contains { $0["id"] == created["id"] } == true
                }
                let after = try await runPython("crm_sync.py", ["--once", "--state", state], service: service, key: crm)
                #expect(after.first?["changes"] == [], "the cursor moved past it")
            }
        }
    }

    @Test func pythonDealerScriptPrintsOrderUpdates() async throws {
        try await withTestDatabase { db in
            let fixture = try db.makeGroup()
            try await withTestService(db) { service in
                let admin = try await service.connect(apiKey: fixture.key(.groupAdmin))
                let customer = try await admin.call("customer.create", params: ["full_name": "Chloé Dubois"])
                let (process, output) = try startPython(
                    "dealer_events.py", ["--max", "2", "--timeout", "30"], service: service, key: fixture.key(.dealerManager))
                defer { if process.isRunning { process.terminate() } }
                try await eventually(.seconds(20)) {
                    ((try? String(contentsOfFile: output, encoding: .utf8)) ?? "").contains("subscribed")
                }
                let customerID = try #require(UUID(uuidString: customer["id"]?.stringValue ?? ""))
                let order = try await admin.call(
                    "order.create", params: orderParams(customer: customerID, dealer: fixture.dealers[0]))
                _ = try await admin.call(
                    "order.amend", params: ["id": order["id"]!, "version": 1, "exterior_color": "Fjord Blue"])
                await admin.close()
                try await eventually(.seconds(30)) { !process.isRunning }
                let printed = try lines(try String(contentsOfFile: output, encoding: .utf8))
                #expect(process.terminationStatus == 0)
                let updates = printed.filter { $0["order_number"] != nil }
                #expect(updates.count == 2)
                #expect(updates.first?["order_number"] == order["order_number"])
                #expect(updates.map { $0["event"] } == ["ordered", "amended"])
            }
        }
    }

    /// The Swift example (examples/swift, on the ForecourtClient library) lists the delayed
    /// orders and the first one's timeline.
    @Test func swiftExampleListsDelayedOrders() async throws {
        try await withTestDatabase { db in
            let fixture = try db.makeGroup()
            try await withTestService(db) { service in
                let admin = try await service.connect(apiKey: fixture.key(.groupAdmin))
                let customer = try await admin.call("customer.create", params: ["full_name": "Łukasz Wróbel"])
                let customerID = try #require(UUID(uuidString: customer["id"]?.stringValue ?? ""))
                let order = try await admin.call("order.create", params: orderParams(customer: customerID, dealer: fixture.dealers[0]))
                await admin.close()
                let factory = try await service.connect(apiKey: fixture.key(.factory))
                _ = try await factory.call(
                    "order.record_event",
                    params: ["id": order["id"]!, "event": "hold", "reason": "parts_shortage", "occurred_at": .string(RFC3339.format(Date()))])
                await factory.close()

                let executable = try Self.builtProduct("ForecourtExample")
                let output = FileManager.default.temporaryDirectory.appendingPathComponent("swift-example-\(UUID().uuidString)").path
                _ = FileManager.default.createFile(atPath: output, contents: nil)
                defer { try? FileManager.default.removeItem(atPath: output) }
                let process = Process()
                process.executableURL = URL(fileURLWithPath: executable)
                var environment = ProcessInfo.processInfo.environment
                environment["FORECOURT_CONNECT"] = "127.0.0.1:\(service.port)"
                environment["FORECOURT_CA"] = service.certificates.ca
                environment["FORECOURT_API_KEY"] = fixture.key(.groupAdmin)
                process.environment = environment
                let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
                process.standardOutput = handle
                process.standardError = handle
                try process.run()
                try await eventually(.seconds(60)) { !process.isRunning }
                let text = try String(contentsOfFile: output, encoding: .utf8)
                #expect(process.terminationStatus == 0, "\(text)")
                let printed = try lines(text)
                #expect(printed.first?["whoami"]?["role"] == "group_admin")
                #expect(printed.contains { $0["order_number"] == order["order_number"] && $0["hold_reason"] == "parts_shortage" })
                let timeline = printed.last?["timeline"]?.arrayValue ?? []
                #expect(timeline.map { $0["event"] } == ["ordered", "hold"])
            }
        }
    }

    /// An executable of this package, built beside the test binary.
    static func builtProduct(_ name: String) throws -> String {
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent(name).path,
            TestEnvironment.repositoryDirectory + "/.build/debug/" + name,
        ]
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw TestSetupError("\(name) is not built (looked in \(candidates)): run the tests with scripts/test")
        }
        return found
    }
}
