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
        // The server inherits pg_ctl's output: a pipe would never reach end of file, so none is used.
        do {
            try Self.runAsPostgres(
                [
                    Self.binaries + "/pg_ctl", "-D", dataDirectory, "-l", logFile, "-w", "-t", "60",
                    "-o", "-p \(Self.port) -k \(socketDirectory) -c listen_addresses=''", "start",
                ], captureOutput: false)
        } catch {
            let log = (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? ""
            throw Failure(description: "PostgreSQL did not start; the end of \(logFile):\n" + log.split(separator: "\n").suffix(10).joined(separator: "\n"))
        }
    }

    func stop() throws {
        try Self.runAsPostgres([Self.binaries + "/pg_ctl", "-D", dataDirectory, "-m", "fast", "-w", "-t", "60", "stop"])
    }

    @discardableResult
    static func runAsPostgres(_ arguments: [String], captureOutput: Bool = true) throws -> String {
        try run(isRoot ? ["runuser", "-u", "postgres", "--"] + arguments : arguments, captureOutput: captureOutput)
    }

    /// Runs a program (found on PATH) and returns its output; a non-zero exit is an error with its output.
    ///
    /// posix_spawn and waitpid rather than Foundation's `Process`, whose exit detection was
    /// seen to hang when called from an async command.
    @discardableResult
    static func run(_ arguments: [String], captureOutput: Bool = true) throws -> String {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var fds: [Int32] = [-1, -1]
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        if captureOutput {
            guard pipe(&fds) == 0 else { throw Failure(description: "cannot create a pipe") }
            posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
            posix_spawn_file_actions_adddup2(&actions, fds[1], 2)
            posix_spawn_file_actions_addclose(&actions, fds[0])
            posix_spawn_file_actions_addclose(&actions, fds[1])
        } else {
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        }
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let spawned = posix_spawnp(&pid, arguments[0], &actions, nil, argv, environ)
        if captureOutput { close(fds[1]) }
        guard spawned == 0 else {
            if captureOutput { close(fds[0]) }
            throw Failure(description: "cannot run \(arguments[0])")
        }
        var output: [UInt8] = []
        if captureOutput {
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = read(fds[0], &buffer, buffer.count)
                if count > 0 {
                    output.append(contentsOf: buffer[0..<count])
                } else if count == 0 || errno != EINTR {
                    break
                }
            }
            close(fds[0])
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        let text = String(decoding: output, as: UTF8.self)
        // WIFEXITED and WEXITSTATUS, which Swift does not import.
        guard status & 0x7f == 0, (status >> 8) & 0xff == 0 else {
            throw Failure(description: "\(arguments.joined(separator: " ")) failed:\n\(text)")
        }
        return text
    }
}
