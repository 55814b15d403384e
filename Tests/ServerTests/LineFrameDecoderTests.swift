import Foundation
import NIOCore
import NIOEmbedded
import Testing

@testable import LineFraming

/// Framing rules of docs/protocol.md ("Framing"), on an `EmbeddedChannel`.
struct LineFrameDecoderTests {
    func makeChannel(maximumLength: Int = 16) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineFrameDecoder(maximumLength: maximumLength)))
        return channel
    }

    func write(_ channel: EmbeddedChannel, _ text: String) throws {
        try channel.writeInbound(ByteBuffer(string: text))
    }

    func lines(_ channel: EmbeddedChannel) throws -> [String] {
        var result: [String] = []
        while let buffer = try channel.readInbound(as: ByteBuffer.self) {
            result.append(String(buffer: buffer))
        }
        return result
    }

    @Test func splitsOnNewlineAndToleratesCR() throws {
        let channel = try makeChannel()
        try write(channel, "one\ntwo\r\nthree\n")
        #expect(try lines(channel) == ["one", "two", "three"])
        #expect(try channel.finish().isClean)
    }

    @Test func skipsBlankLines() throws {
        let channel = try makeChannel()
        try write(channel, "\n\r\n  \t \nx\n\n\r\n")
        #expect(try lines(channel) == ["x"])
    }

    @Test func reassemblesLinesSplitAcrossReads() throws {
        let channel = try makeChannel()
        try write(channel, "ab")
        #expect(try lines(channel) == [])
        try write(channel, "c\nd")
        #expect(try lines(channel) == ["abc"])
        try write(channel, "e\r")
        #expect(try lines(channel) == [])
        try write(channel, "\nf\n")
        #expect(try lines(channel) == ["de", "f"])
    }

    @Test func oneByteAtATime() throws {
        let channel = try makeChannel()
        for byte in "12\r\n34\n".utf8 {
            try channel.writeInbound(ByteBuffer(bytes: [byte]))
        }
        #expect(try lines(channel) == ["12", "34"])
    }

    @Test func acceptsALineOfExactlyTheMaximum() throws {
        let channel = try makeChannel(maximumLength: 8)
        try write(channel, "12345678\n12345678\r\n")
        #expect(try lines(channel) == ["12345678", "12345678"])
    }

    @Test func refusesAnOverlongLineWithItsTerminator() throws {
        let channel = try makeChannel(maximumLength: 8)
        try write(channel, "ok\n")
        #expect(throws: LineFrameDecoder.LineTooLong(maximumLength: 8)) {
            try channel.writeInbound(ByteBuffer(string: "123456789\n"))
        }
        #expect(try lines(channel) == ["ok"])
    }

    @Test func refusesAnOverlongLineBeforeItsEnd() throws {
        // The decoder must not wait for (and buffer) the rest of a line it will refuse anyway.
        let channel = try makeChannel(maximumLength: 8)
        try write(channel, "12345")
        #expect(throws: LineFrameDecoder.LineTooLong(maximumLength: 8)) {
            try channel.writeInbound(ByteBuffer(string: "67890"))
        }
    }

    @Test func nothingIsDecodedAfterAnOverlongLine() throws {
        let channel = try makeChannel(maximumLength: 4)
        #expect(throws: LineFrameDecoder.LineTooLong.self) {
            try channel.writeInbound(ByteBuffer(string: "123456\nok\n"))
        }
        #expect(try lines(channel) == [])
    }

    @Test func endOfStreamMidLineIsAFinalLine() throws {
        let channel = try makeChannel()
        try write(channel, "first\nlast")
        #expect(try lines(channel) == ["first"])
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        #expect(try lines(channel) == ["last"])
    }

    @Test func endOfStreamAfterBlankRemainderYieldsNothing() throws {
        let channel = try makeChannel()
        try write(channel, "a\n  \r")
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        #expect(try lines(channel) == ["a"])
    }
}
