import ForecourtCore
import Foundation
import Postgres
import RPC

/// A dealer group's webhook (docs/protocol.md, "webhooks"): where its `sms` notifications of
/// some kinds are POSTed. The signing secret is sealed at rest and never leaves the service.
public struct Webhook: Sendable, Equatable {
    public let id: UUID
    public let url: String
    public let kinds: [String]
    public let createdAt: Date
    let createdMicros: Int

    static let columns = "id, url, kinds, created_at, (extract(epoch FROM created_at) * 1000000)::int8"

    init(row: PostgresRow) throws {
        id = try row.decode(0)
        url = try row.decode(1)
        kinds = try row.decode(2)
        createdAt = try row.decode(3)
        createdMicros = try row.decode(4)
    }

    /// At most this many webhooks per group.
    public static let maximumPerGroup = 10
    /// Secrets are 16 to 200 characters.
    public static let secretLength = 16...200

    /// The `FieldContext` table of sealed secrets.
    public static let table = "webhooks"
    public static let secretColumn = "secret"
}

extension Webhook: JSONRepresentable {
    public var json: JSON {
        ["id": id.json, "url": .string(url), "kinds": .array(kinds.map { .string($0) }), "created_at": createdAt.json]
    }
}

/// The checked parameters of `webhook.create`.
public struct NewWebhook: Sendable {
    public let url: String
    public let secret: String
    public let kinds: [NotificationKind]

    /// Reads `url`, `secret` and `kinds` (a non-empty subset of the six kinds, each once).
    static func decode(_ params: Params, allowInsecure: Bool) throws -> NewWebhook {
        let url = try WebhookURL(try params.string("url", maxLength: 2000), allowInsecure: allowInsecure)
        let secret = try params.string("secret", maxLength: Webhook.secretLength.upperBound)
        guard Webhook.secretLength.contains(secret.count) else {
            throw params.invalid("secret", "must be 16 to 200 characters")
        }
        guard let names = try params.optionalStrings("kinds", count: 1...NotificationKind.allCases.count, maxLength: 40)
        else { throw params.invalid("kinds", "is required") }
        var kinds: [NotificationKind] = []
        for (index, name) in names.enumerated() {
            guard let kind = NotificationKind(rawValue: name) else {
                throw DomainError.invalidParams(
                    params.fieldPath("kinds") + "[\(index)]",
                    "must be one of " + NotificationKind.allCases.map(\.rawValue).joined(separator: ", "))
            }
            guard !kinds.contains(kind) else { throw params.invalid("kinds", "must not repeat a kind") }
            kinds.append(kind)
        }
        return NewWebhook(url: url.text, secret: secret, kinds: kinds)
    }
}
