import Foundation

/// The relay of `FORECOURT_SMTP_URL`: `smtp://[user:password@]host[:port][?tls=off]` (STARTTLS
/// required unless `tls=off`) or `smtps://...` (TLS from the first byte).
public struct SMTPRelay: Sendable, Equatable {
    public enum Security: Sendable, Equatable {
        /// Plain connection upgraded with STARTTLS; a relay that does not offer it is refused.
        case startTLS
        /// TLS from the start (`smtps://`, usually port 465).
        case implicitTLS
        /// No TLS at all (`?tls=off`): only for a relay on the same host.
        case none
    }

    public var host: String
    public var port: Int
    public var username: String?
    public var password: String?
    public var security: Security

    public init(host: String, port: Int, username: String? = nil, password: String? = nil, security: Security) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.security = security
    }

    /// Parses the setting's value; the error says what is wrong without repeating the
    /// value (it may hold a password).
    public init(url text: String) throws(SettingError) {
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
            scheme == "smtp" || scheme == "smtps"
        else { throw SettingError("must be smtp://[user:password@]host[:port][?tls=off] or smtps://...") }
        guard var host = components.host, !host.isEmpty else { throw SettingError("names no host") }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        let port = components.port ?? (scheme == "smtps" ? 465 : 587)
        guard (1...65535).contains(port) else { throw SettingError("has no valid port") }
        var security: Security = scheme == "smtps" ? .implicitTLS : .startTLS
        for item in components.queryItems ?? [] {
            switch (item.name, item.value) {
            case ("tls", "off"?) where scheme == "smtp": security = .none
            default: throw SettingError("knows only the query ?tls=off (with smtp://)")
            }
        }
        let username = components.user?.removingPercentEncoding
        let password = components.password?.removingPercentEncoding
        guard (username == nil) == (password == nil) else { throw SettingError("needs both a user and a password, or neither") }
        self.init(host: host, port: port, username: username, password: password, security: security)
    }
}

/// A delivery setting that cannot be used; the configuration names the setting.
public struct SettingError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Everything the dispatcher needs (docs/operations.md, "Notification delivery").
public struct DeliverySettings: Sendable {
    /// Where email goes; nil: email notifications stay pending (start-up warns).
    public var relay: SMTPRelay?
    /// PEM file of the CA the relay's certificate must chain to; nil: the system's roots.
    public var relayCAPath: String?
    /// `From` of every email (required with a relay).
    public var mailFrom: String?
    /// Seconds before the first retry; doubling after, with ±20 % jitter, capped at an hour.
    public var retryBase: Double
    /// Attempts before a notification (or one webhook's delivery of it) is `failed`.
    public var maximumAttempts: Int
    /// `http://` and non-public webhook addresses (development and tests only).
    public var allowsInsecureWebhooks: Bool
    /// PEM file of the CA webhook certificates must chain to; nil: the system's roots.
    public var webhookCAPath: String?
    /// How long a claim lasts: a crashed instance's claims become due again after it.
    public var lease: Duration
    /// Notifications claimed at once.
    public var batchSize: Int
    /// The slowest the dispatcher looks at the queue without being woken: the safety net
    /// for a missed NOTIFY. Retries that come due sooner wake it at their time.
    public var pollInterval: Duration
    /// The bound of each SMTP step (connect, each reply) and of one webhook POST.
    public var smtpTimeout: Duration
    public var webhookTimeout: Duration
    /// Development: write each email as a `.eml` file here instead of using SMTP
    /// (`forecourt dev` without a relay). Never used by `forecourt serve`.
    public var mailDirectory: String?

    public init(
        relay: SMTPRelay? = nil, relayCAPath: String? = nil, mailFrom: String? = nil, retryBase: Double = 30,
        maximumAttempts: Int = 8, allowsInsecureWebhooks: Bool = false, webhookCAPath: String? = nil,
        lease: Duration = .seconds(300), batchSize: Int = 10, pollInterval: Duration = .seconds(60),
        smtpTimeout: Duration = .seconds(30), webhookTimeout: Duration = .seconds(10), mailDirectory: String? = nil
    ) {
        self.relay = relay
        self.relayCAPath = relayCAPath
        self.mailFrom = mailFrom
        self.retryBase = retryBase
        self.maximumAttempts = maximumAttempts
        self.allowsInsecureWebhooks = allowsInsecureWebhooks
        self.webhookCAPath = webhookCAPath
        self.lease = lease
        self.batchSize = batchSize
        self.pollInterval = pollInterval
        self.smtpTimeout = smtpTimeout
        self.webhookTimeout = webhookTimeout
        self.mailDirectory = mailDirectory
    }

    /// Whether email can be sent at all (a relay, or the development mail directory).
    public var sendsEmail: Bool { (relay != nil && mailFrom != nil) || mailDirectory != nil }
}
