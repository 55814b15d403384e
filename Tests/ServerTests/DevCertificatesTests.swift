import ForecourtApp
import Foundation
import NIOSSL
import Testing

struct DevCertificatesTests {
    func temporaryDirectory() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("forecourt-devcert-\(UUID().uuidString)").path
    }

    func mode(_ path: String) throws -> Int {
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        return (attributes[.posixPermissions] as? NSNumber)?.intValue ?? -1
    }

    @Test func createsKeysPrivateAndIsIdempotent() throws {
        let directory = temporaryDirectory() + "/nested/tls"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let first = try DevCertificates.ensure(in: directory)
        #expect(first.certificate.hasSuffix("/server.pem"))
        #expect(first.privateKey.hasSuffix("/server-key.pem"))
        #expect(first.ca.hasSuffix("/ca.pem"))
        #expect(try mode(first.privateKey) == 0o600)
        #expect(try mode(directory + "/ca-key.pem") == 0o600)
        #expect(try mode(directory) == 0o700)

        let pem = try String(contentsOfFile: first.certificate, encoding: .utf8)
        let second = try DevCertificates.ensure(in: directory)
        #expect(second == first)
        #expect(try String(contentsOfFile: second.certificate, encoding: .utf8) == pem, "an existing certificate is kept")

        // The chain is leaf then CA, and the key loads.
        let chain = try NIOSSLCertificate.fromPEMFile(first.certificate)
        #expect(chain.count == 2)
        #expect(try NIOSSLCertificate.fromPEMFile(first.ca) == [chain[1]])
        _ = try NIOSSLPrivateKey(file: first.privateKey, format: .pem)
    }

    @Test func reissuesAMissingServerCertificateWithTheSameCA() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let first = try DevCertificates.ensure(in: directory)
        let ca = try String(contentsOfFile: first.ca, encoding: .utf8)
        try FileManager.default.removeItem(atPath: first.certificate)
        let second = try DevCertificates.ensure(in: directory)
        #expect(try String(contentsOfFile: second.ca, encoding: .utf8) == ca)
        #expect(try NIOSSLCertificate.fromPEMFile(second.certificate).count == 2)
        #expect(try mode(second.privateKey) == 0o600)
    }

    @Test func refusesAFileWhereTheDirectoryShouldBe() throws {
        let path = temporaryDirectory()
        _ = FileManager.default.createFile(atPath: path, contents: Data())
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(throws: DevCertificates.Failure.self) { try DevCertificates.ensure(in: path) }
    }
}
