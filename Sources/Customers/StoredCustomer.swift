import Foundation
import Postgres

/// A `customers` row as stored: envelopes still sealed. Decrypting it is `CustomerCrypto`'s.
struct StoredCustomer: Sendable {
    let id: UUID
    let dealerGroupID: UUID
    let externalRef: String?
    let keyID: Int?
    let envelopes: [[UInt8]?]
    let notifyEmail: Bool
    let notifySMS: Bool
    let version: Int
    let createdAt: Date
    let updatedAt: Date
    let erased: Bool
    /// The change-feed position of the row's latest change: (transaction id, sequence).
    let changeXID: UInt64
    let changeSeq: Int
    /// The principal whose change it was (nil for operator commands).
    let changedBy: UUID?
    let contentMAC: [UInt8]?
    let sourceUpdatedAt: Date?

    static let columns = """
        id, dealer_group_id, external_ref, key_id, full_name, email, phone, address_line1, address_line2, city, region, \
        postal_code, country, notify_email, notify_sms, version, created_at, updated_at, erased_at IS NOT NULL, \
        change_xid::text AS change_xid_text, change_seq, changed_by, content_mac, source_updated_at
        """

    /// Decodes a row selected with `columns`, starting at column `offset`.
    init(row: PostgresRow, offset: Int = 0) throws {
        id = try row.decode(offset + 0)
        dealerGroupID = try row.decode(offset + 1)
        externalRef = try row.decode(offset + 2)
        keyID = try row.decode(offset + 3)
        var envelopes: [[UInt8]?] = []
        for column in 0..<CustomerContent.encryptedColumns.count {
            envelopes.append(try row.decode(offset + 4 + column, as: [UInt8]?.self))
        }
        self.envelopes = envelopes
        notifyEmail = try row.decode(offset + 13)
        notifySMS = try row.decode(offset + 14)
        version = try row.decode(offset + 15)
        createdAt = try row.decode(offset + 16)
        updatedAt = try row.decode(offset + 17)
        erased = try row.decode(offset + 18)
        let xid: String = try row.decode(offset + 19)
        guard let changeXID = UInt64(xid) else { throw PostgresError(.decoding, context: "change_xid") }
        self.changeXID = changeXID
        changeSeq = try row.decode(offset + 20)
        changedBy = try row.decode(offset + 21)
        contentMAC = try row.decode(offset + 22)
        sourceUpdatedAt = try row.decode(offset + 23)
    }

    /// The customer, decrypted; erased customers have no content to decrypt.
    func open(_ crypto: CustomerCrypto) throws -> Customer {
        let content = erased ? nil : try crypto.open(envelopes, id: id, notifyEmail: notifyEmail, notifySMS: notifySMS)
        return customer(content)
    }

    /// The customer with a content already known (just written).
    func customer(_ content: CustomerContent?) -> Customer {
        Customer(
            id: id, dealerGroupID: dealerGroupID, externalRef: externalRef, content: erased ? nil : content,
            version: version, createdAt: createdAt, updatedAt: updatedAt)
    }
}
