/// A strict, bounded JSON parser (RFC 8259).
///
/// Limits exist so that a hostile line costs bounded memory and time: nesting depth is
/// capped (a deeply nested text is an error, not a stack overflow), and the whole input is
/// already bounded by the framing's line length. Strings must be valid UTF-8 without lone
/// surrogates; control characters must be escaped.
public struct JSONParser: Sendable {
    /// Why a text is not acceptable JSON. `description` names the position, never content.
    public struct Error: Swift.Error, Sendable, CustomStringConvertible, Equatable {
        public enum Reason: String, Sendable {
            case unexpectedEnd = "unexpected end of input"
            case unexpectedCharacter = "unexpected character"
            case invalidNumber = "invalid number"
            case invalidString = "invalid string"
            case invalidUTF8 = "invalid UTF-8"
            case tooDeep = "nesting too deep"
            case trailingData = "data after the JSON text"
        }
        public let reason: Reason
        public let offset: Int
        public var description: String { "\(reason.rawValue) at byte \(offset)" }
    }

    /// The maximum nesting of arrays and objects.
    public var maximumDepth: Int

    public init(maximumDepth: Int = 64) {
        self.maximumDepth = maximumDepth
    }

    /// Parses one JSON text, surrounded by optional whitespace.
    public func parse<Bytes: Collection>(_ bytes: Bytes) throws(Error) -> JSON where Bytes.Element == UInt8 {
        let result: Result<JSON, Error>? = bytes.withContiguousStorageIfAvailable { buffer in
            var cursor = Cursor(buffer: UnsafeRawBufferPointer(buffer), maximumDepth: maximumDepth)
            return Result { () throws(Error) -> JSON in try cursor.parseDocument() }
        }
        if let result { return try result.get() }
        let copy = Array(bytes)
        return try parse(copy)
    }

    public func parse(_ text: String) throws(Error) -> JSON {
        try parse(Array(text.utf8))
    }
}

private struct Cursor {
    let buffer: UnsafeRawBufferPointer
    let maximumDepth: Int
    var index = 0
    var depth = 0

    init(buffer: UnsafeRawBufferPointer, maximumDepth: Int) {
        self.buffer = buffer
        self.maximumDepth = maximumDepth
    }

    func fail(_ reason: JSONParser.Error.Reason) -> JSONParser.Error {
        JSONParser.Error(reason: reason, offset: index)
    }

    mutating func parseDocument() throws(JSONParser.Error) -> JSON {
        skipWhitespace()
        let value = try parseValue()
        skipWhitespace()
        guard index == buffer.count else { throw fail(.trailingData) }
        return value
    }

    @inline(__always)
    mutating func skipWhitespace() {
        while index < buffer.count {
            switch buffer[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    @inline(__always)
    func peek() throws(JSONParser.Error) -> UInt8 {
        guard index < buffer.count else { throw fail(.unexpectedEnd) }
        return buffer[index]
    }

    mutating func expect(_ literal: StaticString, value: JSON) throws(JSONParser.Error) -> JSON {
        let count = literal.utf8CodeUnitCount
        guard buffer.count - index >= count else {
            // Report a mismatch inside the available bytes before a premature end.
            for i in 0..<(buffer.count - index) where buffer[index + i] != literal.utf8Start[i] {
                index += i
                throw fail(.unexpectedCharacter)
            }
            index = buffer.count
            throw fail(.unexpectedEnd)
        }
        for i in 0..<count where buffer[index + i] != literal.utf8Start[i] {
            index += i
            throw fail(.unexpectedCharacter)
        }
        index += count
        return value
    }

    mutating func parseValue() throws(JSONParser.Error) -> JSON {
        switch try peek() {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): return try expect("true", value: .bool(true))
        case UInt8(ascii: "f"): return try expect("false", value: .bool(false))
        case UInt8(ascii: "n"): return try expect("null", value: .null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
        default: throw fail(.unexpectedCharacter)
        }
    }

    mutating func enter() throws(JSONParser.Error) {
        depth += 1
        if depth > maximumDepth { throw fail(.tooDeep) }
    }

    mutating func parseObject() throws(JSONParser.Error) -> JSON {
        try enter()
        index += 1  // {
        var members: [(key: String, value: JSON)] = []
        skipWhitespace()
        if try peek() == UInt8(ascii: "}") {
            index += 1
            depth -= 1
            return .object(JSONObject(members))
        }
        while true {
            skipWhitespace()
            guard try peek() == UInt8(ascii: "\"") else { throw fail(.unexpectedCharacter) }
            let key = try parseString()
            skipWhitespace()
            guard try peek() == UInt8(ascii: ":") else { throw fail(.unexpectedCharacter) }
            index += 1
            skipWhitespace()
            let value = try parseValue()
            members.append((key: key, value: value))
            skipWhitespace()
            switch try peek() {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "}"):
                index += 1
                depth -= 1
                return .object(JSONObject(members))
            default: throw fail(.unexpectedCharacter)
            }
        }
    }

    mutating func parseArray() throws(JSONParser.Error) -> JSON {
        try enter()
        index += 1  // [
        var elements: [JSON] = []
        skipWhitespace()
        if try peek() == UInt8(ascii: "]") {
            index += 1
            depth -= 1
            return .array(elements)
        }
        while true {
            skipWhitespace()
            elements.append(try parseValue())
            skipWhitespace()
            switch try peek() {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "]"):
                index += 1
                depth -= 1
                return .array(elements)
            default: throw fail(.unexpectedCharacter)
            }
        }
    }

    mutating func parseNumber() throws(JSONParser.Error) -> JSONNumber {
        let start = index
        if buffer[index] == UInt8(ascii: "-") { index += 1 }
        guard index < buffer.count else { throw fail(.unexpectedEnd) }
        switch buffer[index] {
        case UInt8(ascii: "0"): index += 1
        case UInt8(ascii: "1")...UInt8(ascii: "9"): skipDigits()
        default: throw fail(.invalidNumber)
        }
        if index < buffer.count, buffer[index] == UInt8(ascii: ".") {
            index += 1
            guard index < buffer.count, isDigit(buffer[index]) else { throw fail(.invalidNumber) }
            skipDigits()
        }
        if index < buffer.count, buffer[index] == UInt8(ascii: "e") || buffer[index] == UInt8(ascii: "E") {
            index += 1
            if index < buffer.count, buffer[index] == UInt8(ascii: "+") || buffer[index] == UInt8(ascii: "-") {
                index += 1
            }
            guard index < buffer.count, isDigit(buffer[index]) else { throw fail(.invalidNumber) }
            skipDigits()
        }
        // A number is at most a few hundred characters in any sane client.
        guard index - start <= 512 else { throw fail(.invalidNumber) }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: buffer[start..<index]), as: UTF8.self)
        return JSONNumber(validatedText: text)
    }

    @inline(__always)
    func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    @inline(__always)
    mutating func skipDigits() {
        while index < buffer.count, isDigit(buffer[index]) { index += 1 }
    }

    mutating func parseString() throws(JSONParser.Error) -> String {
        index += 1  // opening quote
        let start = index
        // Fast path: no escapes.
        while index < buffer.count {
            let byte = buffer[index]
            if byte == UInt8(ascii: "\"") {
                let slice = UnsafeRawBufferPointer(rebasing: buffer[start..<index])
                guard let string = String(validating: slice, as: UTF8.self) else {
                    throw fail(.invalidUTF8)
                }
                index += 1
                return string
            }
            if byte == UInt8(ascii: "\\") { break }
            if byte < 0x20 { throw fail(.invalidString) }
            index += 1
        }
        guard index < buffer.count else { throw fail(.unexpectedEnd) }
        // Slow path: copy what we have, then decode escapes.
        var bytes = [UInt8](UnsafeRawBufferPointer(rebasing: buffer[start..<index]))
        while index < buffer.count {
            let byte = buffer[index]
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                guard let string = String(validating: bytes, as: UTF8.self) else { throw fail(.invalidUTF8) }
                return string
            case UInt8(ascii: "\\"):
                index += 1
                guard index < buffer.count else { throw fail(.unexpectedEnd) }
                let escape = buffer[index]
                index += 1
                switch escape {
                case UInt8(ascii: "\""): bytes.append(0x22)
                case UInt8(ascii: "\\"): bytes.append(0x5C)
                case UInt8(ascii: "/"): bytes.append(0x2F)
                case UInt8(ascii: "b"): bytes.append(0x08)
                case UInt8(ascii: "f"): bytes.append(0x0C)
                case UInt8(ascii: "n"): bytes.append(0x0A)
                case UInt8(ascii: "r"): bytes.append(0x0D)
                case UInt8(ascii: "t"): bytes.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try parseHex4()
                    if scalar >= 0xD800 && scalar <= 0xDBFF {
                        // A high surrogate must be followed by an escaped low surrogate.
                        guard index + 1 < buffer.count, buffer[index] == UInt8(ascii: "\\"),
                              buffer[index + 1] == UInt8(ascii: "u") else { throw fail(.invalidString) }
                        index += 2
                        let low = try parseHex4()
                        guard low >= 0xDC00 && low <= 0xDFFF else { throw fail(.invalidString) }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if scalar >= 0xDC00 && scalar <= 0xDFFF {
                        throw fail(.invalidString)
                    }
                    guard let unicode = Unicode.Scalar(scalar) else { throw fail(.invalidString) }
                    bytes.append(contentsOf: Array(String(Character(unicode)).utf8))
                default:
                    throw fail(.invalidString)
                }
            default:
                if byte < 0x20 { throw fail(.invalidString) }
                bytes.append(byte)
                index += 1
            }
        }
        throw fail(.unexpectedEnd)
    }

    mutating func parseHex4() throws(JSONParser.Error) -> UInt32 {
        guard buffer.count - index >= 4 else { throw fail(.unexpectedEnd) }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = buffer[index]
            let digit: UInt32
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
            default: throw fail(.invalidString)
            }
            value = value << 4 | digit
            index += 1
        }
        return value
    }
}
