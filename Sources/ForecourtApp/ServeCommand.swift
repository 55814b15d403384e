import ArgumentParser
import Delivery
import Events
import FieldCrypto
import ForecourtCore
import Foundation
import Logging
import Metrics
import NIOCore
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
            FORECOURT_DB_POOL_SIZE (10), FORECOURT_LOG_LEVEL (info), FORECOURT_MIGRATIONS_DIR; \
            notification delivery: FORECOURT_SMTP_URL, FORECOURT_SMTP_CA, FORECOURT_MAIL_FROM, \
            FORECOURT_DELIVERY_RETRY_BASE (30), FORECOURT_DELIVERY_MAX_ATTEMPTS (8), FORECOURT_DELIVERY_LEASE (300), \
            FORECOURT_WEBHOOK_ALLOW_INSECURE, FORECOURT_WEBHOOK_CA.
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

        let pool = PostgresPool(
            configuration: .init(
                connectionString: configuration.databaseURL, maximumConnections: configuration.databasePoolSize,
                connectionSetup: AppDatabase.connectionSetup),
            logger: Logger(label: "forecourt.postgres"))
        do {
            try await checkSchema(pool, migrationsDirectory: configuration.migrationsDirectory)
        } catch {
            await pool.shutdown()
            throw error
        }
        let database = AppDatabase(pool: pool, logger: Logger(label: "forecourt.storage"))

        let wiring = ServiceWiring(
            database: database, cipher: cipher, allowsInsecureWebhooks: configuration.delivery.allowsInsecureWebhooks)
        let dispatcher = wiring.dispatcher(logger: Logger(label: "forecourt.rpc"))
        let delivery: DeliveryService
        do {
            delivery = try DeliveryService(database: database, cipher: cipher, settings: configuration.delivery)
        } catch {
            await pool.shutdown()
            throw StartupError(description: "\(error)")
        }
        // One LISTEN connection per instance feeds every events.subscribe session of it, and
        // wakes its notification dispatcher.
        let listener = PostgresListener(
            connectionString: configuration.databaseURL,
            channels: [OrderService.notifyChannel, NotificationOutbox.notifyChannel],
            connectionSetup: AppDatabase.connectionSetup)

        let server: RPCServer
        do {
            server = try RPCServer(
                configuration: ServerConfiguration(
                    host: configuration.listenHost, port: configuration.listenPort,
                    certificatePath: configuration.tlsCertificatePath, privateKeyPath: configuration.tlsKeyPath,
                    clientCAPath: configuration.tlsClientCAPath),
                dispatcher: dispatcher, logger: Logger(label: "forecourt.server"))
        } catch {
            await pool.shutdown()
            throw StartupError(description: "FORECOURT_TLS_CERT/FORECOURT_TLS_KEY: \(error)")
        }
        var services: [any Service] = [
            server, PoolMetrics(pool: pool), EventListenerService(hub: wiring.events, listener: listener, delivery: delivery),
            delivery,
        ]
        if configuration.reloadsCertificatesOnSIGHUP {
            services.append(CertificateReloader(server: server, logger: Logger(label: "forecourt.server")))
        }
        if let host = configuration.metricsHost, let metrics {
            services.append(
                MetricsHTTPServer(host: host, port: configuration.metricsPort, logger: Logger(label: "forecourt.metrics")) {
                    metrics.emitToString()
                })
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
        do {
            try await group.run()
        } catch {
            await pool.shutdown()
            throw error
        }
        await pool.shutdown()
    }

    /// Refuses to serve a database that cannot be reached or has pending migrations.
    static func checkSchema(_ pool: PostgresPool, migrationsDirectory: String) async throws {
        let migrator: Migrator
        do {
            migrator = try Migrator(directory: migrationsDirectory)
        } catch {
            throw StartupError(description: "FORECOURT_MIGRATIONS_DIR: \(error)")
        }
        let pending: [Migrator.Status.Entry]
        do {
            pending = try await pool.withConnection { try migrator.status(on: $0).pending }
        } catch let error as PostgresError {
            throw StartupError(description: "FORECOURT_DATABASE_URL: cannot use the database (\(error.kind.rawValue))")
        } catch {
            throw StartupError(description: "FORECOURT_DATABASE_URL: \(error)")
        }
        if !pending.isEmpty {
            throw StartupError(
                description: "FORECOURT_DATABASE_URL: the database has \(pending.count) pending migration(s); run forecourt migrate")
        }
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

/// Publishes the database pool's usage as gauges, every few seconds.
struct PoolMetrics: Service {
    let pool: PostgresPool

    func run() async throws {
        let open = Gauge(label: "forecourt_db_connections_open")
        let idle = Gauge(label: "forecourt_db_connections_idle")
        let waiting = Gauge(label: "forecourt_db_pool_waiting")
        try? await cancelWhenGracefulShutdown {
            while true {
                let statistics = pool.statistics
                open.record(statistics.open)
                idle.record(statistics.idle)
                waiting.record(statistics.waiting)
                try await Task.sleep(for: .seconds(5))
            }
        }
    }
}
