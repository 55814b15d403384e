import FieldCrypto
import Foundation

/// What `customers` stores of a content: envelopes, blind indexes and the content MAC, all
/// under the newest root key.
struct SealedCustomer: Sendable {
    let id: UUID
    /// One envelope per `CustomerContent.encryptedColumns` entry (nil for an absent value).
    let envelopes: [[UInt8]?]
    let emailIndex: [UInt8]?
    let phoneIndex: [UInt8]?
    let nameIndex: [UInt8]
    let contentMAC: [UInt8]
    /// The analytics pseudonym (`CustomerPseudonym`), written when the row is inserted.
    let customerKey: [UInt8]
    let keyID: Int32
    let notifyEmail: Bool
    let notifySMS: Bool
}

/// Field encryption of one group's customers: envelopes bound to (group, `customers`,
/// column, row), blind indexes and the content MAC.
struct CustomerCrypto: Sendable {
    static let table = "customers"
    /// The keyed MAC over a whole content; its own blind-index kind, so its key is unrelated
    /// to the keys of the searchable indexes.
    static let contentKind = BlindIndexKind(rawValue: "customer_content")

    let cipher: FieldCipher
    let group: UUID
    /// The keys every write of this group uses, looked up once here rather than once per
    /// field or MAC (a batch of 1000 records made 14,000 lookups, each taking the cache's lock).
    private let sealing: FieldCipher.SealingKey
    private let emailKey: FieldCipher.MACKey
    private let phoneKey: FieldCipher.MACKey
    private let nameKey: FieldCipher.MACKey
    private let contentKey: FieldCipher.MACKey
    private let pseudonymKey: FieldCipher.MACKey

    init(cipher: FieldCipher, group: UUID) {
        self.cipher = cipher
        self.group = group
        sealing = cipher.sealingKey(group: group)
        emailKey = cipher.blindIndexKey(group: group, kind: .email)
        phoneKey = cipher.blindIndexKey(group: group, kind: .phone)
        nameKey = cipher.blindIndexKey(group: group, kind: .fullName)
        contentKey = cipher.blindIndexKey(group: group, kind: Self.contentKind)
        pseudonymKey = CustomerPseudonym.macKey(cipher: cipher, group: group)
    }

    func context(_ column: String, row: UUID) -> FieldContext {
        FieldContext(group: group, table: Self.table, column: column, row: row)
    }

    /// Seals a content for row `id` under the newest key. `contentMAC`, when the caller has
    /// already computed it (`contentMAC(_:)`), is not computed again.
    func seal(_ content: CustomerContent, id: UUID, contentMAC knownMAC: [UInt8]? = nil) throws -> SealedCustomer {
        let envelopes = try sealing.seal(
            content.encryptedValues, table: Self.table, columns: CustomerContent.encryptedColumns, row: id)
        return SealedCustomer(
            id: id, envelopes: envelopes,
            emailIndex: content.email.flatMap(Normalize.email).map(emailKey.mac),
            phoneIndex: content.phone.flatMap(Normalize.phone).map(phoneKey.mac),
            // Validation guarantees a name normalises; the raw value is a fallback that never matches a lookup.
            nameIndex: nameKey.mac(Normalize.fullName(content.fullName) ?? content.fullName),
            contentMAC: knownMAC ?? contentMAC(content),
            customerKey: CustomerPseudonym.key(pseudonymKey, customer: id),
            keyID: Int32(clamping: sealing.keyID), notifyEmail: content.notifyEmail, notifySMS: content.notifySMS)
    }

    /// Opens the envelopes of row `id` (in `encryptedColumns` order). Any failure is an error,
    /// never a missing value: a NULL column is an absent value, an envelope that does not
    /// open is `FieldCryptoError`.
    func open(_ envelopes: [[UInt8]?], id: UUID, notifyEmail: Bool, notifySMS: Bool) throws -> CustomerContent {
        var values: [String?] = []
        values.reserveCapacity(envelopes.count)
        for (column, envelope) in zip(CustomerContent.encryptedColumns, envelopes) {
            values.append(try envelope.map { try cipher.openString($0, context: context(column, row: id)) })
        }
        guard let content = CustomerContent(encryptedValues: values, notifyEmail: notifyEmail, notifySMS: notifySMS) else {
            throw FieldCryptoError.malformedEnvelope
        }
        return content
    }

    /// The content MAC under the newest key.
    func contentMAC(_ content: CustomerContent) -> [UInt8] {
        contentKey.mac(Self.canonical(content))
    }

    /// The content MAC under every key, newest first: a row not yet re-encrypted carries an
    /// older key's MAC.
    func contentMACCandidates(_ content: CustomerContent) -> [[UInt8]] {
        cipher.blindIndexCandidates(Self.canonical(content), group: group, kind: Self.contentKind)
    }

    /// An unambiguous text of a content: each value as `<length>:<text>` or `-` when absent,
    /// then the opt-ins, so no two contents give the same text.
    static func canonical(_ content: CustomerContent) -> String {
        let values = content.encryptedValues
        var text = ""
        text.reserveCapacity(values.reduce(2) { $0 + 6 + ($1?.utf8.count ?? 0) })
        for value in values {
            if let value {
                text.append(String(value.utf8.count))
                text.append(":")
                text.append(value)
                text.append("|")
            } else {
                text.append("-|")
            }
        }
        text += content.notifyEmail ? "1" : "0"
        text += content.notifySMS ? "1" : "0"
        return text
    }
}
