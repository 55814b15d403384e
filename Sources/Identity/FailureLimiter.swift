import Foundation
import Synchronization

/// Counts authentication failures per source in fixed windows, to slow down whoever keeps
/// failing without ever refusing a correct key (docs/protocol.md, "system and session").
///
/// In memory, per instance. Keys have 256 bits of entropy, so this guards the database's work
/// and the log's noise more than the secret. A source is an IPv4 address or an IPv6 /64 (one
/// host usually holds a whole /64: `Session.source(of:)`).
///
/// Bounded: at most `capacity` sources are tracked. When the table is full, expired windows are
/// dropped; sources that still find no room share one overflow window, so an attacker with
/// many addresses limits only the untracked newcomers (whose correct keys still work), and
/// never resets the windows of the sources already tracked.
public final class FailureLimiter: Sendable {
    private struct Window {
        var started: ContinuousClock.Instant
        var failures: Int
    }

    private struct State {
        var windows: [String: Window] = [:]
        var overflow: Window?
        var lastSweep = ContinuousClock.now
    }

    static let overflowKey = "\u{0}overflow"

    public let limit: Int
    public let window: Duration
    private let capacity: Int
    private let state = Mutex(State())

    public init(failures limit: Int = 10, per window: Duration = .seconds(60), capacity: Int = 100_000) {
        self.limit = limit
        self.window = window
        self.capacity = capacity
    }

    /// How long `source` should wait, if it has failed `limit` times in its window.
    public func retryAfter(_ source: String) -> Duration? {
        state.withLock { state in
            let now = ContinuousClock.now
            let entry = state.windows[source] ?? (state.windows.count >= capacity ? state.overflow : nil)
            guard let entry else { return nil }
            let elapsed = entry.started.duration(to: now)
            guard elapsed < window, entry.failures >= limit else { return nil }
            return window - elapsed
        }
    }

    /// Counts a failure of `source`; returns how long it should now wait, if it is past its limit.
    @discardableResult
    public func recordFailure(_ source: String) -> Duration? {
        state.withLock { state in
            let now = ContinuousClock.now
            if state.windows[source] == nil, state.windows.count >= capacity,
                state.lastSweep.duration(to: now) >= window / 10
            {
                state.windows = state.windows.filter { $0.value.started.duration(to: now) < window }
                state.lastSweep = now
            }
            func count(_ entry: inout Window?) -> Duration? {
                if var current = entry, current.started.duration(to: now) < window {
                    current.failures += 1
                    entry = current
                } else {
                    entry = Window(started: now, failures: 1)
                }
                let elapsed = entry!.started.duration(to: now)
                return entry!.failures > limit ? window - elapsed : nil
            }
            if state.windows[source] != nil || state.windows.count < capacity {
                var entry = state.windows[source]
                let wait = count(&entry)
                state.windows[source] = entry
                return wait
            }
            return count(&state.overflow)
        }
    }
}
