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
/// (ids only). The hub reads the order once per notification, if any subscriber may see it
/// (`Principal.maySeeDealer`; the factory sees every order, without `customer_id`), and pushes
/// `order.updated {"subscription", "order", "event"}` to each such subscription.
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

    struct Subscription: Sendable {
        let id: UUID
        let session: Session
        let principal: Principal
        let dealerID: UUID?
        var dropped = 0
    }

    private let orders: OrderService
    private let logger: Logger
    private let subscriptions = Mutex<[UUID: Subscription]>([:])

    public init(orders: OrderService, logger: Logger = Logger(label: "forecourt.events")) {
        self.orders = orders
        self.logger = logger
    }

    /// The number of live subscriptions (for tests and metrics).
    public var count: Int { subscriptions.withLock { $0.count } }

    public func subscribe(session: Session, principal: Principal, dealerID: UUID?) throws -> UUID {
        if let dealerID, principal.role.isDealerScoped, dealerID != principal.dealerID {
            throw DomainError.notFound("dealer")
        }
        let id = UUID()
        let added = subscriptions.withLock { subscriptions -> Bool in
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
            for subscription in subscriptions.withLock({ Array($0.values) }) {
                deliver(subscription, method: "events.resync", params: ["subscription": subscription.id.json])
            }
        case .notification(let channel, let payload):
            guard channel == OrderService.notifyChannel, let change = OrderChange(payload: payload) else { return }
            let interested = subscriptions.withLock { subscriptions in
                subscriptions.values.filter { subscription in
                    subscription.principal.maySeeDealer(change.dealerID, inGroup: change.group)
                        && (subscription.dealerID == nil || subscription.dealerID == change.dealerID)
                }
            }
            guard !interested.isEmpty else { return }
            let changed: (Order, TimelineEvent?)?
            do {
                changed = try await orders.changed(group: change.group, orderID: change.orderID, seq: change.seq)
            } catch {
                // The subscribers miss this update: count it, so they are told before the next one.
                logger.warning("cannot read a changed order for its subscribers", metadata: ["db.error": "\(error)"])
                for subscription in interested { record(.dropped, for: subscription.id) }
                return
            }
            guard let changed else { return }
            let (order, event) = changed
            for subscription in interested {
                let params: JSON = [
                    "subscription": subscription.id.json, "order": order.visible(to: subscription.principal).json,
                    "event": event?.json ?? ["event": .string(change.event)],
                ]
                deliver(subscription, method: "order.updated", params: params)
            }
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
