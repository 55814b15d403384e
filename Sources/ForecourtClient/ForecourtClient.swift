import NIOCore
import NIOPosix
import NIOSSL
import JSONRPC
import LineFraming
import Synchronization

/// A Forecourt JSON-RPC client over TLS: one connection, pipelined.
///
/// Many `call`s may run at once on one client; each request gets its own numeric id and the
/// answers, which the server may send in any order, are matched by it. Server pushes
/// (`order.updated` and the like) arrive on `notifications`.
///
/// ```swift
/// let client = try await ForecourtClient.connect(host: "127.0.0.1", port: 7443, caPath: "ca.pem")
/// try await client.authenticate(apiKey: key)
/// let order = try await client.call("order.get", params: ["id": .string(id)])
/// await client.close()
/// ```
///
/// Used by the tests, `forecourt call` and the load generator.
public final class ForecourtClient: Sendable {
    /// What a call can fail with.
    public enum Error: Swift.Error, Sendable, Equatable, CustomStringConvertible {
        /// The server answered with a JSON-RPC error object.
        case rpc(code: Int, message: String, data: JSON?)
        /// The connection closed before the answer came (or the client was closed).
        case connectionClosed
        /// The server sent something that is not a JSON-RPC message.
        case invalidResponse(String)

        public var description: String {
            switch self {
            case .rpc(let code, let message, let data):
                "JSON-RPC error \(code): \(message)\(data.map { " " + JSONWriter.string($0) } ?? "")"
            case .connectionClosed: "the connection is closed"
            case .invalidResponse(let why): "invalid response: \(why)"
            }
        }

        /// `error.data.reason` of an RPC error.
        public var reason: String? {
            if case .rpc(_, _, let data) = self { return data?["reason"]?.stringValue }
            return nil
        }

        /// The code of an RPC error.
        public var code: Int? {
            if case .rpc(let code, _, _) = self { return code }
            return nil
        }
    }

    /// Server-initiated messages (`{"jsonrpc":"2.0","method":...,"params":...}`), whole.
    /// Keeps the newest 10,000 when nobody reads them.
    public let notifications: AsyncStream<JSON>
    /// Messages that answer no `call` of this client: answers to `sendRaw` lines and errors
    /// with `id: null` (a parse error, an over-long line). Keeps the newest 10,000.
    public let unmatched: AsyncStream<JSON>

    /// Runs tasks on this connection's event loop. A task that calls with this as its executor
    /// preference (`Task(executorPreference:)`, `addTask(executorPreference:)`) writes its
    /// request and is resumed with the answer on the thread that does the connection's I/O,
    /// instead of hopping to the loop and back to Swift's global executor on every call (as the
    /// server runs its requests: docs/architecture.md, "Threads"). Its work must not block.
    public let executor: any TaskExecutor

    private let channel: any Channel
    private let core: ClientCore

    private init(channel: any Channel, core: ClientCore) {
        self.channel = channel
        self.core = core
        self.executor = EventLoopTaskExecutor(channel.eventLoop)
        self.notifications = core.notifications
        self.unmatched = core.unmatched
    }

    // MARK: connecting

    /// Connects with a CA certificate file (PEM) to trust, or the system's roots when nil.
    public static func connect(
        host: String,
        port: Int,
        caPath: String?,
        serverHostname: String? = nil,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> ForecourtClient {
        let roots: NIOSSLTrustRoots = try caPath.map { .certificates(try NIOSSLCertificate.fromPEMFile($0)) } ?? .default
        return try await connect(host: host, port: port, trustRoots: roots, serverHostname: serverHostname, eventLoopGroup: eventLoopGroup)
    }

    /// Connects trusting `trustRoots`; the server's certificate must name `serverHostname`
    /// (default: `host`, which may be an IP address listed in the certificate).
    public static func connect(
        host: String,
        port: Int,
        trustRoots: NIOSSLTrustRoots,
        serverHostname: String? = nil,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> ForecourtClient {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = trustRoots
        tls.minimumTLSVersion = .tlsv12
        return try await connect(
            host: host, port: port, tlsConfiguration: tls, serverHostname: serverHostname, eventLoopGroup: eventLoopGroup)
    }

    /// Connects with a complete TLS configuration (client certificates, TLS versions for tests).
    /// Returns once the TLS handshake has completed.
    public static func connect(
        host: String,
        port: Int,
        tlsConfiguration: TLSConfiguration,
        serverHostname: String? = nil,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> ForecourtClient {
        let context = try NIOSSLContext(configuration: tlsConfiguration)
        let core = ClientCore()
        let hostname = serverHostname ?? host
        // SNI must not carry an IP address; without a name NIOSSL verifies the peer's IP address
        // against the certificate instead.
        let sniHostname = ClientCore.isIPAddress(hostname) ? nil : hostname
        let handshake = eventLoopGroup.next().makePromise(of: Void.self)
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: eventLoopGroup)
                .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                .connectTimeout(.seconds(10))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let sync = channel.pipeline.syncOperations
                        try sync.addHandler(try NIOSSLClientHandler(context: context, serverHostname: sniHostname))
                        try sync.addHandler(ByteToMessageHandler(LineFrameDecoder(maximumLength: 64 << 20)))
                        try sync.addHandler(ClientHandler(core: core, handshake: handshake))
                    }
                }
                .connect(host: host, port: port).get()
        } catch {
            // The handler never saw the promise through: complete it, NIO insists.
            handshake.fail(error)
            throw error
        }
        do {
            try await handshake.futureResult.get()
        } catch {
            try? await channel.close()
            throw error
        }
        return ForecourtClient(channel: channel, core: core)
    }

    // MARK: calls

    /// Calls `method` and returns its `result`.
    /// - Throws: `Error.rpc` for an error response, `Error.connectionClosed` when the connection ends first.
    public func call(_ method: String, params: JSON = .object(JSONObject())) async throws -> JSON {
        let response = try await request(method, params: params)
        if let error = response["error"] {
            throw Error.rpc(
                code: error["code"]?.intValue ?? 0, message: error["message"]?.stringValue ?? "", data: error["data"])
        }
        guard let result = response["result"] else { throw Error.invalidResponse("no result and no error") }
        return result
    }

    /// Calls `method` and returns the whole response object (`result` or `error`), for callers
    /// that print it (`forecourt call`) rather than act on it.
    /// Cancelling the calling task ends the wait with `CancellationError`.
    public func request(_ method: String, params: JSON = .object(JSONObject())) async throws -> JSON {
        let id = core.nextID()
        let line = JSONWriter.write(RPCRequest(id: .number(JSONNumber(id)), method: method, params: params).json)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                guard core.register(id: id, continuation) else {
                    continuation.resume(throwing: Error.connectionClosed)
                    return
                }
                channel.writeAndFlush(Self.buffer(line, newline: true)).whenFailure { [core] _ in
                    core.fail(id: id, Error.connectionClosed)
                }
            }
        } onCancel: { [core] in
            // The request may still run on the server; its late answer goes to `unmatched`.
            core.fail(id: id, CancellationError())
        }
    }

    /// Sends a notification (no id, no answer).
    public func notify(_ method: String, params: JSON = .object(JSONObject())) async throws {
        let line = JSONWriter.write(RPCRequest(id: nil, method: method, params: params).json)
        try await send(Self.buffer(line, newline: true))
    }

    /// `session.authenticate` with an API key; returns the principal object.
    @discardableResult
    public func authenticate(apiKey: String) async throws -> JSON {
        let result = try await call("session.authenticate", params: ["api_key": .string(apiKey)])
        return result["principal"] ?? result
    }

    // MARK: raw access, for tests

    /// Sends `line` followed by `\n`, as is. Its answer arrives on `unmatched` (use string ids,
    /// so that they cannot collide with the numeric ids of `call`).
    public func sendRaw(line: String) async throws {
        try await send(Self.buffer(Array(line.utf8), newline: true))
    }

    /// Sends bytes exactly as given (no terminator added).
    public func sendRaw(bytes: [UInt8]) async throws {
        try await send(Self.buffer(bytes, newline: false))
    }

    /// The next message on `unmatched`, or nil once the connection has closed and all were read.
    public func receiveUnmatched() async -> JSON? {
        await core.nextUnmatched()
    }

    // MARK: closing

    /// Whether the connection has closed.
    public var isClosed: Bool { core.isClosed }

    /// Waits until the connection closes (by either side).
    public func waitUntilClosed() async {
        try? await channel.closeFuture.get()
    }

    /// Closes the connection; calls still waiting fail with `Error.connectionClosed`.
    public func close() async {
        try? await channel.close()
        core.closed()
    }

    private func send(_ buffer: ByteBuffer) async throws {
        guard !core.isClosed else { throw Error.connectionClosed }
        do {
            try await channel.writeAndFlush(buffer)
        } catch {
            throw Error.connectionClosed
        }
    }

    private static func buffer(_ bytes: [UInt8], newline: Bool) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(bytes.count + 1)
        buffer.writeBytes(bytes)
        if newline { buffer.writeInteger(UInt8(ascii: "\n")) }
        return buffer
    }
}
