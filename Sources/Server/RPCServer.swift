import LineFraming
import Logging
import Metrics
import NIOCore
import NIOPosix
import NIOSSL
import RPC
import ServiceLifecycle
import Synchronization

/// The TLS JSON-RPC listener (docs/protocol.md, "Transport"), run as a `Service` under the app's `ServiceGroup`.
///
/// Each connection gets a pipeline of `NIOSSLServerHandler` → `ByteToMessageHandler(LineFrameDecoder)`
/// → a connection handler that creates the `Session`, runs up to
/// `maximumInFlightPerConnection` requests at once through the `Dispatcher` and writes
/// responses and pushes, one line each.
///
/// Graceful shutdown (SIGTERM through the `ServiceGroup`, or `shutdownGracefully()`): the
/// listening socket closes at once, connections read no more lines, finish what they have in
/// flight and close; whatever still runs after `shutdownGracePeriod` is closed anyway. `run()`
/// returns when every connection is closed. Cancelling `run()` closes everything at once.
///
/// Certificates: `reloadCertificates()` re-reads the PEM files for new connections; the app
/// calls it on SIGHUP (for example with `UnixSignalsSequence(trapping: .sighup)` of
/// swift-service-lifecycle's `UnixSignals`).
public final class RPCServer: Service, Sendable {
    private struct State {
        var listener: (any Channel)?
        /// Bound by `bind()` before `run()`.
        var bound: (any Channel)?
        var localPort: Int?
        var portWaiters: [CheckedContinuation<Int, any Error>] = []
        var finished = false
        var shuttingDown = false
        var connections: [ObjectIdentifier: any Channel] = [:]
        /// Connections not authenticated yet, per source (`Session.source(of:)`).
        var unauthenticated: [String: Int] = [:]
    }

    /// Why `run()` could not serve.
    public struct StartError: Error, CustomStringConvertible {
        public let description: String
    }

    /// The listening address could not be bound; `reason` is the system's word for why.
    public struct BindError: Error, CustomStringConvertible {
        public let host: String
        public let port: Int
        public let reason: String
        public var description: String { "cannot listen on \(host):\(port): \(reason)" }
    }

    public let configuration: ServerConfiguration
    private let dispatcher: Dispatcher
    private let logger: Logger
    private let group: any EventLoopGroup
    private let tls: TLSContextBox
    private let state = Mutex(State())

    private let connectionsGauge: Gauge
    private let acceptedCounter: Counter
    private let rejectedCounter: Counter

    /// Creates the server and reads the certificate and key, so that a bad file stops start-up
    /// before anything listens.
    /// - Parameter metrics: where the connection metrics go (docs/protocol.md, "Metrics"); the
    ///   process's bootstrapped factory unless a test passes its own.
    /// - Throws: when a PEM file is missing or invalid.
    public init(
        configuration: ServerConfiguration,
        dispatcher: Dispatcher,
        logger: Logger,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        metrics: any MetricsFactory = MetricsSystem.factory
    ) throws {
        connectionsGauge = Gauge(label: "forecourt_connections", factory: metrics)
        acceptedCounter = Counter(label: "forecourt_connections_accepted_total", factory: metrics)
        rejectedCounter = Counter(label: "forecourt_connections_rejected_total", factory: metrics)
        self.configuration = configuration
        self.dispatcher = dispatcher
        self.logger = logger
        self.group = eventLoopGroup
        self.tls = TLSContextBox(try ServerTLS.makeContext(configuration))
    }

    /// The port the server listens on, once it does (useful with port 0).
    public var localPort: Int? { state.withLock { $0.localPort } }

    /// Waits until the server listens and returns its port.
    /// - Throws: `StartError` when `run()` ended (or failed to bind) before listening.
    public func listeningPort() async throws -> Int {
        try await withCheckedThrowingContinuation { continuation in
            let result = state.withLock { state -> Result<Int, any Error>? in
                if let port = state.localPort { return .success(port) }
                if state.finished { return .failure(StartError(description: "the server is not running")) }
                state.portWaiters.append(continuation)
                return nil
            }
            if let result { continuation.resume(with: result) }
        }
    }

    /// The number of open connections.
    public var connectionCount: Int { state.withLock { $0.connections.count } }

    /// Re-reads the certificate and key files; new connections use them, open ones are untouched.
    /// - Throws: when a file is missing or invalid; the previous certificate stays in use.
    public func reloadCertificates() throws {
        tls.replace(try ServerTLS.makeContext(configuration))
        logger.info("TLS certificates reloaded")
    }

    /// Starts a graceful shutdown, as SIGTERM does through the service group.
    public func shutdownGracefully() {
        let listener = state.withLock { state -> (any Channel)? in
            state.shuttingDown = true
            return state.listener
        }
        listener?.close(promise: nil)
    }

    /// Binds the listening socket now, so that an address in use stops start-up before any
    /// service runs (`run()` binds by itself otherwise). Returns the port.
    /// - Throws: `BindError`.
    @discardableResult
    public func bind() async throws -> Int {
        if let bound = state.withLock({ $0.bound }) { return bound.localAddress?.port ?? configuration.port }
        let channel = try await makeListener()
        state.withLock { $0.bound = channel }
        return channel.localAddress?.port ?? configuration.port
    }

    public func run() async throws {
        let listener: any Channel
        do {
            if let bound = state.withLock({ $0.bound }) {
                listener = bound
            } else {
                listener = try await makeListener()
            }
        } catch {
            let waiters = state.withLock { state in
                state.finished = true
                defer { state.portWaiters = [] }
                return state.portWaiters
            }
            for waiter in waiters { waiter.resume(throwing: error) }
            throw error
        }
        let port = listener.localAddress?.port ?? configuration.port
        let (waiters, stopEarly) = state.withLock { state in
            state.listener = listener
            state.localPort = port
            defer { state.portWaiters = [] }
            return (state.portWaiters, state.shuttingDown)
        }
        for waiter in waiters { waiter.resume(returning: port) }
        logger.info("listening", metadata: ["server.host": .string(configuration.host), "server.port": .stringConvertible(port)])
        if stopEarly { listener.close(promise: nil) }

        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                try? await listener.closeFuture.get()
            } onGracefulShutdown: {
                self.shutdownGracefully()
            }
        } onCancel: {
            listener.close(promise: nil)
        }
        await drainConnections(grace: Task.isCancelled ? .zero : configuration.shutdownGracePeriod)
        state.withLock { $0.finished = true }
        logger.info("stopped listening")
    }

    private func makeListener() async throws -> any Channel {
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.recvAllocator, value: Self.receiveAllocator)
            .childChannelInitializer { [self] channel in
                initializeConnection(channel)
            }
        do {
            return try await bootstrap.bind(host: configuration.host, port: configuration.port).get()
        } catch {
            throw BindError(host: configuration.host, port: configuration.port, reason: Self.reason(error))
        }
    }

    /// `address already in use`, not `bind(descriptor:ptr:bytes:): Address already in use (errno: 98)`.
    static func reason(_ error: any Error) -> String {
        if let io = error as? IOError, let text = strerror(io.errnoCode) {
            return String(cString: text).lowercased()
        }
        return String(describing: error)
    }

    private func initializeConnection(_ channel: any Channel) -> EventLoopFuture<Void> {
        let key = ObjectIdentifier(channel)
        let source = Session.source(of: channel.remoteAddress?.ipAddress)
        // The gauge is recorded under the lock, so that concurrent opens and closes on different
        // event loops cannot leave it at a stale count.
        let admitted = state.withLock { state -> Bool in
            guard !state.shuttingDown, state.connections.count < configuration.maximumConnections,
                state.unauthenticated[source, default: 0] < configuration.maximumUnauthenticatedPerAddress
            else { return false }
            state.connections[key] = channel
            state.unauthenticated[source, default: 0] += 1
            connectionsGauge.record(state.connections.count)
            return true
        }
        guard admitted else {
            rejectedCounter.increment()
            logger.debug("connection refused: too many connections or shutting down")
            channel.close(promise: nil)
            return channel.eventLoop.makeSucceededVoidFuture()
        }
        acceptedCounter.increment()
        channel.closeFuture.whenComplete { [self] _ in
            state.withLock { state in
                state.connections[key] = nil
                connectionsGauge.record(state.connections.count)
            }
        }
        // Counted as unauthenticated until the session authenticates or the connection closes,
        // whichever comes first.
        let released = NIOLoopBoundBox(false, eventLoop: channel.eventLoop)
        let release: @Sendable () -> Void = { [self] in
            guard !released.value else { return }
            released.value = true
            state.withLock { state in
                let left = state.unauthenticated[source, default: 1] - 1
                state.unauthenticated[source] = left > 0 ? left : nil
            }
        }
        channel.closeFuture.whenComplete { _ in release() }
        let lineLimit = LineLengthLimit(min(configuration.maximumUnauthenticatedLineLength, configuration.maximumLineLength))
        let settings = RPCConnectionHandler.Settings(
            maximumInFlight: configuration.maximumInFlightPerConnection,
            maximumLineLength: configuration.maximumLineLength,
            idleTimeout: configuration.idleTimeout,
            unauthenticatedTimeout: configuration.unauthenticatedTimeout,
            pushQueueLimit: configuration.pushQueueLimit,
            clientCertificates: configuration.clientCAPath != nil
        )
        do {
            let sync = channel.pipeline.syncOperations
            try sync.addHandler(NIOSSLServerHandler(context: tls.current))
            try sync.addHandler(ByteToMessageHandler(LineFrameDecoder(limit: lineLimit)))
            try sync.addHandler(
                RPCConnectionHandler(
                    dispatcher: dispatcher, settings: settings, lineLimit: lineLimit, onAuthenticated: release,
                    logger: logger))
            return channel.eventLoop.makeSucceededVoidFuture()
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
    }

    /// Each connection keeps the buffer of its last socket read for the next one. NIO's default
    /// starts at 2 KiB; an idle session's reads are a few hundred bytes, and a busy one's grow
    /// the buffer after full reads, as before (docs/performance.md, "Idle sessions").
    static let receiveAllocator = AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 512, maximum: 65536)

    /// Asks every connection to finish and close; closes the rest after `grace`.
    private func drainConnections(grace: TimeAmount) async {
        let channels = state.withLock { state in
            state.shuttingDown = true
            return Array(state.connections.values)
        }
        guard !channels.isEmpty else { return }
        logger.info("draining connections", metadata: ["server.connections": .stringConvertible(channels.count)])
        for channel in channels {
            channel.pipeline.fireUserInboundEventTriggered(DrainConnectionEvent())
        }
        let allClosed = EventLoopFuture.andAllComplete(channels.map(\.closeFuture), on: group.next())
        await withTaskGroup(of: Bool.self) { tasks in
            tasks.addTask {
                try? await allClosed.get()
                return true
            }
            tasks.addTask {
                try? await Task.sleep(for: .nanoseconds(grace.nanoseconds))
                return false
            }
            if await tasks.next() == false {
                logger.info("grace period over: closing the remaining connections")
                for channel in channels { channel.close(promise: nil) }
            }
            tasks.cancelAll()
        }
    }
}
