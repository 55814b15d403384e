import ArgumentParser
import Delivery
import Events
import FieldCrypto
import ForecourtCore
import Foundation
import Logging
import Metrics
import NIOCore
import NIOPosix
import Notifications
import Orders
import Postgres
import Prometheus
import RPC
import Server
import ServiceLifecycle
import Storage

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the JSON-RPC endpoint, configured by the environment and flags.",
        discussion: """
            Settings: FORECOURT_DATABASE_URL, FORECOURT_LISTEN (host:port, default 127.0.0.1:7443), \
            FORECOURT_TLS_CERT, FORECOURT_TLS_KEY, FORECOURT_KEYRING, and optionally \
            FORECOURT_TLS_CLIENT_CA, FORECOURT_METRICS_LISTEN (default 127.0.0.1:9464, "off"), \
            FORECOURT_MAX_CONNECTIONS (1024), FORECOURT_DB_POOL_SIZE (10), FORECOURT_DB_STATEMENT_CACHE (on; off behind PgBouncer in transaction \
            mode), FORECOURT_DATABASE_DIRECT_URL (for LISTEN; FORECOURT_DATABASE_URL by default), \
            FORECOURT_LOG_LEVEL (info), FORECOURT_MIGRATIONS_DIR; notification delivery: FORECOURT_SMTP_URL, \
            FORECOURT_SMTP_CA, FORECOURT_MAIL_FROM, FORECOURT_DELIVERY_RETRY_BASE (30), \
            FORECOURT_DELIVERY_MAX_ATTEMPTS (8), FORECOURT_DELIVERY_LEASE (300), FORECOURT_WEBHOOK_ALLOW_INSECURE, \
            FORECOURT_WEBHOOK_CA.
            """)

    @Option(help: "host:port to listen on (FORECOURT_LISTEN).") var listen: String?
    @Option(name: .customLong("database-url"), help: "FORECOURT_DATABASE_URL") var databaseURL: String?
    @Option(name: .customLong("tls-cert"), help: "FORECOURT_TLS_CERT") var tlsCertificate: String?
    @Option(name: .customLong("tls-key"), help: "FORECOURT_TLS_KEY") var tlsKey: String?
    @Option(help: "FORECOURT_KEYRING") var keyring: String?
    @Option(name: .customLong("metrics-listen"), help: "FORECOURT_METRICS_LISTEN") var metricsListen: String?

    func run() async throws {
        let overrides = [
            "FORECOURT_LISTEN": listen, "FORECOURT_DATABASE_URL": databaseURL, "FORECOURT_TLS_CERT": tlsCertificate,
            "FORECOURT_TLS_KEY": tlsKey, "FORECOURT_KEYRING": keyring, "FORECOURT_METRICS_LISTEN": metricsListen,
        ].compactMapValues { $0 }
        let configuration: ServiceConfiguration
        do {
            configuration = try ServiceConfiguration.load(overrides: overrides)
        } catch {
            printError("forecourt serve: \(error)")
            throw ExitCode(78)  // EX_CONFIG
        }
        try await ServiceRunner.bootstrapAndRun(configuration)
    }
}

/// Wires the service together and runs it until SIGTERM or SIGINT (or until its task is cancelled).
public enum ServiceRunner {
    /// Sets up logging and metrics for the process (once), then runs.
    static func bootstrapAndRun(_ configuration: ServiceConfiguration, onListening: @escaping @Sendable (Int) -> Void = { _ in })
        async throws
    {
        let level = Logger.Level(rawValue: configuration.logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        do {
            try await run(configuration, metrics: registry, onListening: onListening)
        } catch let error as StartupError {
            printError("forecourt: \(error)")
            throw ExitCode(78)
        }
    }

    /// A start-up failure that names its setting.
    struct StartupError: Error, CustomStringConvertible {
        let description: String
    }

    /// Runs one instance of the service; `onListening` gets the TLS port once it listens.
    public static func run(
        _ configuration: ServiceConfiguration,
        metrics: PrometheusCollectorRegistry?,
        onListening: @escaping @Sendable (Int) -> Void
    ) async throws {
        let logger = Logger(label: "forecourt")
        let keyring: Keyring
        do {
            keyring = try Keyring.load(path: configuration.keyringPath)
        } catch {
            throw StartupError(description: "FORECOURT_KEYRING: \(error)")
        }
        let cipher = FieldCipher(keyring: keyring)
        // Every client connection is a file descriptor: the limit fits the setting before anything
        // opens, or start-up stops naming both numbers.
        do {
            let needed = OpenFilesLimit.needed(
                maximumConnections: configuration.maximumConnections, poolSize: configuration.databasePoolSize)
            if let (before, after) = try OpenFilesLimit.ensure(maximumConnections: configuration.maximumConnections, needed: needed) {
                logger.info(
                    "raised the open-files limit to fit FORECOURT_MAX_CONNECTIONS",
                    metadata: ["limit.before": "\(before)", "limit.after": "\(after)"])
            }
        } catch {
            throw StartupError(description: error.description)
        }
        // libpq blocks: off the cooperative threads.
        try await NIOThreadPool.singleton.runIfActive {
            try checkDatabase(
                url: configuration.databaseURL, statementCache: configuration.databaseStatementCache,
                migrationsDirectory: configuration.migrationsDirectory)
        }

        // Connections open on first use, and the service group closes them last, after the
        // services that use them have stopped.
        let pool = PostgresPool(
            configuration: AppDatabase.poolConfiguration(
                connectionString: configuration.databaseURL, maximumConnections: configuration.databasePoolSize,
                statementCache: configuration.databaseStatementCache),
            logger: Logger(label: "forecourt.postgres"))
        let database = AppDatabase(pool: pool, logger: Logger(label: "forecourt.storage"))

        let wiring = ServiceWiring(
            database: database, cipher: cipher, allowsInsecureWebhooks: configuration.delivery.allowsInsecureWebhooks)
        let dispatcher = wiring.dispatcher(logger: Logger(label: "forecourt.rpc"))
        let delivery: DeliveryService
        do {
            delivery = try DeliveryService(database: database, cipher: cipher, settings: configuration.delivery)
        } catch {
            throw StartupError(description: "\(error)")
        }
        // One LISTEN connection per instance feeds every events.subscribe session of it and wakes
        // its notification dispatcher. LISTEN needs a session of its own: the direct URL, which
        // bypasses a pooler in transaction mode.
        let listener = PostgresListener(
            connectionString: configuration.databaseDirectURL,
            channels: [OrderService.notifyChannel, NotificationOutbox.notifyChannel],
            connectionSetup: AppDatabase.connectionSetup)

        let server: RPCServer
        do {
            server = try RPCServer(
                configuration: ServerConfiguration(
                    host: configuration.listenHost, port: configuration.listenPort,
                    certificatePath: configuration.tlsCertificatePath, privateKeyPath: configuration.tlsKeyPath,
                    clientCAPath: configuration.tlsClientCAPath, maximumConnections: configuration.maximumConnections),
                dispatcher: dispatcher, logger: Logger(label: "forecourt.server"))
        } catch {
            throw StartupError(description: "FORECOURT_TLS_CERT/FORECOURT_TLS_KEY: \(error)")
        }
        // Shut down in reverse order: the listener and the server drain first, the pool last.
        var services: [any Service] = [
            pool, server, EventListenerService(hub: wiring.events, listener: listener, delivery: delivery),
            MaintenanceService(database: database, logger: Logger(label: "forecourt.maintenance")),
            RevocationWatcher(identity: wiring.identity, logger: Logger(label: "forecourt.identity")),
            // Stops first: finishes the message in flight and gives back its claims while the
            // pool is still there.
            delivery,
        ]
        if configuration.reloadsCertificatesOnSIGHUP {
            services.append(CertificateReloader(server: server, logger: Logger(label: "forecourt.server")))
        }
        // Both addresses are bound before anything runs: one in use stops start-up with one line
        // naming its setting and the address (docs/operations.md).
        do {
            try await server.bind()
        } catch {
            throw StartupError(description: "FORECOURT_LISTEN: \(error)")
        }
        if let host = configuration.metricsHost, let metrics {
            let endpoint = MetricsHTTPServer(
                host: host, port: configuration.metricsPort, logger: Logger(label: "forecourt.metrics")
            ) { metrics.emitToString() }
            do {
                try await endpoint.bind()
            } catch {
                server.shutdownGracefully()
                try? await server.run()
                throw StartupError(description: "FORECOURT_METRICS_LISTEN: \(error)")
            }
            services.append(endpoint)
        }
        let group = ServiceGroup(
            services: services, gracefulShutdownSignals: [.sigterm, .sigint], cancellationSignals: [], logger: logger)
        let announcer = Task {
            if let port = try? await server.listeningPort() {
                logger.info("serving JSON-RPC over TLS", metadata: ["listen": "\(configuration.listenHost):\(port)"])
                onListening(port)
            }
        }
        defer { announcer.cancel() }
        try await group.run()
    }

    /// Refuses to serve a database that cannot be reached, whose login role cannot act as
    /// `forecourt_app`, or that has pending migrations. One connection, closed at once, in a
    /// transaction like every one of the service's (role and settings in its first round trip).
    static func checkDatabase(url: String, statementCache: Bool, migrationsDirectory: String?) throws {
        let migrator: Migrator
        do {
            migrator = try MigrationSource.migrator(migrationsDirectory)
        } catch {
            throw StartupError(description: "FORECOURT_MIGRATIONS_DIR: \(error)")
        }
        let pending: [Migrator.Status.Entry]
        let roleProblem: String?
        do {
            let connection = try PostgresConnection(connectionString: url, preparesStatements: statementCache)
            defer { connection.close() }
            let start = TransactionStart(readOnly: true, role: AppDatabase.role, settings: AppDatabase.transactionSettings)
            (pending, roleProblem) = try connection.transaction(start) {
                (try migrator.status(on: $0).pending, try AppRole.check($0))
            }
        } catch let error as PostgresError where error.kind == .insufficientPrivilege {
            throw StartupError(
                description: "FORECOURT_DATABASE_URL: the login role cannot act as \(AppDatabase.role) (GRANT \(AppDatabase.role) TO it)")
        } catch let error as PostgresError {
            throw StartupError(description: "FORECOURT_DATABASE_URL: cannot use the database (\(error.kind.rawValue))")
        } catch {
            throw StartupError(description: "FORECOURT_DATABASE_URL: \(error)")
        }
        if !pending.isEmpty {
            throw StartupError(
                description: "FORECOURT_DATABASE_URL: the database has \(pending.count) pending migration(s); run forecourt migrate")
        }
        if let roleProblem { throw StartupError(description: "FORECOURT_DATABASE_URL: \(roleProblem)") }
    }
}

/// The instance's `LISTEN` connection, the event hub it feeds and the dispatcher it wakes, as
/// one long-running service.
struct EventListenerService: Service {
    let hub: EventHub
    let listener: PostgresListener
    let delivery: DeliveryService

    func run() async throws {
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask { await listener.run() }
                group.addTask {
                    for await message in listener.messages {
                        switch message {
                        case .notification(NotificationOutbox.notifyChannel, _):
                            delivery.wake()
                        case .reconnected:
                            // A NOTIFY may have been missed while the connection was away.
                            delivery.wake()
                            await hub.handle(message)
                        case .notification:
                            await hub.handle(message)
                        }
                    }
                }
            }
        }
    }
}
