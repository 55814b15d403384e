import Audit
import Customers
import Dealers
import Events
import FieldCrypto
import Identity
import Logging
import Metrics
import Notifications
import Orders
import RPC
import Storage

/// The one place where area services are made and their methods registered: used by
/// `forecourt serve` and by the tests, so both serve the same methods.
public struct ServiceWiring: Sendable {
    public let identity: IdentityService
    public let dealers: DealerService
    public let customers: CustomerService
    public let orders: OrderService
    public let tracking: TrackingService
    public let notifications: NotificationService
    public let audit: AuditService
    /// Live events; fed by a `PostgresListener` that `forecourt serve` runs (`EventListenerService`).
    public let events: EventHub
    public let registry: MethodRegistry
    /// The version `rpc.discover` reports: the contract's, moved when a method or a field changes.
    public static let apiVersion = "1.0.0"

    /// - Parameters:
    ///   - cipher: field encryption and the keyed MACs (cursors are MAC'd with it, so every
    ///     instance sharing the keyring accepts every other's cursors).
    ///   - revalidationInterval: how long a session's key is trusted before it is checked again
    ///     (the dispatcher's `Limits.revalidationInterval`); the event hub uses it before pushes.
    ///   - allowsInsecureWebhooks: `FORECOURT_WEBHOOK_ALLOW_INSECURE=1` (development and tests).
    public init(
        database: AppDatabase, cipher: FieldCipher, revalidationInterval: Duration = .seconds(2),
        allowsInsecureWebhooks: Bool = false
    ) {
        let cursors = CursorCodec { cipher.mac($0, purpose: "cursor") }
        identity = IdentityService(database: database, cursors: cursors)
        dealers = DealerService(database: database, cursors: cursors)
        orders = OrderService(database: database, cursors: cursors, cipher: cipher)
        tracking = TrackingService(database: database, cipher: cipher)
        notifications = NotificationService(
            database: database, cursors: cursors, cipher: cipher, allowsInsecureWebhooks: allowsInsecureWebhooks)
        audit = AuditService(database: database, cursors: cursors)
        let dealers = dealers
        events = EventHub(
            orders: orders, authority: identity, revalidationInterval: revalidationInterval,
            checkDealer: { caller, dealer in _ = try await dealers.get(caller: caller, id: dealer) })
        customers = CustomerService(database: database, cipher: cipher, cursors: cursors)
        var registry = MethodRegistry()
        registry.register(SystemMethods.all())
        registry.register(SessionMethods.all(identity))
        registry.register(KeyMethods.all(identity))
        registry.register(DealerMethods.all(dealers))
        registry.register(CustomerMethods.all(customers))
        registry.register(OrderMethods.all(orders))
        registry.register(TrackingMethods.all(tracking))
        registry.register(NotificationMethods.all(notifications))
        registry.register(WebhookMethods.all(notifications))
        registry.register(AuditMethods.all(audit))
        registry.register(EventMethods.all(events))
        // Last: it describes every method registered before it, and itself.
        registry.register(DiscoveryMethods.discover(registry, version: Self.apiVersion))
        self.registry = registry
    }

    /// The dispatcher over these methods, with `identity` checking sessions.
    public func dispatcher(
        limits: Dispatcher.Limits = Dispatcher.Limits(), logger: Logger, metrics: any MetricsFactory = MetricsSystem.factory
    ) -> Dispatcher {
        Dispatcher(registry: registry, authority: identity, limits: limits, logger: logger, metrics: metrics)
    }
}
