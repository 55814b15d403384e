import Crypto
import ForecourtCore
import Foundation

/// Applies the numbered SQL files of a directory (`0001_name.sql`, ...) in order.
///
/// Each file runs in its own transaction together with its record in
/// `public.forecourt_schema_migrations` (version, name, SHA-256 of the file). A session-level
/// advisory lock makes concurrent starts take turns: the second finds nothing left to do.
/// An applied file whose text changed, or an applied version with no file, is refused before
/// anything runs: the database and the code disagree and a person has to look.
///
/// The one exception is an amendment that changes nothing for a database that already applied
/// the file (making it safe to run concurrently, say): the amended file names the SHA-256 of
/// each earlier text in a line `-- amends checksum <hex>`, and a database that recorded one
/// of those is in order.
public struct Migrator: Sendable {
    public struct Migration: Sendable, Equatable {
        public let version: Int
        public let name: String
        public let sql: String
        public let checksum: String
        /// Checksums of earlier texts of this file that an applied record may carry.
        public let amendedChecksums: Set<String>

        public init(version: Int, name: String, sql: String, checksum: String, amendedChecksums: Set<String> = []) {
            self.version = version
            self.name = name
            self.sql = sql
            self.checksum = checksum
            self.amendedChecksums = amendedChecksums
        }

        /// The hex checksums of the `-- amends checksum <hex>` lines of `sql`.
        static func amendedChecksums(in sql: String) -> Set<String> {
            let prefix = "-- amends checksum "
            var found: Set<String> = []
            for line in sql.split(separator: "\n") where line.hasPrefix(prefix) {
                let hex = line.dropFirst(prefix.count).prefix(64)
                if hex.count == 64, hex.allSatisfy(\.isHexDigit) { found.insert(hex.lowercased()) }
            }
            return found
        }
    }

    public struct Status: Sendable {
        public struct Entry: Sendable {
            public let version: Int
            public let name: String
            /// nil while pending.
            public let appliedAt: Date?
        }

        public let entries: [Entry]
        public var pending: [Entry] { entries.filter { $0.appliedAt == nil } }
    }

    public enum Error: Swift.Error, CustomStringConvertible {
        case unreadableDirectory(String)
        case badFileName(String)
        case duplicateVersion(Int)
        case edited(version: Int, name: String)
        case unknownApplied(version: Int, name: String)

        public var description: String {
            switch self {
            case .unreadableDirectory(let path): "cannot read the migrations directory \(path)"
            case .badFileName(let name): "migration file \(name) is not named NNNN_name.sql"
            case .duplicateVersion(let version): "two migration files have version \(version)"
            case .edited(let version, let name):
                "migration \(String(format: "%04d", version))_\(name).sql was edited after it was applied (checksum differs); restore it and add a new migration instead"
            case .unknownApplied(let version, let name):
                "the database has migration \(String(format: "%04d", version))_\(name) applied, which this build does not have; use a newer build"
            }
        }
    }

    /// Key of the advisory lock taken while migrating.
    static let lockKey: Int = 0x666f_7265_636f  // "foreco"

    public let migrations: [Migration]

    public init(migrations: [Migration]) {
        self.migrations = migrations.sorted { $0.version < $1.version }
    }

    /// Reads the `.sql` files of `directory`.
    public init(directory: String) throws {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw Error.unreadableDirectory(directory)
        }
        let files = try names.filter { $0.hasSuffix(".sql") }.map { fileName -> (name: String, data: Data) in
            guard let data = FileManager.default.contents(atPath: directory + "/" + fileName) else {
                throw Error.unreadableDirectory(directory + "/" + fileName)
            }
            return (fileName, data)
        }
        try self.init(files: files)
    }

    /// Migrations from `NNNN_name.sql` files given by name and bytes (a directory's, or those
    /// embedded in the binary at build time).
    public init(files: [(name: String, data: Data)]) throws {
        var migrations: [Migration] = []
        for (fileName, data) in files.sorted(by: { $0.name < $1.name }) {
            let stem = fileName.dropLast(4)
            guard fileName.hasSuffix(".sql"), stem.count > 5, let version = Int(stem.prefix(4)),
                stem.dropFirst(4).first == "_",
                stem.dropFirst(5).allSatisfy({ $0.isLowercase || $0.isNumber || $0 == "_" })
            else { throw Error.badFileName(fileName) }
            guard let sql = String(data: data, encoding: .utf8) else { throw Error.unreadableDirectory(fileName) }
            if migrations.contains(where: { $0.version == version }) { throw Error.duplicateVersion(version) }
            migrations.append(
                Migration(
                    version: version, name: String(stem.dropFirst(5)), sql: sql,
                    checksum: SHA256.hash(data: data).hexString,
                    amendedChecksums: Migration.amendedChecksums(in: sql)))
        }
        self.init(migrations: migrations)
    }

    /// Applies every pending migration; returns the ones it applied.
    /// `connection` must be the owner's (not `forecourt_app`), outside a transaction.
    @discardableResult
    public func migrate(on connection: PostgresConnection, log: (Migration) -> Void = { _ in }) throws -> [Migration] {
        try connection.query("SELECT pg_advisory_lock(\(Self.lockKey))")
        defer { _ = try? connection.query("SELECT pg_advisory_unlock(\(Self.lockKey))") }
        try ensureTable(on: connection)
        let applied = try appliedChecksums(on: connection)
        try verify(applied)
        var done: [Migration] = []
        for migration in migrations where applied[migration.version] == nil {
            try connection.transaction { connection in
                try connection.execute(unsafeSQL: migration.sql)
                try connection.query(
                    """
                    INSERT INTO public.forecourt_schema_migrations (version, name, checksum)
                    VALUES (\(migration.version), \(migration.name), \(migration.checksum))
                    """)
            }
            log(migration)
            done.append(migration)
        }
        return done
    }

    /// What is applied and what is pending; refuses edited or unknown migrations as `migrate` does.
    public func status(on connection: PostgresConnection) throws -> Status {
        let table = try connection.query("SELECT to_regclass('public.forecourt_schema_migrations') IS NOT NULL")
        var appliedAt: [Int: (name: String, at: Date, checksum: String)] = [:]
        if try table.first?.decode(0, as: Bool.self) == true {
            for row in try connection.query(
                "SELECT version, name, applied_at, checksum FROM public.forecourt_schema_migrations"
            ).rows {
                appliedAt[try row.decode(0)] = (try row.decode(1), try row.decode(2), try row.decode(3))
            }
        }
        try verify(appliedAt.mapValues { ($0.name, $0.checksum) })
        return Status(
            entries: migrations.map { Status.Entry(version: $0.version, name: $0.name, appliedAt: appliedAt[$0.version]?.at) })
    }

    private func ensureTable(on connection: PostgresConnection) throws {
        try connection.execute(
            unsafeSQL: """
                CREATE TABLE IF NOT EXISTS public.forecourt_schema_migrations (
                    version integer PRIMARY KEY,
                    name text NOT NULL,
                    checksum text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now()
                )
                """)
    }

    private func appliedChecksums(on connection: PostgresConnection) throws -> [Int: (name: String, checksum: String)] {
        var applied: [Int: (String, String)] = [:]
        for row in try connection.query("SELECT version, name, checksum FROM public.forecourt_schema_migrations").rows {
            applied[try row.decode(0)] = (try row.decode(1), try row.decode(2))
        }
        return applied
    }

    private func verify(_ applied: [Int: (name: String, checksum: String)]) throws {
        for (version, record) in applied.sorted(by: { $0.key < $1.key }) {
            guard let migration = migrations.first(where: { $0.version == version }) else {
                throw Error.unknownApplied(version: version, name: record.name)
            }
            if migration.checksum != record.checksum, !migration.amendedChecksums.contains(record.checksum) {
                throw Error.edited(version: version, name: migration.name)
            }
        }
    }
}
