#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Everything that can go wrong in `FieldCrypto`.
///
/// Descriptions name files, modes and key ids so an operator can act on them, and never
/// contain key material, plaintext, ciphertext or the offending JSON text: they are safe to
/// log and to print.
public enum FieldCryptoError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The keyring file could not be opened or read (`errno` from the system call).
    case keyringUnreadable(path: String, errno: Int32)
    /// The keyring file allows group or other access; it must be mode 0600 or stricter.
    case keyringPermissionsTooOpen(path: String, mode: UInt32)
    /// The keyring path is not a regular file.
    case keyringNotRegularFile(path: String)
    /// The keyring file is not a valid `forecourt-keyring/1` document; `reason` is a fixed
    /// phrase, never a quote from the file.
    case keyringMalformed(path: String?, reason: String)
    /// `createNew(at:)` found a file already there and left it alone.
    case keyringExists(path: String)
    /// Writing the keyring file failed (`errno` from the system call); the old file, if any,
    /// is unchanged.
    case keyringWriteFailed(path: String, errno: Int32)
    /// The bytes are not a field envelope this code understands (too short or unknown version).
    case malformedEnvelope
    /// The envelope names a key id that is not in the keyring.
    case unknownKeyID(UInt32)
    /// Authentication failed: the envelope was tampered with, or it belongs to another
    /// group, table, column or row than the context it was opened with.
    case authenticationFailed
    /// The decrypted field is not valid UTF-8 (only from `openString`).
    case notUTF8
    /// The cryptographic library refused to encrypt (not expected in practice).
    case encryptionFailed
    /// The system's random number generator gave no bytes (a nonce cannot be made safely);
    /// the seal that needed it fails, the process goes on.
    case randomUnavailable

    public var description: String {
        switch self {
        case let .keyringUnreadable(path, errno):
            return "keyring file \(path) cannot be read: \(Self.systemMessage(errno))"
        case let .keyringPermissionsTooOpen(path, mode):
            return "keyring file \(path) has mode \(Self.octal(mode)), which allows group or other "
                + "access; it must be 0600 or stricter (chmod 600 \(path))"
        case let .keyringNotRegularFile(path):
            return "keyring path \(path) is not a regular file"
        case let .keyringMalformed(path, reason):
            if let path {
                return "keyring file \(path) is malformed: \(reason)"
            }
            return "keyring is malformed: \(reason)"
        case let .keyringExists(path):
            return "keyring file \(path) already exists; refusing to overwrite it"
        case let .keyringWriteFailed(path, errno):
            return "keyring file \(path) could not be written: \(Self.systemMessage(errno))"
        case .malformedEnvelope:
            return "encrypted field is malformed"
        case let .unknownKeyID(id):
            return "encrypted field uses key id \(id), which is not in the keyring"
        case .authenticationFailed:
            return "encrypted field failed authentication (tampered, or opened in the wrong context)"
        case .notUTF8:
            return "decrypted field is not valid UTF-8"
        case .encryptionFailed:
            return "encrypting a field failed"
        case .randomUnavailable:
            return "the system's random number generator failed; no nonce could be made"
        }
    }

    /// The system's text for an `errno`, with the number: "No such file or directory (errno 2)".
    static func systemMessage(_ code: Int32) -> String {
        // Declared non-null on some platforms and implicitly unwrapped on others.
        let message: UnsafeMutablePointer<CChar>? = strerror(code)
        guard let text = message else { return "errno \(code)" }
        return "\(String(cString: text)) (errno \(code))"
    }

    /// `0o644` as `0644`: the way `chmod` and `ls` users read modes.
    static func octal(_ mode: UInt32) -> String {
        let digits = String(mode & 0o7777, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}
