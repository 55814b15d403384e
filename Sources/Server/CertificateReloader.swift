import Logging
import ServiceLifecycle
import UnixSignals

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Re-reads the server's certificate and key on SIGHUP, as a `Service` beside the `RPCServer`.
///
/// New connections get the new certificate; open ones keep theirs. A file that cannot be read
/// is logged and the previous certificate stays in use. Creating the reloader makes the
/// process ignore SIGHUP's default action (termination) at once, so a SIGHUP that arrives
/// before `run()` is harmless (and not acted on); `run()` then traps it with service-lifecycle's
/// `UnixSignalsSequence`.
public struct CertificateReloader: Service {
    private let server: RPCServer
    private let logger: Logger
    private let onReload: @Sendable (Result<Void, any Error>) -> Void

    /// - Parameter onReload: called after each attempt (for tests and metrics).
    public init(
        server: RPCServer, logger: Logger, onReload: @escaping @Sendable (Result<Void, any Error>) -> Void = { _ in }
    ) {
        self.server = server
        self.logger = logger
        self.onReload = onReload
        signal(SIGHUP, SIG_IGN)
    }

    public func run() async {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        // The sequence never ends by itself: stop at graceful shutdown or cancellation.
        for await _ in signals.cancelOnGracefulShutdown() {
            do {
                try server.reloadCertificates()
                onReload(.success(()))
            } catch {
                logger.error(
                    "TLS certificates not reloaded; the previous ones stay in use",
                    metadata: ["error": .string(String(describing: error))])
                onReload(.failure(error))
            }
        }
    }
}
