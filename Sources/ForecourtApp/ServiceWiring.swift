import Customers
import Dealers
import FieldCrypto
import Identity
import Logging
import RPC
import Storage

/// The one place where area services are made and their methods registered: used by
/// `forecourt serve` and by the tests, so both serve the same methods.
public struct ServiceWiring: Sendable {
    public let identity: IdentityService
    public let dealers: DealerService
    public let customers: CustomerService
    public let registry: MethodRegistry

    /// - Parameter cipher: field encryption and the keyed MACs (cursors are MAC'd with it, so
    ///   every instance sharing the keyring accepts every other's cursors).
    public init(database: AppDatabase, cipher: FieldCipher) {
        let cursors = CursorCodec { cipher.mac($0, purpose: "cursor") }
        identity = IdentityService(database: database, cursors: cursors)
        dealers = DealerService(database: database, cursors: cursors)
        customers = CustomerService(database: database, cipher: cipher, cursors: cursors)
        var registry = MethodRegistry()
        registry.register(IdentityMethods.all(identity))
        registry.register(DealerMethods.all(dealers))
        registry.register(CustomerMethods.all(customers))
        self.registry = registry
    }

    /// The dispatcher over these methods, with `identity` checking sessions.
    public func dispatcher(limits: Dispatcher.Limits = Dispatcher.Limits(), logger: Logger) -> Dispatcher {
        Dispatcher(registry: registry, authority: identity, limits: limits, logger: logger)
    }
}
