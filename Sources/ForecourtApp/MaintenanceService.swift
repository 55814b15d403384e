import Logging
import Orders
import ServiceLifecycle
import Storage

/// Purges what has expired (idempotency keys after 24 hours, `track.lookup` counters after
/// their window), at start and then every `interval`. Every instance runs it; deletions are
/// idempotent, so instances need no coordination. A failed round is logged and tried again at
/// the next interval.
struct MaintenanceService: Service {
    let database: AppDatabase
    var interval: Duration = .seconds(600)
    let logger: Logger

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while true {
                await purge()
                try await Task.sleep(for: interval)
            }
        }
    }

    func purge() async {
        do {
            let keys = try await Purges.idempotencyKeys(database)
            let counters = try await Purges.trackingCounters(database)
            if keys + counters > 0 {
                logger.info(
                    "purged expired rows",
                    metadata: ["purge.idempotency_keys": "\(keys)", "purge.track_lookup_counters": "\(counters)"])
            }
        } catch {
            logger.warning("purge failed; trying again later", metadata: ["error.type": "\(type(of: error))"])
        }
    }
}
