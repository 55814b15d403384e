import Crypto
import Foundation
import Synchronization

/// Encrypts and authenticates personal fields, and computes blind indexes and MACs, with keys
/// derived from a `Keyring`.
///
/// Envelope (bytes): `[version 0x01][key id, big-endian UInt32][nonce, 12][ciphertext][tag, 16]`,
/// AES-256-GCM under the group's data key of that root key. The authenticated data is the
/// envelope header (version and key id) followed by the length-prefixed group id, table,
/// column and row id of the `FieldContext`.
///
/// Derived keys (HKDF-SHA256 from each root key, no salt, 32 bytes):
/// - data key: info `forecourt/v1/data/<group uuid, lowercase>`
/// - blind-index key: info `forecourt/v1/bidx/<group uuid, lowercase>/<kind>`
/// - MAC key: info `forecourt/v1/mac/<purpose>`
///
/// Derived keys are cached; one `FieldCipher` is meant to be shared by the whole process.
public final class FieldCipher: Sendable {
    /// The envelope version this code writes and reads.
    public static let envelopeVersion: UInt8 = 0x01
    /// Bytes before the ciphertext: version, key id, nonce.
    static let headerSize = 1 + 4
    static let nonceSize = 12
    static let tagSize = 16
    /// The smallest envelope: the one of an empty plaintext.
    public static let minimumEnvelopeSize = headerSize + nonceSize + tagSize

    /// Past this many cached derived keys the cache starts over; bounds memory whatever the
    /// number of groups.
    static let cacheLimit = 4096

    /// The keys this cipher uses.
    public let keyring: Keyring

    /// What a derived key is for: its HKDF info, without formatting it on every lookup.
    private enum Purpose: Hashable {
        case data(group: UUID)
        case blindIndex(group: UUID, kind: String)
        case mac(purpose: String)

        var info: String {
            switch self {
            case .data(let group): FieldCipher.dataInfo(group: group)
            case .blindIndex(let group, let kind): "forecourt/v1/bidx/\(FieldCipher.lowercased(group))/\(kind)"
            case .mac(let purpose): "forecourt/v1/mac/\(purpose)"
            }
        }
    }

    private struct CacheKey: Hashable {
        let keyID: UInt32
        let purpose: Purpose
    }

    /// A derived key, HMAC-SHA256 already keyed with it (copying the keyed state saves
    /// hashing the padded key again for every blind index) and its AES-GCM contexts.
    private struct DerivedKey: Sendable {
        let key: SymmetricKey
        let hmac: HMAC<SHA256>
        let aes: AESGCMKey
    }

    private let cache = Mutex<[CacheKey: DerivedKey]>([:])

    /// How many derived keys are cached now (for tests: lookups must not churn the cache).
    public var cachedKeyCount: Int { cache.withLock { $0.count } }

    /// Nonces for every envelope this process seals.
    static let nonces = NonceSource()

    /// A cipher over `keyring`. To use a rotated keyring, make a new cipher.
    public init(keyring: Keyring) {
        self.keyring = keyring
    }

    /// The id of the key that seals new envelopes.
    public var newestKeyID: UInt32 { keyring.newest.id }

    // MARK: Envelopes

    /// Encrypts `plaintext` for `context` under the newest key, with a fresh random nonce.
    public func seal(_ plaintext: [UInt8], context: FieldContext) throws -> [UInt8] {
        try sealingKey(group: context.group).seal(plaintext, context: context)
    }

    /// Encrypts the UTF-8 bytes of `plaintext` for `context`.
    public func seal(_ plaintext: String, context: FieldContext) throws -> [UInt8] {
        try seal(Array(plaintext.utf8), context: context)
    }

    /// Decrypts an envelope sealed for exactly this `context`.
    ///
    /// - Throws: `malformedEnvelope`, `unknownKeyID`, or `authenticationFailed` when the
    ///   envelope was altered or belongs to another group, table, column or row. Never
    ///   returns a partial or empty value instead.
    public func open(_ envelope: [UInt8], context: FieldContext) throws -> [UInt8] {
        let keyID = try keyID(ofEnvelope: envelope)
        guard let root = keyring.key(id: keyID) else {
            throw FieldCryptoError.unknownKeyID(keyID)
        }
        let key = derivedKey(root, .data(group: context.group)).key
        let header = Array(envelope[0..<Self.headerSize])
        let nonceEnd = Self.headerSize + Self.nonceSize
        let tagStart = envelope.count - Self.tagSize
        do {
            let box = try AES.GCM.SealedBox(
                nonce: AES.GCM.Nonce(data: envelope[Self.headerSize..<nonceEnd]),
                ciphertext: envelope[nonceEnd..<tagStart],
                tag: envelope[tagStart...])
            let plaintext = try AES.GCM.open(
                box, using: key, authenticating: Self.authenticatedData(header: header, context: context))
            return Array(plaintext)
        } catch {
            throw FieldCryptoError.authenticationFailed
        }
    }

    /// Decrypts an envelope holding UTF-8 text.
    public func openString(_ envelope: [UInt8], context: FieldContext) throws -> String {
        let bytes = try open(envelope, context: context)
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw FieldCryptoError.notUTF8
        }
        return text
    }

    /// The id of the root key an envelope was sealed under, read from its header without
    /// decrypting. Throws `malformedEnvelope` for anything that is not a version 1 envelope.
    public func keyID(ofEnvelope envelope: [UInt8]) throws -> UInt32 {
        guard envelope.count >= Self.minimumEnvelopeSize, envelope[0] == Self.envelopeVersion else {
            throw FieldCryptoError.malformedEnvelope
        }
        return envelope[1..<5].reduce(0) { $0 << 8 | UInt32($1) }
    }

    /// Whether an envelope was sealed under an older key than the newest, so that
    /// re-encryption should rewrite it.
    public func needsReencryption(_ envelope: [UInt8]) throws -> Bool {
        try keyID(ofEnvelope: envelope) != newestKeyID
    }

    /// Opens an envelope and seals its plaintext again, for the same context, under the
    /// newest key: one step of re-encryption after a rotation.
    public func reseal(_ envelope: [UInt8], context: FieldContext) throws -> [UInt8] {
        try seal(try open(envelope, context: context), context: context)
    }

    // MARK: Keys looked up once

    /// The newest root key's data key of one group, taken from the derived-key cache once.
    /// A CRM batch seals thousands of fields; looking the key up for each took the cache's
    /// lock thousands of times, from the threads sealing in parallel and the event loops
    /// (docs/performance.md, "What each change gained").
    public struct SealingKey: Sendable {
        public let group: UUID
        public let keyID: UInt32
        let header: [UInt8]
        let aes: AESGCMKey

        /// Encrypts `plaintext` for `context` (of this key's group), with a fresh random nonce.
        public func seal(_ plaintext: [UInt8], context: FieldContext) throws -> [UInt8] {
            precondition(context.group == group, "a context of another group")
            var envelope = header
            envelope.reserveCapacity(FieldCipher.minimumEnvelopeSize + plaintext.count)
            let nonce = try FieldCipher.nonces.next()
            envelope.append(contentsOf: nonce)
            try aes.seal(
                plaintext, nonce: nonce, authenticating: FieldCipher.authenticatedData(header: header, context: context),
                appendingTo: &envelope)
            return envelope
        }

        /// Encrypts the UTF-8 bytes of each value for the context (`table`, `columns[i]`, `row`)
        /// of this key's group, each with its own fresh random nonce; nil stays nil. The same
        /// envelopes as `seal(_:context:)` makes one by one, with one cipher context and one
        /// draw of nonces for all of them.
        public func seal(_ values: [String?], table: String, columns: [String], row: UUID) throws -> [[UInt8]?] {
            precondition(values.count == columns.count, "one column per value")
            let present = values.reduce(0) { $0 + ($1 == nil ? 0 : 1) }
            guard present > 0 else { return values.map { _ in nil } }
            let nonces = try FieldCipher.nonces.next(count: present)
            var aad: [UInt8] = []
            aad.reserveCapacity(header.count + 4 * 4 + 16 * 2 + table.utf8.count + 32)
            var envelopes: [[UInt8]?] = []
            envelopes.reserveCapacity(values.count)
            var used = 0
            try aes.withSealer { sealer in
                for (value, column) in zip(values, columns) {
                    guard var value else {
                        envelopes.append(nil)
                        continue
                    }
                    aad.removeAll(keepingCapacity: true)
                    FieldCipher.appendAuthenticatedData(
                        to: &aad, header: header, group: group, table: table, column: column, row: row)
                    var envelope = header
                    envelope.reserveCapacity(FieldCipher.minimumEnvelopeSize + value.utf8.count)
                    let nonce = nonces[(used * FieldCipher.nonceSize)..<((used + 1) * FieldCipher.nonceSize)]
                    used += 1
                    envelope.append(contentsOf: nonce)
                    try nonce.withUnsafeBytes { nonce in
                        try aad.withUnsafeBytes { aad in
                            try value.withUTF8 { plaintext in
                                try sealer.seal(
                                    UnsafeRawBufferPointer(plaintext), nonce: nonce, authenticating: aad, appendingTo: &envelope)
                            }
                        }
                    }
                    envelopes.append(envelope)
                }
            }
            return envelopes
        }
    }

    /// The data key of `group` under the newest root key, to seal many fields with.
    public func sealingKey(group: UUID) -> SealingKey {
        let root = keyring.newest
        return SealingKey(
            group: group, keyID: root.id, header: Self.header(keyID: root.id), aes: derivedKey(root, .data(group: group)).aes)
    }

    /// A keyed HMAC-SHA256, taken from the derived-key cache once: each MAC copies the keyed
    /// state instead of looking the key up and hashing the padded key again.
    public struct MACKey: Sendable {
        let hmac: HMAC<SHA256>

        /// HMAC-SHA256 (32 bytes) of `bytes`.
        public func mac<Bytes: ContiguousBytes>(_ bytes: Bytes) -> [UInt8] {
            var hmac = hmac
            bytes.withUnsafeBytes { hmac.update(data: $0) }
            return Array(hmac.finalize())
        }

        /// HMAC-SHA256 (32 bytes) of the UTF-8 bytes of `text`: a blind index of a normalised value.
        public func mac(_ text: String) -> [UInt8] {
            var hmac = hmac
            var text = text
            text.withUTF8 { hmac.update(data: UnsafeRawBufferPointer($0)) }
            return Array(hmac.finalize())
        }
    }

    /// The blind-index key of `group` and `kind` under the newest root key: `blindIndex(_:group:kind:)`
    /// is `blindIndexKey(group:kind:).mac(normalized)`.
    public func blindIndexKey(group: UUID, kind: BlindIndexKind) -> MACKey {
        MACKey(hmac: derivedKey(keyring.newest, .blindIndex(group: group, kind: kind.rawValue)).hmac)
    }

    /// The MAC key for `purpose`: `mac(_:purpose:)` is `macKey(purpose:).mac(data)`.
    public func macKey(purpose: String) -> MACKey {
        MACKey(hmac: derivedKey(keyring.oldest, .mac(purpose: purpose)).hmac)
    }

    // MARK: Blind indexes

    /// The blind index of an already normalised value: HMAC-SHA256 (32 bytes) under the
    /// group's key for `kind`, derived from the newest root key. Store this one on write.
    ///
    /// Equal inputs in the same group and kind give equal indexes; that equality is what a
    /// lookup needs and all that the index reveals.
    public func blindIndex(_ normalized: String, group: UUID, kind: BlindIndexKind) -> [UInt8] {
        blindIndex(normalized, group: group, kind: kind, root: keyring.newest)
    }

    /// The blind index of a value under every root key, newest first: search for any of them
    /// while rows written before a rotation have not yet been re-encrypted.
    public func blindIndexCandidates(_ normalized: String, group: UUID, kind: BlindIndexKind) -> [[UInt8]] {
        keyring.keys.reversed().map { blindIndex(normalized, group: group, kind: kind, root: $0) }
    }

    private func blindIndex(_ normalized: String, group: UUID, kind: BlindIndexKind, root: Keyring.RootKey) -> [UInt8] {
        MACKey(hmac: derivedKey(root, .blindIndex(group: group, kind: kind.rawValue)).hmac).mac(normalized)
    }

    // MARK: MACs

    /// HMAC-SHA256 (32 bytes) of `data` for `purpose` (for example `changes-cursor`), keyed
    /// from the oldest root key, which rotation never removes, so a MAC handed out before a
    /// rotation still verifies after it.
    public func mac(_ data: [UInt8], purpose: String) -> [UInt8] {
        macKey(purpose: purpose).mac(data)
    }

    /// Whether `mac` is the MAC of `data` for `purpose`, compared in constant time.
    public func verifyMAC(_ mac: [UInt8], for data: [UInt8], purpose: String) -> Bool {
        HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: data, using: macSymmetricKey(purpose: purpose))
    }

    private func macSymmetricKey(purpose: String) -> SymmetricKey {
        derivedKey(keyring.oldest, .mac(purpose: purpose)).key
    }

    // MARK: Derivation

    private func derivedKey(_ root: Keyring.RootKey, _ purpose: Purpose) -> DerivedKey {
        let cacheKey = CacheKey(keyID: root.id, purpose: purpose)
        if let key = cache.withLock({ $0[cacheKey] }) {
            return key
        }
        let material = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: root.material, info: Array(purpose.info.utf8), outputByteCount: 32)
        let key = DerivedKey(key: material, hmac: HMAC<SHA256>(key: material), aes: AESGCMKey(material))
        cache.withLock { cache in
            if cache.count >= Self.cacheLimit {
                cache.removeAll(keepingCapacity: true)
            }
            cache[cacheKey] = key
        }
        return key
    }

    static func dataInfo(group: UUID) -> String {
        "forecourt/v1/data/\(lowercased(group))"
    }

    static func lowercased(_ id: UUID) -> String {
        id.uuidString.lowercased()
    }

    static func header(keyID: UInt32) -> [UInt8] {
        [envelopeVersion, UInt8(keyID >> 24), UInt8(keyID >> 16 & 0xff), UInt8(keyID >> 8 & 0xff), UInt8(keyID & 0xff)]
    }

    /// Header, then group id, table, column and row id, each prefixed with its length as a
    /// big-endian UInt32, so no two contexts give the same bytes.
    static func authenticatedData(header: [UInt8], context: FieldContext) -> [UInt8] {
        var data: [UInt8] = []
        data.reserveCapacity(header.count + 4 * 4 + 16 * 2 + context.table.utf8.count + context.column.utf8.count)
        appendAuthenticatedData(
            to: &data, header: header, group: context.group, table: context.table, column: context.column, row: context.row)
        return data
    }

    /// Appends the authenticated data of `authenticatedData(header:context:)` to `data`.
    static func appendAuthenticatedData(
        to data: inout [UInt8], header: [UInt8], group: UUID, table: String, column: String, row: UUID
    ) {
        data.append(contentsOf: header)
        func append<Part: Collection<UInt8>>(_ part: Part) {
            withUnsafeBytes(of: UInt32(part.count).bigEndian) { data.append(contentsOf: $0) }
            data.append(contentsOf: part)
        }
        withUnsafeBytes(of: group.uuid) { append($0) }
        append(table.utf8)
        append(column.utf8)
        withUnsafeBytes(of: row.uuid) { append($0) }
    }

}
