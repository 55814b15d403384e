import Crypto

/// How a client certificate names a principal (docs/security.md): by the SHA-256 of its DER
/// bytes, the same digest `forecourt key create --client-certificate` stores.
public enum ClientCertificate {
    public static func fingerprint(der: [UInt8]) -> [UInt8] {
        Array(SHA256.hash(data: der))
    }
}
