import Customers
import FieldCrypto
import ForecourtCore
import Foundation
import Postgres
import RPC
import Storage

/// What a message about one notification is made of, read at send time in the notification's
/// own group scope: the order, its dealer and group, and the customer decrypted. It lives in
/// memory for one attempt; nothing of it is stored, logged or put in `last_error`.
struct NotificationContext: Sendable {
    let id: UUID
    let group: UUID
    let kind: String
    let channel: String
    let attempts: Int
    let createdAt: Date
    let orderID: UUID
    let orderNumber: String
    let dealerID: UUID
    let stage: String
    let eta: String?
    let scheduledWeek: String?
    let vinLast8: String?
    let model: String
    let dealerName: String
    let groupName: String
    let customerID: UUID
    /// Nil for an erased customer, or one whose fields the keyring cannot open (`unreadable`).
    let customer: CustomerContent?
    /// Why the customer's fields could not be opened, as the attempt's outcome: a key the
    /// keyring no longer holds may come back (retried, `key_unavailable`); a field that fails
    /// authentication will not (`undecryptable`).
    let unreadable: DeliveryOutcome?

    /// Reads the context of a notification this instance holds the lease of; nil when it is
    /// no longer pending under our lease (erased meanwhile, or our lease ran out and another
    /// instance took it).
    static func load(
        _ connection: PostgresConnection, group: UUID, id: UUID, instance: UUID, cipher: FieldCipher
    ) throws -> NotificationContext? {
        guard let row = try connection.query(loadQuery(group: group, id: id, instance: instance)).first else { return nil }
        let customerID: UUID = try row.decode(16)
        var customer: Customer?
        var unreadable: DeliveryOutcome?
        do {
            customer = try CustomerService.read(connection, group: group, id: customerID, cipher: cipher)
        } catch let error as FieldCryptoError {
            unreadable = if case .unknownKeyID = error { .temporary("key_unavailable") } else { .permanent("undecryptable") }
        }
        let year: Int = try row.decode(12)
        let trim: String? = try row.decode(13)
        return NotificationContext(
            id: id, group: group, kind: try row.decode(0), channel: try row.decode(1), attempts: try row.decode(2),
            createdAt: try row.decode(3), orderID: try row.decode(4), orderNumber: try row.decode(5),
            dealerID: try row.decode(6), stage: try row.decode(7), eta: try row.decode(8), scheduledWeek: try row.decode(9),
            vinLast8: try row.decode(10), model: [try row.decode(11, as: String.self), String(year), trim].compactMap { $0 }.joined(separator: " "),
            dealerName: try row.decode(14), groupName: try row.decode(15), customerID: customerID,
            customer: customer?.content, unreadable: unreadable)
    }

    /// The notification with its order, dealer and group, if our lease on it still runs. The
    /// lease alone says it is pending (migration 0017's check): with `status = 'pending'` stated
    /// too, the planner could read the partial index `notifications_due_channel` instead of the primary
    /// key, the whole backlog per lookup (docs/performance.md, "The dispatcher's lookups by
    /// primary key").
    static func loadQuery(group: UUID, id: UUID, instance: UUID) -> PostgresQuery {
        """
        SELECT n.kind, n.channel, n.attempts, n.created_at, o.id, o.order_number, o.dealer_id, o.stage,
            o.eta::text, o.scheduled_week, o.vin_last8, o.model_code, o.model_year, o.model_trim, d.name, g.name,
            o.customer_id
        FROM forecourt.notifications n
        JOIN forecourt.orders o ON o.dealer_group_id = n.dealer_group_id AND o.id = n.order_id
        JOIN forecourt.dealers d ON d.dealer_group_id = o.dealer_group_id AND d.id = o.dealer_id
        JOIN forecourt.dealer_groups g ON g.id = n.dealer_group_id
        WHERE n.dealer_group_id = \(group) AND n.id = \(id) AND n.claimed_by = \(instance) AND n.claimed_until > now()
        """
    }

    /// The outcome decided before anything is sent: a customer the keyring cannot open, an
    /// erased customer, one who no longer wants this channel, or one without an address on it.
    var refusal: DeliveryOutcome? {
        if let unreadable { return unreadable }
        guard let customer else { return .permanent("erased") }
        switch channel {
        case "email":
            if !customer.notifyEmail { return .permanent("opted_out") }
            if customer.email == nil { return .permanent("no_address") }
        default:
            if !customer.notifySMS { return .permanent("opted_out") }
            if customer.phone == nil { return .permanent("no_address") }
        }
        return nil
    }

    /// The stage as a reader says it (`final_inspection` → `final inspection`).
    var stageText: String { stage.replacingOccurrences(of: "_", with: " ") }

    /// The values the templates see.
    var templateValues: [String: String] {
        var values = [
            "customer_name": customer?.fullName ?? "", "order_number": orderNumber, "model": model, "stage": stageText,
            "dealer_name": dealerName, "group_name": groupName, "kind": kind,
        ]
        if let eta { values["eta"] = eta }
        if let scheduledWeek { values["scheduled_week"] = scheduledWeek }
        if let vinLast8 { values["vin_last8"] = vinLast8 }
        return values
    }

    /// `Subject`: the kind and the order number.
    var subject: String {
        let title =
            switch kind {
            case "order_confirmation": "Order confirmed"
            case "production_scheduled": "Production scheduled"
            case "vin_assigned": "VIN assigned"
            case "shipped": "Your vehicle has shipped"
            case "delivered": "Delivered"
            case "delay": "Delay"
            default: kind
            }
        return "\(title): order \(orderNumber)"
    }

    /// The email of this notification (channel `email`, customer not erased).
    func mail(from sender: String) -> MailMessage? {
        guard let customer, let address = customer.email else { return nil }
        var values = templateValues
        values["subject"] = subject
        let templates = MessageTemplates.shared.library
        let textIntro = templates.render(values, withTemplate: "\(kind).txt") ?? ""
        let htmlIntro = templates.render(values, withTemplate: "\(kind).html") ?? ""
        values["message"] = textIntro.trimmingCharacters(in: .whitespacesAndNewlines)
        let text = templates.render(values, withTemplate: "layout.txt") ?? ""
        values["message"] = htmlIntro.trimmingCharacters(in: .whitespacesAndNewlines)
        let html = templates.render(values, withTemplate: "layout.html") ?? ""
        return MailMessage(
            from: .init(name: groupName, address: sender), to: .init(name: customer.fullName, address: address),
            subject: subject, messageID: MailMessage.makeMessageID(notification: id, from: sender), notificationID: id,
            text: text.trimmingCharacters(in: .whitespacesAndNewlines) + "\n",
            html: html.trimmingCharacters(in: .whitespacesAndNewlines) + "\n")
    }

    /// The JSON body of a webhook delivery (docs/protocol.md, "Delivery").
    var webhookBody: [UInt8] {
        let body: JSON = [
            "id": id.json, "kind": .string(kind), "channel": .string(channel), "created_at": createdAt.json,
            "order": [
                "id": orderID.json, "order_number": .string(orderNumber), "dealer_id": dealerID.json,
                "stage": .string(stage), "eta": eta.json,
            ],
            "customer": ["id": customerID.json, "full_name": customer?.fullName.json ?? .null, "phone": customer?.phone.json ?? .null],
        ]
        return JSONWriter.write(body)
    }
}
