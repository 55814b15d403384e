import NIOSSL
import Synchronization

/// TLS settings of the listener (explicit, since NIOSSL's server default
/// still admits TLS 1.0).
public enum ServerTLS {
    /// Mozilla's "intermediate" TLS 1.2 suites (TLS 1.3 suites are not configurable and all
    /// good). The DHE suites of that list are left out: BoringSSL does not implement them.
    public static let cipherSuites = [
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    ].joined(separator: ":")

    /// Reads the PEM files of `configuration` and builds a server context: TLS 1.2 minimum, the
    /// intermediate cipher list, and client-certificate verification when `clientCAPath` is set.
    /// - Throws: `NIOSSLError` or a file error when a file is missing or not valid PEM.
    public static func makeContext(_ configuration: ServerConfiguration) throws -> NIOSSLContext {
        let chain = try NIOSSLCertificate.fromPEMFile(configuration.certificatePath)
        let key = try NIOSSLPrivateKey(file: configuration.privateKeyPath, format: .pem)
        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        if let caPath = configuration.clientCAPath {
            let roots = try NIOSSLCertificate.fromPEMFile(caPath)
            tls.trustRoots = .certificates(roots)
            // Verify the chain; a server cannot check a client's hostname.
            tls.certificateVerification = .noHostnameVerification
            tls.sendCANameList = true
        }
        tls.minimumTLSVersion = .tlsv12
        tls.cipherSuites = cipherSuites
        return try NIOSSLContext(configuration: tls)
    }
}

/// The context new connections use; replaced by `reloadCertificates()`, while connections
/// already open keep the context they started with.
final class TLSContextBox: Sendable {
    private let context: Mutex<NIOSSLContext>

    init(_ context: NIOSSLContext) { self.context = Mutex(context) }

    var current: NIOSSLContext { context.withLock { $0 } }

    func replace(_ newContext: NIOSSLContext) { context.withLock { $0 = newContext } }
}
