import Delivery
import EmbeddedMigrations
import Foundation
import Postgres

/// A setting that is missing or wrong: start-up stops with one line naming it.
struct ConfigurationError: Error, CustomStringConvertible {
    let setting: String
    let problem: String

    var description: String { "\(setting): \(problem)" }
}

/// Everything `forecourt serve` needs, read from the environment and flags and checked
/// before anything starts.
public struct ServiceConfiguration: Sendable {
    public var databaseURL: String
    /// A connection string that reaches PostgreSQL without a pooler in transaction mode, for
    /// the connections that need a session of their own (`LISTEN`). `databaseURL` by default.
    public var databaseDirectURL: String
    /// Whether pool connections prepare statements under names; off behind PgBouncer in
    /// transaction mode (docs/operations.md, "Running behind PgBouncer").
    public var databaseStatementCache: Bool
    public var listenHost: String
    /// 0 picks a free port (tests); the port is reported once listening.
    public var listenPort: Int
    public var tlsCertificatePath: String
    public var tlsKeyPath: String
    /// PEM bundle of CAs whose client certificates are accepted (mutual TLS), if any.
    public var tlsClientCAPath: String?
    public var keyringPath: String
    /// The Prometheus endpoint (plain HTTP); nil when switched off.
    public var metricsHost: String?
    public var metricsPort: Int
    public var databasePoolSize: Int
    /// Open client connections; past it new ones are refused at once. The open-files limit is
    /// raised at start-up to fit (`OpenFilesLimit`).
    public var maximumConnections: Int
    public var migrationsDirectory: String?
    public var logLevel: String
    /// Whether SIGHUP re-reads the TLS files. Signals are process-wide: instances embedded in
    /// one process (tests) leave them to the process.
    public var reloadsCertificatesOnSIGHUP: Bool
    /// The notification dispatcher's settings (relay, sender, retries, webhooks).
    public var delivery: DeliverySettings

    public init(
        databaseURL: String, listenHost: String = "127.0.0.1", listenPort: Int, tlsCertificatePath: String,
        tlsKeyPath: String, tlsClientCAPath: String? = nil, keyringPath: String, metricsHost: String? = nil,
        metricsPort: Int = 0, databasePoolSize: Int = 10, migrationsDirectory: String? = nil, logLevel: String = "info",
        reloadsCertificatesOnSIGHUP: Bool = true, databaseDirectURL: String? = nil, databaseStatementCache: Bool = true,
        delivery: DeliverySettings = DeliverySettings(), maximumConnections: Int = 1024
    ) {
        self.databaseURL = databaseURL
        self.databaseDirectURL = databaseDirectURL ?? databaseURL
        self.databaseStatementCache = databaseStatementCache
        self.listenHost = listenHost
        self.listenPort = listenPort
        self.tlsCertificatePath = tlsCertificatePath
        self.tlsKeyPath = tlsKeyPath
        self.tlsClientCAPath = tlsClientCAPath
        self.keyringPath = keyringPath
        self.metricsHost = metricsHost
        self.metricsPort = metricsPort
        self.databasePoolSize = databasePoolSize
        self.maximumConnections = maximumConnections
        self.migrationsDirectory = migrationsDirectory
        self.logLevel = logLevel
        self.reloadsCertificatesOnSIGHUP = reloadsCertificatesOnSIGHUP
        self.delivery = delivery
    }

    static let defaultListen = "127.0.0.1:7443"
    static let defaultMetricsListen = "127.0.0.1:9464"

    /// Reads and checks the settings; flags (non-nil values of `overrides`) win over the environment.
    static func load(
        environment: [String: String] = ProcessInfo.processInfo.environment,
        overrides: [String: String] = [:]
    ) throws(ConfigurationError) -> ServiceConfiguration {
        func value(_ name: String) -> String? {
            if let flag = overrides[name], !flag.isEmpty { return flag }
            if let env = environment[name], !env.isEmpty { return env }
            return nil
        }
        func required(_ name: String) throws(ConfigurationError) -> String {
            guard let text = value(name) else { throw ConfigurationError(setting: name, problem: "not set") }
            return text
        }
        func readableFile(_ name: String) throws(ConfigurationError) -> String {
            let path = try required(name)
            guard FileManager.default.isReadableFile(atPath: path) else {
                throw ConfigurationError(setting: name, problem: "cannot read \(path)")
            }
            return path
        }

        let databaseURL = try required("FORECOURT_DATABASE_URL")
        let (host, port) = try hostAndPort(value("FORECOURT_LISTEN") ?? defaultListen, setting: "FORECOURT_LISTEN")
        let certificate = try readableFile("FORECOURT_TLS_CERT")
        let key = try readableFile("FORECOURT_TLS_KEY")
        var clientCA: String?
        if value("FORECOURT_TLS_CLIENT_CA") != nil { clientCA = try readableFile("FORECOURT_TLS_CLIENT_CA") }
        let keyring = try readableFile("FORECOURT_KEYRING")
        let metrics = value("FORECOURT_METRICS_LISTEN") ?? defaultMetricsListen
        var metricsHost: String?
        var metricsPort = 0
        if metrics != "off" {
            (metricsHost, metricsPort) = try hostAndPort(metrics, setting: "FORECOURT_METRICS_LISTEN")
        }
        let poolText = value("FORECOURT_DB_POOL_SIZE") ?? "10"
        guard let poolSize = Int(poolText), (1...500).contains(poolSize) else {
            throw ConfigurationError(setting: "FORECOURT_DB_POOL_SIZE", problem: "must be a number from 1 to 500")
        }
        let connectionsText = value("FORECOURT_MAX_CONNECTIONS") ?? "1024"
        guard let maximumConnections = Int(connectionsText), (1...1_000_000).contains(maximumConnections) else {
            throw ConfigurationError(setting: "FORECOURT_MAX_CONNECTIONS", problem: "must be a number from 1 to 1000000")
        }
        let statementCache: Bool
        switch value("FORECOURT_DB_STATEMENT_CACHE") ?? "on" {
        case "on": statementCache = true
        case "off": statementCache = false
        case let other:
            throw ConfigurationError(setting: "FORECOURT_DB_STATEMENT_CACHE", problem: "must be on or off, not \(other)")
        }
        let logLevel = value("FORECOURT_LOG_LEVEL") ?? "info"
        guard ["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(logLevel) else {
            throw ConfigurationError(setting: "FORECOURT_LOG_LEVEL", problem: "must be trace, debug, info, notice, warning, error or critical")
        }
        let migrations = try MigrationSource.directory(value("FORECOURT_MIGRATIONS_DIR"))
        let delivery = try deliverySettings(value: value, readableFile: readableFile)
        return ServiceConfiguration(
            databaseURL: databaseURL, listenHost: host, listenPort: port, tlsCertificatePath: certificate,
            tlsKeyPath: key, tlsClientCAPath: clientCA, keyringPath: keyring, metricsHost: metricsHost,
            metricsPort: metricsPort, databasePoolSize: poolSize, migrationsDirectory: migrations, logLevel: logLevel,
            databaseDirectURL: value("FORECOURT_DATABASE_DIRECT_URL"), databaseStatementCache: statementCache,
            delivery: delivery, maximumConnections: maximumConnections)
    }

    /// The delivery settings (docs/operations.md, "Notification delivery").
    static func deliverySettings(
        value: (String) -> String?, readableFile: (String) throws(ConfigurationError) -> String
    ) throws(ConfigurationError) -> DeliverySettings {
        var settings = DeliverySettings()
        if let url = value("FORECOURT_SMTP_URL") {
            do {
                settings.relay = try SMTPRelay(url: url)
            } catch {
                throw ConfigurationError(setting: "FORECOURT_SMTP_URL", problem: error.description)
            }
            guard let from = value("FORECOURT_MAIL_FROM") else {
                throw ConfigurationError(setting: "FORECOURT_MAIL_FROM", problem: "not set (required with FORECOURT_SMTP_URL)")
            }
            settings.mailFrom = from
        }
        if let from = value("FORECOURT_MAIL_FROM") {
            let parts = from.split(separator: "@", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, parts[1].contains("."),
                from.allSatisfy({ $0.isASCII && !$0.isWhitespace && !"<>\"(),;:".contains($0) })
            else {
                throw ConfigurationError(setting: "FORECOURT_MAIL_FROM", problem: "must be a plain address like orders@example.com")
            }
            settings.mailFrom = from
        }
        if value("FORECOURT_SMTP_CA") != nil { settings.relayCAPath = try readableFile("FORECOURT_SMTP_CA") }
        if value("FORECOURT_WEBHOOK_CA") != nil { settings.webhookCAPath = try readableFile("FORECOURT_WEBHOOK_CA") }
        if let text = value("FORECOURT_DELIVERY_RETRY_BASE") {
            // Fractions are allowed (tests use a few milliseconds).
            guard let base = Double(text), base.isFinite, base >= 0.001, base <= 3600 else {
                throw ConfigurationError(setting: "FORECOURT_DELIVERY_RETRY_BASE", problem: "must be seconds from 0.001 to 3600")
            }
            settings.retryBase = base
        }
        if let text = value("FORECOURT_DELIVERY_MAX_ATTEMPTS") {
            guard let attempts = Int(text), (1...100).contains(attempts) else {
                throw ConfigurationError(setting: "FORECOURT_DELIVERY_MAX_ATTEMPTS", problem: "must be a number from 1 to 100")
            }
            settings.maximumAttempts = attempts
        }
        if let text = value("FORECOURT_DELIVERY_LEASE") {
            guard let seconds = Double(text), seconds.isFinite, seconds >= 1, seconds <= 3600 else {
                throw ConfigurationError(setting: "FORECOURT_DELIVERY_LEASE", problem: "must be seconds from 1 to 3600")
            }
            settings.lease = .milliseconds(Int64(seconds * 1000))
        }
        switch value("FORECOURT_WEBHOOK_ALLOW_INSECURE") {
        case nil, "0"?: settings.allowsInsecureWebhooks = false
        case "1"?: settings.allowsInsecureWebhooks = true
        default:
            throw ConfigurationError(setting: "FORECOURT_WEBHOOK_ALLOW_INSECURE", problem: "must be 1 or unset")
        }
        return settings
    }

    /// `host:port`, `[v6]:port` (the same syntax as `forecourt call --connect`).
    static func hostAndPort(_ text: String, setting: String) throws(ConfigurationError) -> (String, Int) {
        guard let address = CallCommand.parseHostPort(text) else {
            throw ConfigurationError(setting: setting, problem: "must be host:port, not \(text)")
        }
        return address
    }
}

/// Where the migrations come from: the directory `FORECOURT_MIGRATIONS_DIR` (or `--migrations`)
/// names when it is set, else the ones embedded in this binary when it was built, so that
/// `forecourt migrate` and `serve` need no files at run time (docs/operations.md, "Migrations").
enum MigrationSource {
    /// The explicit directory, checked; nil for the embedded migrations.
    static func directory(_ explicit: String?) throws(ConfigurationError) -> String? {
        guard let explicit else { return nil }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: explicit, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ConfigurationError(setting: "FORECOURT_MIGRATIONS_DIR", problem: "\(explicit) is not a directory")
        }
        return explicit
    }

    /// The migrations of `directory`, or the embedded ones when it is nil.
    static func migrator(_ directory: String?) throws -> Migrator {
        if let directory { return try Migrator(directory: directory) }
        return try Migrator(files: EmbeddedMigrations.files)
    }
}
