import ForecourtCore
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The state of one client connection: who it is, and how to push to it.
///
/// Created by the listener for each connection and shared by every request of that
/// connection; methods such as `session.authenticate` and `events.subscribe` change it.
public final class Session: Sendable {
    /// What authenticated the session, so that a revoked key stops working for open sessions.
    public struct Credential: Sendable, Hashable {
        public let keyID: UUID
        /// SHA-256 of the API key (never the key itself).
        public let keyHash: [UInt8]

        public init(keyID: UUID, keyHash: [UInt8]) {
            self.keyID = keyID
            self.keyHash = keyHash
        }
    }

    /// The result of offering a server-initiated message to the connection.
    public enum PushResult: Sendable {
        case queued
        /// The connection's outgoing queue is full; the message was dropped.
        case dropped
        case closed
    }

    private struct State {
        var principal: Principal?
        var credential: Credential?
        var validatedAt: ContinuousClock.Instant?
        var closed = false
        var closeHandlers: [@Sendable () -> Void] = []
        var pushSink: (@Sendable (JSON) -> PushResult)?
    }

    public let id: UUID
    /// The peer's address (for rate limits on failed authentication); never logged with data.
    public let remoteAddress: String?
    /// SHA-256 of the client certificate's DER, when the peer presented one (mutual TLS).
    public let clientCertificateFingerprint: [UInt8]?
    private let state: Mutex<State>

    public init(id: UUID = UUID(), remoteAddress: String?, clientCertificateFingerprint: [UInt8]? = nil) {
        self.id = id
        self.remoteAddress = remoteAddress
        self.clientCertificateFingerprint = clientCertificateFingerprint
        self.state = Mutex(State())
    }

    /// What limits per source count under for an address: an IPv4 address as it is, an IPv6
    /// address as its /64 (one host usually holds a whole /64, so counting single IPv6
    /// addresses would limit nothing).
    public static func source(of address: String?) -> String {
        guard let address else { return "unknown" }
        guard address.contains(":") else { return address }
        var bytes = [UInt8](repeating: 0, count: 16)
        guard inet_pton(AF_INET6, address, &bytes) == 1 else { return address }
        return bytes.prefix(8).hexString + "::/64"
    }

    /// `source(of:)` of this session's peer.
    public var source: String { Self.source(of: remoteAddress) }

    public var principal: Principal? { state.withLock { $0.principal } }
    public var credential: Credential? { state.withLock { $0.credential } }
    public var isAuthenticated: Bool { principal != nil }
    public var isClosed: Bool { state.withLock { $0.closed } }

    /// Marks the session authenticated.
    public func authenticate(_ principal: Principal, credential: Credential?) {
        state.withLock {
            $0.principal = principal
            $0.credential = credential
            $0.validatedAt = .now
        }
    }

    /// Ends the authentication (a revoked key): later calls are -32001.
    public func deauthenticate() {
        state.withLock {
            $0.principal = nil
            $0.credential = nil
            $0.validatedAt = nil
        }
    }

    /// Whether the credential was last checked longer ago than `interval`.
    public func needsRevalidation(every interval: Duration) -> Bool {
        state.withLock { state in
            guard state.credential != nil, let at = state.validatedAt else { return false }
            return at.duration(to: .now) >= interval
        }
    }

    public func markValidated() {
        state.withLock { $0.validatedAt = .now }
    }

    /// Records that the credential `keyID` was found valid by a check that started at `instant`
    /// (the revocation watcher), if the session still holds that credential; never moves the
    /// time back.
    public func markValidated(keyID: UUID, at instant: ContinuousClock.Instant) {
        state.withLock { state in
            guard state.credential?.keyID == keyID, let at = state.validatedAt, at < instant else { return }
            state.validatedAt = instant
        }
    }

    /// When the credential was last found valid, if the session has one.
    public var validatedAt: ContinuousClock.Instant? { state.withLock { $0.credential == nil ? nil : $0.validatedAt } }

    /// Ends the authentication if it still rests on the key `keyID` (revoked); returns whether it did.
    @discardableResult
    public func deauthenticate(ifKey keyID: UUID) -> Bool {
        state.withLock { state in
            guard state.credential?.keyID == keyID else { return false }
            state.principal = nil
            state.credential = nil
            state.validatedAt = nil
            return true
        }
    }

    /// Installs the function that queues server-initiated messages (the listener does this).
    public func setPushSink(_ sink: @escaping @Sendable (JSON) -> PushResult) {
        state.withLock { $0.pushSink = sink }
    }

    /// Offers a notification (`method` + `params`, no id) to the client.
    public func push(method: String, params: JSON) -> PushResult {
        let sink = state.withLock { $0.closed ? nil : $0.pushSink }
        guard let sink else { return .closed }
        return sink(["jsonrpc": "2.0", "method": .string(method), "params": params])
    }

    /// Runs `handler` once when the connection closes (immediately if it already has).
    public func onClose(_ handler: @escaping @Sendable () -> Void) {
        let runNow = state.withLock { state -> Bool in
            if state.closed { return true }
            state.closeHandlers.append(handler)
            return false
        }
        if runNow { handler() }
    }

    /// Called by the listener when the connection ends.
    public func close() {
        let handlers = state.withLock { state -> [@Sendable () -> Void] in
            guard !state.closed else { return [] }
            state.closed = true
            state.pushSink = nil
            defer { state.closeHandlers = [] }
            return state.closeHandlers
        }
        for handler in handlers { handler() }
    }
}
