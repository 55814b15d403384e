import CLibPQ
import ForecourtCore
import Foundation
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `LISTEN` on a dedicated connection, delivering notifications as an `AsyncStream`.
///
/// libpq blocks, so the connection lives on a thread of its own (never an event loop) that
/// waits on the socket with `poll` and a short timeout, which is also how it notices a stop.
/// When the connection breaks (a database restart, `pg_terminate_backend`), the thread
/// reconnects with exponential backoff (100 ms doubling to `maximumBackoff`), listens again on
/// every channel, and yields `.reconnected`: notifications sent while it was away are lost
/// (NOTIFY is not durable), so consumers should tell their clients to re-read state.
/// A quiet connection is checked with `SELECT 1` every `healthCheckInterval`, so a dead
/// network path is noticed too.
public final class PostgresListener: Sendable {
    public enum Message: Sendable, Equatable {
        case notification(channel: String, payload: String)
        /// The connection was re-established after a failure, and listens again.
        case reconnected
    }

    public let messages: AsyncStream<Message>
    private let continuation: AsyncStream<Message>.Continuation
    private let connectionString: String
    private let channels: [String]
    private let connectionSetup: [String]
    private let maximumBackoff: Duration
    private let healthCheckInterval: Duration
    private let logger: Logger

    private struct State {
        var stopped = false
        var started = false
        var backendPID: Int32?
        var listening = false
    }

    private let state = Mutex(State())

    /// - Parameters:
    ///   - channels: names of the channels (identifiers chosen by code, never by a request).
    ///   - bufferSize: notifications kept when the consumer is slower; older ones are dropped first.
    public init(
        connectionString: String,
        channels: [String],
        connectionSetup: [String] = [],
        maximumBackoff: Duration = .seconds(5),
        healthCheckInterval: Duration = .seconds(30),
        bufferSize: Int = 10_000,
        logger: Logger = Logger(label: "forecourt.postgres.listener")
    ) {
        precondition(channels.allSatisfy { $0.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" } })
        self.connectionString = connectionString
        self.channels = channels
        self.connectionSetup = connectionSetup
        self.maximumBackoff = maximumBackoff
        self.healthCheckInterval = healthCheckInterval
        self.logger = logger
        (messages, continuation) = AsyncStream.makeStream(of: Message.self, bufferingPolicy: .bufferingNewest(bufferSize))
    }

    /// The server process of the current connection (for tests that terminate it).
    public var backendPID: Int32? { state.withLock { $0.backendPID } }

    /// Whether the listener is connected and listening now.
    public var isListening: Bool { state.withLock { $0.listening } }

    /// Listens until the task is cancelled; then the connection is closed and `messages` ends.
    public func run() async {
        let first = state.withLock { state -> Bool in
            defer { state.started = true }
            return !state.started
        }
        guard first else { return }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                let thread = Thread { [self] in
                    loop()
                    continuation.finish()
                    done.resume()
                }
                thread.name = "forecourt-listener"
                thread.start()
            }
        } onCancel: {
            stop()
        }
    }

    /// Ends `run()` within the poll timeout.
    public func stop() {
        state.withLock { $0.stopped = true }
    }

    private var stopped: Bool { state.withLock { $0.stopped } }

    private func loop() {
        var backoff = Duration.milliseconds(100)
        var everConnected = false
        while !stopped {
            let connection: PostgresConnection
            do {
                connection = try PostgresConnection(connectionString: connectionString)
                for statement in connectionSetup { try connection.execute(unsafeSQL: statement) }
                for channel in channels { try connection.execute(unsafeSQL: "LISTEN \(channel)") }
            } catch {
                logger.warning("listener cannot connect; retrying", metadata: ["db.error": "\(error)", "retry.ms": "\(backoff.milliseconds)"])
                sleep(backoff)
                backoff = min(backoff * 2, maximumBackoff)
                continue
            }
            backoff = .milliseconds(100)
            state.withLock {
                $0.backendPID = connection.backendPID
                $0.listening = true
            }
            if everConnected {
                logger.info("listener reconnected")
                continuation.yield(.reconnected)
            }
            everConnected = true
            do {
                try listen(on: connection)
            } catch {
                logger.warning("listener connection lost", metadata: ["db.error": "\(error)"])
            }
            state.withLock {
                $0.backendPID = nil
                $0.listening = false
            }
            connection.close()
        }
    }

    /// Waits for notifications until the connection breaks (throws) or the listener stops.
    private func listen(on connection: PostgresConnection) throws {
        var quietSince = ContinuousClock.now
        while !stopped {
            var descriptor = pollfd(fd: connection.socket, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, 250)
            if ready < 0, errno != EINTR { throw PostgresError(.connectionLost) }
            if ready > 0 {
                for (channel, payload) in try connection.consumeNotifications() {
                    continuation.yield(.notification(channel: channel, payload: payload))
                }
                if connection.isBroken { throw PostgresError(.connectionLost) }
                quietSince = .now
            } else if quietSince.duration(to: .now) >= healthCheckInterval {
                try connection.execute(unsafeSQL: "SELECT 1")
                for (channel, payload) in try connection.consumeNotifications() {
                    continuation.yield(.notification(channel: channel, payload: payload))
                }
                quietSince = .now
            }
        }
    }

    private func sleep(_ duration: Duration) {
        // In small steps, so that stop() is honoured quickly.
        let deadline = ContinuousClock.now + duration
        while !stopped, ContinuousClock.now < deadline {
            Thread.sleep(forTimeInterval: 0.05)
        }
    }
}
