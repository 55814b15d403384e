import ForecourtCore
import Foundation
import Logging
import Orders
import Postgres
import RPC
import Synchronization

/// Live order events: `events.subscribe` sessions of this instance, fed by one `LISTEN`
/// connection (PostgresListener) on `OrderService.notifyChannel`.
///
/// Every change to an order, made by any instance, sends a `pg_notify` in its own transaction
/// (ids only). A notification is a hint, never content: PostgreSQL lets any role that can
/// connect send one, so the hub reads the named timeline entry and its order again, in the
/// named group's scope, and pushes only what it read, to the subscriptions whose principal may
/// see that order (`Principal.maySeeDealer` of the order as read; the factory sees every order,
/// without `customer_id`). An entry that does not exist, is older than
/// `OrderService.pushableAge`, or was pushed already is not pushed (docs/security.md,
/// "Notifications").
///
/// A subscription belongs to the principal that made it: once its session has another
/// principal (authenticated again) or none (its key was revoked), it ends. Before pushing to
/// a session whose key was last checked longer ago than `revalidationInterval`, the hub checks
/// it again (`SessionAuthority.revalidate`), so no push reaches a revoked key's session more
/// than that interval plus one check after the revocation, whether or not the client sends
/// anything (docs/protocol.md, "keys"). The revocation watcher keeps sessions checked, so
/// this rarely costs a query.
///
/// Slow subscribers are bounded, never buffered without limit: the connection's push queue
/// holds at most its limit (1000), and a push that does not fit is dropped and counted. Before
/// the next push that fits, the subscription gets `events.dropped {"subscription", "count"}`
/// so the client knows to re-read. After the listener reconnects (a database restart),
/// every subscription gets `events.resync {"subscription"}`: changes made meanwhile were not
/// seen.
public final class EventHub: Sendable {
    /// The most subscriptions one connection may hold.
    public static let maximumPerSession = 16
    /// Timeline entries remembered as pushed, so a repeated notification is not pushed twice.
    static let rememberedEntries = 4096

    struct Subscription: Sendable {
        let id: UUID
        let session: Session
        let principal: Principal
        let dealerID: UUID?
        var dropped = 0
    }

    private struct EntryKey: Hashable {
        let group: UUID
        let seq: Int
    }

    private struct Pushed {
        var keys = Set<EntryKey>()
        var order = [EntryKey]()
        var next = 0

        /// Remembers `key`; false when it was already there.
        mutating func insert(_ key: EntryKey) -> Bool {
            guard keys.insert(key).inserted else { return false }
            if order.count < EventHub.rememberedEntries {
                order.append(key)
            } else {
                keys.remove(order[next])
                order[next] = key
                next = (next + 1) % order.count
            }
            return true
        }
    }

    private let orders: OrderService
    private let authority: (any SessionAuthority)?
    private let checkDealer: @Sendable (Principal, UUID) async throws -> Void
    private let revalidationInterval: Duration
    private let logger: Logger
    private let subscriptions = Mutex<[UUID: Subscription]>([:])
    private let pushed = Mutex(Pushed())

    /// - Parameters:
    ///   - authority: re-checks a session's key before a push when it was last checked longer
    ///     ago than `revalidationInterval`.
    ///   - checkDealer: throws `notFound` unless the principal may name this dealer (a dealer of
    ///     its group); not called for the factory, which spans every group.
    public init(
        orders: OrderService,
        authority: (any SessionAuthority)? = nil,
        revalidationInterval: Duration = .seconds(2),
        checkDealer: @escaping @Sendable (Principal, UUID) async throws -> Void = { _, _ in },
        logger: Logger = Logger(label: "forecourt.events")
    ) {
        self.orders = orders
        self.authority = authority
        self.revalidationInterval = revalidationInterval
        self.checkDealer = checkDealer
        self.logger = logger
    }

    /// The number of live subscriptions (for tests and metrics).
    public var count: Int { subscriptions.withLock { $0.count } }

    public func subscribe(session: Session, principal: Principal, dealerID: UUID?) async throws -> UUID {
        if let dealerID {
            if principal.role.isDealerScoped, dealerID != principal.dealerID { throw DomainError.notFound("dealer") }
            // Another group's dealer is not found, as every other cross-group reference is.
            if principal.role != .factory { try await checkDealer(principal, dealerID) }
        }
        let id = UUID()
        let added = subscriptions.withLock { subscriptions -> Bool in
            // Subscriptions of an earlier principal of this session have ended; they do not count.
            subscriptions = subscriptions.filter { $0.value.session !== session || $0.value.principal == principal }
            guard subscriptions.values.filter({ $0.session === session }).count < Self.maximumPerSession else { return false }
            subscriptions[id] = Subscription(id: id, session: session, principal: principal, dealerID: dealerID)
            return true
        }
        guard added else {
            throw DomainError(.invalidRequest, "at most \(Self.maximumPerSession) subscriptions per connection")
        }
        session.onClose { [weak self] in self?.remove(session: session) }
        return id
    }

    public func unsubscribe(session: Session, id: UUID) -> Bool {
        subscriptions.withLock { subscriptions in
            guard let subscription = subscriptions[id], subscription.session === session else { return false }
            subscriptions[id] = nil
            return true
        }
    }

    private func remove(session: Session) {
        subscriptions.withLock { subscriptions in
            subscriptions = subscriptions.filter { $0.value.session !== session }
        }
    }

    /// Consumes the listener's messages until it ends.
    public func run(_ listener: PostgresListener) async {
        for await message in listener.messages {
            await handle(message)
        }
    }

    /// Handles one message of the listener (for a consumer that shares the listener).
    public func handle(_ message: PostgresListener.Message) async {
        switch message {
        case .reconnected:
            let all = subscriptions.withLock { Array($0.values) }
            for subscription in await current(all) {
                deliver(subscription, method: "events.resync", params: ["subscription": subscription.id.json])
            }
        case .notification(let channel, let payload):
            guard channel == OrderService.notifyChannel, let change = OrderChange(payload: payload),
                let seq = change.seq
            else { return }
            // Nobody here could see anything of that group: nothing to read.
            let anyone = subscriptions.withLock { subscriptions in
                subscriptions.values.contains { $0.principal.role == .factory || $0.principal.dealerGroupID == change.group }
            }
            guard anyone else { return }
            let changed: (Order, TimelineEvent)?
            do {
                changed = try await orders.changed(group: change.group, orderID: change.orderID, seq: seq)
            } catch {
                // The subscribers miss this update: count it, so they are told before the next one.
                logger.warning("cannot read a changed order for its subscribers", metadata: ["db.error": "\(error)"])
                let affected = subscriptions.withLock { subscriptions in
                    subscriptions.values.filter { $0.principal.role == .factory || $0.principal.dealerGroupID == change.group }
                }
                for subscription in affected { record(.dropped, for: subscription.id) }
                return
            }
            guard let (order, event) = changed,
                pushed.withLock({ $0.insert(EntryKey(group: order.dealerGroupID, seq: event.seq)) })
            else { return }
            // Who may see it is decided on the order as read, never on the notification's text.
            let interested = subscriptions.withLock { subscriptions in
                subscriptions.values.filter { subscription in
                    subscription.principal.maySeeDealer(order.dealerID, inGroup: order.dealerGroupID)
                        && (subscription.dealerID == nil || subscription.dealerID == order.dealerID)
                }
            }
            for subscription in await current(interested) {
                let params: JSON = [
                    "subscription": subscription.id.json, "order": order.visible(to: subscription.principal).json,
                    "event": event.json,
                ]
                deliver(subscription, method: "order.updated", params: params)
            }
        }
    }

    private enum Verdict {
        case current
        /// Revoked or no longer authenticated: its subscriptions end.
        case ended
        /// Could not be checked now (the database is unreachable): nothing is pushed this time.
        case unknown
    }

    /// The subscriptions whose session still has the principal that made them, with its key
    /// checked within `revalidationInterval`; the others end here, or miss this push (counted,
    /// as a full queue is) when the key cannot be checked now.
    private func current(_ candidates: [Subscription]) async -> [Subscription] {
        var verdicts: [ObjectIdentifier: Verdict] = [:]
        var kept: [Subscription] = []
        for subscription in candidates {
            let session = subscription.session
            let key = ObjectIdentifier(session)
            let verdict: Verdict
            if let known = verdicts[key] {
                verdict = known
            } else {
                verdict = await check(session)
                verdicts[key] = verdict
            }
            switch verdict {
            case .current where session.principal == subscription.principal:
                kept.append(subscription)
            case .current, .ended:
                subscriptions.withLock { _ = $0.removeValue(forKey: subscription.id) }
            case .unknown:
                record(.dropped, for: subscription.id)
            }
        }
        return kept
    }

    /// Whether the session's key is still valid, checking it again when it was last checked too
    /// long ago.
    private func check(_ session: Session) async -> Verdict {
        guard session.isAuthenticated else { return .ended }
        guard let authority, session.needsRevalidation(every: revalidationInterval) else { return .current }
        do {
            if try await authority.revalidate(session) {
                session.markValidated()
                return .current
            }
            session.deauthenticate()
            return .ended
        } catch {
            return .unknown
        }
    }

    /// Pushes one message, first telling the client how many it missed, if any.
    private func deliver(_ subscription: Subscription, method: String, params: JSON) {
        let id = subscription.id
        let dropped = subscriptions.withLock { $0[id]?.dropped ?? 0 }
        if dropped > 0 {
            let notice = subscription.session.push(
                method: "events.dropped", params: ["subscription": id.json, "count": .int(dropped)])
            guard notice == .queued else {
                record(notice, for: id)
                return
            }
            subscriptions.withLock { $0[id]?.dropped = 0 }
        }
        record(subscription.session.push(method: method, params: params), for: id)
    }

    private func record(_ result: Session.PushResult, for id: UUID) {
        switch result {
        case .queued: break
        case .dropped: subscriptions.withLock { $0[id]?.dropped += 1 }
        case .closed: subscriptions.withLock { $0[id] = nil }
        }
    }
}
