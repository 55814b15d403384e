import NIOCore

/// Splits a byte stream into lines, one JSON text each (docs/protocol.md, "Framing").
///
/// - `\n` ends a line; a `\r` just before it is dropped.
/// - Blank lines (empty, or only spaces and tabs) are skipped.
/// - A line longer than `maximumLength` bytes (terminator excluded) fails decoding with
///   `LineFrameDecoder.LineTooLong` as soon as that is known, without buffering the rest: the
///   connection handler answers once with -32600 and closes, since framing can no longer be
///   trusted. `ByteToMessageHandler` decodes nothing more after an error.
/// - At end of stream, remaining bytes are a final line (the peer may have omitted the last `\n`).
///
/// The stock `LineBasedFrameDecoder` of swift-nio-extras has no length limit, hence this one.
public struct LineFrameDecoder: ByteToMessageDecoder {
    public typealias InboundOut = ByteBuffer

    /// The error that ends a connection whose line is too long.
    public struct LineTooLong: Error, Equatable, CustomStringConvertible {
        public let maximumLength: Int
        public var description: String { "line longer than \(maximumLength) bytes" }
    }

    private let limit: LineLengthLimit
    /// The longest line accepted now.
    public var maximumLength: Int { limit.value }
    /// Bytes after the reader index already known to hold no `\n`, so a long line arriving in
    /// many reads is scanned once, not once per read.
    private var scanned = 0

    public init(maximumLength: Int) {
        self.limit = LineLengthLimit(maximumLength)
    }

    /// A decoder whose limit the connection changes as it runs (the server's is small until the
    /// session authenticates).
    public init(limit: LineLengthLimit) {
        self.limit = limit
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        while true {
            let view = buffer.readableBytesView
            let start = view.startIndex + scanned
            guard let newline = view[start...].firstIndex(of: UInt8(ascii: "\n")) else {
                scanned = view.count
                // One extra byte may be the `\r` of a line of exactly the maximum length.
                if view.count > maximumLength + 1 { throw LineTooLong(maximumLength: maximumLength) }
                return .needMoreData
            }
            let length = newline - view.startIndex
            scanned = 0
            guard var line = buffer.readSlice(length: length) else { return .needMoreData }
            buffer.moveReaderIndex(forwardBy: 1)
            if line.readableBytesView.last == UInt8(ascii: "\r") {
                line.moveWriterIndex(to: line.writerIndex - 1)
            }
            if line.readableBytes > maximumLength { throw LineTooLong(maximumLength: maximumLength) }
            if Self.isBlank(line) { continue }
            context.fireChannelRead(Self.wrapInboundOut(line))
            return .continue
        }
    }

    public mutating func decodeLast(
        context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool
    ) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        guard seenEOF, buffer.readableBytes > 0 else { return .needMoreData }
        var line = buffer.readSlice(length: buffer.readableBytes) ?? ByteBuffer()
        scanned = 0
        if line.readableBytesView.last == UInt8(ascii: "\r") {
            line.moveWriterIndex(to: line.writerIndex - 1)
        }
        if line.readableBytes > maximumLength { throw LineTooLong(maximumLength: maximumLength) }
        if !Self.isBlank(line) { context.fireChannelRead(Self.wrapInboundOut(line)) }
        return .needMoreData
    }

    static func isBlank(_ line: ByteBuffer) -> Bool {
        line.readableBytesView.allSatisfy { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }
    }
}

/// A maximum line length that a connection may change while it runs. Read and written on the
/// channel's event loop only (by the decoder and the handler after it), hence unchecked.
public final class LineLengthLimit: @unchecked Sendable {
    public var value: Int {
        didSet { precondition(value > 0) }
    }

    public init(_ value: Int) {
        precondition(value > 0)
        self.value = value
    }
}
