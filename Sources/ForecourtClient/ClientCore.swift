import NIOCore
import NIOSSL
// NIOTLS comes with NIOSSL (its TLSUserEvent tells when the handshake is done); the target
// should name it explicitly: .product(name: "NIOTLS", package: "swift-nio").
import NIOTLS
import JSONRPC
import Synchronization

/// The client's shared state: ids, calls waiting for answers, the streams.
final class ClientCore: Sendable {
    private struct State {
        var nextID = 1
        var pending: [Int: CheckedContinuation<JSON, any Error>] = [:]
        var closed = false
    }

    private let state = Mutex(State())
    let notifications: AsyncStream<JSON>
    let unmatched: AsyncStream<JSON>
    private let notificationSink: AsyncStream<JSON>.Continuation
    private let unmatchedSink: AsyncStream<JSON>.Continuation
    private let unmatchedReader: IteratorBox

    init() {
        (notifications, notificationSink) = AsyncStream.makeStream(of: JSON.self, bufferingPolicy: .bufferingNewest(10_000))
        (unmatched, unmatchedSink) = AsyncStream.makeStream(of: JSON.self, bufferingPolicy: .bufferingNewest(10_000))
        unmatchedReader = IteratorBox(unmatched.makeAsyncIterator())
    }

    var isClosed: Bool { state.withLock { $0.closed } }

    func nextID() -> Int {
        state.withLock { state in
            defer { state.nextID += 1 }
            return state.nextID
        }
    }

    /// Registers a call; false when the connection is already closed.
    func register(id: Int, _ continuation: CheckedContinuation<JSON, any Error>) -> Bool {
        state.withLock { state in
            guard !state.closed else { return false }
            state.pending[id] = continuation
            return true
        }
    }

    func fail(id: Int, _ error: any Error) {
        state.withLock { $0.pending.removeValue(forKey: id) }?.resume(throwing: error)
    }

    /// Routes one message from the server.
    func received(_ message: JSON) {
        guard case .object(let object) = message else {
            unmatchedSink.yield(message)
            return
        }
        if object["id"] == nil, object["method"] != nil {
            notificationSink.yield(message)
            return
        }
        if case .number(let number)? = object["id"], let id = Int(number.text),
            let continuation = state.withLock({ $0.pending.removeValue(forKey: id) })
        {
            continuation.resume(returning: message)
            return
        }
        unmatchedSink.yield(message)
    }

    func closed() {
        let pending = state.withLock { state in
            state.closed = true
            defer { state.pending = [:] }
            return state.pending
        }
        for continuation in pending.values { continuation.resume(throwing: ForecourtClient.Error.connectionClosed) }
        notificationSink.finish()
        unmatchedSink.finish()
    }

    /// Through one long-lived iterator, since dropping an `AsyncStream` iterator ends the stream.
    /// One reader at a time, as for any `AsyncStream`.
    func nextUnmatched() async -> JSON? {
        await unmatchedReader.iterator.next()
    }

    static func isIPAddress(_ host: String) -> Bool {
        (try? SocketAddress(ipAddress: host, port: 0)) != nil
    }
}

/// Holds the iterator of `unmatched`. Unchecked: `AsyncStream` already allows one reader at a
/// time only, and exclusivity checking traps on overlapping use.
final class IteratorBox: @unchecked Sendable {
    var iterator: AsyncStream<JSON>.Iterator

    init(_ iterator: AsyncStream<JSON>.Iterator) { self.iterator = iterator }
}

/// Lines in, messages to the core; reports the TLS handshake's outcome to `connect`.
final class ClientHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let core: ClientCore
    private let handshake: EventLoopPromise<Void>
    private var handshakeDone = false
    private let parser = JSONParser(maximumDepth: 256)

    init(core: ClientCore, handshake: EventLoopPromise<Void>) {
        self.core = core
        self.handshake = handshake
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let tls = event as? TLSUserEvent, case .handshakeCompleted = tls, !handshakeDone {
            handshakeDone = true
            handshake.succeed()
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let line = unwrapInboundIn(data)
        do {
            core.received(try parser.parse(line.readableBytesView))
        } catch {
            core.received(.string("unparsable line from the server: \(error.description)"))
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !handshakeDone {
            handshakeDone = true
            handshake.fail(error)
        }
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !handshakeDone {
            handshakeDone = true
            handshake.fail(ForecourtClient.Error.connectionClosed)
        }
        core.closed()
        context.fireChannelInactive()
    }
}
