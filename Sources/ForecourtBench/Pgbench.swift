import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Histogram

/// Runs PostgreSQL's `pgbench` with custom scripts (`scripts/pgbench/*.sql`) and reads its
/// throughput and per-transaction latencies: the ceiling a workload is compared with.
struct Pgbench: Sendable {
    /// The `pgbench` executable.
    let executable: String
    /// libpq connection parameters (`-h`, `-p`, `-d`, `-U`).
    let host: String
    let port: String
    let database: String
    let user: String
    /// Where the scripts are.
    let scriptsDirectory: String
    /// Where per-transaction logs go (a scratch directory).
    let logDirectory: String

    struct Run: Sendable {
        /// `(file, weight)`: pgbench picks one script per transaction by weight.
        var scripts: [(String, Int)]
        var clients: Int
        var threads: Int
        var variables: [String: String]
        var database: String? = nil
        /// A builtin script (`tpcb-like`) instead of files.
        var builtin: String? = nil
    }

    /// Runs `run` for `warmup` seconds unmeasured, then `seconds` measured; returns
    /// transactions per second and the latency histogram (microseconds) of the measured part.
    func measure(_ run: Run, seconds: Int, warmup: Int) throws -> (rate: Double, histogram: Histogram<UInt64>, failed: Int) {
        if warmup > 0 { _ = try execute(run, seconds: warmup, log: nil) }
        let prefix = logDirectory + "/pgbench-\(UUID().uuidString.prefix(8))"
        let output = try execute(run, seconds: seconds, log: prefix)
        guard let rate = Self.tps(in: output) else {
            throw BenchError("pgbench printed no tps:\n" + output.suffix(2000))
        }
        var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000)
        var failed = 0
        let files = (try? FileManager.default.contentsOfDirectory(atPath: logDirectory)) ?? []
        let prefixName = URL(fileURLWithPath: prefix).lastPathComponent
        for file in files where file.hasPrefix(prefixName) {
            let path = logDirectory + "/" + file
            defer { try? FileManager.default.removeItem(atPath: path) }
            guard let data = FileManager.default.contents(atPath: path) else { continue }
            // client_id transaction_no time script_no time_epoch time_us [schedule_lag]; time is
            // the latency in microseconds, or "failed"/"skipped".
            for line in data.split(separator: UInt8(ascii: "\n")) {
                let fields = line.split(separator: UInt8(ascii: " "), maxSplits: 3)
                guard fields.count >= 3 else { continue }
                if let micros = UInt64(String(decoding: fields[2], as: UTF8.self)) {
                    _ = histogram.record(max(1, micros))
                } else {
                    failed += 1
                }
            }
        }
        return (rate, histogram, failed)
    }

    private func execute(_ run: Run, seconds: Int, log prefix: String?) throws -> String {
        var arguments = [
            "-h", host, "-p", port, "-U", user, "-n", "-M", "prepared",
            "-c", String(run.clients), "-j", String(run.threads), "-T", String(seconds),
        ]
        if let builtin = run.builtin {
            arguments += ["-b", builtin]
        }
        for (file, weight) in run.scripts {
            arguments += ["-f", scriptsDirectory + "/" + file + "@\(weight)"]
        }
        for (name, value) in run.variables.sorted(by: { $0.key < $1.key }) {
            arguments += ["-D", "\(name)=\(value)"]
        }
        if let prefix { arguments += ["-l", "--log-prefix=\(prefix)"] }
        // The database is pgbench's one positional argument (its -d is --debug).
        arguments.append(run.database ?? database)
        let outputPath = logDirectory + "/pgbench-output-\(UUID().uuidString.prefix(8)).txt"
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        let status = try Self.spawn(executable, arguments, output: outputPath)
        let output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        guard status == 0 else {
            throw BenchError("pgbench \(arguments.joined(separator: " ")) failed:\n" + output.suffix(2000))
        }
        return output
    }

    /// Runs a program to its end, its output and errors into `output`; returns its exit status.
    ///
    /// Not Foundation's `Process`: its child inherits this process's blocked signals (the
    /// runtime's threads block them), and pgbench ends a timed run with SIGALRM. Here the
    /// child starts with no signal blocked.
    static func spawn(_ executable: String, _ arguments: [String], output: String) throws -> Int32 {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGPIPE)
        sigaddset(&defaults, SIGALRM)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var files = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&files)
        defer { posix_spawn_file_actions_destroy(&files) }
        posix_spawn_file_actions_addopen(&files, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&files, 1, 2)
        posix_spawn_file_actions_addopen(&files, 0, "/dev/null", O_RDONLY, 0)
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, executable, &files, &attributes, argv, environ)
        guard spawned == 0 else { throw BenchError("cannot run \(executable): error \(spawned)") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { throw BenchError("waitpid: error \(errno)") }
        }
        // WIFEXITED / WEXITSTATUS, spelt out (they are C macros).
        return status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }

    /// `tps = 1234.5 (without initial connection time)`.
    static func tps(in output: String) -> Double? {
        for line in output.split(separator: "\n") where line.hasPrefix("tps = ") {
            let number = line.dropFirst(6).prefix { $0 == "." || $0.isNumber }
            return Double(number)
        }
        return nil
    }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
