import FieldCrypto
import Foundation
import Postgres
import RPC
import Storage
import Testing
import TestSupport

@testable import ForecourtApp

/// The operator files of deploy/ stay true to the code: dashboards name only metrics the service
/// exports and views the analytics schema has; the systemd unit keeps its hardening.
@Suite struct DeployFilesTests {
    func read(_ path: String) throws -> String {
        try String(contentsOfFile: TestEnvironment.repositoryDirectory + "/" + path, encoding: .utf8)
    }

    func names(_ pattern: String, in text: String) throws -> Set<String> {
        let regex = try Regex(pattern)
        return Set(text.matches(of: regex).map { String(text[$0.range]) })
    }

    @Test func serviceDashboardUsesExportedMetrics() throws {
        let dashboard = try read("deploy/grafana/forecourt.json")
        let parsed = try JSONParser().parse(Array(dashboard.utf8))
        #expect((parsed["panels"]?.arrayValue?.count ?? 0) >= 8)
        let protocolText = try read("docs/protocol.md")
        let used = try names("forecourt_[a-z_]+", in: dashboard).map {
            $0.replacingOccurrences(of: "_bucket", with: "").replacingOccurrences(of: "_count", with: "")
        }
        #expect(Set(used).count >= 8)
        for metric in Set(used) {
            #expect(protocolText.contains("`\(metric)"), "\(metric) is not a metric of docs/protocol.md")
        }
        // The panels the issue names: requests, errors, latency, pool, notifications.
        for needle in ["forecourt_rpc_requests_total", "code!=\\\"0\\\"", "forecourt_rpc_request_duration_seconds_bucket",
                       "forecourt_db_pool_waiting", "analytics.notification_delivery"] {
            #expect(dashboard.contains(needle), "\(needle)")
        }
    }

    @Test func analyticsDashboardReadsTheAnalyticsViews() throws {
        let dashboard = try read("deploy/grafana/analytics.json")
        _ = try JSONParser().parse(Array(dashboard.utf8))
        let views: Set<String> = [
            "analytics.orders", "analytics.order_events", "analytics.stage_durations", "analytics.dealer_kpis",
            "analytics.eta_accuracy", "analytics.notification_delivery", "analytics.forecast_accuracy",
        ]
        let used = try names("analytics\\.[a-z_]+", in: dashboard).subtracting(["analytics.md"])
        #expect(used.isSubset(of: views), "\(used.subtracting(views))")
        #expect(used.count >= 6)
        #expect(!dashboard.contains("forecourt."), "reads the analytics views only")
    }

    /// Every SQL panel of both dashboards runs as `forecourt_analyst` (what Grafana's data source
    /// logs in as) against the analytics views, and shows the demo group's data.
    @Test func dashboardQueriesRunAsAnAnalyst() async throws {
        var queries: [(panel: String, sql: String)] = []
        for file in ["deploy/grafana/analytics.json", "deploy/grafana/forecourt.json"] {
            let dashboard = try JSONParser().parse(Array(try read(file).utf8))
            for panel in dashboard["panels"]?.arrayValue ?? [] {
                for target in panel["targets"]?.arrayValue ?? [] {
                    guard let sql = target["rawSql"]?.stringValue else { continue }
                    // Grafana's time macro, as it would expand it for "all time"; `$group` is set below.
                    let expanded = try sql.replacing(Regex("\\$__timeFilter\\([a-z_]+\\)"), with: "true")
                    queries.append(((panel["title"]?.stringValue ?? "?"), expanded))
                }
            }
        }
        #expect(queries.count >= 10)
        try await withTestDatabase { db in
            let keys = try DemoData.ensure(
                connectionString: db.ownerConnectionString,
                keysFile: FileManager.default.temporaryDirectory.appendingPathComponent("demo-\(UUID().uuidString).json").path)
            let owner = try db.ownerConnection()
            defer { owner.close() }
            _ = try await DemoStory.seed(
                database: AppDatabase(pool: db.pool), cipher: FieldCipher(keyring: .generate()), owner: owner, keys: keys)
            // The group variable empty (every group the role may see), the demo group, another group.
            for (group, shows) in [("", true), (keys.groupID, true), (UUID().uuidString.lowercased(), false)] {
                for (panel, template) in queries {
                    let sql = template.replacingOccurrences(of: "'$group'", with: "'\(group)'")
                    // As the analysts' role: the views must be readable with its grants alone.
                    try owner.execute(unsafeSQL: "BEGIN; SET LOCAL ROLE forecourt_analyst")
                    do {
                        _ = try owner.query(PostgresQuery(unsafeSQL: sql))
                        try owner.execute(unsafeSQL: "ROLLBACK")
                    } catch {
                        try? owner.execute(unsafeSQL: "ROLLBACK")
                        Issue.record("\(panel): \(error)")
                    }
                    // And it shows the demo group's data, and only for that group when one is chosen
                    // (read as the owner, which sees every group). Panels without the variable
                    // (the service dashboard's) are checked once.
                    guard group.isEmpty || template.contains("$group") else { continue }
                    let rows = try owner.query(PostgresQuery(unsafeSQL: sql)).count
                    #expect((rows > 0) == shows, "\(panel) with group '\(group)': \(rows) rows")
                }
            }
        }
    }

    @Test func systemdUnitIsHardened() throws {
        let unit = try read("deploy/systemd/forecourt.service")
        for line in [
            "ExecStart=/usr/local/bin/forecourt serve", "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes",
            "PrivateTmp=yes", "PrivateDevices=yes", "DynamicUser=yes", "CapabilityBoundingSet=", "RestrictAddressFamilies=",
            "SystemCallFilter=@system-service", "MemoryDenyWriteExecute=yes", "LoadCredential=keyring:",
            "ExecReload=/bin/kill -HUP $MAINPID", "RestartPreventExitStatus=78",
        ] {
            #expect(unit.contains(line), "\(line)")
        }
    }
}
