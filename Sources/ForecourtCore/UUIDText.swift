import Foundation

extension UUID {
    /// Parses the 36-character text form (`8-4-4-4-12` hexadecimal digits, either case): what
    /// `UUID(uuidString:)` accepts, without Foundation's `sscanf` per id, which showed in the
    /// profile of `order.get` (docs/performance.md, "Where the time goes").
    public init?(text: some StringProtocol) {
        var string = String(text)
        guard let value = string.withUTF8({ Self.parse($0) }) else { return nil }
        self.init(uuid: value)
    }

    private static func parse(_ bytes: UnsafeBufferPointer<UInt8>) -> uuid_t? {
        guard bytes.count == 36 else { return nil }
        var value: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        let ok = withUnsafeMutableBytes(of: &value) { out -> Bool in
            var i = 0
            for n in 0..<16 {
                if n == 4 || n == 6 || n == 8 || n == 10 {
                    guard bytes[i] == UInt8(ascii: "-") else { return false }
                    i += 1
                }
                guard let high = nibble(bytes[i]), let low = nibble(bytes[i + 1]) else { return false }
                out[n] = high << 4 | low
                i += 2
            }
            return true
        }
        return ok ? value : nil
    }

    private static func nibble(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte &- UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte &- UInt8(ascii: "a") &+ 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte &- UInt8(ascii: "A") &+ 10
        default: return nil
        }
    }

    /// `uuidString.lowercased()` in one allocation, without Foundation's `snprintf`: the text
    /// of ids sent to PostgreSQL as settings on every call (docs/performance.md).
    public var lowercasedText: String {
        withUnsafeBytes(of: uuid) { bytes in
            String(unsafeUninitializedCapacity: 36) { out in
                let digits: StaticString = "0123456789abcdef"
                let hex = digits.utf8Start
                var i = 0
                for n in 0..<16 {
                    if n == 4 || n == 6 || n == 8 || n == 10 {
                        out[i] = UInt8(ascii: "-")
                        i += 1
                    }
                    let byte = bytes[n]
                    out[i] = hex[Int(byte >> 4)]
                    out[i + 1] = hex[Int(byte & 0x0F)]
                    i += 2
                }
                return i
            }
        }
    }
}
