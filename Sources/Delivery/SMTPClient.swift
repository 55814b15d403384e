import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// A reply of an SMTP server: its code and its lines (RFC 5321 §4.2). The text is the peer's
/// and is never logged or stored; only the code is.
struct SMTPReply: Sendable, Equatable {
    let code: Int
    let lines: [String]

    var isPositive: Bool { (200..<400).contains(code) }
    /// The EHLO keywords (`STARTTLS`, `AUTH PLAIN LOGIN`...), upper-cased.
    var extensions: [String] { lines.dropFirst().map { $0.uppercased() } }
}

/// Why an SMTP exchange failed, as a `last_error` code and whether retrying can help.
struct SMTPError: Error, Sendable, Equatable, CustomStringConvertible {
    enum Kind: Sendable, Equatable {
        /// The relay answered `code` to a command about one message (MAIL, RCPT, DATA).
        case refused(Int)
        /// The relay answered `code` while the session was being set up (greeting, EHLO,
        /// STARTTLS, AUTH): a problem of the relay or its configuration, not of the message.
        case session(Int)
        case timeout
        case connect
        case tls
        /// The relay offers no STARTTLS although it is required.
        case noStartTLS
        /// The relay said something that is not SMTP.
        case protocolViolation
    }

    let kind: Kind

    var outcome: DeliveryOutcome {
        switch kind {
        case .refused(let code): code >= 500 ? .permanent("smtp_\(code)") : .temporary("smtp_\(code)")
        case .session(let code): .temporary("smtp_\(code)")
        case .timeout: .temporary("timeout")
        case .connect: .temporary("connect")
        case .tls, .noStartTLS: .temporary("tls")
        case .protocolViolation: .temporary("smtp_protocol")
        }
    }

    var description: String { outcome.errorCode ?? "smtp" }
}

/// Splits the byte stream into SMTP replies: lines `NNN-text` continue, `NNN text` ends a
/// reply. Bounded: a line past 2000 bytes or a reply past 100 lines is a protocol error.
final class SMTPReplyDecoder: ByteToMessageDecoder {
    typealias InboundOut = SMTPReply
    private var lines: [String] = []
    private var code: Int?

    func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let newline = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else {
            if buffer.readableBytes > 2000 { throw SMTPError(kind: .protocolViolation) }
            return .needMoreData
        }
        let length = newline - buffer.readerIndex
        guard length <= 2000, var line = buffer.readString(length: length) else { throw SMTPError(kind: .protocolViolation) }
        buffer.moveReaderIndex(forwardBy: 1)
        if line.hasSuffix("\r") { line.removeLast() }
        let bytes = Array(line.utf8)
        guard bytes.count >= 3, let lineCode = Int(String(decoding: bytes[0..<3], as: UTF8.self)), (200...599).contains(lineCode),
            code == nil || code == lineCode
        else { throw SMTPError(kind: .protocolViolation) }
        code = lineCode
        let separator = bytes.count > 3 ? bytes[3] : UInt8(ascii: " ")
        lines.append(bytes.count > 4 ? String(decoding: bytes[4...], as: UTF8.self) : "")
        guard lines.count <= 100 else { throw SMTPError(kind: .protocolViolation) }
        if separator == UInt8(ascii: "-") { return .continue }
        guard separator == UInt8(ascii: " ") else { throw SMTPError(kind: .protocolViolation) }
        context.fireChannelRead(wrapInboundOut(SMTPReply(code: lineCode, lines: lines)))
        lines = []
        code = nil
        return .continue
    }
}

/// Hands replies to whoever waits for one, on the channel's event loop.
final class SMTPReplyCollector: ChannelInboundHandler, @unchecked Sendable {
    // Only touched on the channel's event loop.
    typealias InboundIn = SMTPReply
    private var replies: [SMTPReply] = []
    private var waiting: EventLoopPromise<SMTPReply>?
    private var failure: SMTPError?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let reply = unwrapInboundIn(data)
        if let waiting {
            self.waiting = nil
            waiting.succeed(reply)
        } else {
            replies.append(reply)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let kind: SMTPError.Kind
        if let error = error as? SMTPError {
            kind = error.kind
        } else if error is NIOSSLError || error is BoringSSLError {
            kind = .tls
        } else {
            kind = .connect
        }
        fail(SMTPError(kind: kind))
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(SMTPError(kind: .connect))
        context.fireChannelInactive()
    }

    private func fail(_ error: SMTPError) {
        if failure == nil { failure = error }
        if let waiting {
            self.waiting = nil
            waiting.fail(failure ?? error)
        }
    }

    /// The next reply, or a failure after `timeout` (the connection is then closed).
    func next(on channel: any Channel, timeout: TimeAmount) -> EventLoopFuture<SMTPReply> {
        if !replies.isEmpty { return channel.eventLoop.makeSucceededFuture(replies.removeFirst()) }
        if let failure { return channel.eventLoop.makeFailedFuture(failure) }
        let promise = channel.eventLoop.makePromise(of: SMTPReply.self)
        waiting = promise
        let timer = channel.eventLoop.scheduleTask(in: timeout) { [weak self] in
            guard let self, let waiting = self.waiting, waiting.futureResult === promise.futureResult else { return }
            self.fail(SMTPError(kind: .timeout))
            channel.close(promise: nil)
        }
        promise.futureResult.whenComplete { _ in timer.cancel() }
        return promise.futureResult
    }
}

/// One SMTP session with the relay (RFC 5321, 3207 STARTTLS, 4954 AUTH): opened once for a
/// burst of messages, each sent with MAIL/RCPT/DATA, closed with QUIT.
final class SMTPConnection: Sendable {
    private let channel: any Channel
    private let collector: SMTPReplyCollector
    private let timeout: TimeAmount
    /// Whether the session is still usable for another message.
    private let usable: Mutex<Bool>

    private init(channel: any Channel, collector: SMTPReplyCollector, timeout: TimeAmount) {
        self.channel = channel
        self.collector = collector
        self.timeout = timeout
        self.usable = Mutex(true)
    }

    var isUsable: Bool { usable.withLock { $0 } && channel.isActive }

    /// Connects, reads the greeting, says EHLO, upgrades to TLS (STARTTLS, unless the relay
    /// is `tls=off` or implicit TLS) and authenticates when the relay has credentials.
    static func open(
        relay: SMTPRelay, tls: NIOSSLContext?, heloName: String, timeout: Duration,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> SMTPConnection {
        let step = TimeAmount.nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000)
        let serverName = IPAddressText.isLiteral(relay.host) ? nil : relay.host
        let collector = SMTPReplyCollector()
        let implicit = relay.security == .implicitTLS
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(step)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if implicit, let tls {
                        try channel.pipeline.syncOperations.addHandler(
                            try NIOSSLClientHandler(context: tls, serverHostname: serverName))
                    }
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(SMTPReplyDecoder()))
                    try channel.pipeline.syncOperations.addHandler(collector)
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.connect(host: relay.host, port: relay.port).get()
        } catch let error as ChannelError where error == .connectTimeout(step) {
            throw SMTPError(kind: .timeout)
        } catch {
            throw SMTPError(kind: .connect)
        }
        let connection = SMTPConnection(channel: channel, collector: collector, timeout: step)
        do {
            try await connection.handshake(relay: relay, tls: tls, serverName: serverName, heloName: heloName)
        } catch {
            try? await channel.close()
            throw error
        }
        return connection
    }

    private func handshake(relay: SMTPRelay, tls: NIOSSLContext?, serverName: String?, heloName: String) async throws {
        let greeting = try await reply()
        guard greeting.code == 220 else { throw SMTPError(kind: .session(greeting.code)) }
        var ehlo = try await command("EHLO \(heloName)")
        guard ehlo.code == 250 else { throw SMTPError(kind: .session(ehlo.code)) }
        if relay.security == .startTLS {
            guard ehlo.extensions.contains(where: { $0 == "STARTTLS" }), let tls else { throw SMTPError(kind: .noStartTLS) }
            let ready = try await command("STARTTLS")
            guard ready.code == 220 else { throw SMTPError(kind: .session(ready.code)) }
            try await channel.eventLoop.submit { [channel] in
                let handler = try NIOSSLClientHandler(context: tls, serverHostname: serverName)
                try channel.pipeline.syncOperations.addHandler(handler, position: .first)
            }.get()
            // The session starts again over TLS (RFC 3207 §4.2).
            ehlo = try await command("EHLO \(heloName)")
            guard ehlo.code == 250 else { throw SMTPError(kind: .session(ehlo.code)) }
        }
        if let username = relay.username, let password = relay.password {
            let mechanisms = ehlo.extensions.first { $0.hasPrefix("AUTH ") || $0.hasPrefix("AUTH=") }?
                .dropFirst(5).split(separator: " ").map(String.init) ?? []
            if mechanisms.contains("PLAIN") || !mechanisms.contains("LOGIN") {
                let token = Data(([0] + Array(username.utf8) + [0] + Array(password.utf8))).base64EncodedString()
                let done = try await command("AUTH PLAIN \(token)", secret: true)
                guard done.code == 235 else { throw SMTPError(kind: .session(done.code)) }
            } else {
                var step = try await command("AUTH LOGIN")
                guard step.code == 334 else { throw SMTPError(kind: .session(step.code)) }
                step = try await command(Data(username.utf8).base64EncodedString(), secret: true)
                guard step.code == 334 else { throw SMTPError(kind: .session(step.code)) }
                step = try await command(Data(password.utf8).base64EncodedString(), secret: true)
                guard step.code == 235 else { throw SMTPError(kind: .session(step.code)) }
            }
        }
    }

    /// Sends one message. Throws `SMTPError` with the code of the refusing step; a session
    /// that answered a message with an error is reset (RSET) and stays usable.
    func send(from: String, to: String, message: [UInt8]) async throws {
        do {
            let mail = try await command("MAIL FROM:<\(from)>")
            guard mail.code == 250 else { return try await refuse(mail.code) }
            let recipient = try await command("RCPT TO:<\(to)>")
            guard recipient.code == 250 || recipient.code == 251 else { return try await refuse(recipient.code) }
            let data = try await command("DATA")
            guard data.code == 354 else { return try await refuse(data.code) }
            try await write(Self.dotStuffed(message))
            let accepted = try await reply()
            guard accepted.code == 250 else { throw SMTPError(kind: .refused(accepted.code)) }
        } catch let error as SMTPError {
            if case .refused = error.kind {} else { usable.withLock { $0 = false } }
            throw error
        }
    }

    private func refuse(_ code: Int) async throws {
        // Ends the refused transaction so the session can carry the next message.
        if let reset = try? await command("RSET"), reset.code == 250 {} else { usable.withLock { $0 = false } }
        throw SMTPError(kind: .refused(code))
    }

    /// QUIT, then close; errors are irrelevant by then.
    func close() async {
        if channel.isActive { _ = try? await command("QUIT") }
        try? await channel.close()
    }

    private func command(_ line: String, secret: Bool = false) async throws -> SMTPReply {
        try await write(Array((line + "\r\n").utf8))
        return try await reply()
    }

    private func write(_ bytes: [UInt8]) async throws {
        do {
            try await channel.writeAndFlush(channel.allocator.buffer(bytes: bytes)).get()
        } catch {
            throw SMTPError(kind: .connect)
        }
    }

    private func reply() async throws -> SMTPReply {
        let channel = self.channel
        let collector = self.collector
        let timeout = self.timeout
        return try await channel.eventLoop.flatSubmit { collector.next(on: channel, timeout: timeout) }.get()
    }

    /// The DATA section: CRLF line ends, a `.` doubled at the start of a line (RFC 5321
    /// §4.5.2), ending with `CRLF.CRLF`.
    static func dotStuffed(_ message: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(message.count + 64)
        var atLineStart = true
        var previous: UInt8 = 0
        for byte in message {
            if byte == 0x0a && previous != 0x0d { out.append(0x0d) }  // bare LF → CRLF
            if atLineStart && byte == UInt8(ascii: ".") { out.append(UInt8(ascii: ".")) }
            out.append(byte)
            atLineStart = byte == 0x0a
            previous = byte
        }
        if !(out.count >= 2 && out[out.count - 2] == 0x0d && out[out.count - 1] == 0x0a) { out += [0x0d, 0x0a] }
        out += Array(".\r\n".utf8)
        return out
    }
}

enum IPAddressText {
    /// Whether `host` is an IP literal (TLS server names must not be).
    static func isLiteral(_ host: String) -> Bool {
        host.contains(":") || host.split(separator: ".").count == 4 && host.allSatisfy { $0.isNumber || $0 == "." }
    }
}
