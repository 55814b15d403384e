import ForecourtCore
import Foundation
import Postgres
import RPC
import Testing
import TestSupport

extension DeliveryIntegrationTests {
    /// `webhook.*` and `notification.list` as the contract says (docs/protocol.md).
    @Suite struct WebhookMethodTests {
        @Test func createListDeleteForGroupAdminsOnly() async throws {
            try await withTestDatabase { db in
                let world = try await DeliveryWorld.make(db, allowsInsecureWebhooks: false)
                let created = try await world.harness.call(
                    world.admin, "webhook.create",
                    ["url": "https://hooks.example.com/sms", "secret": "s3cret-s3cret-s3cret", "kinds": ["shipped", "delay"]]
                ).get()
                #expect(created["url"] == "https://hooks.example.com/sms")
                #expect(created["kinds"] == ["shipped", "delay"])
                #expect(created["secret"] == nil)
                let id = try #require(created["id"])

                let list = try await world.harness.call(world.admin, "webhook.list").get()
                #expect(list["items"]?.arrayValue?.count == 1)
                #expect(list["items"]?.arrayValue?.first?["id"] == id)
                #expect(list["items"]?.arrayValue?.first?["secret"] == nil)
                #expect(list["next"] == .null)

                // The secret is sealed at rest, bound to its row.
                let owner = try db.ownerConnection()
                defer { owner.close() }
                let stored: [UInt8] = try owner.query("SELECT secret FROM forecourt.webhooks").first!.decode(0)
                #expect(!String(decoding: stored, as: UTF8.self).contains("s3cret"))

                // Other roles may not.
                for role: Role in [.dealerManager, .sales, .crmSync, .auditor] {
                    let session = try await world.harness.session(authenticatedWith: world.fixture.key(role))
                    #expect(try requireFailure(await world.harness.call(session, "webhook.list")).code == -32002)
                }

                // Another group's webhook does not exist for this one.
                let other = try await DeliveryWorld.make(db, groupName: "Other")
                #expect(try requireFailure(await other.harness.call(other.admin, "webhook.delete", ["id": id])).code == -32003)
                #expect(try await other.harness.call(other.admin, "webhook.list").get()["items"] == [])

                _ = try await world.harness.call(world.admin, "webhook.delete", ["id": id]).get()
                #expect(try await world.harness.call(world.admin, "webhook.list").get()["items"] == [])
                #expect(try requireFailure(await world.harness.call(world.admin, "webhook.delete", ["id": id])).code == -32003)
            }
        }

        @Test func parametersAreChecked() async throws {
            try await withTestDatabase { db in
                let world = try await DeliveryWorld.make(db, allowsInsecureWebhooks: false)
                let good: JSONObject = ["url": "https://hooks.example.com/", "secret": "0123456789abcdef", "kinds": ["delay"]]
                func with(_ key: String, _ value: JSON) -> JSON {
                    var params = good
                    params.members.removeAll { $0.key == key }
                    params.members.append((key: key, value: value))
                    return .object(params)
                }
                let cases: [(JSON, String)] = [
                    (with("url", "http://hooks.example.com/"), "url"),
                    (with("url", "https://127.0.0.1/"), "url"),
                    (with("url", "https://192.168.0.10/"), "url"),
                    (with("url", "https://169.254.169.254/latest"), "url"),
                    (with("url", "https://[fe80::1]/"), "url"),
                    (with("url", "https://localhost:8443/"), "url"),
                    (with("secret", "short"), "secret"),
                    (with("secret", .string(String(repeating: "x", count: 201))), "secret"),
                    (with("kinds", []), "kinds"),
                    (with("kinds", ["delay", "delay"]), "kinds"),
                    (with("kinds", ["sms"]), "kinds[0]"),
                ]
                for (params, field) in cases {
                    let error = try requireFailure(await world.harness.call(world.admin, "webhook.create", params))
                    #expect(error.code == -32602, "\(params)")
                    #expect(error.field == field, "\(params)")
                }
                // At most 10 per group.
                for _ in 0..<10 { _ = try await world.harness.call(world.admin, "webhook.create", .object(good)).get() }
                let eleventh = try requireFailure(await world.harness.call(world.admin, "webhook.create", .object(good)))
                #expect(eleventh.code == -32004)
                // Pages.
                let first = try await world.harness.call(world.admin, "webhook.list", ["limit": 4]).get()
                #expect(first["items"]?.arrayValue?.count == 4)
                let second = try await world.harness.call(world.admin, "webhook.list", ["limit": 10, "after": first["next"]!]).get()
                #expect(second["items"]?.arrayValue?.count == 6)
                #expect(second["next"] == .null)
                let forged = try requireFailure(await world.harness.call(world.admin, "webhook.list", ["after": "AAAA"]))
                #expect(forged.code == -32602)
            }
        }

        @Test func notificationListPagesAndShowsLastError() async throws {
            try await withTestDatabase { db in
                let world = try await DeliveryWorld.make(db)
                let customer = try await world.customer(notifyEmail: true, notifySMS: true)
                let order = try await world.order(for: customer)
                // A second kind: the order is scheduled.
                _ = try await world.harness.call(
                    try await world.harness.session(authenticatedWith: world.fixture.key(.factory)), "order.record_event",
                    ["id": order["id"]!, "event": "scheduled", "occurred_at": .string(RFC3339.format(Date()))]
                ).get()
                let all = try await world.notifications(of: order)
                #expect(all.count == 4)
                #expect(all.allSatisfy { $0["last_error"] == .null && $0["status"] == "pending" })

                var seen: [JSON] = []
                var after: JSON?
                repeat {
                    var params: JSONObject = ["order_id": order["id"]!, "limit": 3]
                    if let after { params.members.append((key: "after", value: after)) }
                    let page = try await world.harness.call(world.sales, "notification.list", .object(params)).get()
                    seen += page["items"]?.arrayValue ?? []
                    after = page["next"] == .null ? nil : page["next"]
                } while after != nil
                #expect(seen.map { $0["id"] } == all.map { $0["id"] })
                let limit = try requireFailure(await world.harness.call(world.sales, "notification.list", ["order_id": order["id"]!, "limit": 0]))
                #expect(limit.code == -32602 && limit.field == "limit")

                // last_error is shown, never more than a code.
                let owner = try db.ownerConnection()
                defer { owner.close() }
                try owner.query("UPDATE forecourt.notifications SET last_error = 'smtp_451', attempts = 1 WHERE channel = 'email'")
                let after451 = try await world.notifications(of: order)
                #expect(after451.filter { $0["last_error"] == "smtp_451" }.count == 2)
                #expect(throws: (any Error).self) {
                    try owner.query("UPDATE forecourt.notifications SET last_error = 'Mailbox zoe@example.org unknown'")
                }
            }
        }
    }
}
