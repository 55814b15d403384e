import FieldCrypto
import Foundation
import Postgres

/// The pseudonym analysts see for a customer (`analytics.orders.customer_key`,
/// docs/analytics.md, "Privacy").
///
/// HMAC-SHA256 of the customer id's 16 bytes under a key derived for the customer's group from
/// the keyring's oldest root key (`FieldCipher.mac`, purpose `analytics/customer_key/<group>`).
/// The oldest key is never removed, so a rotation does not change the pseudonym; the group is
/// in the key, so the same id in two groups gives unrelated pseudonyms. The database stores
/// only the output, written with the customer: without the keyring it cannot be recomputed
/// from an id, nor mapped back to one.
public enum CustomerPseudonym {
    public static func key(cipher: FieldCipher, group: UUID, customer id: UUID) -> [UInt8] {
        key(macKey(cipher: cipher, group: group), customer: id)
    }

    /// The MAC key of `group`'s pseudonyms, for computing many (`key(_:customer:)`).
    public static func macKey(cipher: FieldCipher, group: UUID) -> FieldCipher.MACKey {
        cipher.macKey(purpose: "analytics/customer_key/\(group.uuidString.lowercased())")
    }

    /// The pseudonym of customer `id` under a key of `macKey(cipher:group:)`.
    public static func key(_ macKey: FieldCipher.MACKey, customer id: UUID) -> [UInt8] {
        withUnsafeBytes(of: id.uuid) { macKey.mac($0) }
    }

    /// `forecourt analyst backfill`: writes the pseudonym of every customer that has none (rows
    /// written before migration 0007, or by tools that bypass the service), in batches of
    /// `batchSize`, each its own short transaction; resumable. Runs on an owner connection.
    /// Returns how many customers it wrote.
    public static func backfill(
        connection: PostgresConnection, cipher: FieldCipher, batchSize: Int = 1000, progress: (Int) -> Void = { _ in }
    ) throws -> Int {
        var total = 0
        while true {
            let written = try connection.transaction { connection -> Int in
                let rows = try connection.query(
                    """
                    SELECT dealer_group_id, id FROM forecourt.customers WHERE customer_key IS NULL
                    ORDER BY dealer_group_id, id LIMIT \(batchSize) FOR UPDATE SKIP LOCKED
                    """
                ).rows
                guard !rows.isEmpty else { return 0 }
                var groups: [UUID] = []
                var ids: [UUID] = []
                var keys: [[UInt8]] = []
                for row in rows {
                    let group: UUID = try row.decode(0)
                    let id: UUID = try row.decode(1)
                    groups.append(group)
                    ids.append(id)
                    keys.append(key(cipher: cipher, group: group, customer: id))
                }
                // Only the pseudonym changes: not the version, so the change feed does not echo it.
                try connection.query(
                    """
                    UPDATE forecourt.customers c SET customer_key = u.key
                    FROM unnest(\(groups)::uuid[], \(ids)::uuid[], \(keys)::bytea[]) AS u(g, id, key)
                    WHERE c.dealer_group_id = u.g AND c.id = u.id AND c.customer_key IS NULL
                    """)
                return rows.count
            }
            if written == 0 { return total }
            total += written
            progress(total)
        }
    }
}
