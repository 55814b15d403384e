import ArgumentParser
import Audit
import Dealers
import ForecourtCore
import Foundation
import Identity
import NIOSSL
import Postgres
import Server
import RPC
import Storage

/// Options shared by the commands that talk to the database as the operator (the owner).
struct DatabaseOptions: ParsableArguments {
    @Option(name: .customLong("database-url"), help: "libpq connection string or URI (default: $FORECOURT_DATABASE_URL).")
    var databaseURL: String?

    /// Connects with the connection string as given (no `SET ROLE`): operator commands are the owner's.
    func connect() throws -> PostgresConnection {
        guard let url = databaseURL ?? ProcessInfo.processInfo.environment["FORECOURT_DATABASE_URL"], !url.isEmpty else {
            throw ValidationError("FORECOURT_DATABASE_URL: not set (or pass --database-url)")
        }
        do {
            return try PostgresConnection(connectionString: url)
        } catch {
            throw ValidationError("FORECOURT_DATABASE_URL: cannot connect to the database")
        }
    }
}

/// Prints a line to standard error.
func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

struct MigrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate", abstract: "Apply pending database migrations (--status lists them).")

    @OptionGroup var database: DatabaseOptions

    @Flag(help: "List applied and pending migrations; change nothing.")
    var status = false

    @Option(help: "Directory of the migration files (default: $FORECOURT_MIGRATIONS_DIR, else those built into forecourt).")
    var migrations: String?

    func run() throws {
        let directory = try MigrationSource.directory(migrations ?? ProcessInfo.processInfo.environment["FORECOURT_MIGRATIONS_DIR"])
        let migrator = try MigrationSource.migrator(directory)
        let connection = try database.connect()
        defer { connection.close() }
        if status {
            for entry in try migrator.status(on: connection).entries {
                let state = entry.appliedAt.map { "applied \(RFC3339.format($0))" } ?? "pending"
                print(String(format: "%04d", entry.version) + "_\(entry.name).sql  \(state)")
            }
            return
        }
        let applied = try migrator.migrate(on: connection) { migration in
            print("applied " + String(format: "%04d", migration.version) + "_\(migration.name).sql")
        }
        if applied.isEmpty { print("the database is up to date") }
        // A forecourt_app that existed before 0001 was accepted as it was: check it every time.
        if let problem = try AppRole.check(connection) {
            printError("forecourt migrate: \(problem)")
            throw ExitCode(1)
        }
    }
}

struct GroupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "group", abstract: "Manage dealer groups.", subcommands: [Create.self])

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a dealer group and print its id.")

        @OptionGroup var database: DatabaseOptions

        @Argument(help: "The group's name.")
        var name: String

        @Flag(help: "Print a JSON object.")
        var json = false

        func validate() throws {
            guard (1...200).contains(name.count) else { throw ValidationError("NAME must have 1 to 200 characters") }
        }

        func run() throws {
            let connection = try database.connect()
            defer { connection.close() }
            let id = try DealerGroups.create(on: connection, name: name)
            if json {
                printJSON(["id": id.json, "name": .string(name)])
            } else {
                print(id.uuidString.lowercased())
            }
        }
    }
}

struct KeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "key", abstract: "Manage API keys.", subcommands: [Create.self, List.self, Revoke.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List API keys (never their secrets), of every group or of one.",
            discussion: "Keys with no group (factory, and portal keys for every group) are listed without --group.")

        @OptionGroup var database: DatabaseOptions

        @Option(help: "Only the keys of this dealer group.")
        var group: String?

        @Flag(help: "One JSON object per key, one per line.")
        var json = false

        func run() throws {
            let connection = try database.connect()
            defer { connection.close() }
            for line in try lines(connection) { print(line) }
        }

        /// The output: a header and one tab-separated line per key, oldest first, or JSON lines.
        func lines(_ connection: PostgresConnection) throws -> [String] {
            let groupID = try group.map { text -> UUID in
                guard let id = UUID(uuidString: text) else { throw ValidationError("--group: not a UUID") }
                return id
            }
            let records = try KeyRecord.all(connection, group: groupID)
            if json { return records.map { JSONWriter.string($0.json) } }
            func text(_ id: UUID?) -> String { id?.uuidString.lowercased() ?? "-" }
            return ["id\trole\tgroup\tdealer\tprefix\tcreated_at\trevoked_at\tlabel"]
                + records.map { record in
                    [
                        text(record.id), record.role.rawValue, text(record.dealerGroupID), text(record.dealerID),
                        record.prefix, RFC3339.format(record.createdAt), record.revokedAt.map(RFC3339.format) ?? "-",
                        record.label,
                    ].joined(separator: "\t")
                }
        }
    }

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke an API key, of any group or of none.",
            discussion: """
                New sessions fail at once; open sessions, their subscriptions included, within 5 seconds. \
                Revoking a revoked key changes nothing.
                """)

        @OptionGroup var database: DatabaseOptions

        @Argument(help: "The key's id (forecourt key list).")
        var id: String

        func run() throws {
            guard let keyID = UUID(uuidString: id) else { throw ValidationError("ID: not a UUID") }
            let connection = try database.connect()
            defer { connection.close() }
            guard let (record, changed) = try KeyRecord.revoke(connection, id: keyID) else {
                throw ValidationError("ID: no such key")
            }
            let what = "\(record.role.rawValue) key \(record.id.uuidString.lowercased()) (\(record.label))"
            print(changed ? "revoked \(what)" : "\(what) was already revoked")
        }
    }

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create an API key and print it once, alone on the last line.",
            discussion: "factory keys, and portal keys for every group, take no --group.")

        @OptionGroup var database: DatabaseOptions

        @Option(help: "group_admin, dealer_manager, sales, crm_sync, auditor, factory or portal.")
        var role: String

        @Option(help: "The dealer group's id.")
        var group: String?

        @Option(help: "The dealer's id (dealer_manager and sales keys).")
        var dealer: String?

        @Option(help: "A label to tell the key apart.")
        var label: String

        @Option(
            name: .customLong("client-certificate"),
            help: "A client certificate (PEM) that authenticates as this principal over mutual TLS, instead of a secret key.")
        var clientCertificate: String?

        @Flag(help: "Print a JSON object with api_key.")
        var json = false

        func run() throws {
            guard let role = Role(rawValue: role) else { throw ValidationError("--role: unknown role \(self.role)") }
            let groupID = try group.map { text -> UUID in
                guard let id = UUID(uuidString: text) else { throw ValidationError("--group: not a UUID") }
                return id
            }
            let dealerID = try dealer.map { text -> UUID in
                guard let id = UUID(uuidString: text) else { throw ValidationError("--dealer: not a UUID") }
                return id
            }
            do {
                try KeyRecord.validate(role: role, group: groupID, dealer: dealerID, label: label)
            } catch {
                throw ValidationError(error.optionName + ": " + error.message)
            }
            // A client certificate is registered under the SHA-256 of its DER form, which is what
            // the server computes for the certificate a client presents.
            var certificateHash: [UInt8]?
            if let clientCertificate {
                guard let certificate = try? NIOSSLCertificate.fromPEMFile(clientCertificate).first else {
                    throw ValidationError("--client-certificate: cannot read a PEM certificate from \(clientCertificate)")
                }
                certificateHash = ClientCertificate.fingerprint(der: try certificate.toDERBytes())
            }
            let connection = try database.connect()
            defer { connection.close() }
            let key = APIKey.generate()
            let keyHash = certificateHash ?? key.hash
            let prefix = certificateHash.map { "cert:" + $0.prefix(4).hexString } ?? key.prefix
            let record = try connection.transaction { connection -> KeyRecord in
                if let groupID {
                    guard try connection.query("SELECT 1 FROM forecourt.dealer_groups WHERE id = \(groupID)").count == 1 else {
                        throw ValidationError("--group: no such dealer group")
                    }
                }
                do {
                    return try KeyRecord.create(
                        connection, role: role, group: groupID, dealer: dealerID, label: label, keyHash: keyHash,
                        prefix: prefix, createdBy: nil)
                } catch let error as KeyRequestError {
                    throw ValidationError(error.optionName + ": " + error.message)
                }
            }
            if certificateHash != nil {
                if json {
                    printJSON(record.json)
                } else {
                    print("registered the client certificate as \(role.rawValue) principal \(record.id.uuidString.lowercased()) (\(label))")
                }
                return
            }
            if json {
                guard case .object(var object) = record.json else { return }
                object.members.append((key: "api_key", value: .string(key.secret)))
                printJSON(.object(object))
            } else {
                print("created \(role.rawValue) key \(record.id.uuidString.lowercased()) (\(label)); it is shown only once:")
                print(key.secret)
            }
        }
    }
}

extension KeyRequestError {
    /// The command line's name for the parameter.
    var optionName: String {
        switch parameter {
        case .group: "--group"
        case .dealer: "--dealer"
        case .label: "--label"
        }
    }
}

/// Prints a JSON value on one line.
func printJSON(_ value: JSON) {
    print(JSONWriter.string(value))
}
