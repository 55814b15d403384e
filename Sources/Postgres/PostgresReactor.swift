import CLibPQ
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// One thread per pool that waits with epoll on the sockets of the reads in flight without a
/// pool thread (`PostgresConnection.startSingle`), reads their answers when they arrive and
/// hands each complete read to its completion, on this thread (docs/architecture.md,
/// "Threads"). It blocks in nothing but `epoll_wait`: every libpq call it makes is in
/// non-blocking mode. Started on the first registration; `stop` fails the reads in flight and
/// ends the thread.
final class PostgresReactor: @unchecked Sendable {
    enum Outcome {
        /// Every result is in, or the connection broke: `finishSingle` says which.
        case complete(PostgresConnection.SingleRead)
        /// The reactor stopped with the read in flight.
        case stopped(PostgresConnection.SingleRead)
    }

    /// A read in flight. Only the reactor thread touches `read` once it is registered.
    private final class InFlight: @unchecked Sendable {
        let connection: PostgresConnection
        var read: PostgresConnection.SingleRead
        let completion: @Sendable (Outcome) -> Void

        init(_ connection: PostgresConnection, _ read: PostgresConnection.SingleRead, _ completion: @escaping @Sendable (Outcome) -> Void) {
            self.connection = connection
            self.read = read
            self.completion = completion
        }
    }

    private struct State {
        /// Reads in flight by socket.
        var inFlight: [Int32: InFlight] = [:]
        var started = false
        var stopped = false
        var exited = false
        var onExit: CheckedContinuation<Void, Never>?
    }

    private let state = Mutex(State())
    private let epoll: Int32
    /// An eventfd that wakes the thread for `stop` (registrations need no wake: `epoll_ctl`
    /// takes effect in a running `epoll_wait`).
    private let wake: Int32
    private static let wakeKey = UInt64.max

    init() {
        epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        wake = eventfd(0, Int32(EFD_CLOEXEC) | Int32(EFD_NONBLOCK))
        precondition(epoll >= 0 && wake >= 0, "epoll_create1 or eventfd failed: \(errno)")
        var event = epoll_event()
        event.events = EPOLLIN.rawValue
        event.data.u64 = Self.wakeKey
        precondition(epoll_ctl(epoll, EPOLL_CTL_ADD, wake, &event) == 0)
    }

    deinit {
        Glibc.close(epoll)
        Glibc.close(wake)
    }

    /// Waits for `read` on `connection`'s socket and calls `completion` on the reactor thread
    /// once it is complete (or the reactor stops). False, and nothing is called, when the
    /// reactor has stopped.
    func register(
        _ connection: PostgresConnection, _ read: PostgresConnection.SingleRead,
        completion: @escaping @Sendable (Outcome) -> Void
    ) -> Bool {
        let entry = InFlight(connection, read, completion)
        let fd = connection.socketDescriptor
        let accepted = state.withLock { state -> Bool in
            if state.stopped { return false }
            if !state.started {
                state.started = true
                let thread = Thread { [self] in loop() }
                thread.name = "forecourt.postgres.reactor"
                thread.start()
            }
            // In the table before it is armed: once armed, the loop may report it at once.
            state.inFlight[fd] = entry
            return true
        }
        guard accepted else { return false }
        // Armed outside the lock, which the loop takes for every event: a system call inside
        // it made the loop and the event loops wait on each other (docs/performance.md). If
        // `stop` came in between, the read was failed with the others and the arming is moot.
        if !arm(fd, writable: read.wantsWrite) {
            // epoll refused the socket: libpq's socket is gone, so is the connection. Failed
            // here unless `stop` took it first.
            let mine = state.withLock { state -> Bool in
                guard state.inFlight[fd] === entry else { return false }
                state.inFlight[fd] = nil
                return true
            }
            if mine {
                var read = read
                read.markBroken()
                completion(.complete(read))
            }
        }
        return true
    }

    /// Fails the reads in flight (`.stopped`) and ends the thread; later registrations are
    /// refused. Idempotent.
    func stop() async {
        let started = state.withLock { state -> Bool in
            state.stopped = true
            return state.started
        }
        guard started else { return }
        var one: UInt64 = 1
        _ = write(wake, &one, 8)
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let exited = state.withLock { state -> Bool in
                if state.exited { return true }
                state.onExit = continuation
                return false
            }
            if exited { continuation.resume() }
        }
    }

    /// One-shot interest in the socket: readable, and writable while libpq holds requests.
    private func arm(_ fd: Int32, writable: Bool) -> Bool {
        var event = epoll_event()
        event.events = EPOLLIN.rawValue | EPOLLONESHOT.rawValue | (writable ? EPOLLOUT.rawValue : 0)
        event.data.u64 = UInt64(UInt32(bitPattern: fd))
        if epoll_ctl(epoll, EPOLL_CTL_MOD, fd, &event) == 0 { return true }
        // A socket not seen before (or a new one with a closed one's number: closing a socket
        // takes it out of epoll).
        return errno == ENOENT && epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event) == 0
    }

    private func loop() {
        let capacity = 64
        let events = UnsafeMutablePointer<epoll_event>.allocate(capacity: capacity)
        defer { events.deallocate() }
        while true {
            let count = epoll_wait(epoll, events, Int32(capacity), -1)
            if count < 0 {
                if errno == EINTR { continue }
                fatalError("epoll_wait failed: \(errno)")
            }
            var stopping = false
            for index in 0..<Int(count) {
                let key = events[index].data.u64
                if key == Self.wakeKey {
                    var value: UInt64 = 0
                    _ = read(wake, &value, 8)
                    stopping = state.withLock { $0.stopped }
                    continue
                }
                let fd = Int32(bitPattern: UInt32(truncatingIfNeeded: key))
                // Taken out of the table while this thread works on it (one lock per event);
                // put back if it needs another event. `stop` fails only what is in the table,
                // and runs on this thread after these events, so nothing is failed twice.
                guard let entry = state.withLock({ $0.inFlight.removeValue(forKey: fd) }) else { continue }
                entry.connection.advance(&entry.read)
                if entry.read.isComplete {
                    entry.completion(.complete(entry.read))
                    continue
                }
                let stopped = state.withLock { state -> Bool in
                    if state.stopped { return true }
                    state.inFlight[fd] = entry
                    return false
                }
                if stopped {
                    entry.completion(.stopped(entry.read))
                } else if !arm(fd, writable: entry.read.wantsWrite) {
                    let mine = state.withLock { state -> Bool in
                        guard state.inFlight[fd] === entry else { return false }
                        state.inFlight[fd] = nil
                        return true
                    }
                    if mine {
                        entry.read.markBroken()
                        entry.completion(.complete(entry.read))
                    }
                }
            }
            if stopping {
                let left = state.withLock { state -> [InFlight] in
                    defer { state.inFlight = [:] }
                    return Array(state.inFlight.values)
                }
                for entry in left { entry.completion(.stopped(entry.read)) }
                let onExit = state.withLock { state -> CheckedContinuation<Void, Never>? in
                    state.exited = true
                    defer { state.onExit = nil }
                    return state.onExit
                }
                onExit?.resume()
                return
            }
        }
    }
}
