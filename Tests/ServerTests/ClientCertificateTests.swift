import ForecourtCore
import Server
import Testing

/// The fingerprint under which `forecourt key create --client-certificate` registers a
/// certificate and by which the server finds it is SHA-256: the FIPS 180-4 vectors.
struct ClientCertificateTests {
    @Test func fingerprintIsSHA256() {
        #expect(ClientCertificate.fingerprint(der: []).hexString == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(
            ClientCertificate.fingerprint(der: Array("abc".utf8)).hexString
                == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(
            ClientCertificate.fingerprint(der: Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)).hexString
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(
            ClientCertificate.fingerprint(der: [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)).hexString
                == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }
}
