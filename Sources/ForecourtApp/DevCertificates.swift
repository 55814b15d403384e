import Crypto
import Foundation
import Server
import SwiftASN1
import X509

/// Development TLS material: a private CA and a server certificate for `localhost`,
/// `127.0.0.1` and `::1`, as PEM files in one directory.
///
/// Files (names are fixed so that scripts and tests can rely on them):
/// `ca.pem`, `ca-key.pem`, `server.pem` (leaf then CA), `server-key.pem`; keys are P-256 in
/// PKCS#8 PEM, mode 0600. Existing files are kept: a second run changes nothing, and a missing
/// server certificate is re-issued by the existing CA so that clients that trust it still work.
public enum DevCertificates {
    public static let caCertificateFile = "ca.pem"
    public static let caKeyFile = "ca-key.pem"
    public static let serverCertificateFile = "server.pem"
    public static let serverKeyFile = "server-key.pem"

    /// Why the material could not be made.
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Creates what is missing in `directory` (created with mode 0700 if absent).
    /// - Returns: the paths of the server certificate chain, its private key and the CA certificate.
    @discardableResult
    public static func ensure(in directory: String) throws -> (certificate: String, privateKey: String, ca: String) {
        try createDirectory(directory)
        let caPath = path(directory, caCertificateFile)
        let caKeyPath = path(directory, caKeyFile)
        let certificatePath = path(directory, serverCertificateFile)
        let keyPath = path(directory, serverKeyFile)
        let manager = FileManager.default
        if manager.fileExists(atPath: certificatePath), manager.fileExists(atPath: keyPath), manager.fileExists(atPath: caPath) {
            return (certificatePath, keyPath, caPath)
        }
        let ca = try loadOrCreateCA(certificatePath: caPath, keyPath: caKeyPath)
        let (certificate, key) = try issue(
            by: ca, commonName: "localhost",
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth])
                SubjectAlternativeNames([
                    .dnsName("localhost"),
                    .ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1])),
                    .ipAddress(ASN1OctetString(contentBytes: ArraySlice([UInt8](repeating: 0, count: 15) + [1]))),
                ])
            })
        try? manager.removeItem(atPath: keyPath)
        try writePrivate(key.pemRepresentation, to: keyPath)
        try? manager.removeItem(atPath: certificatePath)
        let chain = try certificate.serializeAsPEM().pemString + "\n" + ca.certificate.serializeAsPEM().pemString + "\n"
        try writeFile(chain, to: certificatePath, mode: 0o644)
        return (certificatePath, keyPath, caPath)
    }

    /// Issues a client certificate (for mutual TLS tests) signed by the dev CA of `directory`,
    /// written as `<name>.pem` and `<name>-key.pem`. Overwrites an earlier one of that name.
    /// - Returns: the paths of the certificate and its key, and the SHA-256 of the certificate's DER.
    public static func issueClientCertificate(
        in directory: String, name: String
    ) throws -> (certificate: String, privateKey: String, fingerprint: [UInt8]) {
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) else {
            throw Failure(description: "a client certificate name must be letters, digits, - and _")
        }
        try ensure(in: directory)
        let ca = try loadOrCreateCA(certificatePath: path(directory, caCertificateFile), keyPath: path(directory, caKeyFile))
        let (certificate, key) = try issue(
            by: ca, commonName: name,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.clientAuth])
            })
        let certificatePath = path(directory, "\(name).pem")
        let keyPath = path(directory, "\(name)-key.pem")
        try? FileManager.default.removeItem(atPath: keyPath)
        try writePrivate(key.pemRepresentation, to: keyPath)
        try? FileManager.default.removeItem(atPath: certificatePath)
        try writeFile(try certificate.serializeAsPEM().pemString + "\n", to: certificatePath, mode: 0o644)
        var serializer = DER.Serializer()
        try serializer.serialize(certificate)
        return (certificatePath, keyPath, ClientCertificate.fingerprint(der: serializer.serializedBytes))
    }

    // MARK: private

    /// A leaf certificate with a new P-256 key, signed by the dev CA, valid for 397 days (the
    /// most browsers accept) from an hour ago.
    private static func issue(
        by ca: (certificate: Certificate, key: P256.Signing.PrivateKey), commonName: String, extensions: Certificate.Extensions
    ) throws -> (Certificate, P256.Signing.PrivateKey) {
        let key = P256.Signing.PrivateKey()
        let now = Date()
        let certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: Certificate.PublicKey(key.publicKey),
            notValidBefore: now.addingTimeInterval(-3600),
            notValidAfter: now.addingTimeInterval(397 * 86_400),
            issuer: ca.certificate.subject,
            subject: try DistinguishedName {
                OrganizationName("Forecourt development")
                CommonName(commonName)
            },
            extensions: extensions,
            issuerPrivateKey: Certificate.PrivateKey(ca.key))
        return (certificate, key)
    }

    private static func loadOrCreateCA(
        certificatePath: String, keyPath: String
    ) throws -> (certificate: Certificate, key: P256.Signing.PrivateKey) {
        let manager = FileManager.default
        if manager.fileExists(atPath: certificatePath), manager.fileExists(atPath: keyPath) {
            let certificate = try Certificate(pemEncoded: try String(contentsOfFile: certificatePath, encoding: .utf8))
            let key = try P256.Signing.PrivateKey(pemRepresentation: try String(contentsOfFile: keyPath, encoding: .utf8))
            return (certificate, key)
        }
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName {
            OrganizationName("Forecourt development")
            CommonName("Forecourt development CA")
        }
        let now = Date()
        let certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: Certificate.PublicKey(key.publicKey),
            notValidBefore: now.addingTimeInterval(-3600),
            notValidAfter: now.addingTimeInterval(10 * 365 * 86_400),
            issuer: name,
            subject: name,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
            },
            issuerPrivateKey: Certificate.PrivateKey(key)
        )
        try? manager.removeItem(atPath: keyPath)
        try writePrivate(key.pemRepresentation, to: keyPath)
        try? manager.removeItem(atPath: certificatePath)
        try writeFile(try certificate.serializeAsPEM().pemString + "\n", to: certificatePath, mode: 0o644)
        return (certificate, key)
    }

    private static func path(_ directory: String, _ file: String) -> String {
        URL(fileURLWithPath: directory).appendingPathComponent(file).path
    }

    private static func createDirectory(_ directory: String) throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw Failure(description: "\(directory) is not a directory") }
            return
        }
        try FileManager.default.createDirectory(
            atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    }

    /// Creates a key file that is never readable by others, not even for a moment: created with
    /// mode 0600 and O_EXCL, rather than written and then restricted.
    private static func writePrivate(_ text: String, to path: String) throws {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard descriptor >= 0 else { throw Failure(description: "cannot create \(path)") }
        defer { close(descriptor) }
        let bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let result = bytes[written...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            guard result > 0 else { throw Failure(description: "cannot write \(path)") }
            written += result
        }
    }

    private static func writeFile(_ text: String, to path: String, mode: Int) throws {
        guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: mode]) else {
            throw Failure(description: "cannot write \(path)")
        }
    }
}
