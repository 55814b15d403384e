import Foundation
import Logging
import NIOSSL
import Synchronization

/// Where emails go: the SMTP relay, or (development) a directory of `.eml` files.
protocol MailTransport: Sendable {
    func send(_ message: MailMessage) async -> DeliveryOutcome
    /// The queue is empty for now: close what was kept open for the burst.
    func finishBurst() async
}

/// Email by SMTP, one session kept open for a burst of messages (docs/architecture.md, "Delivery").
final class SMTPMailTransport: MailTransport {
    let relay: SMTPRelay
    let tls: NIOSSLContext
    let from: String
    let timeout: Duration
    /// The open session, if any. Only the dispatcher's loop uses it, one message at a time.
    private let session = Mutex<SMTPConnection?>(nil)

    init(relay: SMTPRelay, tls: NIOSSLContext, from: String, timeout: Duration) {
        self.relay = relay
        self.tls = tls
        self.from = from
        self.timeout = timeout
    }

    /// The name we give in EHLO: the sender's domain.
    var heloName: String { from.split(separator: "@").last.map(String.init) ?? "localhost" }

    func send(_ message: MailMessage) async -> DeliveryOutcome {
        do {
            var connection = session.withLock { $0 }
            if connection.map({ !$0.isUsable }) ?? true {
                await connection?.close()
                connection = try await SMTPConnection.open(
                    relay: relay, tls: relay.security == .none ? nil : tls, heloName: heloName, timeout: timeout)
                session.withLock { $0 = connection }
            }
            guard let connection else { return .temporary("connect") }
            try await connection.send(from: message.from.address, to: message.to.address, message: message.rendered())
            return .sent
        } catch let error as SMTPError {
            let broken = session.withLock { current -> SMTPConnection? in
                guard let open = current, !open.isUsable else { return nil }
                current = nil
                return open
            }
            await broken?.close()
            return error.outcome
        } catch {
            return .temporary("connect")
        }
    }

    func finishBurst() async {
        let connection = session.withLock { current -> SMTPConnection? in
            defer { current = nil }
            return current
        }
        await connection?.close()
    }
}

/// Development without a relay (`forecourt dev`): each message is written to a file of its
/// own, `<directory>/<notification id>.eml`, for the developer to open. Never used by
/// `forecourt serve`.
struct FileMailTransport: MailTransport {
    let directory: String
    let from: String

    func send(_ message: MailMessage) async -> DeliveryOutcome {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let path = directory + "/\(message.notificationID.uuidString.lowercased()).eml"
            // Personal data: readable by the developer only.
            guard FileManager.default.createFile(
                atPath: path, contents: Data(message.rendered()), attributes: [.posixPermissions: 0o600])
            else { return .temporary("file") }
            return .sent
        } catch {
            return .temporary("file")
        }
    }

    func finishBurst() async {}
}
