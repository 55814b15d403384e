import LineFraming
import Logging
import NIOCore
import NIOSSL
import RPC
import Synchronization

/// Asks a connection to finish what it has in flight and close (graceful shutdown).
struct DrainConnectionEvent: Sendable {}

/// How many server-initiated messages of a connection are waiting to be written.
final class PushQueueCounter: Sendable {
    private let count = Atomic<Int>(0)
    let limit: Int

    init(limit: Int) { self.limit = limit }

    /// Takes a slot, or returns false when the queue is full.
    func acquire() -> Bool {
        while true {
            let current = count.load(ordering: .relaxed)
            guard current < limit else { return false }
            if count.compareExchange(expected: current, desired: current + 1, ordering: .relaxed).exchanged {
                return true
            }
        }
    }

    func release() { count.subtract(1, ordering: .relaxed) }
}

/// One connection's JSON-RPC loop: lines in, dispatcher calls run concurrently (bounded),
/// responses and pushes out through this handler alone.
///
/// Before the session authenticates, it is handled one request at a time and its lines may be
/// no longer than the small `lineLimit` the server gave the decoder; once authenticated, up to
/// `maximumInFlight` at a time and `maximumLineLength` (docs/protocol.md, "Limits").
/// `onAuthenticated` tells the server, once, that the connection no longer counts against its
/// address's cap on unauthenticated connections.
///
/// Idle: only the client's own traffic (a line received, a request in flight or being answered)
/// keeps the connection open; server pushes do not.
///
/// Backpressure: the handler intercepts `read()`. While `maximumInFlight` requests are being
/// handled (a request counts until its response is written to the socket, so a client that
/// does not read its answers stops being read too), or lines decoded from earlier reads are
/// still queued, no read is passed on; the held read is issued when answers drain.
final class RPCConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = Never
    typealias OutboundIn = Never
    typealias OutboundOut = ByteBuffer

    struct Settings: Sendable {
        var maximumInFlight: Int
        var maximumLineLength: Int
        var idleTimeout: TimeAmount
        var unauthenticatedTimeout: TimeAmount
        var pushQueueLimit: Int
        var clientCertificates: Bool
    }

    private let dispatcher: Dispatcher
    private let settings: Settings
    private var logger: Logger

    private var session: Session?
    private var queued = CircularBuffer<ByteBuffer>()
    private var inFlight = 0
    private var readHeld = false
    /// No more lines are read (shutdown, or the peer closed its side): close when idle.
    private var draining = false
    private var closing = false
    private var flushScheduled = false
    private var lastActivity = NIODeadline.now()
    private var idleTimer: Scheduled<Void>?
    private var authenticationTimer: Scheduled<Void>?
    private let pushes: PushQueueCounter
    private let lineLimit: LineLengthLimit
    private let unauthenticatedLineLength: Int
    private let onAuthenticated: @Sendable () -> Void
    private var authenticated = false

    init(
        dispatcher: Dispatcher, settings: Settings, lineLimit: LineLengthLimit,
        onAuthenticated: @escaping @Sendable () -> Void = {}, logger: Logger
    ) {
        self.dispatcher = dispatcher
        self.settings = settings
        self.logger = logger
        self.pushes = PushQueueCounter(limit: settings.pushQueueLimit)
        self.lineLimit = lineLimit
        self.unauthenticatedLineLength = lineLimit.value
        self.onAuthenticated = onAuthenticated
    }

    /// Requests handled at once: one until the session authenticates (and again if its key is
    /// revoked).
    private var maximumInFlight: Int { authenticated ? settings.maximumInFlight : 1 }

    /// Follows the session's state after each answer: limits widen once it authenticates and
    /// narrow again when it no longer is.
    private func updateLimits() {
        let now = session?.isAuthenticated == true
        guard now != authenticated else { return }
        authenticated = now
        lineLimit.value = now ? settings.maximumLineLength : unauthenticatedLineLength
        if now { onAuthenticated() }
    }

    // MARK: lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { start(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context: context)
        context.fireChannelActive()
    }

    private func start(context: ChannelHandlerContext) {
        guard idleTimer == nil else { return }
        lastActivity = .now()
        let loop = context.eventLoop.assumeIsolated()
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        idleTimer = loop.scheduleTask(in: settings.idleTimeout) { bound.value.0.checkIdle(context: bound.value.1) }
        authenticationTimer = loop.scheduleTask(in: settings.unauthenticatedTimeout) {
            let (handler, context) = bound.value
            guard handler.session?.isAuthenticated != true else { return }
            handler.logger.debug("closing a connection that did not authenticate in time")
            handler.close(context: context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        idleTimer?.cancel()
        authenticationTimer?.cancel()
        queued.removeAll()
        session?.close()
        context.fireChannelInactive()
    }

    private func checkIdle(context: ChannelHandlerContext) {
        let deadline = lastActivity + settings.idleTimeout
        if inFlight == 0, queued.isEmpty, deadline <= .now() {
            logger.debug("closing an idle connection")
            close(context: context)
            return
        }
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        // Busy: look again a whole timeout later (finishing requests moves lastActivity on).
        let next = deadline > .now() ? deadline : .now() + settings.idleTimeout
        idleTimer = context.eventLoop.assumeIsolated().scheduleTask(deadline: next) {
            bound.value.0.checkIdle(context: bound.value.1)
        }
    }

    /// The session, made with the first line: TLS is up by then, so it can carry the client
    /// certificate.
    private func ensureSession(context: ChannelHandlerContext) -> Session {
        if let session { return session }
        var fingerprint: [UInt8]?
        if settings.clientCertificates,
            let tls = try? context.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self),
            let certificate = tls.peerCertificate, let der = try? certificate.toDERBytes()
        {
            fingerprint = ClientCertificate.fingerprint(der: der)
        }
        let session = Session(remoteAddress: context.channel.remoteAddress?.ipAddress, clientCertificateFingerprint: fingerprint)
        logger[metadataKey: "connection.id"] = .string(session.id.uuidString.lowercased())
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let eventLoop = context.eventLoop
        let pushes = self.pushes
        session.setPushSink { message in
            guard pushes.acquire() else { return .dropped }
            let bytes = JSONWriter.write(message)
            eventLoop.execute {
                let (handler, context) = bound.value
                handler.writePush(bytes, context: context)
            }
            return .queued
        }
        self.session = session
        return session
    }

    // MARK: inbound

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case is DrainConnectionEvent:
            draining = true
            closeIfDrained(context: context)
        case let channelEvent as ChannelEvent where channelEvent == .inputClosed:
            draining = true
            closeIfDrained(context: context)
            context.fireUserInboundEventTriggered(event)
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        let line = unwrapInboundIn(data)
        lastActivity = .now()
        if inFlight < maximumInFlight && queued.isEmpty {
            dispatch(line, context: context)
        } else {
            queued.append(line)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let tooLong = error as? LineFrameDecoder.LineTooLong {
            guard !closing else { return }
            closing = true
            queued.removeAll()
            let response = RPCResponse.failure(
                id: .null, error: .invalidRequest("the line is longer than \(tooLong.maximumLength) bytes"))
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            context.writeAndFlush(wrapOutboundOut(lineBuffer(JSONWriter.write(response), context: context)))
                .assumeIsolated().whenComplete { _ in bound.value.1.close(promise: nil) }
            return
        }
        // TLS failures and resets are the peer's business; nothing about them is worth more than debug.
        logger.debug("connection error", metadata: ["error.type": .string(String(describing: type(of: error)))])
        close(context: context)
    }

    /// Runs this connection's request tasks on its event loop (docs/architecture.md, "Threads").
    private var executor: EventLoopTaskExecutor?

    private func dispatch(_ line: ByteBuffer, context: ChannelHandlerContext) {
        inFlight += 1
        let session = ensureSession(context: context)
        let dispatcher = self.dispatcher
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let eventLoop = context.eventLoop
        let executor = self.executor ?? EventLoopTaskExecutor(eventLoop)
        self.executor = executor
        Task(executorPreference: executor) {
            let response = await dispatcher.handle(line: line.readableBytesView, session: session)
            if eventLoop.inEventLoop {
                let (handler, context) = bound.value
                handler.answered(response, context: context)
            } else {
                eventLoop.execute {
                    let (handler, context) = bound.value
                    handler.answered(response, context: context)
                }
            }
        }
    }

    private func answered(_ response: [UInt8]?, context: ChannelHandlerContext) {
        guard let response, context.channel.isActive, !closing else {
            requestFinished(context: context)
            return
        }
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let promise = context.eventLoop.makePromise(of: Void.self)
        promise.futureResult.assumeIsolated().whenComplete { _ in
            let (handler, context) = bound.value
            handler.requestFinished(context: context)
        }
        context.write(wrapOutboundOut(lineBuffer(response, context: context)), promise: promise)
        scheduleFlush(context: context)
    }

    /// One flush for all the answers completed in this event-loop tick: pipelined answers then
    /// share TLS records and system calls instead of costing one each.
    private func scheduleFlush(context: ChannelHandlerContext) {
        guard !flushScheduled else { return }
        flushScheduled = true
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        context.eventLoop.assumeIsolated().execute {
            let (handler, context) = bound.value
            handler.flushScheduled = false
            context.flush()
        }
    }

    private func requestFinished(context: ChannelHandlerContext) {
        inFlight -= 1
        lastActivity = .now()
        updateLimits()
        while inFlight < maximumInFlight, !closing, let next = queued.popFirst() {
            dispatch(next, context: context)
        }
        if readHeld, mayRead {
            readHeld = false
            context.read()
        }
        closeIfDrained(context: context)
    }

    private func writePush(_ bytes: [UInt8], context: ChannelHandlerContext) {
        // Not activity: a subscriber that sends nothing is idle however much it is sent.
        guard context.channel.isActive, !closing else {
            pushes.release()
            return
        }
        let pushes = self.pushes
        let promise = context.eventLoop.makePromise(of: Void.self)
        promise.futureResult.whenComplete { _ in pushes.release() }
        context.write(wrapOutboundOut(lineBuffer(bytes, context: context)), promise: promise)
        scheduleFlush(context: context)
    }

    // MARK: outbound

    private var mayRead: Bool { !draining && !closing && inFlight < maximumInFlight && queued.isEmpty }

    func read(context: ChannelHandlerContext) {
        if mayRead {
            context.read()
        } else {
            readHeld = true
        }
    }

    // MARK: closing

    private func closeIfDrained(context: ChannelHandlerContext) {
        guard draining, inFlight == 0, queued.isEmpty, !closing else { return }
        close(context: context)
    }

    private func close(context: ChannelHandlerContext) {
        guard !closing || context.channel.isActive else { return }
        closing = true
        context.close(promise: nil)
    }

    private func lineBuffer(_ bytes: [UInt8], context: ChannelHandlerContext) -> ByteBuffer {
        var buffer = context.channel.allocator.buffer(capacity: bytes.count + 1)
        buffer.writeBytes(bytes)
        buffer.writeInteger(UInt8(ascii: "\n"))
        return buffer
    }
}
