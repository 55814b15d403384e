#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The process's open-files limit (`RLIMIT_NOFILE`), which every client connection counts
/// against: `forecourt serve` raises it at start-up to fit `FORECOURT_MAX_CONNECTIONS`, or
/// refuses to start naming both numbers (docs/operations.md, "Connections and open files").
public struct OpenFilesLimit: Equatable, Sendable, CustomStringConvertible {
    public var soft: UInt64
    public var hard: UInt64

    public init(soft: UInt64, hard: UInt64) {
        self.soft = soft
        self.hard = hard
    }

    /// Descriptors the service holds besides its clients' connections, generously: the pool's
    /// database connections and the LISTEN connection, the two listening sockets, the event
    /// loops' epoll, eventfd and timerfd, the dispatcher's SMTP and webhook connections, the
    /// metrics scraper, files being read (TLS, keyring) and the standard streams.
    static let reserve = 256

    /// What `maximumConnections` client connections need, with `poolSize` database connections.
    static func needed(maximumConnections: Int, poolSize: Int) -> UInt64 {
        UInt64(maximumConnections + poolSize + reserve)
    }

    public var description: String { "soft \(Self.text(soft)), hard \(Self.text(hard))" }

    /// `RLIM_INFINITY` (all bits set, on Linux and the BSDs alike), which Swift cannot import.
    static let unlimited = UInt64.max

    private static func text(_ value: UInt64) -> String { value == unlimited ? "unlimited" : "\(value)" }

    /// The process's current limit.
    public static func current() -> OpenFilesLimit? {
        var limit = rlimit()
        guard getrlimit(resource, &limit) == 0 else { return nil }
        return OpenFilesLimit(soft: UInt64(limit.rlim_cur), hard: UInt64(limit.rlim_max))
    }

    /// Sets the process's limit; false when the system refuses (a hard limit above the current
    /// one needs privilege, and none may exceed `fs.nr_open`).
    public static func set(_ new: OpenFilesLimit) -> Bool {
        var limit = rlimit(rlim_cur: rlim_t(new.soft), rlim_max: rlim_t(new.hard))
        return setrlimit(resource, &limit) == 0
    }

    #if canImport(Glibc)
    private static let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
    #else
    private static let resource = RLIMIT_NOFILE
    #endif

    /// Why start-up stops: the limit cannot be raised to what the setting needs.
    public struct TooLow: Error, CustomStringConvertible {
        let maximumConnections: Int
        let needed: UInt64
        let limit: OpenFilesLimit

        public var description: String {
            "FORECOURT_MAX_CONNECTIONS: \(maximumConnections) connections need an open-files limit of at least \(needed), "
                + "but the limit is \(OpenFilesLimit.text(limit.soft)) and cannot be raised (hard limit \(OpenFilesLimit.text(limit.hard))); "
                + "raise it (ulimit -n, systemd LimitNOFILE=) or lower FORECOURT_MAX_CONNECTIONS"
        }
    }

    /// Makes the soft limit at least `needed`: within the hard limit, or past it where the
    /// process may raise the hard limit too (root, `CAP_SYS_RESOURCE`). Returns the limit
    /// before and after when it changed it, nil when it already fitted.
    /// - Throws: `TooLow`, naming the setting, the connections, what they need and the limit.
    public static func ensure(
        maximumConnections: Int, needed: UInt64,
        current: () -> OpenFilesLimit? = OpenFilesLimit.current, set: (OpenFilesLimit) -> Bool = OpenFilesLimit.set
    ) throws(TooLow) -> (before: OpenFilesLimit, after: OpenFilesLimit)? {
        // A system that does not say has no limit we could raise; the accept loop then meets it.
        guard let before = current(), before.soft < needed else { return nil }
        var after = before
        after.soft = needed
        if after.hard < needed { after.hard = needed }
        guard set(after) else { throw TooLow(maximumConnections: maximumConnections, needed: needed, limit: before) }
        return (before, after)
    }
}
