/// Vehicle identification numbers: 17 characters of `A-Z` and `0-9` without `I`, `O` and `Q`,
/// with the North American check digit in position 9 (49 CFR 565).
public enum VIN {
    /// The VIN in upper case if it is valid, else nil.
    public static func validated(_ text: String) -> String? {
        let vin = text.uppercased()
        let bytes = Array(vin.utf8)
        guard bytes.count == 17 else { return nil }
        var sum = 0
        for (index, byte) in bytes.enumerated() {
            guard let value = transliteration(byte) else { return nil }
            sum += value * weights[index]
        }
        let remainder = sum % 11
        let expected: UInt8 = remainder == 10 ? UInt8(ascii: "X") : UInt8(ascii: "0") + UInt8(remainder)
        return bytes[8] == expected ? vin : nil
    }

    /// `text` (17 characters) with its check digit put in position 9: for making valid VINs
    /// (demo data, tests). Nil when a character may not appear in a VIN.
    public static func completing(_ text: String) -> String? {
        var bytes = Array(text.uppercased().utf8)
        guard bytes.count == 17 else { return nil }
        bytes[8] = UInt8(ascii: "0")
        var sum = 0
        for (index, byte) in bytes.enumerated() {
            guard let value = transliteration(byte) else { return nil }
            sum += value * weights[index]
        }
        let remainder = sum % 11
        bytes[8] = remainder == 10 ? UInt8(ascii: "X") : UInt8(ascii: "0") + UInt8(remainder)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Whether `text` is a valid VIN (case-insensitive).
    public static func isValid(_ text: String) -> Bool { validated(text) != nil }

    /// The last 8 characters, as `track.lookup` takes them: `A-Z0-9` without I, O, Q.
    public static func validatedLast8(_ text: String) -> String? {
        let value = text.uppercased()
        let bytes = Array(value.utf8)
        guard bytes.count == 8, bytes.allSatisfy({ transliteration($0) != nil }) else { return nil }
        return value
    }

    private static let weights = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2]

    /// The numeric value of a VIN character; nil for characters a VIN may not contain.
    private static func transliteration(_ byte: UInt8) -> Int? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return Int(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "A")...UInt8(ascii: "H"): return Int(byte - UInt8(ascii: "A")) + 1
        case UInt8(ascii: "J")...UInt8(ascii: "N"): return Int(byte - UInt8(ascii: "J")) + 1
        case UInt8(ascii: "P"): return 7
        case UInt8(ascii: "R"): return 9
        case UInt8(ascii: "S")...UInt8(ascii: "Z"): return Int(byte - UInt8(ascii: "S")) + 2
        default: return nil
        }
    }
}
