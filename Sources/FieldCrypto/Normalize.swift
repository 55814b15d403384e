import Foundation

/// The canonical forms of personal fields, used before computing blind indexes (and for
/// validation), so that lookups match however a value was typed.
///
/// Each function returns `nil` for a value that is not valid; callers report which field.
///
/// Each has a byte-level path for ASCII input (most values), equal in result to the Unicode
/// path (a test compares them over every ASCII character), and many times cheaper: a CRM
/// batch normalises thousands of values.
public enum Normalize {
    /// The longest email address accepted, in UTF-8 bytes (RFC 5321 path limit).
    public static let maximumEmailLength = 254
    /// The longest local part (before `@`) accepted, in UTF-8 bytes.
    public static let maximumEmailLocalLength = 64

    /// An email address trimmed and lowercased, or `nil` unless it looks like `local@domain`:
    /// exactly one `@`, a non-empty local part of at most 64 bytes, a domain with a dot that
    /// neither starts nor ends with one and has no empty label, no whitespace or control
    /// characters, at most 254 bytes in all.
    public static func email(_ raw: String) -> String? { email(raw, asciiPath: true) }

    static func email(_ raw: String, asciiPath: Bool) -> String? {
        let value: String
        if asciiPath, let ascii = asciiBytes(raw) {
            let trimmed = trimASCIIWhitespace(ascii)
            // Whitespace, controls and DEL: the ASCII members of the sets below.
            guard !trimmed.contains(where: { $0 <= 0x20 || $0 == 0x7F }) else { return nil }
            let lowered = trimmed.map(lowercasedASCII)
            // The checks below on bytes: in ASCII without whitespace or controls, characters are bytes.
            guard isEmailShape(lowered) else { return nil }
            return String(decoding: lowered, as: UTF8.self)
        } else {
            value = raw.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
            guard !value.unicodeScalars.contains(where: { scalar in
                CharacterSet.whitespacesAndNewlines.contains(scalar) || CharacterSet.controlCharacters.contains(scalar)
            }) else { return nil }
        }
        guard !value.isEmpty, value.utf8.count <= maximumEmailLength else { return nil }
        let parts = value.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2 else { return nil }
        let local = parts[0]
        let domain = parts[1]
        guard !local.isEmpty, local.utf8.count <= maximumEmailLocalLength else { return nil }
        let labels = domain.split(separator: ".", omittingEmptySubsequences: false)
        guard labels.count >= 2, labels.allSatisfy({ !$0.isEmpty }) else { return nil }
        return value
    }

    /// A phone number in E.164 form (`+` and 8 to 15 digits, the first not 0), or `nil`.
    ///
    /// Spaces, dashes, dots and parentheses are removed, as is a `(0)` trunk-prefix marker
    /// (`+44 (0)20 7946 0958`); a leading `00` (the international call prefix) becomes `+`.
    /// A number with neither is national and cannot be placed in a country, so it is invalid.
    public static func phone(_ raw: String) -> String? { phone(raw, asciiPath: true) }

    static func phone(_ raw: String, asciiPath: Bool) -> String? {
        var compact: String
        if asciiPath, let ascii = asciiBytes(raw) {
            var bytes: [UInt8] = []
            bytes.reserveCapacity(ascii.count)
            var index = 0
            while index < ascii.count {
                if ascii[index] == UInt8(ascii: "("), index + 2 < ascii.count, ascii[index + 1] == UInt8(ascii: "0"),
                    ascii[index + 2] == UInt8(ascii: ")")
                {
                    index += 3
                    continue
                }
                let byte = ascii[index]
                if !isASCIIWhitespace(byte), !"-.()".utf8.contains(byte) { bytes.append(byte) }
                index += 1
            }
            compact = String(decoding: bytes, as: UTF8.self)
        } else {
            let separators: Set<Character> = ["-", ".", "(", ")"]
            // "+44 (0)20 ..." marks a trunk prefix that is dialled only nationally; it is not
            // part of the international number.
            let withoutTrunk = raw.replacingOccurrences(of: "(0)", with: "")
            compact = String(withoutTrunk.filter { !$0.isWhitespace && !separators.contains($0) })
        }
        if compact.hasPrefix("00") {
            compact = "+" + compact.dropFirst(2)
        }
        guard compact.first == "+" else { return nil }
        let digits = compact.utf8.dropFirst()
        guard (8...15).contains(digits.count),
              digits.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
              digits.first != UInt8(ascii: "0")
        else { return nil }
        return compact
    }

    /// A full name with compatibility forms unified (NFKD), accents and other combining marks
    /// removed (and invisible format characters), lowercased, and runs of whitespace collapsed to one space and trimmed:
    /// `"  JOSÉ  Müller "` becomes `"jose muller"`. `nil` when nothing is left.
    public static func fullName(_ raw: String) -> String? { fullName(raw, asciiPath: true) }

    static func fullName(_ raw: String, asciiPath: Bool) -> String? {
        if asciiPath, let ascii = asciiBytes(raw) {
            // No accents, marks or wide forms in ASCII: lowercase and collapse whitespace.
            let words = ascii.split(whereSeparator: isASCIIWhitespace)
            guard !words.isEmpty else { return nil }
            return String(decoding: words.joined(separator: [UInt8(ascii: " ")]).map(lowercasedASCII), as: UTF8.self)
        }
        let folded = raw
            .folding(options: [.diacriticInsensitive, .caseInsensitive, .widthInsensitive], locale: nil)
            .decomposedStringWithCompatibilityMapping
        var scalars = String.UnicodeScalarView()
        for scalar in folded.unicodeScalars {
            switch scalar.properties.generalCategory {
            case .nonspacingMark, .spacingMark, .enclosingMark, .format:
                // Accents, and invisible formatting such as zero-width joiners.
                continue
            default:
                scalars.append(scalar)
            }
        }
        let words = String(scalars).lowercased().split(whereSeparator: { $0.isWhitespace })
        guard !words.isEmpty else { return nil }
        return words.joined(separator: " ")
    }

    // MARK: ASCII

    /// `email`'s checks of the shape on the bytes of an ASCII value: at most 254 bytes, exactly
    /// one `@`, a local part of 1 to 64 bytes, a domain of two or more non-empty dot-separated labels.
    static func isEmailShape(_ bytes: [UInt8]) -> Bool {
        guard !bytes.isEmpty, bytes.count <= maximumEmailLength,
            let at = bytes.firstIndex(of: UInt8(ascii: "@")), at == bytes.lastIndex(of: UInt8(ascii: "@")),
            at > 0, at <= maximumEmailLocalLength
        else { return false }
        let domain = bytes[(at + 1)...]
        let dot = UInt8(ascii: ".")
        guard let first = domain.first, let last = domain.last, first != dot, last != dot, domain.contains(dot) else {
            return false
        }
        var previous: UInt8 = 0
        for byte in domain {
            if byte == dot && previous == dot { return false }
            previous = byte
        }
        return true
    }

    /// The UTF-8 bytes of `raw` when they are all ASCII, else nil.
    static func asciiBytes(_ raw: String) -> [UInt8]? {
        let bytes = Array(raw.utf8)
        return bytes.allSatisfy { $0 < 0x80 } ? bytes : nil
    }

    /// The ASCII characters with Unicode's White_Space property: tab, line feed, vertical
    /// tab, form feed, carriage return and space.
    static func isASCIIWhitespace(_ byte: UInt8) -> Bool {
        (0x09...0x0D).contains(byte) || byte == 0x20
    }

    static func lowercasedASCII(_ byte: UInt8) -> UInt8 {
        (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte + 0x20 : byte
    }

    static func trimASCIIWhitespace(_ bytes: [UInt8]) -> ArraySlice<UInt8> {
        guard let first = bytes.firstIndex(where: { !isASCIIWhitespace($0) }),
            let last = bytes.lastIndex(where: { !isASCIIWhitespace($0) })
        else { return [] }
        return bytes[first...last]
    }
}
