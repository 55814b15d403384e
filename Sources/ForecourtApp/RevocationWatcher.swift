import Identity
import Logging
import ServiceLifecycle

/// Ends open sessions of revoked keys within seconds, whether or not their clients send
/// anything (docs/protocol.md, "keys"): every `interval`, one query for the keys revoked in the
/// last ten minutes, for every session of this instance (`IdentityService.checkRevocations`).
/// While it cannot reach the database, sessions age past the dispatcher's and the event hub's
/// revalidation interval and those check their key themselves before they serve or push.
struct RevocationWatcher: Service {
    let identity: IdentityService
    var interval: Duration = .seconds(1)
    let logger: Logger

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            var failing = false
            while true {
                do {
                    let ended = try await identity.checkRevocations()
                    if ended > 0 { logger.info("ended sessions of revoked keys", metadata: ["sessions": "\(ended)"]) }
                    if failing { logger.info("revocation checks resumed") }
                    failing = false
                } catch {
                    if !failing { logger.warning("cannot check revocations; sessions check their keys themselves") }
                    failing = true
                }
                try await Task.sleep(for: interval)
            }
        }
    }
}
