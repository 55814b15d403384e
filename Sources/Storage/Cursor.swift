import Crypto
import ForecourtCore
import Foundation

/// Opaque, signed list cursors (`after`/`next`).
///
/// A cursor is the keyset position of the last item returned, bound to the list it came from
/// and the caller's dealer group, and MAC'd: a forged or altered one is -32602, and one list's
/// cursor cannot be replayed on another.
public struct CursorCodec: Sendable {
    /// A keyed MAC (HMAC-SHA256 under a key every instance shares, from the keyring).
    private let authenticate: @Sendable ([UInt8]) -> [UInt8]

    public init(mac: @escaping @Sendable ([UInt8]) -> [UInt8]) { self.authenticate = mac }

    /// A codec with a random key: cursors are valid only in this process (tests).
    public static func ephemeral() -> CursorCodec {
        let key = SymmetricKey(size: .bits256)
        return CursorCodec { Array(HMAC<SHA256>.authenticationCode(for: $0, using: key)) }
    }

    /// Encodes `position` (the list's own text form of its sort key) for `list` in `scope`.
    public func encode(_ position: String, list: String, scope: String) -> String {
        let body = Array(position.utf8)
        let tag = mac(body, list: list, scope: scope)
        return Base64URL.encode(body + tag.prefix(16))
    }

    /// The position of a cursor made by `encode` for the same list and scope.
    public func decode(_ cursor: String, list: String, scope: String, field: String = "after") throws -> String {
        let invalid = DomainError.invalidParams(field, "not a cursor returned by this list")
        guard cursor.utf8.count <= 512, let bytes = Base64URL.decode(cursor), bytes.count > 16 else { throw invalid }
        let body = Array(bytes.dropLast(16))
        let expected = mac(body, list: list, scope: scope).prefix(16)
        // Constant-time comparison: the tag must not be learnable byte by byte.
        var difference: UInt8 = 0
        for (a, b) in zip(expected, bytes.suffix(16)) { difference |= a ^ b }
        guard difference == 0, let position = String(bytes: body, encoding: .utf8) else { throw invalid }
        return position
    }

    private func mac(_ body: [UInt8], list: String, scope: String) -> [UInt8] {
        // Length-prefixed parts, so no two (list, scope, body) give the same input.
        var input: [UInt8] = []
        for part in [Array(list.utf8), Array(scope.utf8), body] {
            withUnsafeBytes(of: UInt32(part.count).bigEndian) { input.append(contentsOf: $0) }
            input.append(contentsOf: part)
        }
        return authenticate(input)
    }
}
