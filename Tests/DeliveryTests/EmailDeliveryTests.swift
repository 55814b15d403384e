import Delivery
import ForecourtApp
import FieldCrypto
import ForecourtCore
import Foundation
import Postgres
import RPC
import Testing
import TestSupport

extension DeliveryIntegrationTests {
    /// Email end to end: outbox → dispatcher → our SMTP client → a real relay (aiosmtpd).
    @Suite struct EmailDeliveryTests {
        /// STARTTLS with a dev certificate, AUTH, non-ASCII names: each message arrives once, with
        /// the contract's headers and a body naming the dealer, order number, stage and ETA.
        @Test func emailArrivesOnceWithHeadersAndContent() async throws {
            try await withTestDatabase { db in
                let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tls-\(UUID().uuidString)").path
                defer { try? FileManager.default.removeItem(atPath: directory) }
                let tls = try DevCertificates.ensure(in: directory)
                let relay = try await Relay.start(tls: (tls.certificate, tls.privateKey), auth: "mailer:p@ss w0rd")
                defer { relay.stop() }
                let world = try await DeliveryWorld.make(db, groupName: "Groupe Étoile")
                let customer = try await world.customer(name: "Zoë Ångström-Müller", email: "zoe@example.org")
                let order = try await world.order(for: customer)
                let number = try #require(order["order_number"]?.stringValue)

                let dispatcher = try world.dispatcher(
                    quickSettings(
                        relay: try SMTPRelay(url: "smtp://mailer:p%40ss%20w0rd@localhost:\(relay.port)"), ca: tls.ca))
                try await run([dispatcher]) {
                    let rows = try await notificationRows(db)
                    return relay.count >= 1 && rows.first?.status == "sent"
                }

                let messages = relay.messages
                try #require(messages.count == 1)
                let message = messages[0]
                let notification = try #require(try await world.notifications(of: order).first)
                #expect(notification["status"] == "sent")
                #expect(notification["attempts"] == 1)
                #expect(notification["sent_at"] != .null)
                #expect(notification["last_error"] == .null)
                #expect(message["tls"] == true)
                #expect(message["auth"] == true)
                #expect(message["mail_from"] == "orders@forecourt.test")
                #expect(message["rcpt_tos"] == ["zoe@example.org"])
                #expect(message["to"] == "Zoë Ångström-Müller <zoe@example.org>")
                #expect(message["from"] == "Groupe Étoile <orders@forecourt.test>")
                #expect(message["subject"] == .string("Order confirmed: order \(number)"))
                #expect(message["notification"] == notification["id"])
                #expect(message["content_type"] == "multipart/alternative")
                #expect(message["message_id"]?.stringValue?.hasSuffix("@forecourt.test>") == true)
                #expect(message["date"]?.stringValue?.hasSuffix("+0000") == true)
                #expect((message["max_line"]?.intValue ?? 999) <= 78)
                let dealer = "Dealer 0"
                for part in ["text", "html"] {
                    let body = try #require(message[part]?.stringValue)
                    #expect(body.contains("Zoë Ångström-Müller"), "\(part)")
                    #expect(body.contains(number), "\(part)")
                    #expect(body.contains(dealer), "\(part)")
                    #expect(body.contains("Groupe Étoile") || body.contains("Groupe &Eacute;toile"), "\(part)")
                    #expect(body.contains("ordered"), "\(part): the stage")
                    #expect(body.contains("not yet known"), "\(part): the ETA")
                }
            }
        }

        /// Implicit TLS (`smtps://`) and plain SMTP on the same host (`?tls=off`); a relay that
        /// offers no STARTTLS is refused when it is required (`tls`, retried).
        @Test func implicitTLSPlainAndMissingSTARTTLS() async throws {
            try await withTestDatabase { db in
                let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tls-\(UUID().uuidString)").path
                defer { try? FileManager.default.removeItem(atPath: directory) }
                let tls = try DevCertificates.ensure(in: directory)
                let implicit = try await Relay.start(tls: (tls.certificate, tls.privateKey), implicitTLS: true)
                defer { implicit.stop() }
                let plain = try await Relay.start()
                defer { plain.stop() }
                let world = try await DeliveryWorld.make(db)

                _ = try await world.order(for: try await world.customer())
                let smtps = try world.dispatcher(quickSettings(relay: try SMTPRelay(url: "smtps://localhost:\(implicit.port)"), ca: tls.ca))
                try await run([smtps]) { implicit.count >= 1 }
                #expect(implicit.count == 1)
                #expect(implicit.messages.first?["tls"] == true)

                _ = try await world.order(for: try await world.customer())
                // STARTTLS required, but this relay does not offer it: nothing is sent in clear.
                let strict = try world.dispatcher(quickSettings(relay: try SMTPRelay(url: "smtp://127.0.0.1:\(plain.port)")))
                try await run([strict], timeout: .seconds(3)) { try await notificationRows(db).contains { $0.lastError == "tls" } }
                #expect(plain.messages.isEmpty)
                #expect(try await notificationRows(db).contains { $0.lastError == "tls" && $0.status == "pending" })

                let clear = try world.dispatcher(quickSettings(relay: try SMTPRelay(url: "smtp://127.0.0.1:\(plain.port)?tls=off")))
                try await run([clear]) { plain.count >= 1 }
                #expect(plain.count == 1)
                #expect(plain.messages.first?["tls"] == false)
            }
        }

        @Test func relayAnswering451TwiceThenAcceptingGivesSentAfterThreeAttempts() async throws {
            try await withTestDatabase { db in
                let relay = try await Relay.start(script: [451, 451])
                defer { relay.stop() }
                let world = try await DeliveryWorld.make(db)
                let order = try await world.order(for: try await world.customer())
                let dispatcher = try world.dispatcher(quickSettings(relay: try SMTPRelay(url: "smtp://127.0.0.1:\(relay.port)?tls=off")))
                try await run([dispatcher]) { try await notificationRows(db).first?.status == "sent" }
                let notification = try #require(try await world.notifications(of: order).first)
                #expect(notification["status"] == "sent")
                #expect(notification["attempts"] == 3)
                #expect(relay.count == 1)
            }
        }

        @Test func relayAnswering550FailsAtOnce() async throws {
            try await withTestDatabase { db in
                let relay = try await Relay.start(script: [550, 550, 550])
                defer { relay.stop() }
                let world = try await DeliveryWorld.make(db)
                let order = try await world.order(for: try await world.customer())
                let dispatcher = try world.dispatcher(quickSettings(relay: try SMTPRelay(url: "smtp://127.0.0.1:\(relay.port)?tls=off")))
                try await run([dispatcher]) { try await notificationRows(db).first?.status == "failed" }
                let notification = try #require(try await world.notifications(of: order).first)
                #expect(notification["status"] == "failed")
                #expect(notification["attempts"] == 1)
                #expect(notification["last_error"] == "smtp_550")
                #expect(relay.messages.isEmpty)
            }
        }

        /// Only opted-in customers get anything: a customer who opted out gets no notification at
        /// all, one who opts out after it was queued gets nothing sent; an erased customer's
        /// pending notifications fail as `erased`. No address or body is in a dump of the database.
        @Test func optOutErasureAndNothingInTheDump() async throws {
            try await withTestDatabase { db in
                let relay = try await Relay.start()
                defer { relay.stop() }
                let world = try await DeliveryWorld.make(db)
                let never = try await world.customer(name: "Never Mailed", email: "never@example.org", notifyEmail: false)
                let neverOrder = try await world.order(for: never)
                #expect(try await world.notifications(of: neverOrder).isEmpty)

                let changed = try await world.customer(name: "Changed Mind", email: "changed@example.org")
                let changedOrder = try await world.order(for: changed)
                let current = try await world.harness.call(world.sales, "customer.get", ["id": changed.json]).get()
                _ = try await world.harness.call(
                    world.sales, "customer.update", ["id": changed.json, "version": current["version"]!, "notify": ["email": false]]
                ).get()

                let erased = try await world.customer(name: "Gone Away", email: "gone@example.org")
                let erasedOrder = try await world.order(for: erased)
                _ = try await world.harness.call(world.admin, "customer.erase", ["id": erased.json]).get()
                #expect(try await world.notifications(of: erasedOrder).first?["last_error"] == "erased")
                #expect(try await world.notifications(of: erasedOrder).first?["status"] == "failed")

                let wanted = try await world.customer(name: "Wanted Ünïcode", email: "wanted@example.org")
                _ = try await world.order(for: wanted)

                let dispatcher = try world.dispatcher(quickSettings(relay: try SMTPRelay(url: "smtp://127.0.0.1:\(relay.port)?tls=off")))
                try await run([dispatcher]) { try await notificationRows(db).allSatisfy { $0.status != "pending" } }
                #expect(relay.messages.map { $0["rcpt_tos"] } == [["wanted@example.org"]])
                #expect(try await world.notifications(of: changedOrder).first?["last_error"] == "opted_out")

                let dump = try await pgDump(db.ownerConnectionString)
                #expect(dump.contains("order_confirmation"), "the dump holds the notifications")
                for secret in ["wanted@example.org", "Wanted Ünïcode", "changed@example.org", "Thank you for your order"] {
                    #expect(!dump.contains(secret), "\(secret) is in the dump")
                }
            }
        }

        /// A customer the dispatcher's keyring cannot open (its key left the keyring, or the row
        /// was altered): the attempt is recorded, so the notification backs off and ends rather
        /// than come back after every lease; nothing is sent.
        @Test func customersTheKeyringCannotOpenEndInsteadOfComingBack() async throws {
            try await withTestDatabase { db in
                let relay = try await Relay.start()
                defer { relay.stop() }
                // The customer is sealed under key 2 of the world's keyring.
                let world = try await DeliveryWorld.make(db, cipher: FieldCipher(keyring: try Keyring.generate().rotated()))
                _ = try await world.order(for: try await world.customer())
                let settings = quickSettings(relay: try SMTPRelay(url: "smtp://127.0.0.1:\(relay.port)?tls=off"))

                // A keyring without key 2: retried with backoff, then failed.
                let missingKey = try world.dispatcher(settings, cipher: FieldCipher(keyring: .generate()))
                try await run([missingKey]) { try await notificationRows(db).allSatisfy { $0.status != "pending" } }
                let retried = try await notificationRows(db)
                #expect(retried.map(\.status) == ["failed"])
                #expect(retried.map(\.attempts) == [settings.maximumAttempts])
                #expect(retried.map(\.lastError) == ["key_unavailable"])

                // A keyring whose key 2 is another key: the field fails authentication, at once.
                _ = try await world.order(for: try await world.customer())
                let otherKey = try world.dispatcher(settings, cipher: FieldCipher(keyring: try Keyring.generate().rotated()))
                try await run([otherKey]) { try await notificationRows(db).allSatisfy { $0.status != "pending" } }
                let refused = try await notificationRows(db).last
                #expect(refused?.status == "failed")
                #expect(refused?.attempts == 1)
                #expect(refused?.lastError == "undecryptable")
                #expect(relay.messages.isEmpty)
            }
        }

        /// Two instances on one database: every notification is sent exactly once.
        @Test func twoInstancesSendEachMessageOnce() async throws {
            try await withTestDatabase(maximumConnections: 8) { db in
                let relay = try await Relay.start()
                defer { relay.stop() }
                let world = try await DeliveryWorld.make(db)
                let customer = try await world.customer()
                for _ in 0..<30 { _ = try await world.order(for: customer) }
                var settings = quickSettings(relay: try SMTPRelay(url: "smtp://127.0.0.1:\(relay.port)?tls=off"))
                settings.batchSize = 3
                let instances = [try world.dispatcher(settings), try world.dispatcher(settings)]
                try await run(instances) { try await notificationRows(db).allSatisfy { $0.status == "sent" } }
                let ids = relay.messages.compactMap { $0["notification"]?.stringValue }
                #expect(ids.count == 30)
                #expect(Set(ids).count == 30)
                #expect(try await notificationRows(db).allSatisfy { $0.status == "sent" && $0.attempts == 1 })
            }
        }
    }
}
