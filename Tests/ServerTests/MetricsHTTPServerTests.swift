import Logging
import NIOCore
import NIOPosix
import Server
import ServiceLifecycle
import Synchronization
import TestSupport
import Testing

/// Collects everything the peer sends until it closes.
private final class Collector: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let received = Mutex<[UInt8]>([])
    let done: EventLoopPromise<String>

    init(done: EventLoopPromise<String>) { self.done = done }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        received.withLock { $0.append(contentsOf: buffer.readableBytesView) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        done.succeed(String(decoding: received.withLock { $0 }, as: UTF8.self))
    }
}

/// Sends one HTTP/1.1 request with `Connection: close` and returns the raw response.
func httpGet(port: Int, path: String, method: String = "GET") async throws -> String {
    let group = MultiThreadedEventLoopGroup.singleton
    let done = group.next().makePromise(of: String.self)
    let channel = try await ClientBootstrap(group: group)
        .channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Collector(done: done)) }
        }
        .connect(host: "127.0.0.1", port: port).get()
    try await channel.writeAndFlush(ByteBuffer(string: "\(method) \(path) HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"))
    return try await done.futureResult.get()
}

struct MetricsHTTPServerTests {
    @Test func servesMetricsAndNothingElse() async throws {
        let port = Mutex<Int?>(nil)
        let server = MetricsHTTPServer(
            port: 0, logger: Logger(label: "test"), onListening: { bound in port.withLock { $0 = bound } },
            render: { "# TYPE forecourt_connections gauge\nforecourt_connections 3\n" })
        let group = ServiceGroup(configuration: .init(services: [server], logger: Logger(label: "test")))
        let running = Task { try await group.run() }
        try await eventually { port.withLock { $0 } != nil }
        let bound = try #require(port.withLock { $0 })

        let metrics = try await httpGet(port: bound, path: "/metrics")
        #expect(metrics.hasPrefix("HTTP/1.1 200 OK"))
        #expect(metrics.lowercased().contains("content-type: text/plain; version=0.0.4"))
        #expect(metrics.hasSuffix("forecourt_connections 3\n"))

        let other = try await httpGet(port: bound, path: "/")
        #expect(other.hasPrefix("HTTP/1.1 404"))
        #expect(!other.contains("forecourt_connections"))

        let post = try await httpGet(port: bound, path: "/metrics", method: "POST")
        #expect(post.hasPrefix("HTTP/1.1 405"))

        await group.triggerGracefulShutdown()
        try await running.value
    }
}
