import Foundation
import RPC
import Testing
import TestSupport

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
