import Crypto
import ForecourtCore
import Foundation

/// An API key: a random secret shown once, stored only as its SHA-256.
///
/// Format: `fck_` + 43 base64url characters (32 random bytes). The first 12 characters are
/// kept in clear as a prefix, to tell keys apart in `key.list` without revealing them.
public struct APIKey: Sendable {
    public static let scheme = "fck_"
    static let prefixLength = 12

    public let secret: String

    /// A new key from the system's secure random generator.
    public static func generate() -> APIKey {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return APIKey(secret: scheme + Base64URL.encode(bytes))
    }

    public init(secret: String) { self.secret = secret }

    public var prefix: String { String(secret.prefix(Self.prefixLength)) }

    public var hash: [UInt8] { Self.hash(of: secret) }

    /// SHA-256 of the key text: a key has 256 bits of entropy, so a fast hash is enough
    /// (no dictionary to guard against) and lookups stay one index probe.
    public static func hash(of secret: String) -> [UInt8] {
        Array(SHA256.hash(data: Data(secret.utf8)))
    }

    /// Whether the text could be a key at all (cheap check before touching the database).
    public static func isWellFormed(_ text: String) -> Bool {
        text.hasPrefix(scheme) && text.utf8.count == scheme.utf8.count + 43
            && text.utf8.dropFirst(scheme.utf8.count).allSatisfy(Base64URL.isAlphabet)
    }
}
