import FieldCrypto
import Foundation
import Postgres

/// `forecourt keyring reencrypt` for webhook signing secrets: reseals every secret sealed under
/// an older root key under the newest one (docs/operations.md, "Key rotation drills").
///
/// Without it a rotation would leave the secrets under the old key, which a leaked copy of the
/// old keyring would still open in the live database. Online and resumable like the customers'
/// pass: each batch is a short transaction that locks only its rows, in (group, id) order, and
/// a second run finds nothing left to do. The secret's plaintext never leaves this function.
public enum WebhookReencryption {
    /// What a run did.
    public struct Summary: Sendable, Equatable {
        public let rewritten: Int
        /// Webhooks whose secret did not open (ids only), left as they were.
        public let failedIDs: [UUID]
    }

    /// Runs on an owner connection (outside any transaction).
    public static func run(connection: PostgresConnection, cipher: FieldCipher, batchSize: Int = 500) throws -> Summary {
        var after: (group: UUID, id: UUID)? = nil
        var rewritten = 0
        var failed: [UUID] = []
        while true {
            let batch = try reencryptBatch(connection, cipher: cipher, after: after, limit: batchSize)
            guard let last = batch.last else { break }
            after = last
            rewritten += batch.rewritten
            failed += batch.failed
        }
        return Summary(rewritten: rewritten, failedIDs: failed)
    }

    private struct BatchResult {
        var last: (group: UUID, id: UUID)?
        var rewritten = 0
        var failed: [UUID] = []
    }

    /// One transaction: the next `limit` webhooks after `after`, each resealed if its key is old.
    private static func reencryptBatch(
        _ connection: PostgresConnection, cipher: FieldCipher, after: (group: UUID, id: UUID)?, limit: Int
    ) throws -> BatchResult {
        try connection.transaction { connection in
            let rows = try connection.query(
                """
                SELECT dealer_group_id, id, secret FROM forecourt.webhooks
                WHERE \(after?.group)::uuid IS NULL OR (dealer_group_id, id) > (\(after?.group), \(after?.id))
                ORDER BY dealer_group_id, id LIMIT \(limit) FOR UPDATE
                """
            ).rows
            var result = BatchResult()
            for row in rows {
                let group: UUID = try row.decode(0)
                let id: UUID = try row.decode(1)
                let secret: [UInt8] = try row.decode(2)
                result.last = (group, id)
                let context = FieldContext(group: group, table: Webhook.table, column: Webhook.secretColumn, row: id)
                let resealed: [UInt8]
                do {
                    guard try cipher.needsReencryption(secret) else { continue }
                    resealed = try cipher.reseal(secret, context: context)
                } catch is FieldCryptoError {
                    result.failed.append(id)
                    continue
                }
                try connection.query(
                    "UPDATE forecourt.webhooks SET secret = \(resealed) WHERE dealer_group_id = \(group) AND id = \(id)")
                result.rewritten += 1
            }
            return result
        }
    }
}
