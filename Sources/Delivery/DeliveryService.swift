import FieldCrypto
import ForecourtCore
import Foundation
import Logging
import Metrics
import NIOSSL
import Notifications
import Postgres
import ServiceLifecycle
import Storage
import Synchronization

/// The notification dispatcher of one instance (docs/architecture.md, "Delivery").
///
/// Claim a small batch of due notifications with a lease (`FOR UPDATE SKIP LOCKED`, committed
/// at once), send each outside any transaction, and record each outcome as soon as it is known,
/// under the lease. So several instances send each notification once, and an instance that
/// dies resends at most the one message whose outcome it had not recorded yet; the rest of its
/// batch becomes due again when the lease ends. It sleeps until woken by a NOTIFY from a
/// transaction that queued notifications (`wake()`), until the next retry is due, or at most
/// `pollInterval`: an idle instance makes one small query a minute.
public final class DeliveryService: Service, Sendable {
    let queue: DeliveryQueue
    let database: AppDatabase
    let cipher: FieldCipher
    let settings: DeliverySettings
    let policy: RetryPolicy
    let logger: Logger
    let mail: (any MailTransport)?
    let webhooks: WebhookSender
    private let signal = WakeSignal()
    private let stopping = Atomic<Bool>(false)
    let metrics: DeliveryMetrics
    /// Claim queries made (tests: an idle dispatcher makes almost none).
    let claimQueries = Atomic<Int>(0)

    /// The channels this instance sends: `sms` always, `email` only with a relay (without one,
    /// email notifications wait, pending, for an instance that has one).
    var channels: [String] { mail == nil ? ["sms"] : ["email", "sms"] }

    /// - Throws: `SettingError` naming what is wrong with a CA file.
    public init(
        database: AppDatabase, cipher: FieldCipher, settings: DeliverySettings, instance: UUID = UUID(),
        logger: Logger = Logger(label: "forecourt.delivery"), metrics: any MetricsFactory = MetricsSystem.factory
    ) throws {
        self.metrics = DeliveryMetrics(factory: metrics)
        self.queue = DeliveryQueue(database: database, instance: instance)
        self.database = database
        self.cipher = cipher
        self.settings = settings
        self.policy = RetryPolicy(base: settings.retryBase, maximumAttempts: settings.maximumAttempts)
        self.logger = logger
        if let directory = settings.mailDirectory {
            mail = FileMailTransport(directory: directory, from: settings.mailFrom ?? "forecourt@localhost")
        } else if let relay = settings.relay, let from = settings.mailFrom {
            mail = SMTPMailTransport(
                relay: relay, tls: try Self.tlsContext(caPath: settings.relayCAPath, setting: "FORECOURT_SMTP_CA"),
                from: from, timeout: settings.smtpTimeout)
        } else {
            mail = nil
        }
        webhooks = WebhookSender(
            tls: try Self.tlsContext(caPath: settings.webhookCAPath, setting: "FORECOURT_WEBHOOK_CA"),
            timeout: settings.webhookTimeout, allowsInsecure: settings.allowsInsecureWebhooks)
    }

    static func tlsContext(caPath: String?, setting: String) throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        if let caPath {
            do {
                configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caPath))
            } catch {
                throw SettingError("\(setting): cannot read a PEM certificate from \(caPath)")
            }
        }
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw SettingError("\(setting): cannot make a TLS context (\(error))")
        }
    }

    /// Something was queued (a NOTIFY on `NotificationOutbox.notifyChannel`), or the listener
    /// reconnected and may have missed one: look at the queue now.
    public func wake() { signal.signal() }

    public func run() async throws {
        if mail == nil {
            logger.warning("no SMTP relay configured (FORECOURT_SMTP_URL): email notifications stay pending until one is")
        }
        await withGracefulShutdownHandler {
            await loop()
        } onGracefulShutdown: { [self] in
            stopping.store(true, ordering: .relaxed)
            signal.signal()
        }
        await mail?.finishBurst()
    }

    /// Stops after the message in flight (tests that run the service without a ServiceGroup).
    public func stop() {
        stopping.store(true, ordering: .relaxed)
        signal.signal()
    }

    private var shouldStop: Bool { stopping.load(ordering: .relaxed) || Task.isCancelled }

    private func loop() async {
        var failures = 0
        var lastStatistics = ContinuousClock.now - .seconds(3600)
        while !shouldStop {
            do {
                if ContinuousClock.now - lastStatistics >= .seconds(5) {
                    lastStatistics = .now
                    metrics.record(try await queue.statistics())
                }
                claimQueries.add(1, ordering: .relaxed)
                let claims = try await queue.claim(channels: channels, limit: settings.batchSize, lease: settings.lease)
                failures = 0
                if claims.isEmpty {
                    // The burst is over: let the relay go until there is mail again.
                    await mail?.finishBurst()
                    let due = try await queue.nextDue(channels: channels)
                    var wait = settings.pollInterval
                    if let due {
                        let seconds = max(due.timeIntervalSinceNow, 0.01)
                        wait = min(wait, .milliseconds(Int64(seconds * 1000) + 5))
                    }
                    await signal.wait(timeout: wait)
                    continue
                }
                await process(claims)
            } catch {
                // The database is away: wait a little, longer each time, then go on.
                failures += 1
                logger.warning("notification dispatcher cannot reach the database", metadata: ["db.error": "\(type(of: error))"])
                await signal.wait(timeout: .milliseconds(min(100 << min(failures, 6), 5000)))
            }
        }
    }

    /// Sends a batch one notification at a time, each recorded before the next is sent. What
    /// is left when stopping, or when the lease is too short to send another, is released.
    func process(_ claims: [ClaimedNotification]) async {
        let leaseEnd = ContinuousClock.now + settings.lease
        // Another message is started only while the lease has room for it (a message normally
        // takes milliseconds; each of its steps is bounded by the timeout), so that a slow batch
        // gives its rest back rather than send under a lease another instance may take over.
        let perMessage = min(max(settings.smtpTimeout, settings.webhookTimeout) * 2, settings.lease / 2)
        for (index, claim) in claims.enumerated() {
            if shouldStop || ContinuousClock.now + perMessage > leaseEnd {
                await releaseQuietly(Array(claims[index...]))
                return
            }
            do {
                try await handle(claim)
            } catch {
                // Recording failed (the database went away): the lease will expire and the
                // notification is tried again; a message already sent may then go twice.
                logger.warning(
                    "cannot record a notification's outcome",
                    metadata: ["notification.id": "\(claim.id)", "db.error": "\(type(of: error))"])
            }
        }
    }

    private func releaseQuietly(_ claims: [ClaimedNotification]) async {
        do {
            try await queue.release(claims)
        } catch {
            logger.warning("cannot release claimed notifications; their lease will end", metadata: ["count": "\(claims.count)"])
        }
    }

    /// One notification: read its context in its group's scope, send, record.
    func handle(_ claim: ClaimedNotification) async throws {
        let instance = queue.instance
        let cipher = self.cipher
        let context = try await database.transaction(.group(claim.group), readOnly: true) { connection in
            try NotificationContext.load(connection, group: claim.group, id: claim.id, instance: instance, cipher: cipher)
        }
        guard let context else { return }  // no longer ours
        if let unreadable = context.unreadable {
            // The keyring lacks the customer's key, or the row was altered: the operator's to fix
            // (docs/operations.md, "Notification delivery"). The attempt is recorded like any other, so that the
            // notification backs off and ends instead of coming back after every lease.
            logger.warning(
                "a notification's customer cannot be decrypted with the keyring",
                metadata: ["notification.id": "\(context.id)", "notification.error": "\(unreadable.errorCode ?? "")"])
        }
        if context.channel == "sms" {
            try await deliverToWebhooks(context)
            return
        }
        let outcome: DeliveryOutcome
        if let refusal = context.refusal {
            outcome = refusal
        } else if let mail, let message = context.mail(from: settings.mailFrom ?? "forecourt@localhost") {
            outcome = await mail.send(message)
        } else {
            outcome = .temporary("no_relay")
        }
        try await record(context, outcome: outcome)
    }

    /// Records an attempt's outcome under our lease, and gives the lease back.
    func record(_ context: NotificationContext, outcome: DeliveryOutcome, retryAt: Date? = nil) async throws {
        let attempts = context.attempts + 1
        let (status, computed) = policy.next(after: outcome, attempts: attempts)
        let retryIn = retryAt.map { status == "pending" ? max($0.timeIntervalSinceNow, 0) : nil } ?? computed
        let code = outcome.errorCode
        let instance = queue.instance
        try await database.transaction(.group(context.group)) { connection in
            try connection.query(
                Self.recordQuery(
                    group: context.group, id: context.id, instance: instance, status: status, attempts: attempts,
                    code: code, retryIn: retryIn))
        }
        metrics.count(outcome: outcome, status: status, channel: context.channel)
        if status == "failed" {
            logger.info(
                "notification failed", metadata: ["notification.id": "\(context.id)", "notification.error": "\(code ?? "")"])
        }
    }
}

extension DeliveryService {
    /// An attempt's outcome, under our lease, which gives the lease back. Found by primary key
    /// and lease alone: a leased notification is pending (migration 0017's check), and stating
    /// `status = 'pending'` too could send the planner through the partial index
    /// `notifications_due_channel`, the whole backlog per outcome (`NotificationContext.loadQuery`).
    static func recordQuery(
        group: UUID, id: UUID, instance: UUID, status: String, attempts: Int, code: String?, retryIn: Double?
    ) -> PostgresQuery {
        """
        UPDATE forecourt.notifications SET status = \(status), attempts = \(attempts), last_error = \(code),
            sent_at = CASE WHEN \(status) = 'sent' THEN now() END,
            next_attempt_at = CASE WHEN \(retryIn)::float8 IS NULL THEN next_attempt_at
                ELSE now() + \(retryIn) * interval '1 second' END,
            claimed_by = NULL, claimed_until = NULL
        WHERE dealer_group_id = \(group) AND id = \(id) AND claimed_by = \(instance)
        """
    }
}

/// Wakes the dispatcher's loop: a NOTIFY, a stop, or a timeout, whichever comes first.
final class WakeSignal: Sendable {
    private struct State {
        var pending = false
        var waiter: (id: UInt64, continuation: CheckedContinuation<Void, Never>)?
        var nextID: UInt64 = 0
        /// A wait whose timer or cancellation came before it started waiting.
        var fired: UInt64?
    }

    private let state = Mutex(State())

    func signal() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard let waiter = state.waiter else {
                state.pending = true
                return nil
            }
            state.waiter = nil
            return waiter.continuation
        }
        waiter?.resume()
    }

    /// Returns at the next signal (or at once if one came since the last wait), after
    /// `timeout`, or when the task is cancelled.
    func wait(timeout: Duration) async {
        let id = state.withLock { state -> UInt64? in
            if state.pending {
                state.pending = false
                return nil
            }
            state.nextID += 1
            return state.nextID
        }
        guard let id else { return }
        let timer = Task { [self] in
            try? await Task.sleep(for: timeout)
            resume(id)
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let resumeNow = state.withLock { state -> Bool in
                    // A signal, a timeout or a cancellation may have come in between.
                    if state.pending || state.fired == id || Task.isCancelled {
                        state.pending = false
                        return true
                    }
                    state.waiter = (id, continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            resume(id)
        }
        timer.cancel()
    }

    private func resume(_ id: UInt64) {
        let continuation = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard let waiter = state.waiter, waiter.id == id else {
                state.fired = id
                return nil
            }
            state.waiter = nil
            return waiter.continuation
        }
        continuation?.resume()
    }
}

/// Counters and gauges of the dispatcher (docs/operations.md, "Notification delivery").
struct DeliveryMetrics: Sendable {
    let factory: any MetricsFactory
    let pending: Gauge
    let oldestPending: Gauge

    init(factory: any MetricsFactory) {
        self.factory = factory
        pending = Gauge(label: "forecourt_notifications_pending", factory: factory)
        oldestPending = Gauge(label: "forecourt_notifications_oldest_pending_seconds", factory: factory)
    }

    func record(_ statistics: (depth: Int, oldestAge: Double)) {
        pending.record(statistics.depth)
        oldestPending.record(statistics.oldestAge)
    }

    func count(outcome: DeliveryOutcome, status: String, channel: String) {
        let label =
            switch status {
            case "sent": "forecourt_notifications_sent_total"
            case "failed": "forecourt_notifications_failed_total"
            default: "forecourt_notifications_retried_total"
            }
        Counter(label: label, dimensions: [("channel", channel)], factory: factory).increment()
    }
}
