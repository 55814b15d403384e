import Crypto
import ForecourtCore
import Foundation

/// The private PostgreSQL 15 cluster of `forecourt dev`: created on first use, reused after.
///
/// Data lives under `.forecourt/pg` (or, when the `postgres` OS user cannot reach that
/// directory, under `/var/lib/forecourt-dev/<hash>` with a symlink from `.forecourt/pg`).
/// The server listens on a Unix socket in its own directory only: no TCP port to clash with.
/// As root it runs as the `postgres` OS user, since PostgreSQL refuses to run as root.
struct DevCluster {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    static let binaries = ProcessInfo.processInfo.environment["FC_PGBIN"] ?? "/usr/lib/postgresql/15/bin"

    /// The cluster's directory (holds `data/`, `server.log` and the socket).
    let directory: String

    var dataDirectory: String { directory + "/data" }
    var socketDirectory: String { directory }
    var logFile: String { directory + "/server.log" }
    static let port = 5432

    /// A libpq connection string for `database` as `user` over the socket.
    func connectionString(database: String, user: String) -> String {
        "host=\(socketDirectory) port=\(Self.port) dbname=\(database) user=\(user)"
    }

    private static var isRoot: Bool { getuid() == 0 }

    /// Finds or makes the cluster directory for a state directory.
    static func prepare(stateDirectory: String) throws -> DevCluster {
        guard FileManager.default.isExecutableFile(atPath: binaries + "/initdb") else {
            throw Failure(description: "PostgreSQL 15 is not installed (no \(binaries)/initdb); run scripts/dev, which installs it")
        }
        let link = stateDirectory + "/pg"
        var directory = (try? FileManager.default.destinationOfSymbolicLink(atPath: link)) ?? link
        if !FileManager.default.fileExists(atPath: directory) {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        if isRoot {
            try run(["chown", "postgres:postgres", directory])
            try run(["chmod", "700", directory])
            // The postgres user must be able to reach the directory (a home of mode 700 stops it),
            // and a Unix socket path must stay short.
            let reachable = (try? run(["runuser", "-u", "postgres", "--", "test", "-w", directory])) != nil
            if !reachable || directory.utf8.count > 80 {
                let hash = SHA256.hash(data: Data(stateDirectory.utf8)).prefix(6).hexString
                let outside = "/var/lib/forecourt-dev/" + hash
                try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
                try run(["chown", "postgres:postgres", outside])
                try run(["chmod", "700", outside])
                try? FileManager.default.removeItem(atPath: link)
                try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: outside)
                directory = outside
            }
        }
        return DevCluster(directory: directory)
    }

    var isInitialized: Bool { FileManager.default.fileExists(atPath: dataDirectory + "/PG_VERSION") }

    func initialize() throws {
        try Self.runAsPostgres([
            Self.binaries + "/initdb", "-D", dataDirectory, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale",
        ])
    }

    var isRunning: Bool {
        (try? Self.runAsPostgres([Self.binaries + "/pg_ctl", "-D", dataDirectory, "status"])) != nil
    }

    func start() throws {
        try Self.runAsPostgres([
            Self.binaries + "/pg_ctl", "-D", dataDirectory, "-l", logFile, "-w", "-t", "60",
            "-o", "-p \(Self.port) -k \(socketDirectory) -c listen_addresses=''", "start",
        ])
    }

    func stop() throws {
        try Self.runAsPostgres([Self.binaries + "/pg_ctl", "-D", dataDirectory, "-m", "fast", "-w", "-t", "60", "stop"])
    }

    @discardableResult
    static func runAsPostgres(_ arguments: [String]) throws -> String {
        try run(isRoot ? ["runuser", "-u", "postgres", "--"] + arguments : arguments)
    }

    /// Runs a program (found on PATH) and returns its output; a non-zero exit is an error with its output.
    @discardableResult
    static func run(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard process.terminationStatus == 0 else {
            throw Failure(description: "\(arguments.joined(separator: " ")) failed:\n\(text)")
        }
        return text
    }
}
