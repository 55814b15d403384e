import FieldCrypto
import Foundation
import Testing
import TestSupport

@testable import ForecourtApp

#if canImport(Glibc)
import Glibc
#endif

/// Issue 11, point 3: `FORECOURT_MAX_CONNECTIONS` and the open-files limit it needs.
@Suite(.timeLimit(.minutes(2)))
struct ConnectionLimitTests {
    @Test func theLimitIsRaisedWithinTheHardLimitOrRefusedNamingBothNumbers() throws {
        let needed = OpenFilesLimit.needed(maximumConnections: 10_000, poolSize: 16)
        #expect(needed == 10_000 + 16 + UInt64(OpenFilesLimit.reserve))
        var set: [OpenFilesLimit] = []
        // Enough already: nothing changes.
        #expect(try OpenFilesLimit.ensure(maximumConnections: 10_000, needed: needed,
            current: { OpenFilesLimit(soft: 65_536, hard: 65_536) }, set: { set.append($0); return true }) == nil)
        #expect(set.isEmpty)
        // A low soft limit under a high hard one: the soft limit is raised to what is needed.
        let raised = try OpenFilesLimit.ensure(maximumConnections: 10_000, needed: needed,
            current: { OpenFilesLimit(soft: 1024, hard: 524_288) }, set: { set.append($0); return true })
        #expect(raised?.after == OpenFilesLimit(soft: needed, hard: 524_288))
        #expect(set == [OpenFilesLimit(soft: needed, hard: 524_288)])
        // A hard limit too low, and no privilege to raise it: one line naming the setting and both numbers.
        let error = #expect(throws: OpenFilesLimit.TooLow.self) {
            try OpenFilesLimit.ensure(maximumConnections: 10_000, needed: needed,
                current: { OpenFilesLimit(soft: 1024, hard: 4096) }, set: { _ in false })
        }
        let line = error?.description ?? ""
        #expect(line.hasPrefix("FORECOURT_MAX_CONNECTIONS: 10000 connections need an open-files limit of at least \(needed)"), "\(line)")
        #expect(line.contains("1024") && line.contains("4096"), "\(line)")
        #expect(!line.contains("\n"))
    }

    @Test func theSettingIsCheckedAndDefaultsTo1024() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("maxconn-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = directory + "/file.pem"
        _ = FileManager.default.createFile(atPath: file, contents: Data("x".utf8))
        let environment = [
            "FORECOURT_DATABASE_URL": "host=/nowhere", "FORECOURT_TLS_CERT": file, "FORECOURT_TLS_KEY": file,
            "FORECOURT_KEYRING": file,
        ]
        #expect(try ServiceConfiguration.load(environment: environment).maximumConnections == 1024)
        #expect(try ServiceConfiguration.load(environment: environment.merging(["FORECOURT_MAX_CONNECTIONS": "10000"]) { $1 })
            .maximumConnections == 10_000)
        for bad in ["0", "-5", "many", "1000001"] {
            let error = #expect(throws: ConfigurationError.self) {
                try ServiceConfiguration.load(environment: environment.merging(["FORECOURT_MAX_CONNECTIONS": bad]) { $1 })
            }
            #expect(error?.setting == "FORECOURT_MAX_CONNECTIONS")
        }
    }

    /// `forecourt serve` as a process whose open-files limit is 512 (soft and hard), without the
    /// privilege to raise a hard limit: 200 connections fit after raising nothing; 2000 stop
    /// start-up with one line naming both numbers; with a hard limit of 4096, 2000 connections
    /// raise the soft limit to fit and the service runs.
    @Test func serveRaisesItsOpenFilesLimitOrRefusesToStart() async throws {
        try await withTestDatabase { db in
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("nofile-\(UUID().uuidString)").path
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let tls = try DevCertificates.ensure(in: directory + "/tls")
            let keyring = directory + "/keyring.json"
            try Keyring.generate().createNew(at: keyring)
            let executable = try ExamplesTests.builtProduct("forecourt")

            /// Runs `forecourt serve` under `ulimit` commands, without CAP_SYS_RESOURCE (which a
            /// root test run would otherwise have), until it says it serves or it exits.
            func serve(limits: String, maximumConnections: Int) async throws -> (Process, String, String) {
                let log = directory + "/serve-\(maximumConnections)-\(UUID().uuidString.prefix(4)).log"
                _ = FileManager.default.createFile(atPath: log, contents: nil)
                let process = Process()
                process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
                process.arguments = [
                    "--bounding-set=-sys_resource", "--inh-caps=-sys_resource", "/bin/sh", "-c",
                    "\(limits) && exec \"$0\" serve", executable,
                ]
                process.environment = [
                    "FORECOURT_DATABASE_URL": db.ownerConnectionString, "FORECOURT_LISTEN": "127.0.0.1:\(try freePort())",
                    "FORECOURT_TLS_CERT": tls.certificate, "FORECOURT_TLS_KEY": tls.privateKey, "FORECOURT_KEYRING": keyring,
                    "FORECOURT_METRICS_LISTEN": "off", "FORECOURT_MIGRATIONS_DIR": TestEnvironment.migrationsDirectory,
                    "FORECOURT_DB_POOL_SIZE": "2", "FORECOURT_MAX_CONNECTIONS": String(maximumConnections),
                ]
                let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
                process.standardOutput = handle
                process.standardError = handle
                try process.run()
                try await eventually(.seconds(60)) {
                    !process.isRunning || ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("serving JSON-RPC")
                }
                let limits = (try? String(contentsOfFile: "/proc/\(process.processIdentifier)/limits", encoding: .utf8)) ?? ""
                return (process, try String(contentsOfFile: log, encoding: .utf8), limits)
            }
            func openFiles(_ limits: String) -> [String] {
                limits.split(separator: "\n").first { $0.hasPrefix("Max open files") }?.split(separator: " ").dropFirst(3).prefix(2).map(String.init) ?? []
            }

            let (small, _, smallLimits) = try await serve(limits: "ulimit -n 512", maximumConnections: 200)
            defer { if small.isRunning { kill(small.processIdentifier, SIGKILL) } }
            #expect(small.isRunning)
            #expect(openFiles(smallLimits) == ["512", "512"])
            kill(small.processIdentifier, SIGTERM)
            try await exited(small)

            let (refused, output, _) = try await serve(limits: "ulimit -n 512", maximumConnections: 2000)
            defer { if refused.isRunning { kill(refused.processIdentifier, SIGKILL) } }
            try await exited(refused)
            #expect(refused.terminationStatus == 78)
            let needed = OpenFilesLimit.needed(maximumConnections: 2000, poolSize: 2)
            let line = output.split(separator: "\n").last.map(String.init) ?? ""
            #expect(line.hasPrefix("forecourt: FORECOURT_MAX_CONNECTIONS: 2000 connections need an open-files limit of at least \(needed)"), "\(output)")
            #expect(line.contains("the limit is 512") && line.contains("hard limit 512"), "\(output)")

            let (raised, raisedOutput, raisedLimits) = try await serve(limits: "ulimit -Sn 512 && ulimit -Hn 4096", maximumConnections: 2000)
            defer { if raised.isRunning { kill(raised.processIdentifier, SIGKILL) } }
            #expect(raised.isRunning, "\(raisedOutput)")
            #expect(openFiles(raisedLimits) == ["\(needed)", "4096"])
            kill(raised.processIdentifier, SIGTERM)
            try await exited(raised)
        }
    }
}
