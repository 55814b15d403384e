import NIOCore

/// Everything the JSON-RPC listener needs to know, validated by the app at start-up.
///
/// Defaults follow docs/protocol.md ("Limits"). Durations are `TimeAmount`s so that tests can use
/// milliseconds.
public struct ServerConfiguration: Sendable {
    /// The address to bind; `127.0.0.1` in development.
    public var host: String
    /// The TCP port; 0 lets the system pick one (see `RPCServer.localPort`).
    public var port: Int
    /// PEM file with the server certificate, optionally followed by its chain.
    public var certificatePath: String
    /// PEM file with the server's private key.
    public var privateKeyPath: String
    /// When set, clients must present a certificate issued by one of these CAs (PEM), and the
    /// SHA-256 of its DER is given to the session (mutual TLS).
    public var clientCAPath: String?
    /// The longest accepted line, in bytes, without its terminator.
    public var maximumLineLength: Int
    /// Requests of one connection being handled at once; past it the connection is not read.
    public var maximumInFlightPerConnection: Int
    /// Open connections; more are closed at once.
    public var maximumConnections: Int
    /// Before the session authenticates: the longest accepted line (at most `maximumLineLength`).
    /// Requests are then also handled one at a time.
    public var maximumUnauthenticatedLineLength: Int = 8192
    /// Connections from one address (an IPv6 /64) that have not authenticated yet; more are
    /// closed at once. Authenticated ones count only against `maximumConnections`.
    public var maximumUnauthenticatedPerAddress: Int = 32
    /// A connection with nothing received, sent or in flight for this long is closed.
    public var idleTimeout: TimeAmount
    /// A connection not authenticated this long after connecting is closed.
    public var unauthenticatedTimeout: TimeAmount
    /// On shutdown, how long in-flight requests may take before connections are closed anyway.
    public var shutdownGracePeriod: TimeAmount
    /// Server-initiated messages waiting to be written per connection; more are dropped.
    public var pushQueueLimit: Int

    public init(
        host: String = "127.0.0.1",
        port: Int = 7443,
        certificatePath: String,
        privateKeyPath: String,
        clientCAPath: String? = nil,
        maximumLineLength: Int = 1 << 20,
        maximumInFlightPerConnection: Int = 32,
        maximumConnections: Int = 1024,
        idleTimeout: TimeAmount = .minutes(5),
        unauthenticatedTimeout: TimeAmount = .seconds(10),
        shutdownGracePeriod: TimeAmount = .seconds(10),
        pushQueueLimit: Int = 1000
    ) {
        self.host = host
        self.port = port
        self.certificatePath = certificatePath
        self.privateKeyPath = privateKeyPath
        self.clientCAPath = clientCAPath
        self.maximumLineLength = maximumLineLength
        self.maximumInFlightPerConnection = maximumInFlightPerConnection
        self.maximumConnections = maximumConnections
        self.idleTimeout = idleTimeout
        self.unauthenticatedTimeout = unauthenticatedTimeout
        self.shutdownGracePeriod = shutdownGracePeriod
        self.pushQueueLimit = pushQueueLimit
    }
}
