import FieldCrypto
import Foundation
import Postgres

/// `forecourt keyring reencrypt` for customers: rewrites every customer sealed under an
/// older root key under the newest one, with its blind indexes and content MAC.
///
/// Online: each batch is its own short transaction that locks only its rows (`FOR UPDATE`,
/// so a concurrent `customer.update` waits a moment rather than being lost). Resumable: it
/// selects rows by `key_id < newest`, so a second run (after an interruption) picks up what
/// is left. Content and `version` do not change, so the change feed does not see it (the
/// trigger keeps the stamp when the version stays).
public enum CustomerReencryption {
    /// Progress after one batch.
    public struct Progress: Sendable {
        public let group: UUID
        /// Rows rewritten in this group so far.
        public let groupRewritten: Int
        /// Rows rewritten in every group so far.
        public let totalRewritten: Int
        /// Rows that could not be opened (so were left as they were), in every group so far.
        public let failed: Int
    }

    /// What a run did.
    public struct Summary: Sendable {
        public let rewritten: Int
        /// Customers whose envelopes did not open (ids only: they are not personal data).
        public let failedIDs: [UUID]
    }

    /// Runs on an owner connection (outside any transaction), group by group.
    public static func run(
        connection: PostgresConnection,
        cipher: FieldCipher,
        batchSize: Int = 500,
        progress: (Progress) -> Void = { _ in }
    ) throws -> Summary {
        let newest = Int32(clamping: cipher.newestKeyID)
        let groups = try connection.query(
            "SELECT DISTINCT dealer_group_id FROM forecourt.customers WHERE key_id < \(newest) ORDER BY 1"
        ).rows.map { try $0.decode(0, as: UUID.self) }
        var total = 0
        var failed: [UUID] = []
        for group in groups {
            let crypto = CustomerCrypto(cipher: cipher, group: group)
            var after: UUID? = nil
            var inGroup = 0
            while true {
                let batch = try reencryptBatch(
                    connection, crypto: crypto, group: group, newest: newest, after: after, limit: batchSize)
                guard let last = batch.last else { break }
                after = last
                inGroup += batch.rewritten
                total += batch.rewritten
                failed += batch.failed
                progress(Progress(group: group, groupRewritten: inGroup, totalRewritten: total, failed: failed.count))
            }
        }
        return Summary(rewritten: total, failedIDs: failed)
    }

    private struct BatchResult {
        var last: UUID?
        var rewritten = 0
        var failed: [UUID] = []
    }

    /// One transaction: the next `limit` old rows of the group after `after`, in id order.
    private static func reencryptBatch(
        _ connection: PostgresConnection, crypto: CustomerCrypto, group: UUID, newest: Int32, after: UUID?, limit: Int
    ) throws -> BatchResult {
        try connection.transaction { connection in
            let rows = try connection.query(
                """
                SELECT id, full_name, email, phone, address_line1, address_line2, city, region, postal_code, country,
                    notify_email, notify_sms
                FROM forecourt.customers
                WHERE dealer_group_id = \(group) AND key_id < \(newest) AND (\(after)::uuid IS NULL OR id > \(after))
                ORDER BY id LIMIT \(limit) FOR UPDATE
                """
            ).rows
            var result = BatchResult()
            var sealed: [SealedCustomer] = []
            for row in rows {
                let id: UUID = try row.decode(0)
                result.last = id
                var envelopes: [[UInt8]?] = []
                for column in 0..<CustomerContent.encryptedColumns.count {
                    envelopes.append(try row.decode(1 + column, as: [UInt8]?.self))
                }
                do {
                    let content = try crypto.open(
                        envelopes, id: id, notifyEmail: try row.decode(10), notifySMS: try row.decode(11))
                    sealed.append(try crypto.seal(content, id: id))
                } catch is FieldCryptoError {
                    result.failed.append(id)
                }
            }
            if !sealed.isEmpty {
                try CustomerService.overwrite(connection, group: group, sealed.map { ($0, nil) }, as: .reencryption)
                result.rewritten = sealed.count
            }
            return result
        }
    }
}
