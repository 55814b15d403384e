import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Notifications

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// POSTs one signed webhook delivery (docs/protocol.md, "Delivery").
///
/// A small HTTP/1.1 client on NIOHTTP1 rather than AsyncHTTPClient: it must connect to the
/// very address it checked (the name is resolved once, every address must be public, and the
/// connection goes to that address with the name only as TLS server name and `Host`), so a
/// DNS answer that changes between check and connect (rebinding) cannot reach an internal
/// address; and it needs no redirects, no pooling and no streaming, which would have cost
/// minutes of build for features we must switch off.
struct WebhookSender: Sendable {
    /// nil: `http://` only (no TLS configured); otherwise the client TLS settings.
    let tls: NIOSSLContext
    let timeout: Duration
    let allowsInsecure: Bool
    /// The most of a response read before the connection is dropped.
    static let responseLimit = 4096

    /// `X-Forecourt-Signature`: `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
    static func signature(secret: [UInt8], body: [UInt8], time: Int) -> String {
        let message = Array("\(time).".utf8) + body
        let mac = HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: secret))
        return "t=\(time),v1=" + mac.map { String(format: "%02x", $0) }.joined()
    }

    func post(url text: String, secret: [UInt8], notification: UUID, body: [UInt8]) async -> DeliveryOutcome {
        let url: WebhookURL
        do {
            url = try WebhookURL(text, allowInsecure: allowsInsecure)
        } catch {
            return .permanent("unsafe_address")
        }
        let addresses: [SocketAddress]
        switch await resolve(url) {
        case .success(let resolved): addresses = resolved
        case .failure(let outcome): return outcome
        }
        let deadline = NIODeadline.now() + TimeAmount.nanoseconds(
            Int64(timeout.components.seconds) * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000)
        let time = Int(Date().timeIntervalSince1970)
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: url.port == (url.isHTTPS ? 443 : 80) ? hostHeader(url) : "\(hostHeader(url)):\(url.port)")
        headers.add(name: "User-Agent", value: "forecourt")
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Content-Length", value: String(body.count))
        headers.add(name: "X-Forecourt-Notification", value: notification.uuidString.lowercased())
        headers.add(name: "X-Forecourt-Signature", value: Self.signature(secret: secret, body: body, time: time))
        headers.add(name: "Connection", value: "close")
        let head = HTTPRequestHead(version: .http1_1, method: .POST, uri: url.target, headers: headers)
        do {
            let status = try await exchange(addresses: addresses, url: url, head: head, body: body, deadline: deadline)
            switch status {
            case 200..<300: return .sent
            case 408, 429, 500..<600: return .temporary("http_\(status)")
            default: return .permanent("http_\(status)")  // 4xx; 1xx/3xx too: redirects are not followed
            }
        } catch let error as WebhookError {
            return .temporary(error.code)
        } catch {
            return .temporary("connect")
        }
    }

    private func hostHeader(_ url: WebhookURL) -> String {
        url.literalAddress.map { $0.isV4 ? url.host : "[\(url.host)]" } ?? url.host
    }

    private enum Resolution {
        case success([SocketAddress])
        case failure(DeliveryOutcome)
    }

    /// Resolves the host once; every address it has must be public (unless insecure webhooks
    /// are allowed), and the first is the one connected to.
    private func resolve(_ url: WebhookURL) async -> Resolution {
        switch await Self.checkedAddress(host: url.host, literal: url.literalAddress, allowsInsecure: allowsInsecure) {
        case .refused(let outcome): return .failure(outcome)
        case .addresses(let addresses):
            let sockets = addresses.compactMap { try? SocketAddress(ipAddress: $0.description, port: url.port) }
            return sockets.isEmpty ? .failure(.temporary("dns")) : .success(sockets)
        }
    }

    /// The addresses to connect to for `host` (tried in turn): resolved once, refused unless
    /// every address the name has is public.
    enum AddressCheck: Sendable, Equatable {
        case addresses([IPAddress])
        case refused(DeliveryOutcome)
    }

    static func checkedAddress(host: String, literal: IPAddress?, allowsInsecure: Bool) async -> AddressCheck {
        let addresses: [IPAddress]
        if let literal {
            addresses = [literal]
        } else {
            do {
                addresses = try await NIOThreadPool.singleton.runIfActive { try Self.lookUp(host) }
            } catch {
                return .refused(.temporary("dns"))
            }
        }
        guard !addresses.isEmpty else { return .refused(.temporary("dns")) }
        if !allowsInsecure, !addresses.allSatisfy(\.isPublic) { return .refused(.permanent("unsafe_address")) }
        return .addresses(addresses)
    }

    /// getaddrinfo, blocking (run off the event loops).
    static func lookUp(_ host: String) throws -> [IPAddress] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc)
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
        hints.ai_socktype = SOCK_STREAM
        #endif
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &result) == 0, let list = result else { throw WebhookError(code: "dns") }
        defer { freeaddrinfo(list) }
        var addresses: [IPAddress] = []
        var cursor: UnsafeMutablePointer<addrinfo>? = list
        while let entry = cursor {
            if let socket = entry.pointee.ai_addr {
                switch Int32(socket.pointee.sa_family) {
                case AF_INET:
                    socket.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { v4 in
                        var address = v4.pointee.sin_addr
                        if let ip = IPAddress(bytes: withUnsafeBytes(of: &address) { Array($0) }) { addresses.append(ip) }
                    }
                case AF_INET6:
                    socket.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { v6 in
                        var address = v6.pointee.sin6_addr
                        if let ip = IPAddress(bytes: withUnsafeBytes(of: &address) { Array($0) }) { addresses.append(ip) }
                    }
                default: break
                }
            }
            cursor = entry.pointee.ai_next
        }
        return addresses
    }

    private func exchange(
        addresses: [SocketAddress], url: WebhookURL, head: HTTPRequestHead, body: [UInt8], deadline: NIODeadline
    ) async throws -> Int {
        let serverName = url.literalAddress == nil ? url.host : nil
        let useTLS = url.isHTTPS
        let tls = self.tls
        // Only the checked addresses, in the resolver's order, until one answers.
        var connected: (channel: any Channel, responder: ResponseCollector)?
        var failure = WebhookError(code: "connect")
        for address in addresses where connected == nil && NIODeadline.now() < deadline {
            let responder = ResponseCollector(limit: Self.responseLimit)
            let bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(max(deadline - .now(), .milliseconds(1)))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if useTLS {
                            try channel.pipeline.syncOperations.addHandler(
                                NIOSSLClientHandler(context: tls, serverHostname: serverName))
                        }
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(responder)
                    }
                }
            do {
                connected = (try await bootstrap.connect(to: address).get(), responder)
            } catch ChannelError.connectTimeout {
                failure = WebhookError(code: "timeout")
            } catch {
                failure = WebhookError(code: "connect")
            }
        }
        guard let (channel, responder) = connected else { throw failure }
        let status = responder.status(on: channel, deadline: deadline)
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        channel.write(HTTPClientRequestPart.body(.byteBuffer(channel.allocator.buffer(bytes: body))), promise: nil)
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        defer { channel.close(promise: nil) }
        return try await status.get()
    }
}

struct WebhookError: Error, Sendable {
    /// `timeout`, `connect`, `tls`, `http_protocol`.
    let code: String
}

/// Waits for the response head; reads the body only up to a bound, then lets go.
final class ResponseCollector: ChannelInboundHandler, @unchecked Sendable {
    // Only touched on the channel's event loop.
    typealias InboundIn = HTTPClientResponsePart
    private let limit: Int
    private var promise: EventLoopPromise<Int>?
    private var status: Int?
    private var bodyBytes = 0

    init(limit: Int) { self.limit = limit }

    func status(on channel: any Channel, deadline: NIODeadline) -> EventLoopFuture<Int> {
        let promise = channel.eventLoop.makePromise(of: Int.self)
        channel.eventLoop.execute {
            self.promise = promise
            let timer = channel.eventLoop.scheduleTask(deadline: deadline) {
                self.finish(.failure(WebhookError(code: "timeout")))
                channel.close(promise: nil)
            }
            promise.futureResult.whenComplete { _ in timer.cancel() }
        }
        return promise.futureResult
    }

    private func finish(_ result: Result<Int, WebhookError>) {
        guard let promise else { return }
        self.promise = nil
        promise.completeWith(result.mapError { $0 as any Error })
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            // 1xx are interim; the final head follows.
            if head.status.code >= 200 { status = Int(head.status.code) }
        case .body(let buffer):
            bodyBytes += buffer.readableBytes
            // The body is not needed: past the bound, the status is all there is to know.
            if bodyBytes > limit, let status {
                finish(.success(status))
                context.close(promise: nil)
            }
        case .end:
            if let status { finish(.success(status)) } else { finish(.failure(WebhookError(code: "http_protocol"))) }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if error is NIOSSLError || error is BoringSSLError {
            finish(.failure(WebhookError(code: "tls")))
        } else if let status {
            finish(.success(status))
        } else {
            finish(.failure(WebhookError(code: "connect")))
        }
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let status { finish(.success(status)) } else { finish(.failure(WebhookError(code: "connect"))) }
        context.fireChannelInactive()
    }
}
