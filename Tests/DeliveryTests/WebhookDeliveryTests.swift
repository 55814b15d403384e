import Crypto
import Delivery
import ForecourtApp
import ForecourtCore
import Foundation
import Postgres
import RPC
import Testing
import TestSupport

extension DeliveryIntegrationTests {
    /// `sms` notifications end to end: outbox → dispatcher → signed POSTs to a real receiver.
    @Suite struct WebhookDeliveryTests {
        /// A receiver answering 500 twice is retried until it accepts; the signature verifies with
        /// the secret; the body is the contract's; a second webhook of the group for the same kind
        /// gets its own delivery, retried on its own.
        @Test func retriedSignedAndEachWebhookOnItsOwn() async throws {
            try await withTestDatabase { db in
                let flaky = try await Receiver.start(script: [500, 500])
                defer { flaky.stop() }
                let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tls-\(UUID().uuidString)").path
                defer { try? FileManager.default.removeItem(atPath: directory) }
                let tls = try DevCertificates.ensure(in: directory)
                let steady = try await Receiver.start(tls: (tls.certificate, tls.privateKey))
                defer { steady.stop() }

                let world = try await DeliveryWorld.make(db)
                let secret = "whsec-0123456789-abcdef"
                _ = try await world.harness.call(
                    world.admin, "webhook.create",
                    ["url": .string("http://127.0.0.1:\(flaky.port)/sms?src=forecourt"), "secret": .string(secret),
                     "kinds": ["order_confirmation"]]
                ).get()
                _ = try await world.harness.call(
                    world.admin, "webhook.create",
                    ["url": .string("https://localhost:\(steady.port)/hook"), "secret": "another-secret-value",
                     "kinds": ["order_confirmation", "shipped"]]
                ).get()
                // Not for this kind: gets nothing.
                _ = try await world.harness.call(
                    world.admin, "webhook.create",
                    ["url": .string("http://127.0.0.1:\(steady.port)/never"), "secret": "a-third-secret-value", "kinds": ["delay"]]
                ).get()
                let customer = try await world.customer(name: "Ana Souza", phone: "+44 20 7946 0958", notifyEmail: false, notifySMS: true)
                let order = try await world.order(for: customer)
                let notification = try #require(try await world.notifications(of: order).first)
                #expect(notification["channel"] == "sms")

                var settings = quickSettings(ca: tls.ca)
                settings.maximumAttempts = 5
                let dispatcher = try world.dispatcher(settings)
                try await run([dispatcher]) { try await notificationRows(db).first?.status == "sent" }

                let listed = try #require(try await world.notifications(of: order).first)
                #expect(listed["status"] == "sent")
                #expect(listed["attempts"] == 3)  // three rounds: the flaky receiver accepted on the third
                let flakyRequests = flaky.requests
                #expect(flakyRequests.map { $0["status"] } == [500, 500, 200])
                #expect(steady.requests.count == 1)  // accepted at once, never sent again
                #expect(steady.requests.first?["path"] == "/hook")

                for request in flakyRequests + steady.requests {
                    let headers = try #require(request["headers"])
                    #expect(headers["Content-Type"] == "application/json")
                    #expect(headers["X-Forecourt-Notification"] == notification["id"])
                    let body = try #require(request["body"]?.stringValue)
                    let signature = try #require(headers["X-Forecourt-Signature"]?.stringValue)
                    let parts = Dictionary(uniqueKeysWithValues: signature.split(separator: ",").map {
                        let pair = $0.split(separator: "=", maxSplits: 1)
                        return (String(pair[0]), String(pair[1]))
                    })
                    let time = try #require(parts["t"].flatMap { Int($0) })
                    #expect(abs(Double(time) - Date().timeIntervalSince1970) < 120)
                    let key = request["path"] == "/hook" ? "another-secret-value" : secret
                    let expected = HMAC<SHA256>.authenticationCode(for: Array("\(time).\(body)".utf8), using: SymmetricKey(data: Array(key.utf8)))
                    #expect(parts["v1"] == expected.map { String(format: "%02x", $0) }.joined(), "the signature verifies")
                    let json = try JSONParser().parse(body)
                    #expect(json["id"] == notification["id"])
                    #expect(json["kind"] == "order_confirmation")
                    #expect(json["channel"] == "sms")
                    #expect(json["order"]?["order_number"] == order["order_number"])
                    #expect(json["order"]?["dealer_id"] == order["dealer_id"])
                    #expect(json["order"]?["stage"] == "ordered")
                    #expect(json["order"]?["eta"] == .null)
                    #expect(json["customer"] == ["id": customer.json, "full_name": "Ana Souza", "phone": "+442079460958"])
                }
                #expect(flakyRequests.first?["path"] == "/sms?src=forecourt")
            }
        }

        /// A 4xx (other than 408 and 429) fails the notification at once; a redirect is not
        /// followed; an sms notification without a webhook for its kind fails with `no_webhook`.
        @Test func permanentRefusalsRedirectsAndNoWebhook() async throws {
            try await withTestDatabase { db in
                let gone = try await Receiver.start(script: [410])
                defer { gone.stop() }
                let moved = try await Receiver.start(script: [302])
                defer { moved.stop() }
                let world = try await DeliveryWorld.make(db)
                let customer = try await world.customer(notifyEmail: false, notifySMS: true)
                // Nothing for order_confirmation yet.
                let first = try await world.order(for: customer)
                let dispatcher = try world.dispatcher(quickSettings())
                try await run([dispatcher]) { try await notificationRows(db).allSatisfy { $0.status != "pending" } }
                #expect(try await world.notifications(of: first).first?["last_error"] == "no_webhook")

                _ = try await world.harness.call(
                    world.admin, "webhook.create",
                    ["url": .string("http://127.0.0.1:\(gone.port)/"), "secret": "0123456789abcdef", "kinds": ["order_confirmation"]]
                ).get()
                let second = try await world.order(for: customer)
                try await run([try world.dispatcher(quickSettings())]) { try await notificationRows(db).allSatisfy { $0.status != "pending" } }
                let failed = try #require(try await world.notifications(of: second).first)
                #expect(failed["status"] == "failed")
                #expect(failed["last_error"] == "http_410")
                #expect(failed["attempts"] == 1)
                #expect(gone.requests.count == 1)

                let list = try await world.harness.call(world.admin, "webhook.list").get()
                _ = try await world.harness.call(world.admin, "webhook.delete", ["id": list["items"]!.arrayValue![0]["id"]!]).get()
                _ = try await world.harness.call(
                    world.admin, "webhook.create",
                    ["url": .string("http://127.0.0.1:\(moved.port)/"), "secret": "0123456789abcdef", "kinds": ["order_confirmation"]]
                ).get()
                let third = try await world.order(for: customer)
                try await run([try world.dispatcher(quickSettings())]) { try await notificationRows(db).allSatisfy { $0.status != "pending" } }
                #expect(try await world.notifications(of: third).first?["last_error"] == "http_302")
                #expect(moved.requests.count == 1)  // /elsewhere was never asked for
            }
        }
    }
}
