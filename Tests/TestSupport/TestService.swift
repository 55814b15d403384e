import FieldCrypto
import ForecourtApp
import ForecourtClient
import Foundation
import NIOSSL

/// One running instance of the whole service (`forecourt serve`'s wiring) over a test
/// database, listening with TLS on a free port.
public struct TestService: Sendable {
    public let port: Int
    /// The dev CA and server certificate the instance uses (`ca` is what clients trust).
    public let certificates: (certificate: String, privateKey: String, ca: String)
    /// Where the certificates and keyring live (client certificates may be issued here).
    public let directory: String

    /// A TLS connection to the instance, authenticated when a key is given.
    public func connect(apiKey: String? = nil) async throws -> ForecourtClient {
        let client = try await ForecourtClient.connect(
            host: "127.0.0.1", port: port, caPath: certificates.ca, serverHostname: "localhost")
        if let apiKey { _ = try await client.authenticate(apiKey: apiKey) }
        return client
    }

    /// A connection that presents a client certificate (mutual TLS).
    public func connect(clientCertificate: String, privateKey: String) async throws -> ForecourtClient {
        var settings = TLSConfiguration.makeClientConfiguration()
        settings.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(certificates.ca))
        settings.certificateChain = try NIOSSLCertificate.fromPEMFile(clientCertificate).map { .certificate($0) }
        settings.privateKey = .privateKey(try NIOSSLPrivateKey(file: privateKey, format: .pem))
        return try await ForecourtClient.connect(
            host: "127.0.0.1", port: port, tlsConfiguration: settings, serverHostname: "localhost")
    }
}

/// Runs an instance of the service for `body`, then stops it. Instances started with the same
/// `keyringPath` share their keyring, as a deployment's instances do.
public func withTestService<T>(
    _ db: TestDatabase,
    mutualTLS: Bool = false,
    keyringPath: String? = nil,
    _ body: (TestService) async throws -> T
) async throws -> T {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("service-\(UUID().uuidString)").path
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let tls = try DevCertificates.ensure(in: directory + "/tls")
    let keyring = keyringPath ?? directory + "/keyring.json"
    if !FileManager.default.fileExists(atPath: keyring) { try Keyring.generate().createNew(at: keyring) }
    let configuration = ServiceConfiguration(
        databaseURL: db.ownerConnectionString, listenPort: 0, tlsCertificatePath: tls.certificate,
        tlsKeyPath: tls.privateKey, tlsClientCAPath: mutualTLS ? tls.ca : nil, keyringPath: keyring,
        databasePoolSize: 4, migrationsDirectory: TestEnvironment.migrationsDirectory, logLevel: "error",
        reloadsCertificatesOnSIGHUP: false)
    let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
    let service = Task {
        defer { portContinuation.finish() }
        try await ServiceRunner.run(configuration, metrics: nil) { portContinuation.yield($0) }
    }
    defer { service.cancel() }
    var iterator = ports.makeAsyncIterator()
    guard let port = await iterator.next() else {
        _ = try await service.value
        throw TestSetupError("the service did not start")
    }
    return try await body(TestService(port: port, certificates: tls, directory: directory + "/tls"))
}

/// A TCP port on 127.0.0.1 that nobody listens on now.
public func freePort() throws -> Int {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { throw TestSetupError("socket failed") }
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic in
            bind(descriptor, generic, length) == 0 && getsockname(descriptor, generic, &length) == 0
        }
    }
    guard bound else { throw TestSetupError("bind failed") }
    return Int(UInt16(bigEndian: address.sin_port))
}
