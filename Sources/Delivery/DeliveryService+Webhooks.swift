import FieldCrypto
import ForecourtCore
import Foundation
import Notifications
import Postgres
import Storage

/// One webhook's delivery of an `sms` notification (`webhook_deliveries`).
struct WebhookDelivery: Sendable {
    let webhookID: UUID
    let url: String
    let sealedSecret: [UInt8]
    let attempts: Int
}

extension DeliveryService {
    /// An `sms` notification goes to each of its group's webhooks for its kind, each retried on
    /// its own; the notification is `sent` once all accepted it, `failed` once one failed for good.
    func deliverToWebhooks(_ context: NotificationContext) async throws {
        if let refusal = context.refusal { return try await record(context, outcome: refusal) }
        let group = context.group
        let id = context.id
        let kind = context.kind
        let firstAttempt = context.attempts == 0
        // The webhooks owed this notification (made on the first attempt) that are due now.
        let due = try await database.transaction(.group(group)) { connection -> [WebhookDelivery]? in
            if firstAttempt {
                let made = try connection.query(
                    """
                    INSERT INTO forecourt.webhook_deliveries (dealer_group_id, notification_id, webhook_id)
                    SELECT dealer_group_id, \(id), id FROM forecourt.webhooks
                    WHERE dealer_group_id = \(group) AND \(kind) = ANY(kinds)
                    ON CONFLICT DO NOTHING
                    """
                ).affectedRows
                let existing = try connection.query(
                    "SELECT 1 FROM forecourt.webhook_deliveries WHERE dealer_group_id = \(group) AND notification_id = \(id)"
                ).count
                if made == 0 && existing == 0 { return nil }
            }
            return try connection.query(
                """
                SELECT w.id, w.url, w.secret, d.attempts FROM forecourt.webhook_deliveries d
                JOIN forecourt.webhooks w ON w.dealer_group_id = d.dealer_group_id AND w.id = d.webhook_id
                WHERE d.dealer_group_id = \(group) AND d.notification_id = \(id) AND d.status = 'pending'
                    AND d.next_attempt_at <= now()
                ORDER BY w.created_at, w.id
                """
            ).rows.map { row in
                WebhookDelivery(webhookID: try row.decode(0), url: try row.decode(1), sealedSecret: try row.decode(2), attempts: try row.decode(3))
            }
        }
        guard let due else { return try await record(context, outcome: .permanent("no_webhook")) }
        let body = context.webhookBody
        for delivery in due {
            let outcome: DeliveryOutcome
            do {
                let secret = try cipher.open(
                    delivery.sealedSecret,
                    context: FieldContext(group: group, table: Webhook.table, column: Webhook.secretColumn, row: delivery.webhookID))
                outcome = await webhooks.post(url: delivery.url, secret: secret, notification: id, body: body)
            } catch {
                outcome = .permanent("secret")
            }
            let attempts = delivery.attempts + 1
            let (status, retryIn) = policy.next(after: outcome, attempts: attempts)
            let code = outcome.errorCode
            try await database.transaction(.group(group)) { connection in
                try connection.query(
                    """
                    UPDATE forecourt.webhook_deliveries SET status = \(status), attempts = \(attempts), last_error = \(code),
                        sent_at = CASE WHEN \(status) = 'sent' THEN now() END,
                        next_attempt_at = CASE WHEN \(retryIn)::float8 IS NULL THEN next_attempt_at
                            ELSE now() + \(retryIn) * interval '1 second' END
                    WHERE dealer_group_id = \(group) AND notification_id = \(id) AND webhook_id = \(delivery.webhookID)
                    """)
            }
        }
        // The notification's state follows its deliveries (a deleted webhook is owed nothing).
        let summary = try await database.transaction(.group(group), readOnly: true) { connection in
            try connection.query(
                """
                SELECT count(*)::int8, count(*) FILTER (WHERE status = 'failed')::int8, count(*) FILTER (WHERE status = 'pending')::int8,
                    min(next_attempt_at) FILTER (WHERE status = 'pending'),
                    (array_agg(last_error ORDER BY status = 'failed' DESC, next_attempt_at DESC) FILTER (WHERE last_error IS NOT NULL))[1]
                FROM forecourt.webhook_deliveries WHERE dealer_group_id = \(group) AND notification_id = \(id)
                """
            ).first.map { row in
                (total: try row.decode(0, as: Int.self), failed: try row.decode(1, as: Int.self),
                 pending: try row.decode(2, as: Int.self), next: try row.decode(3, as: Date?.self),
                 error: try row.decode(4, as: String?.self))
            }
        }
        guard let summary else { return }
        if summary.total == 0 {
            // Every webhook it was owed to has been deleted since.
            try await record(context, outcome: .permanent("no_webhook"))
        } else if summary.failed > 0 {
            try await record(context, outcome: .permanent(summary.error ?? "http_error"))
        } else if summary.pending > 0 {
            // Not final: the notification waits for its earliest delivery that is due again.
            // Its own attempts count rounds; each delivery keeps its own count for the limit.
            try await recordPending(context, error: summary.error, retryAt: summary.next ?? Date())
        } else {
            try await record(context, outcome: .sent)
        }
    }

    /// A round of webhook deliveries that left some for later: the notification stays pending
    /// until the earliest of them is due.
    private func recordPending(_ context: NotificationContext, error: String?, retryAt: Date) async throws {
        let instance = queue.instance
        let retryIn = max(retryAt.timeIntervalSinceNow, 0)
        try await database.transaction(.group(context.group)) { connection in
            try connection.query(
                """
                UPDATE forecourt.notifications SET attempts = attempts + 1, last_error = \(error),
                    next_attempt_at = now() + \(retryIn) * interval '1 second', claimed_by = NULL, claimed_until = NULL
                WHERE dealer_group_id = \(context.group) AND id = \(context.id) AND claimed_by = \(instance)
                """)
        }
        metrics.count(outcome: .temporary(error ?? ""), status: "pending", channel: context.channel)
    }
}
