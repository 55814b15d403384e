import Crypto
import Foundation
import Notifications
import Testing

@testable import Delivery

/// The pure parts of delivery: retries, MIME, SMTP framing, URL and address rules, settings.
@Suite struct DeliveryUnitTests {
    @Test func retryDelaysDoubleWithJitterAndCap() {
        let policy = RetryPolicy(base: 30, maximumAttempts: 8)
        #expect(policy.delay(afterAttempts: 1, jitter: 0) == 30)
        #expect(policy.delay(afterAttempts: 2, jitter: 0) == 60)
        #expect(policy.delay(afterAttempts: 4, jitter: 0) == 240)
        #expect(policy.delay(afterAttempts: 3, jitter: 1) == 144)  // 120 + 20 %
        #expect(policy.delay(afterAttempts: 3, jitter: -1) == 96)  // 120 - 20 %
        #expect(policy.delay(afterAttempts: 30, jitter: 1) == 3600)  // capped at an hour
        for _ in 0..<100 {
            let delay = policy.delay(afterAttempts: 2)
            #expect(delay >= 48 && delay <= 72)
        }
        #expect(policy.next(after: .temporary("smtp_451"), attempts: 1).status == "pending")
        #expect(policy.next(after: .temporary("smtp_451"), attempts: 8).status == "failed")
        #expect(policy.next(after: .permanent("smtp_550"), attempts: 1).status == "failed")
        #expect(policy.next(after: .sent, attempts: 1).status == "sent")
    }

    @Test func smtpErrorsMapToShortCodes() {
        #expect(SMTPError(kind: .refused(451)).outcome == .temporary("smtp_451"))
        #expect(SMTPError(kind: .refused(550)).outcome == .permanent("smtp_550"))
        // A relay that refuses the session (for example bad credentials) is not the message's fault.
        #expect(SMTPError(kind: .session(535)).outcome == .temporary("smtp_535"))
        #expect(SMTPError(kind: .timeout).outcome == .temporary("timeout"))
        #expect(SMTPError(kind: .noStartTLS).outcome == .temporary("tls"))
    }

    @Test func mimeMessageIsWellFormed() throws {
        let id = UUID()
        let long = String(repeating: "Ünïcode and a long line with =equals= signs. ", count: 10)
        let message = MailMessage(
            from: .init(name: "Groupe Étoile", address: "orders@example.com"),
            to: .init(name: "Zoë Ångström-Müller", address: "zoe@example.org"),
            subject: "Order confirmed: order NW042-000001 für Zoë", date: Date(timeIntervalSince1970: 1_796_000_000),
            messageID: MailMessage.makeMessageID(notification: id, from: "orders@example.com"), notificationID: id,
            text: "Hello\n.starts with a dot\n" + long + "\n", html: "<p>\(long)</p>\n")
        let wire = String(decoding: message.rendered(boundary: "b1"), as: UTF8.self)
        let lines = wire.components(separatedBy: "\r\n")
        #expect(lines.filter { $0.utf8.count > 78 } == [], "a line is longer than 78 characters")
        #expect(wire.utf8.allSatisfy { $0 < 0x80 }, "the wire form is 7-bit")
        #expect(!wire.contains("\n.") || wire.components(separatedBy: "\r\n").allSatisfy { !$0.hasPrefix(".") })
        #expect(lines.contains("Date: Mon, 30 Nov 2026 00:53:20 +0000"))
        #expect(lines.contains("X-Forecourt-Notification: \(id.uuidString.lowercased())"))
        #expect(lines.contains { $0.hasPrefix("Message-ID: <\(id.uuidString.lowercased()).") && $0.hasSuffix("@example.com>") })
        #expect(lines.contains("Content-Type: multipart/alternative; boundary=\"b1\""))
        #expect(lines.contains { $0.hasPrefix("To: =?UTF-8?B?") && $0.hasSuffix("<zoe@example.org>") })
        #expect(lines.contains { $0.hasPrefix("Subject: =?UTF-8?B?") })
        // Two Message-IDs for one notification differ (a resend is a new message).
        #expect(MailMessage.makeMessageID(notification: id, from: "a@b.c") != MailMessage.makeMessageID(notification: id, from: "a@b.c"))
    }

    @Test func encodedWordsDecodeToTheText() {
        let text = "Zoë Ångström-Müller from Škoda Žilina, a name long enough to need several encoded words"
        let words = MIME.encodedWords(text)
        #expect(words.count > 1)
        #expect(words.allSatisfy { $0.count <= 75 })
        let decoded = words.map { word -> [UInt8] in
            let base64 = word.dropFirst("=?UTF-8?B?".count).dropLast(2)
            return Array(Data(base64Encoded: String(base64)) ?? Data())
        }.joined()
        #expect(String(decoding: Array(decoded), as: UTF8.self) == text)
    }

    @Test func quotedPrintableRoundTrips() {
        let text = "Grüße = Hallo \n.dot\n" + String(repeating: "x", count: 200) + " \n"
        let encoded = MIME.quotedPrintable(text)
        #expect(encoded.components(separatedBy: "\r\n").allSatisfy { $0.count <= 76 })
        // Decode: soft breaks, then =XX.
        var bytes: [UInt8] = []
        let joined = Array(encoded.replacingOccurrences(of: "=\r\n", with: "").utf8)
        var index = 0
        while index < joined.count {
            if joined[index] == UInt8(ascii: "="), let value = UInt8(String(decoding: joined[(index + 1)...(index + 2)], as: UTF8.self), radix: 16) {
                bytes.append(value)
                index += 3
            } else {
                bytes.append(joined[index])
                index += 1
            }
        }
        #expect(String(decoding: bytes, as: UTF8.self) == text.replacingOccurrences(of: "\n", with: "\r\n"))
    }

    @Test func dataIsDotStuffed() {
        let stuffed = String(decoding: SMTPConnection.dotStuffed(Array("a\r\n.b\n..c\r\nd".utf8)), as: UTF8.self)
        #expect(stuffed == "a\r\n..b\r\n...c\r\nd\r\n.\r\n")
    }

    @Test func templatesNameDealerGroupOrderStageAndETA() throws {
        let values = [
            "customer_name": "Zoë <Admin> & Co", "order_number": "NW042-000001", "model": "XC40 2027", "stage": "final inspection",
            "dealer_name": "Müller & Söhne", "group_name": "Groupe Étoile", "eta": "2027-01-15", "subject": "s",
            "message": "m",
        ]
        let library = MessageTemplates.shared.library
        let text = try #require(library.render(values, withTemplate: "layout.txt"))
        #expect(text.contains("Zoë <Admin> & Co"))  // text is not HTML-escaped
        #expect(text.contains("Müller & Söhne") && text.contains("Groupe Étoile"))
        #expect(text.contains("NW042-000001") && text.contains("final inspection") && text.contains("2027-01-15"))
        let html = try #require(library.render(values, withTemplate: "layout.html"))
        #expect(html.contains("Zoë &lt;Admin&gt; &amp; Co"))  // HTML is
        #expect(html.contains("Müller &amp; Söhne"))
        for kind in ["order_confirmation", "production_scheduled", "vin_assigned", "shipped", "delivered", "delay"] {
            #expect(library.getTemplate(named: "\(kind).txt") != nil)
            #expect(library.getTemplate(named: "\(kind).html") != nil)
        }
    }

    @Test func webhookSignatureIsHMACOfTimeAndBody() {
        let body = Array(#"{"id":"x"}"#.utf8)
        let signature = WebhookSender.signature(secret: Array("0123456789abcdef".utf8), body: body, time: 1_796_000_000)
        let mac = HMAC<SHA256>.authenticationCode(
            for: Array("1796000000.".utf8) + body, using: SymmetricKey(data: Array("0123456789abcdef".utf8)))
        #expect(signature == "t=1796000000,v1=" + mac.map { String(format: "%02x", $0) }.joined())
    }

    @Test func addressesThatAreNotPublic() throws {
        for text in [
            "127.0.0.1", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
            "224.0.0.1", "255.255.255.255", "::1", "::", "fe80::1", "fd00:ec2::254", "fc00::1", "::ffff:127.0.0.1",
            "::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe", "2002:7f00:1::", "ff02::1", "2001:db8::1",
        ] {
            let address = try #require(IPAddress(text), "\(text)")
            #expect(!address.isPublic, "\(text) is not public")
        }
        for text in ["93.184.216.34", "8.8.8.8", "172.32.0.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"] {
            let address = try #require(IPAddress(text), "\(text)")
            #expect(address.isPublic, "\(text) is public")
        }
    }

    @Test func webhookURLRules() throws {
        #expect(try WebhookURL("https://hooks.example.com/forecourt?x=1", allowInsecure: false).target == "/forecourt?x=1")
        #expect(try WebhookURL("https://[2606:4700:4700::1111]:8443/", allowInsecure: false).port == 8443)
        for bad in [
            "http://hooks.example.com/", "ftp://hooks.example.com/", "https://localhost/", "https://api.localhost/",
            "https://127.0.0.1/", "https://[::1]/", "https://169.254.169.254/latest/meta-data", "https://10.0.0.5/",
            "https://metadata.google.internal/", "https://metadata/", "https://2130706433/", "https://0x7f.0.0.1/",
            "https://user:pw@hooks.example.com/", "https://printer.local/", "not a url", "https:///nohost",
        ] {
            #expect(throws: (any Error).self, "\(bad)") { try WebhookURL(bad, allowInsecure: false) }
        }
        // Development: http and loopback are allowed.
        #expect(try WebhookURL("http://127.0.0.1:8080/hook", allowInsecure: true).port == 8080)
    }

    @Test func namesAreCheckedWhenResolved() async throws {
        // "localhost" resolves to loopback: refused at delivery even if it got past creation.
        #expect(try WebhookSender.lookUp("localhost").allSatisfy { !$0.isPublic })
        let refused = await WebhookSender.checkedAddress(host: "localhost", literal: nil, allowsInsecure: false)
        #expect(refused == .refused(.permanent("unsafe_address")))
        let allowed = await WebhookSender.checkedAddress(host: "localhost", literal: nil, allowsInsecure: true)
        guard case .addresses(let addresses) = allowed else {
            Issue.record("localhost did not resolve")
            return
        }
        #expect(addresses.allSatisfy { !$0.isPublic })
        // And a URL that names a private address never gets as far as a connection.
        let sender = WebhookSender(
            tls: try DeliveryService.tlsContext(caPath: nil, setting: "x"), timeout: .seconds(2), allowsInsecure: false)
        let outcome = await sender.post(url: "https://10.0.0.1/", secret: [1], notification: UUID(), body: [])
        #expect(outcome == .permanent("unsafe_address"))
    }

    @Test func relaySettings() throws {
        let relay = try SMTPRelay(url: "smtp://user%40x:p%2Fw@mail.example.com:2525")
        #expect(relay == SMTPRelay(host: "mail.example.com", port: 2525, username: "user@x", password: "p/w", security: .startTLS))
        #expect(try SMTPRelay(url: "smtps://mail.example.com").security == .implicitTLS)
        #expect(try SMTPRelay(url: "smtps://mail.example.com").port == 465)
        #expect(try SMTPRelay(url: "smtp://127.0.0.1:25?tls=off").security == SMTPRelay.Security.none)
        for bad in ["http://mail.example.com", "smtp://", "smtps://mail.example.com?tls=off", "smtp://u@mail.example.com"] {
            #expect(throws: SettingError.self, "\(bad)") { try SMTPRelay(url: bad) }
        }
    }
}
