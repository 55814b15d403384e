import ArgumentParser
import Audit
import Dealers
import FieldCrypto
import ForecourtCore
import Foundation
import Identity
import Postgres
import RPC
import Storage

/// `forecourt dev`: everything on one machine with no setup.
///
/// First run: a private PostgreSQL cluster under `.forecourt/`, migrations, a development
/// CA and server certificate, a keyring, a demo dealer group with two dealers and keys.
/// Later runs reuse all of it and start in seconds. Ctrl-C stops the service, then the cluster.
struct DevCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dev",
        abstract: "Run the service with a private PostgreSQL, a dev TLS certificate, a keyring and demo data.")

    @Option(help: "Where the cluster, certificates, keyring and demo keys live.")
    var stateDirectory = ".forecourt"

    @Option(help: "host:port to listen on.")
    var listen = ServiceConfiguration.defaultListen

    @Option(name: .customLong("metrics-listen"), help: "host:port of the Prometheus endpoint, or off.")
    var metricsListen = ServiceConfiguration.defaultMetricsListen

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error.")
    var logLevel = "info"

    @Flag(help: "Start over: drop the demo database and its keys, then seed the demo again.")
    var reset = false

    static let database = "forecourt"
    /// The login role the service connects as: a member of forecourt_app, nothing more.
    static let serviceRole = "forecourt_service"

    func run() async throws {
        let state = URL(fileURLWithPath: stateDirectory).standardizedFileURL.path
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        let cluster = try DevCluster.prepare(stateDirectory: state)
        if !cluster.isInitialized {
            say("creating a private PostgreSQL cluster in \(cluster.directory) ...")
            try cluster.initialize()
        }
        if !cluster.isRunning {
            try cluster.start()
        }
        do {
            try await serve(state: state, cluster: cluster)
        } catch {
            try? cluster.stop()
            throw error
        }
        say("stopping PostgreSQL ...")
        try cluster.stop()
    }

    private func serve(state: String, cluster: DevCluster) async throws {
        let owner = cluster.connectionString(database: Self.database, user: "postgres")
        let keysFile = state + "/dev-keys.json"
        if reset {
            say("dropping the demo database ...")
            let admin = try PostgresConnection(connectionString: cluster.connectionString(database: "postgres", user: "postgres"))
            defer { admin.close() }
            try admin.execute(unsafeSQL: "DROP DATABASE IF EXISTS \(Self.database) WITH (FORCE)")
            try? FileManager.default.removeItem(atPath: keysFile)
        }
        try prepareDatabase(cluster: cluster)
        let migrations = try MigrationSource.directory(ProcessInfo.processInfo.environment["FORECOURT_MIGRATIONS_DIR"])
        do {
            let connection = try PostgresConnection(connectionString: owner)
            defer { connection.close() }
            try MigrationSource.migrator(migrations).migrate(on: connection) { migration in
                say("applied migration " + String(format: "%04d", migration.version) + "_\(migration.name).sql")
            }
            try connection.execute(
                unsafeSQL: """
                    DO $$ BEGIN
                        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '\(Self.serviceRole)') THEN
                            CREATE ROLE \(Self.serviceRole) LOGIN;
                        END IF;
                    END $$;
                    GRANT forecourt_app TO \(Self.serviceRole);
                    """)
        }

        let tls = try DevCertificates.ensure(in: state + "/tls")
        let keyringPath = state + "/keyring.json"
        if !FileManager.default.fileExists(atPath: keyringPath) {
            try Keyring.generate().createNew(at: keyringPath)
        }
        var keys = try DemoData.ensure(connectionString: owner, keysFile: keysFile)
        if keys.story == nil {
            say("seeding the demo group (customers, orders in every stage, delivered history) ...")
            keys = try await DemoData.seedStory(
                keys, keysFile: keysFile, owner: owner,
                service: cluster.connectionString(database: Self.database, user: Self.serviceRole),
                keyring: try Keyring.load(path: keyringPath))
        }

        var overrides = [
            "FORECOURT_DATABASE_URL": cluster.connectionString(database: Self.database, user: Self.serviceRole),
            "FORECOURT_LISTEN": listen, "FORECOURT_TLS_CERT": tls.certificate, "FORECOURT_TLS_KEY": tls.privateKey,
            "FORECOURT_KEYRING": keyringPath, "FORECOURT_METRICS_LISTEN": metricsListen, "FORECOURT_LOG_LEVEL": logLevel,
        ]
        overrides["FORECOURT_MIGRATIONS_DIR"] = migrations
        // Delivery settings pass through from the environment (a real relay, if the developer
        // has one); without a relay, emails are written to .forecourt/mail/ instead.
        let passThrough = [
            "FORECOURT_SMTP_URL", "FORECOURT_SMTP_CA", "FORECOURT_MAIL_FROM", "FORECOURT_DELIVERY_RETRY_BASE",
            "FORECOURT_DELIVERY_MAX_ATTEMPTS", "FORECOURT_WEBHOOK_ALLOW_INSECURE", "FORECOURT_WEBHOOK_CA",
        ]
        var configuration = try ServiceConfiguration.load(
            environment: ProcessInfo.processInfo.environment.filter { passThrough.contains($0.key) }, overrides: overrides)
        var mail = configuration.delivery.relay.map { "\($0.host):\($0.port) (FORECOURT_SMTP_URL)" } ?? ""
        if configuration.delivery.relay == nil {
            configuration.delivery.mailDirectory = state + "/mail"
            configuration.delivery.mailFrom = configuration.delivery.mailFrom ?? "orders@forecourt.test"
            mail = state + "/mail/ (one .eml file per email; set FORECOURT_SMTP_URL to use a relay)"
        }
        let ca = tls.ca
        let listen = self.listen
        let demo = keys
        let mailText = mail
        try await ServiceRunner.bootstrapAndRun(configuration) { _ in
            DemoData.printWelcome(keys: demo, listen: listen, ca: ca, mail: mailText)
        }
    }

    /// Creates the database if it is missing.
    private func prepareDatabase(cluster: DevCluster) throws {
        let admin = try PostgresConnection(connectionString: cluster.connectionString(database: "postgres", user: "postgres"))
        defer { admin.close() }
        if try admin.query("SELECT 1 FROM pg_database WHERE datname = \(Self.database)").count == 0 {
            try admin.execute(unsafeSQL: "CREATE DATABASE \(Self.database)")
        }
    }
}

/// Prints a line at once: the service's log lines go to standard error, and both must stay in order.
func say(_ text: String) {
    print(text)
    fflush(nil)
}

/// The demo dealer group and its keys, made once and remembered in `.forecourt/dev-keys.json`
/// (mode 0600) so that every run can print them again.
enum DemoData {
    struct Key: Codable {
        let role: String
        let label: String
        let dealer: String?
        let apiKey: String
    }

    struct Keys: Codable {
        let groupID: String
        let dealers: [String: String]
        let keys: [Key]
        /// Set once the story is seeded (a keys file without it is from before the story).
        var story: DemoStory.Highlights?
    }

    /// Seeds the story once, through a pool acting as the service, and remembers it in the keys
    /// file. A failure leaves no keys file, so the next run starts a new demo group.
    static func seedStory(_ keys: Keys, keysFile: String, owner: String, service: String, keyring: Keyring) async throws -> Keys {
        let pool = PostgresPool(
            configuration: AppDatabase.poolConfiguration(connectionString: service, maximumConnections: 2, statementCache: true))
        let ownerConnection = try PostgresConnection(connectionString: owner)
        var seeded = keys
        do {
            seeded.story = try await DemoStory.seed(
                database: AppDatabase(pool: pool), cipher: FieldCipher(keyring: keyring), owner: ownerConnection, keys: keys)
            ownerConnection.close()
            await pool.shutdown()
        } catch {
            ownerConnection.close()
            await pool.shutdown()
            try? FileManager.default.removeItem(atPath: keysFile)
            throw DevCluster.Failure(description: "the demo could not be seeded (\(error)); run forecourt dev --reset")
        }
        try FileManager.default.removeItem(atPath: keysFile)
        guard FileManager.default.createFile(
            atPath: keysFile, contents: try JSONEncoder().encode(seeded), attributes: [.posixPermissions: 0o600])
        else { throw DevCluster.Failure(description: "cannot write \(keysFile)") }
        return seeded
    }

    static func ensure(connectionString: String, keysFile: String) throws -> Keys {
        if let data = FileManager.default.contents(atPath: keysFile), let keys = try? JSONDecoder().decode(Keys.self, from: data) {
            return keys
        }
        let connection = try PostgresConnection(connectionString: connectionString)
        defer { connection.close() }
        do {
            return try connection.transaction { connection -> Keys in
                try makeDemoGroup(connection, keysFile: keysFile)
            }
        } catch {
            try? FileManager.default.removeItem(atPath: keysFile)
            throw error
        }
    }

    /// The group, its dealers and keys, and the keys file, in the caller's transaction.
    private static func makeDemoGroup(_ connection: PostgresConnection, keysFile: String) throws -> Keys {
        let group = try DealerGroups.create(on: connection, name: "Demo Motor Group")
        // Dealer codes are unique across the service: a second demo group (keys file lost) gets new ones.
        let suffix = try connection.query("SELECT count(*) FROM forecourt.dealer_groups").first!.decode(0, as: Int.self)
        var dealers: [String: UUID] = [:]
        for (code, name) in [("DEMO\(suffix)N", "Northside Motors"), ("DEMO\(suffix)H", "Harbour Cars")] {
            let id = UUID()
            try connection.query(
                "INSERT INTO forecourt.dealers (dealer_group_id, id, code, name, region, timezone) VALUES (\(group), \(id), \(code), \(name), 'North', 'Europe/London')"
            )
            dealers[code] = id
        }
        let codes = dealers.keys.sorted()
        var made: [Key] = []
        func make(_ role: Role, _ label: String, dealer code: String?, group groupID: UUID?) throws {
            let key = APIKey.generate()
            _ = try KeyRecord.insert(
                connection, role: role, group: groupID, dealer: code.flatMap { dealers[$0] }, label: label,
                keyHash: key.hash, prefix: key.prefix, createdBy: nil)
            made.append(Key(role: role.rawValue, label: label, dealer: code, apiKey: key.secret))
        }
        try make(.groupAdmin, "demo group admin", dealer: nil, group: group)
        try make(.dealerManager, "demo manager \(codes[0])", dealer: codes[0], group: group)
        try make(.sales, "demo sales \(codes[0])", dealer: codes[0], group: group)
        try make(.dealerManager, "demo manager \(codes[1])", dealer: codes[1], group: group)
        try make(.crmSync, "demo CRM sync", dealer: nil, group: group)
        try make(.auditor, "demo auditor", dealer: nil, group: group)
        try make(.factory, "demo factory feed", dealer: nil, group: nil)
        try make(.portal, "demo customer portal", dealer: nil, group: group)
        let keys = Keys(
            groupID: group.uuidString.lowercased(), dealers: dealers.mapValues { $0.uuidString.lowercased() }, keys: made)
        let data = try JSONEncoder().encode(keys)
        // Written before COMMIT: if it fails, nothing is committed and the next run starts over.
        guard FileManager.default.createFile(atPath: keysFile, contents: data, attributes: [.posixPermissions: 0o600]) else {
            throw DevCluster.Failure(description: "cannot write \(keysFile)")
        }
        return keys
    }

    static func printWelcome(keys: Keys, listen: String, ca: String, mail: String) {
        var lines = [
            "",
            "Forecourt is serving on \(listen) (TLS, CA certificate \(ca)).",
            "Demo dealer group \(keys.groupID), dealers: "
                + keys.dealers.sorted(by: { $0.key < $1.key }).map { "\($0.key) \($0.value)" }.joined(separator: ", "),
            "API keys (also in .forecourt/dev-keys.json):",
        ]
        for key in keys.keys {
            lines.append("  \(key.role.padding(toLength: 15, withPad: " ", startingAt: 0)) \(key.apiKey)  \(key.label)")
        }
        let admin = keys.keys.first { $0.role == Role.groupAdmin.rawValue }?.apiKey ?? "KEY"
        let portal = keys.keys.first { $0.role == Role.portal.rawValue }?.apiKey ?? "KEY"
        let call = ".build/debug/forecourt call --connect \(listen) --ca \(ca)"
        lines.append("Try:")
        if let story = keys.story {
            lines += [
                "  # an order's timeline: its stages, a revised ETA and the delay it caused",
                "  \(call) --key \(admin) order.timeline '{\"id\": \"\(story.timelineOrderID)\"}'",
                "  # what a customer sees on the dealer's website",
                "  \(call) --key \(portal) track.lookup '{\"vin_last8\": \"\(story.trackingVINLast8)\", \"full_name\": \"\(story.trackingName)\"}'",
                "  # the orders that are late, on hold or overdue",
                "  \(call) --key \(admin) order.list '{\"delayed\": true}'",
            ]
        } else {
            lines.append("  \(call) --key \(admin) session.whoami")
        }
        lines += [
            "Customer emails go to \(mail).",
            "forecourt dev --reset starts the demo over. Ctrl-C stops the service and PostgreSQL; the data stays for the next run.",
            "",
        ]
        say(lines.joined(separator: "\n"))
    }
}
