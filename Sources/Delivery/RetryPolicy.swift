import Foundation

/// What one attempt at sending came to.
public enum DeliveryOutcome: Sendable, Equatable {
    case sent
    /// Worth retrying later (SMTP 4xx, HTTP 5xx/408/429, timeouts, refused connections).
    case temporary(String)
    /// Retrying cannot help (SMTP 5xx to the message, HTTP 4xx, an erased customer...).
    case permanent(String)

    /// The `last_error` code: short, from a fixed vocabulary, never text from the peer.
    public var errorCode: String? {
        switch self {
        case .sent: nil
        case .temporary(let code), .permanent(let code): code
        }
    }
}

/// When a failed notification is tried again (docs/protocol.md, "Delivery").
public struct RetryPolicy: Sendable {
    public var base: Double
    public var maximumAttempts: Int
    /// The cap of one wait, whatever the attempt.
    public static let maximumDelay = 3600.0

    public init(base: Double, maximumAttempts: Int) {
        self.base = base
        self.maximumAttempts = maximumAttempts
    }

    /// Seconds to wait after the `attempts`-th failed attempt: `base × 2^(attempts-1)`,
    /// ±20 % jitter (so instances and notifications that failed together spread out), at most
    /// an hour.
    public func delay(afterAttempts attempts: Int, jitter: Double = Double.random(in: -1...1)) -> Double {
        let exponent = Double(max(attempts, 1) - 1)
        let raw = min(base * pow(2, min(exponent, 40)), Self.maximumDelay)
        return min(raw * (1 + 0.2 * jitter), Self.maximumDelay)
    }

    /// The row's next state after an attempt that ended in `outcome`, `attempts` counting it.
    public func next(after outcome: DeliveryOutcome, attempts: Int) -> (status: String, retryIn: Double?) {
        switch outcome {
        case .sent: return ("sent", nil)
        case .permanent: return ("failed", nil)
        case .temporary:
            if attempts >= maximumAttempts { return ("failed", nil) }
            return ("pending", delay(afterAttempts: attempts))
        }
    }
}
