import Testing

@testable import FieldCrypto

@Suite("Normalisation")
struct NormalizeTests {
    @Test(arguments: [
        ("anna@example.de", "anna@example.de"),
        ("  Anna.Schmidt@Example.DE \n", "anna.schmidt@example.de"),
        ("ANNA+CRM@MAIL.EXAMPLE.CO.UK", "anna+crm@mail.example.co.uk"),
    ])
    func validEmails(raw: String, normalized: String) {
        #expect(Normalize.email(raw) == normalized)
    }

    @Test(arguments: [
        "", "   ", "anna", "anna@", "@example.de", "anna@example", "anna@@example.de", "anna@b@example.de",
        "an na@example.de", "anna@example..de", "anna@.example.de", "anna@example.de.", "anna@exa\u{0}mple.de",
        String(repeating: "a", count: 65) + "@example.de",
        "anna@" + String(repeating: "a", count: 250) + ".de",
    ])
    func invalidEmails(raw: String) {
        #expect(Normalize.email(raw) == nil)
    }

    @Test func emailLengthLimitIs254() {
        let domain = String(repeating: "d", count: 254 - 64 - 1 - 3) + ".de"
        let longest = String(repeating: "l", count: 64) + "@" + domain
        #expect(longest.utf8.count == 254)
        #expect(Normalize.email(longest) == longest)
        #expect(Normalize.email(longest + "x") == nil)
    }

    @Test(arguments: [
        ("+49 30 1234567", "+49301234567"),
        ("+49-30-123 45 67", "+49301234567"),
        ("+49 (0)30.1234567", "+49301234567"),
        ("+44 (0) 20 7946 0958", "+442079460958"),
        ("+1 (415) 555-0100", "+14155550100"),
        ("0049 30 1234567", "+49301234567"),
        (" +1 (415) 555-0100 ", "+14155550100"),
        ("+44 20 7946 0958", "+442079460958"),
        ("+12345678", "+12345678"),
        ("+123456789012345", "+123456789012345"),
    ])
    func validPhones(raw: String, normalized: String) {
        #expect(Normalize.phone(raw) == normalized)
    }

    @Test(arguments: [
        "", "030 1234567", "4930123456", "+1234567", "+1234567890123456", "+49 30 CALL ME", "+49+301234567",
        "+0123456789", "0049", "++49301234567", "+49/30/1234567", "+４９３０１２３４５６７",
    ])
    func invalidPhones(raw: String) {
        #expect(Normalize.phone(raw) == nil)
    }

    @Test func equalPhonesInDifferentFormatsNormaliseAlike() {
        let forms = ["+49 30 1234567", "0049-30-1234567", "+49.30.123.45.67", "(+49) 30 1234567"]
        #expect(Set(forms.map(Normalize.phone)) == ["+49301234567"])
    }

    @Test(arguments: [
        ("  JOSÉ  Müller ", "jose muller"),
        ("José Müller", "jose muller"),
        ("Jose\u{0301} Mu\u{0308}ller", "jose muller"),  // already decomposed
        ("jose\tmuller\n", "jose muller"),
        ("Ｊｏｓｅ Ｍｕｌｌｅｒ", "jose muller"),  // full-width
        ("François Ñúñez-Çelik", "francois nunez-celik"),
        ("Zoë\u{200B} O'Brien", "zoe o'brien"),  // zero-width space dropped
        ("Ångström", "angstrom"),
    ])
    func fullNames(raw: String, normalized: String) {
        #expect(Normalize.fullName(raw) == normalized)
    }

    @Test func namesThatDifferOnlyInAccentsCaseAndSpacingAreEqual() {
        #expect(Normalize.fullName("  JOSÉ  Müller ") == Normalize.fullName("jose muller"))
        #expect(Normalize.fullName("Jose Mueller") != Normalize.fullName("jose muller"))
    }

    @Test(arguments: ["", "   ", "\u{0301}", "\n\t"])
    func emptyNamesAreNil(raw: String) {
        #expect(Normalize.fullName(raw) == nil)
    }

    /// The ASCII paths must give exactly what the Unicode paths give: every ASCII character
    /// in every position of typical values, and random ASCII strings.
    @Test func asciiPathsAgreeWithUnicodePaths() {
        var inputs = ["anna@example.de", "  Anna.Schmidt@Example.DE \r\n", "+44 (0)20 7946-0958", "0049 (30) 1234.567",
            "((0)0)+4930123456", "  JOSE \t Muller\u{0B}\u{0C} ", "a\u{1C}b", "\r\n", "",
            // The email shapes the ASCII path checks on bytes.
            "a@b.c", "a@.b", "a@b.", "a@b..c", "@b.c", "a@@b.c", "a@b@c.d", "a@b", "a.b@c.d.e", ".@a.b", "a@b.c.",
            String(repeating: "x", count: 64) + "@b.c", String(repeating: "x", count: 65) + "@b.c",
            "x@" + String(repeating: "y.", count: 126) + "z", "x@" + String(repeating: "y.", count: 126) + "zz"]
        for code in 0..<128 {
            let character = String(UnicodeScalar(UInt8(code)))
            for base in ["anna@example.de", "+49301234567", "Jose Muller"] {
                inputs += [character + base, base + character, base.replacingOccurrences(of: "e", with: character)]
            }
        }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let length = Int.random(in: 0...24, using: &generator)
            inputs.append(String(decoding: (0..<length).map { _ in UInt8.random(in: 0..<128, using: &generator) }, as: UTF8.self))
        }
        for input in inputs {
            #expect(Normalize.email(input, asciiPath: true) == Normalize.email(input, asciiPath: false), "\(Array(input.utf8))")
            #expect(Normalize.phone(input, asciiPath: true) == Normalize.phone(input, asciiPath: false), "\(Array(input.utf8))")
            #expect(Normalize.fullName(input, asciiPath: true) == Normalize.fullName(input, asciiPath: false), "\(Array(input.utf8))")
        }
    }
}
