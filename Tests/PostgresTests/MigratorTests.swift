import Foundation
import Postgres
import Testing
import TestSupport

/// A directory of migration files, removed afterwards.
@discardableResult
private func withMigrations<T>(_ files: [String: String], _ body: (String) async throws -> T) async throws -> T {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("migrations-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    for (name, sql) in files {
        try sql.write(toFile: directory + "/" + name, atomically: true, encoding: .utf8)
    }
    return try await body(directory)
}

private let first = "CREATE TABLE public.a (id int PRIMARY KEY);"
private let second = "CREATE TABLE public.b (a_id int REFERENCES public.a (id));"

@Suite struct MigratorTests {
    @Test func appliesInOrderOnceAndReportsStatus() async throws {
        try await withEmptyTestDatabase { db in
            // 0002 depends on 0001: applied out of order it would fail.
            try await withMigrations(["0002_b.sql": second, "0001_a.sql": first]) { directory in
                let connection = try db.ownerConnection()
                defer { connection.close() }
                let migrator = try Migrator(directory: directory)
                #expect(try migrator.status(on: connection).pending.map(\.version) == [1, 2])
                let applied = try migrator.migrate(on: connection)
                #expect(applied.map(\.version) == [1, 2])
                #expect(try migrator.migrate(on: connection).isEmpty)
                let status = try migrator.status(on: connection)
                #expect(status.pending.isEmpty)
                #expect(status.entries.map(\.name) == ["a", "b"])
            }
        }
    }

    @Test func refusesAnEditedAppliedFile() async throws {
        try await withEmptyTestDatabase { db in
            try await withMigrations(["0001_a.sql": first]) { directory in
                let connection = try db.ownerConnection()
                defer { connection.close() }
                try Migrator(directory: directory).migrate(on: connection)
                try (first + "\n-- edited").write(toFile: directory + "/0001_a.sql", atomically: true, encoding: .utf8)
                try second.write(toFile: directory + "/0002_b.sql", atomically: true, encoding: .utf8)
                let edited = try Migrator(directory: directory)
                #expect(throws: Migrator.Error.self) { try edited.migrate(on: connection) }
                #expect(throws: Migrator.Error.self) { try edited.status(on: connection) }
                // Nothing after the refusal ran.
                let b = try connection.query("SELECT to_regclass('public.b') IS NULL").first!.decode(0, as: Bool.self)
                #expect(b)
            }
        }
    }

    /// An amended file that names the checksum of the text a database applied is accepted
    /// (and the next migration runs); a checksum it does not name is still refused.
    @Test func acceptsAnAmendmentNamingTheAppliedChecksum() async throws {
        try await withEmptyTestDatabase { db in
            try await withMigrations(["0001_a.sql": first]) { directory in
                let connection = try db.ownerConnection()
                defer { connection.close() }
                try Migrator(directory: directory).migrate(on: connection)
                let applied = try #require(try Migrator(directory: directory).migrations.first?.checksum)
                let other = String(repeating: "ab", count: 32)
                try (first + "\n-- amends checksum \(other)").write(
                    toFile: directory + "/0001_a.sql", atomically: true, encoding: .utf8)
                #expect(throws: Migrator.Error.self) { try Migrator(directory: directory).migrate(on: connection) }

                try (first + "\n-- made safe to rerun\n-- amends checksum \(applied)").write(
                    toFile: directory + "/0001_a.sql", atomically: true, encoding: .utf8)
                try second.write(toFile: directory + "/0002_b.sql", atomically: true, encoding: .utf8)
                let amended = try Migrator(directory: directory)
                #expect(try amended.migrate(on: connection).map(\.version) == [2])
                #expect(try amended.status(on: connection).pending.isEmpty)
            }
        }
    }

    @Test func aFailingMigrationLeavesNothingBehind() async throws {
        try await withEmptyTestDatabase { db in
            try await withMigrations(["0001_a.sql": first + "\nCREATE TABLE public.c (x nosuchtype);"]) { directory in
                let connection = try db.ownerConnection()
                defer { connection.close() }
                #expect(throws: PostgresError.self) { try Migrator(directory: directory).migrate(on: connection) }
                let a = try connection.query("SELECT to_regclass('public.a') IS NULL").first!.decode(0, as: Bool.self)
                #expect(a)
                let recorded = try connection.query("SELECT count(*) FROM public.forecourt_schema_migrations").first!
                    .decode(0, as: Int.self)
                #expect(recorded == 0)
            }
        }
    }

    @Test func refusesBadNamesAndDuplicateVersions() async throws {
        try await withMigrations(["1_a.sql": first]) { directory in
            #expect(throws: Migrator.Error.self) { try Migrator(directory: directory) }
        }
        try await withMigrations(["0001_a.sql": first, "0001_b.sql": second]) { directory in
            #expect(throws: Migrator.Error.self) { try Migrator(directory: directory) }
        }
    }

    @Test func concurrentStartsTakeTurns() async throws {
        try await withEmptyTestDatabase { db in
            // The first file sleeps, so both instances are migrating at the same time.
            let slow = "SELECT pg_sleep(0.5);\n" + first
            try await withMigrations(["0001_a.sql": slow, "0002_b.sql": second]) { directory in
                let migrator = try Migrator(directory: directory)
                let url = db.ownerConnectionString
                let counts = try await withThrowingTaskGroup(of: Int.self) { group in
                    for _ in 0..<2 {
                        group.addTask {
                            let connection = try PostgresConnection(connectionString: url)
                            defer { connection.close() }
                            return try migrator.migrate(on: connection).count
                        }
                    }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
                #expect(counts.sorted() == [0, 2])
                let connection = try db.ownerConnection()
                defer { connection.close() }
                let recorded = try connection.query("SELECT count(*) FROM public.forecourt_schema_migrations").first!
                    .decode(0, as: Int.self)
                #expect(recorded == 2)
            }
        }
    }
}
