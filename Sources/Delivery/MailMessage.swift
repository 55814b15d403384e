import Foundation

/// One email as it goes over SMTP (RFC 5322 with MIME): headers, then a `multipart/alternative`
/// body with a plain-text and an HTML part, both UTF-8, quoted-printable. Lines end in CRLF
/// and none is longer than 78 characters, so no relay has to rewrite it.
public struct MailMessage: Sendable {
    public struct Mailbox: Sendable, Equatable {
        public var name: String?
        public var address: String

        public init(name: String? = nil, address: String) {
            self.name = name
            self.address = address
        }
    }

    public var from: Mailbox
    public var to: Mailbox
    public var subject: String
    public var date: Date
    public var messageID: String
    /// The notification's id, in `X-Forecourt-Notification`.
    public var notificationID: UUID
    public var text: String
    public var html: String

    public init(
        from: Mailbox, to: Mailbox, subject: String, date: Date = Date(), messageID: String, notificationID: UUID,
        text: String, html: String
    ) {
        self.from = from
        self.to = to
        self.subject = subject
        self.date = date
        self.messageID = messageID
        self.notificationID = notificationID
        self.text = text
        self.html = html
    }

    /// A `Message-ID` unique in the world: the notification and a random part (a resent
    /// message is a new message), at the sender's domain.
    public static func makeMessageID(notification: UUID, from address: String) -> String {
        let domain = address.split(separator: "@").last.map(String.init) ?? "forecourt.invalid"
        let random = UUID().uuidString.lowercased().prefix(8)
        return "<\(notification.uuidString.lowercased()).\(random)@\(domain)>"
    }

    /// The message in wire form (CRLF line ends), before SMTP's dot-stuffing.
    public func rendered(boundary: String = "fc-" + UUID().uuidString.lowercased()) -> [UInt8] {
        var out = ""
        func header(_ name: String, _ value: String) { out += MIME.foldedHeader(name, value) + "\r\n" }
        header("Date", MIME.rfc5322Date(date))
        header("From", MIME.mailbox(from))
        header("To", MIME.mailbox(to))
        out += MIME.foldedHeader("Subject", MIME.encodedText(subject)) + "\r\n"
        header("Message-ID", messageID)
        header("X-Forecourt-Notification", notificationID.uuidString.lowercased())
        header("MIME-Version", "1.0")
        header("Content-Type", "multipart/alternative; boundary=\"\(boundary)\"")
        out += "\r\n"
        for (type, body) in [("text/plain", text), ("text/html", html)] {
            out += "--\(boundary)\r\n"
            out += "Content-Type: \(type); charset=utf-8\r\n"
            out += "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
            out += MIME.quotedPrintable(body) + "\r\n"
        }
        out += "--\(boundary)--\r\n"
        return Array(out.utf8)
    }
}

/// The encodings of MIME that a message needs.
enum MIME {
    /// `Thu, 03 Dec 2026 09:07:20 +0000`.
    static func rfc5322Date(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss '+0000'"
        return formatter.string(from: date)
    }

    /// `Name <address>` with the name encoded when it is not plain ASCII (RFC 2047), or the
    /// bare address.
    static func mailbox(_ mailbox: MailMessage.Mailbox) -> String {
        guard let name = mailbox.name, !name.isEmpty else { return mailbox.address }
        let phraseSafe = name.unicodeScalars.allSatisfy { scalar in
            scalar.isASCII && (scalar.properties.isAlphabetic || scalar.properties.numericType != nil || " .-'".unicodeScalars.contains(scalar))
        }
        let phrase = phraseSafe ? "\"\(name)\"" : encodedWords(name).joined(separator: " ")
        return "\(phrase) <\(mailbox.address)>"
    }

    /// Header text: itself when it is printable ASCII, else RFC 2047 encoded words.
    static func encodedText(_ text: String) -> String {
        let plain = text.unicodeScalars.allSatisfy { $0.value >= 0x20 && $0.value < 0x7f }
        if plain { return text }
        return encodedWords(text).joined(separator: " ")
    }

    /// `=?UTF-8?B?...?=` words of at most 60 characters (RFC 2047 allows 75; shorter words
    /// leave room for `Subject: ` on a 78-character line), never splitting a character.
    static func encodedWords(_ text: String) -> [String] {
        // 36 bytes of text are 48 characters of base64, plus 12 for `=?UTF-8?B?` and `?=`.
        var words: [String] = []
        var chunk: [UInt8] = []
        for character in text {
            // Control characters have no place in a header; they become spaces.
            let bytes = character.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7f })
                ? Array(String(character).utf8) : [0x20]
            if chunk.count + bytes.count > 36 {
                words.append("=?UTF-8?B?" + Data(chunk).base64EncodedString() + "?=")
                chunk = []
            }
            chunk += bytes
        }
        if !chunk.isEmpty || words.isEmpty { words.append("=?UTF-8?B?" + Data(chunk).base64EncodedString() + "?=") }
        return words
    }

    /// `Name: value`, folded at spaces so that no line passes 78 characters where it can be
    /// helped (an encoded word or an address is never split).
    static func foldedHeader(_ name: String, _ value: String) -> String {
        var lines: [String] = []
        var line = name + ":"
        for word in value.split(separator: " ", omittingEmptySubsequences: false) {
            if line.count + 1 + word.count > 78, line.count > name.count + 1 {
                lines.append(line)
                line = ""
            }
            line += " " + word
        }
        lines.append(line)
        return lines.joined(separator: "\r\n")
    }

    /// Quoted-printable (RFC 2045): CRLF line ends, lines of at most 76 characters (soft
    /// breaks `=`), `=` and every non-printable or non-ASCII byte as `=XX`, trailing white
    /// space encoded, and a `.` that would start a line encoded too.
    static func quotedPrintable(_ text: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        let normalized = text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
        let lines = normalized.split(separator: "\n", omittingEmptySubsequences: false)
        for (index, line) in lines.enumerated() {
            let bytes = Array(line.utf8)
            var column = 0
            for (position, byte) in bytes.enumerated() {
                let last = position == bytes.count - 1
                let literal =
                    (byte >= 33 && byte <= 126 && byte != UInt8(ascii: "="))
                    || ((byte == 0x20 || byte == 0x09) && !last)
                let dotAtStart = byte == UInt8(ascii: ".") && column == 0
                let token: [UInt8] = literal && !dotAtStart ? [byte] : [UInt8(ascii: "="), hex[Int(byte >> 4)], hex[Int(byte & 0x0f)]]
                // Keep room for the soft break's `=` (76 including it).
                if column + token.count > 75 {
                    out += Array("=\r\n".utf8)
                    column = 0
                    if token == [UInt8(ascii: ".")] {
                        out += Array("=2E".utf8)
                        column = 3
                        continue
                    }
                }
                out += token
                column += token.count
            }
            if index < lines.count - 1 { out += [0x0d, 0x0a] }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
