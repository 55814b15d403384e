import Foundation
import Synchronization

/// Counts failures per key (a source address) in fixed windows and says when to stop trying.
///
/// In memory, per instance: it slows down guessing on one connection source; keys have 256
/// bits of entropy, so this guards the database's work more than the secret.
public final class FailureLimiter: Sendable {
    private struct Window {
        var started: ContinuousClock.Instant
        var failures: Int
    }

    private let limit: Int
    private let window: Duration
    /// The most sources tracked; past it, expired windows are dropped (and then all, if need be).
    private let capacity: Int
    private let windows = Mutex<[String: Window]>([:])

    public init(failures limit: Int = 10, per window: Duration = .seconds(60), capacity: Int = 100_000) {
        self.limit = limit
        self.window = window
        self.capacity = capacity
    }

    /// How long `key` must wait before trying again, or nil if it may try now.
    public func retryAfter(_ key: String) -> Duration? {
        windows.withLock { windows in
            guard let entry = windows[key] else { return nil }
            let elapsed = entry.started.duration(to: .now)
            if elapsed >= window {
                windows[key] = nil
                return nil
            }
            return entry.failures >= limit ? window - elapsed : nil
        }
    }

    public func recordFailure(_ key: String) {
        windows.withLock { windows in
            let now = ContinuousClock.now
            if windows.count >= capacity {
                windows = windows.filter { $0.value.started.duration(to: now) < window }
                if windows.count >= capacity { windows.removeAll() }
            }
            if var entry = windows[key], entry.started.duration(to: now) < window {
                entry.failures += 1
                windows[key] = entry
            } else {
                windows[key] = Window(started: now, failures: 1)
            }
        }
    }
}
