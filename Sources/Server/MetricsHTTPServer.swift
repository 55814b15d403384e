import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import Synchronization

/// A plain-HTTP endpoint for Prometheus: `GET /metrics` answers with the text produced by
/// `render` (`text/plain; version=0.0.4`); any other path is 404, any other method 405.
///
/// It listens on its own port, on 127.0.0.1 unless told otherwise: metrics are for the
/// operator's scraper, not for clients. Runs until graceful shutdown or cancellation.
public final class MetricsHTTPServer: Service, Sendable {
    public let host: String
    public let port: Int
    private let render: @Sendable () -> String
    private let logger: Logger
    private let group: any EventLoopGroup
    private let onListening: @Sendable (Int) -> Void
    private let bound = Mutex<(any Channel)?>(nil)

    /// - Parameters:
    ///   - render: produces the exposition text, e.g. swift-prometheus's `registry.emit(into:)`.
    ///   - onListening: called with the bound port (useful with port 0).
    public init(
        host: String = "127.0.0.1",
        port: Int,
        logger: Logger,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        onListening: @escaping @Sendable (Int) -> Void = { _ in },
        render: @escaping @Sendable () -> String
    ) {
        self.host = host
        self.port = port
        self.render = render
        self.logger = logger
        self.group = eventLoopGroup
        self.onListening = onListening
    }

    /// Binds the socket now, so that an address in use stops start-up before any service runs
    /// (`run()` binds by itself otherwise). Returns the port.
    /// - Throws: `RPCServer.BindError`.
    @discardableResult
    public func bind() async throws -> Int {
        if let channel = bound.withLock({ $0 }) { return channel.localAddress?.port ?? port }
        let channel = try await makeListener()
        bound.withLock { $0 = channel }
        return channel.localAddress?.port ?? port
    }

    private func makeListener() async throws -> any Channel {
        let render = self.render
        do {
            return try await ServerBootstrap(group: group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                        try channel.pipeline.syncOperations.addHandler(MetricsHTTPHandler(render: render))
                    }
                }
                .bind(host: host, port: port).get()
        } catch {
            throw RPCServer.BindError(host: host, port: port, reason: RPCServer.reason(error))
        }
    }

    public func run() async throws {
        let channel: any Channel
        if let prebound = bound.withLock({ $0 }) {
            channel = prebound
        } else {
            channel = try await makeListener()
        }
        onListening(channel.localAddress?.port ?? port)
        logger.info("metrics endpoint listening", metadata: ["metrics.port": .stringConvertible(channel.localAddress?.port ?? port)])
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                try? await channel.closeFuture.get()
            } onGracefulShutdown: {
                channel.close(promise: nil)
            }
        } onCancel: {
            channel.close(promise: nil)
        }
    }
}

final class MetricsHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let render: @Sendable () -> String
    private var head: HTTPRequestHead?

    init(render: @escaping @Sendable () -> String) { self.render = render }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
        case .body:
            break
        case .end:
            guard let head else { return }
            self.head = nil
            let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
            let status: HTTPResponseStatus
            let body: String
            var headers = HTTPHeaders()
            if path != "/metrics" {
                status = .notFound
                body = "not found\n"
                headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
            } else if head.method != .GET && head.method != .HEAD {
                status = .methodNotAllowed
                body = "method not allowed\n"
                headers.add(name: "Allow", value: "GET, HEAD")
            } else {
                status = .ok
                body = render()
                headers.add(name: "Content-Type", value: "text/plain; version=0.0.4")
            }
            let buffer = context.channel.allocator.buffer(string: body)
            headers.add(name: "Content-Length", value: String(buffer.readableBytes))
            let keepAlive = head.isKeepAlive
            headers.add(name: "Connection", value: keepAlive ? "keep-alive" : "close")
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
            if head.method != .HEAD {
                context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
            }
            let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
            if !keepAlive {
                let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
                done.whenComplete { _ in bound.value.close(promise: nil) }
            }
        }
    }
}
