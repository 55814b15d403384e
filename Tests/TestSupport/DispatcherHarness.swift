import ForecourtCore
import Foundation
import FieldCrypto
import ForecourtApp
import Logging
import RPC
import Storage

/// The service's dispatcher over a test database, called without a network: for tests of
/// methods and rules. (End-to-end tests over TLS use `ForecourtClient`.)
public struct DispatcherHarness: Sendable {
    public let dispatcher: Dispatcher
    public let wiring: ServiceWiring
    public let database: AppDatabase

    /// The keyring the harness encrypts with (shared by harnesses made with it, like instances).
    public let cipher: FieldCipher

    public init(
        _ db: TestDatabase, cipher: FieldCipher = FieldCipher(keyring: .generate()), limits: Dispatcher.Limits = Dispatcher.Limits(),
        logger: Logger = Logger(label: "test"), allowsInsecureWebhooks: Bool = false
    ) {
        database = AppDatabase(pool: db.pool)
        self.cipher = cipher
        wiring = ServiceWiring(
            database: database, cipher: cipher, revalidationInterval: limits.revalidationInterval,
            allowsInsecureWebhooks: allowsInsecureWebhooks)
        dispatcher = wiring.dispatcher(limits: limits, logger: logger)
    }

    /// A new connection's session.
    public func session(address: String = "127.0.0.1") -> Session { Session(remoteAddress: address) }

    /// A session authenticated with `apiKey`.
    public func session(authenticatedWith apiKey: String, address: String = "127.0.0.1") async throws -> Session {
        let session = session(address: address)
        _ = try await call(session, "session.authenticate", ["api_key": .string(apiKey)]).get()
        return session
    }

    /// Calls `method` and returns its result or its error object.
    public func call(_ session: Session, _ method: String, _ params: JSON = [:]) async -> Result<JSON, CallError> {
        let request: JSON = ["jsonrpc": "2.0", "id": 1, "method": .string(method), "params": params]
        guard let response = await dispatcher.handle(request, session: session) else {
            return .failure(CallError(code: 0, reason: "no response", message: ""))
        }
        if let result = response["result"] { return .success(result) }
        let error = response["error"]
        return .failure(
            CallError(
                code: error?["code"]?.intValue ?? 0, reason: error?["data"]?["reason"]?.stringValue ?? "",
                message: error?["message"]?.stringValue ?? "", field: error?["data"]?["field"]?.stringValue,
                retryAfterMilliseconds: error?["data"]?["retry_after_ms"]?.intValue))
    }
}

/// A JSON-RPC error as a test sees it.
public struct CallError: Error, Equatable, CustomStringConvertible {
    public let code: Int
    public let reason: String
    public let message: String
    public var field: String?
    /// `error.data.retry_after_ms` of -32006.
    public var retryAfterMilliseconds: Int?

    public init(code: Int, reason: String, message: String, field: String? = nil, retryAfterMilliseconds: Int? = nil) {
        self.code = code
        self.reason = reason
        self.message = message
        self.field = field
        self.retryAfterMilliseconds = retryAfterMilliseconds
    }

    public var description: String { "\(code) \(reason): \(message)\(field.map { " (\($0))" } ?? "")" }
}
