import Foundation
import Metrics
import MetricsTestKit
import Testing
import TestSupport

@testable import Delivery

extension DeliveryIntegrationTests {
    /// An idle dispatcher costs nothing measurable, a wake-up (what the outbox's NOTIFY
    /// triggers) sends at once without any poll, and the metrics count what happened.
    @Suite struct DispatcherIdleTests {
        @Test func idleIsQuietWakeSendsAndMetricsCount() async throws {
            try await withTestDatabase { db in
                let relay = try await Relay.start(script: [451, 550])
                defer { relay.stop() }
                let world = try await DeliveryWorld.make(db)
                var settings = quickSettings(relay: try SMTPRelay(url: "smtp://127.0.0.1:\(relay.port)?tls=off"))
                settings.pollInterval = .seconds(60)  // only a wake-up or a due retry can get it going
                let metrics = TestMetrics()
                let dispatcher = try world.dispatcher(settings, metrics: metrics)
                let task = Task { try await dispatcher.run() }
                defer { task.cancel() }

                // Idle for two seconds: the first look at the queue, and nothing after it.
                try await Task.sleep(for: .seconds(2))
                #expect(dispatcher.claimQueries.load(ordering: .relaxed) <= 2)

                // Three emails: the first refused with 451 (retried, due again in ~50 ms without any
                // wake-up), the second with 550 (failed), the third accepted.
                let customer = try await world.customer()
                for _ in 0..<3 { _ = try await world.order(for: customer) }
                dispatcher.wake()
                try await eventually(.seconds(20)) {
                    let rows = (try? await notificationRows(db)) ?? []
                    return rows.count == 3 && rows.allSatisfy { $0.status != "pending" }
                }
                dispatcher.stop()
                _ = try? await task.value
                let rows = try await notificationRows(db)
                #expect(rows.filter { $0.status == "sent" }.count == 2)
                #expect(rows.filter { $0.status == "failed" && $0.lastError == "smtp_550" }.count == 1)
                #expect(relay.count == 2)
                #expect(try metrics.expectCounter("forecourt_notifications_sent_total", [("channel", "email")]).totalValue == 2)
                #expect(try metrics.expectCounter("forecourt_notifications_failed_total", [("channel", "email")]).totalValue == 1)
                #expect(try metrics.expectCounter("forecourt_notifications_retried_total", [("channel", "email")]).totalValue == 1)
                #expect(try metrics.expectGauge("forecourt_notifications_pending").lastValue == 0)
            }
        }
    }
}
