import Foundation
import ForecourtCore
import RPC
import Testing

/// The JSON parser on its own, over cases in the manner of JSONTestSuite (written here, one
/// row per case): `y_` texts must parse to the given value, `n_` texts must be refused with
/// the given reason, whatever the bytes. RFC 8259 is the rule; where it leaves a choice to
/// the parser (depth, number length, duplicate names), docs/protocol.md says what we chose.
struct JSONParserTests {
    enum Expected: Sendable {
        case value(JSON)
        /// A number, kept as exactly this text.
        case number(String)
        case error(JSONParser.Error.Reason)
    }

    struct Case: Sendable, CustomTestStringConvertible {
        let name: String
        let bytes: [UInt8]
        let expected: Expected
        var testDescription: String { name }

        init(_ name: String, _ text: String, _ expected: Expected) {
            self.init(name, Array(text.utf8), expected)
        }

        init(_ name: String, _ bytes: [UInt8], _ expected: Expected) {
            self.name = name
            self.bytes = bytes
            self.expected = expected
        }
    }

    /// `["` + bytes + `"]`: raw bytes inside a string.
    static func inString(_ bytes: [UInt8]) -> [UInt8] { Array(#"[""#.utf8) + bytes + Array(#""]"#.utf8) }

    static let accepted: [Case] = [
        Case("y_structure_empty_array", "[]", .value([])),
        Case("y_structure_empty_object", "{}", .value([:])),
        Case("y_structure_top_level_string", #""a""#, .value("a")),
        Case("y_structure_top_level_true", "true", .value(true)),
        Case("y_structure_top_level_null", " null ", .value(nil)),
        Case("y_structure_nested", #"{"a":[1,{"b":null}],"c":{}}"#, .value(["a": [1, ["b": nil]], "c": [:]])),
        Case("y_whitespace_all_four", " \t\n\r[\r\n1 ,\t2 ]\n\r \t", .value([1, 2])),
        Case("y_whitespace_around_members", "{ \"a\" :\t1 , \"b\"\n:\r2 }", .value(["a": 1, "b": 2])),
        Case("y_string_empty", #""""#, .value("")),
        Case("y_string_simple_escapes", #"["\"\\\/\b\f\n\r\t"]"#, .value(["\"\\/\u{08}\u{0C}\n\r\t"])),
        Case("y_string_escaped_nul", #"["a\u0000b"]"#, .value(["a\u{0}b"])),
        Case("y_string_escaped_control", #"["\u001f\u007f"]"#, .value(["\u{1F}\u{7F}"])),
        Case("y_string_u_escape_both_cases", #"["\u00E9\u00e9\u20AC"]"#, .value(["éé€"])),
        Case("y_string_escape_then_raw_utf8", Array(#"["\n"#.utf8) + [0xC3, 0xA9] + Array(#""]"#.utf8), .value(["\né"])),
        Case("y_string_paired_surrogate", #"["\uD834\uDD1E"]"#, .value(["𝄞"])),
        Case("y_string_paired_surrogate_lowercase", #"["\ud83d\ude00"]"#, .value(["😀"])),
        Case("y_string_escaped_max_scalar", #"["\uDBFF\uDFFF"]"#, .value(["\u{10FFFF}"])),
        Case("y_string_escaped_noncharacter", #"["\uFFFF\uFDD0"]"#, .value([.string(scalars(0xFFFF, 0xFDD0))])),
        Case("y_string_raw_utf8_2_3_4", inString([0xC3, 0xA9, 0xE2, 0x82, 0xAC, 0xF0, 0x9F, 0x98, 0x80]), .value(["é€😀"])),
        Case("y_string_raw_max_scalar", inString([0xF4, 0x8F, 0xBF, 0xBF]), .value(["\u{10FFFF}"])),
        Case("y_string_raw_noncharacter", inString([0xEF, 0xBF, 0xBF]), .value([.string(scalars(0xFFFF))])),
        Case("y_string_raw_del", inString([0x7F]), .value(["\u{7F}"])),
        Case("y_string_raw_line_separator", inString([0xE2, 0x80, 0xA8]), .value(["\u{2028}"])),
        Case("y_string_unescaped_slash", #"["/"]"#, .value(["/"])),
        Case("y_number_zero", "0", .number("0")),
        Case("y_number_negative_zero", "-0", .number("-0")),
        Case("y_number_fraction", "[1.5]", .value([.number(try! number("1.5"))])),
        Case("y_number_exponent_signs", "-1.5e+3", .number("-1.5e+3")),
        Case("y_number_capital_e", "1E-2", .number("1E-2")),
        Case("y_number_zero_fraction_exponent", "0.0e0", .number("0.0e0")),
        Case("y_number_huge_exponent", "1e999999", .number("1e999999")),
        Case("y_number_tiny_exponent", "-1e-999999", .number("-1e-999999")),
        Case("y_number_big_integer", "123456789012345678901234567890", .number("123456789012345678901234567890")),
        Case("y_number_512_characters", String(repeating: "9", count: 512), .number(String(repeating: "9", count: 512))),
        Case("y_object_duplicate_names_kept", #"{"a":1,"a":2}"#, .value(.object(JSONObject([(key: "a", value: 1), (key: "a", value: 2)])))),
        Case("y_object_empty_name", #"{"":0}"#, .value(["": 0])),
        Case("y_depth_64_arrays", String(repeating: "[", count: 64) + String(repeating: "]", count: 64), .value(nested(64))),
    ]

    static let refused: [Case] = [
        // Surrogates: only a high one followed by an escaped low one makes a character.
        Case("n_string_lone_high_surrogate", #"["\uD800"]"#, .error(.invalidString)),
        Case("n_string_high_surrogate_then_char", #"["\uD800x"]"#, .error(.invalidString)),
        Case("n_string_high_surrogate_then_escape", #"["\uD800\n"]"#, .error(.invalidString)),
        Case("n_string_high_surrogate_then_bmp", #"["\uD800\u0041"]"#, .error(.invalidString)),
        Case("n_string_two_high_surrogates", #"["\uD800\uD800"]"#, .error(.invalidString)),
        Case("n_string_lone_low_surrogate", #"["\uDC00"]"#, .error(.invalidString)),
        Case("n_string_reversed_surrogates", #"["\uDFFF\uD800"]"#, .error(.invalidString)),
        Case("n_string_high_surrogate_at_end", #""\uD800"#, .error(.invalidString)),
        // UTF-8: the shortest form only, no encoded surrogates, nothing past U+10FFFF.
        Case("n_utf8_encoded_surrogate", inString([0xED, 0xA0, 0x80]), .error(.invalidUTF8)),
        Case("n_utf8_encoded_low_surrogate", inString([0xED, 0xBF, 0xBF]), .error(.invalidUTF8)),
        Case("n_utf8_overlong_slash_2", inString([0xC0, 0xAF]), .error(.invalidUTF8)),
        Case("n_utf8_overlong_nul_2", inString([0xC0, 0x80]), .error(.invalidUTF8)),
        Case("n_utf8_overlong_c1", inString([0xC1, 0xBF]), .error(.invalidUTF8)),
        Case("n_utf8_overlong_slash_3", inString([0xE0, 0x80, 0xAF]), .error(.invalidUTF8)),
        Case("n_utf8_overlong_slash_4", inString([0xF0, 0x80, 0x80, 0xAF]), .error(.invalidUTF8)),
        Case("n_utf8_overlong_max_3", inString([0xE0, 0x9F, 0xBF]), .error(.invalidUTF8)),
        Case("n_utf8_beyond_max_scalar", inString([0xF4, 0x90, 0x80, 0x80]), .error(.invalidUTF8)),
        Case("n_utf8_f5_lead", inString([0xF5, 0x80, 0x80, 0x80]), .error(.invalidUTF8)),
        Case("n_utf8_fe", inString([0xFE]), .error(.invalidUTF8)),
        Case("n_utf8_ff", inString([0xFF]), .error(.invalidUTF8)),
        Case("n_utf8_lone_continuation", inString([0x80]), .error(.invalidUTF8)),
        Case("n_utf8_truncated_3", inString([0xE2, 0x82]), .error(.invalidUTF8)),
        Case("n_utf8_truncated_4_at_end", inString([0xF0, 0x9F, 0x98]), .error(.invalidUTF8)),
        Case("n_utf8_invalid_after_escape", Array(#"["\n"#.utf8) + [0xC0, 0xAF] + Array(#""]"#.utf8), .error(.invalidUTF8)),
        Case("n_utf8_invalid_in_name", Array(#"{""#.utf8) + [0xC0, 0xAF] + Array(#"":1}"#.utf8), .error(.invalidUTF8)),
        Case("n_utf8_outside_string", [0x5B, 0xC3, 0xA9, 0x5D], .error(.unexpectedCharacter)),
        Case("n_utf8_bom", [0xEF, 0xBB, 0xBF, 0x5B, 0x5D], .error(.unexpectedCharacter)),
        // Escapes.
        Case("n_string_escape_x", #"["\x41"]"#, .error(.invalidString)),
        Case("n_string_escape_apostrophe", #"["\'"]"#, .error(.invalidString)),
        Case("n_string_escape_a", #"["\a"]"#, .error(.invalidString)),
        Case("n_string_escape_capital_u", #"["\U0041"]"#, .error(.invalidString)),
        Case("n_string_escape_u_short", #"["\u12"]"#, .error(.invalidString)),
        Case("n_string_escape_u_bad_hex", #"["\u12G4"]"#, .error(.invalidString)),
        Case("n_string_escape_raw_utf8", Array(#"["\"#.utf8) + [0xC3, 0xA9] + Array(#""]"#.utf8), .error(.invalidString)),
        Case("n_string_escape_at_end", #""\"#, .error(.unexpectedEnd)),
        Case("n_string_u_escape_at_end", #""\u00"#, .error(.unexpectedEnd)),
        // Control characters must be escaped.
        Case("n_string_raw_tab", "[\"a\tb\"]", .error(.invalidString)),
        Case("n_string_raw_newline", "[\"a\nb\"]", .error(.invalidString)),
        Case("n_string_raw_nul", inString([0x00]), .error(.invalidString)),
        Case("n_string_raw_1f", inString([0x1F]), .error(.invalidString)),
        Case("n_string_raw_control_after_escape", "[\"\\n\u{01}\"]", .error(.invalidString)),
        Case("n_string_unterminated", #"["abc"#, .error(.unexpectedEnd)),
        Case("n_string_single_quotes", "['a']", .error(.unexpectedCharacter)),
        // Numbers.
        Case("n_number_leading_zero_in_array", "[01]", .error(.unexpectedCharacter)),
        Case("n_number_leading_zero", "01", .error(.trailingData)),
        Case("n_number_negative_leading_zero", "-01", .error(.trailingData)),
        Case("n_number_double_zero", "00", .error(.trailingData)),
        Case("n_number_leading_zero_fraction_ok_but_then_digit", "0.5e01x", .error(.trailingData)),
        Case("n_number_minus_alone", "[-]", .error(.invalidNumber)),
        Case("n_number_minus_at_end", "-", .error(.unexpectedEnd)),
        Case("n_number_minus_space", "[- 1]", .error(.invalidNumber)),
        Case("n_number_plus", "[+1]", .error(.unexpectedCharacter)),
        Case("n_number_leading_dot", "[.5]", .error(.unexpectedCharacter)),
        Case("n_number_trailing_dot", "[1.]", .error(.invalidNumber)),
        Case("n_number_dot_exponent", "[1.e3]", .error(.invalidNumber)),
        Case("n_number_empty_exponent", "[1e]", .error(.invalidNumber)),
        Case("n_number_signed_empty_exponent", "[1e+]", .error(.invalidNumber)),
        Case("n_number_two_dots", "[1.5.3]", .error(.unexpectedCharacter)),
        Case("n_number_hex", "[0x10]", .error(.unexpectedCharacter)),
        Case("n_number_underscore", "[1_000]", .error(.unexpectedCharacter)),
        Case("n_number_infinity", "[Infinity]", .error(.unexpectedCharacter)),
        Case("n_number_minus_infinity", "[-Infinity]", .error(.invalidNumber)),
        Case("n_number_nan", "[NaN]", .error(.unexpectedCharacter)),
        Case("n_number_513_characters", String(repeating: "9", count: 513), .error(.invalidNumber)),
        Case("n_number_long_exponent", "1e" + String(repeating: "9", count: 511), .error(.invalidNumber)),
        // Structure and trailing garbage.
        Case("n_structure_empty", "", .error(.unexpectedEnd)),
        Case("n_structure_only_whitespace", " \t\r\n", .error(.unexpectedEnd)),
        Case("n_structure_trailing_word", "[] x", .error(.trailingData)),
        Case("n_structure_two_objects", "{}{}", .error(.trailingData)),
        Case("n_structure_extra_bracket", "[1]]", .error(.trailingData)),
        Case("n_structure_two_numbers", "1 2", .error(.trailingData)),
        Case("n_structure_string_then_word", #""a"b"#, .error(.trailingData)),
        Case("n_structure_nulll", "nulll", .error(.trailingData)),
        Case("n_structure_trailing_nul", [0x5B, 0x5D, 0x00], .error(.trailingData)),
        Case("n_structure_trailing_comment", "[]/**/", .error(.trailingData)),
        Case("n_structure_leading_comment", "//c\n[]", .error(.unexpectedCharacter)),
        Case("n_structure_array_trailing_comma", "[1,]", .error(.unexpectedCharacter)),
        Case("n_structure_object_trailing_comma", #"{"a":1,}"#, .error(.unexpectedCharacter)),
        Case("n_structure_array_leading_comma", "[,1]", .error(.unexpectedCharacter)),
        Case("n_structure_array_missing_comma", "[1 2]", .error(.unexpectedCharacter)),
        Case("n_structure_object_missing_colon", #"{"a" 1}"#, .error(.unexpectedCharacter)),
        Case("n_structure_object_missing_value", #"{"a":}"#, .error(.unexpectedCharacter)),
        Case("n_structure_object_number_name", "{1:1}", .error(.unexpectedCharacter)),
        Case("n_structure_object_bare_name", "{a:1}", .error(.unexpectedCharacter)),
        Case("n_structure_object_single_quoted_name", "{'a':1}", .error(.unexpectedCharacter)),
        Case("n_structure_unclosed_array", "[1", .error(.unexpectedEnd)),
        Case("n_structure_unclosed_object", #"{"a":1"#, .error(.unexpectedEnd)),
        Case("n_structure_object_name_only", #"{"a""#, .error(.unexpectedEnd)),
        Case("n_structure_depth_65_arrays", String(repeating: "[", count: 65) + String(repeating: "]", count: 65), .error(.tooDeep)),
        Case("n_structure_depth_65_objects", String(repeating: #"{"a":"#, count: 65) + "1" + String(repeating: "}", count: 65), .error(.tooDeep)),
        // Whitespace is space, tab, line feed and carriage return only.
        Case("n_whitespace_form_feed", "\u{0C}[]", .error(.unexpectedCharacter)),
        Case("n_whitespace_vertical_tab", "[\u{0B}1]", .error(.unexpectedCharacter)),
        Case("n_whitespace_nbsp", [0xC2, 0xA0, 0x5B, 0x5D], .error(.unexpectedCharacter)),
        Case("n_whitespace_line_separator", [0x5B, 0x5D, 0xE2, 0x80, 0xA8], .error(.trailingData)),
        Case("n_whitespace_nul_before", [0x00, 0x5B, 0x5D], .error(.unexpectedCharacter)),
        // Literals are lowercase and whole.
        Case("n_literal_tru", "tru", .error(.unexpectedEnd)),
        Case("n_literal_True", "True", .error(.unexpectedCharacter)),
        Case("n_literal_NULL", "NULL", .error(.unexpectedCharacter)),
        Case("n_literal_nul_in_array", "[nul]", .error(.unexpectedCharacter)),
        Case("n_literal_truth", "[truth]", .error(.unexpectedCharacter)),
        Case("n_literal_split", "fals e", .error(.unexpectedCharacter)),
    ]

    @Test(arguments: accepted)
    func accepts(_ c: Case) throws {
        let value = try JSONParser().parse(c.bytes)
        switch c.expected {
        case .value(let expected):
            #expect(value == expected)
        case .number(let text):
            #expect(value == .number(try Self.number(text)))
        case .error:
            Issue.record("an accepted case expects a value")
        }
        // What we write, we read back as the same value (the writer escapes what it must).
        #expect(try JSONParser().parse(JSONWriter.write(value)) == value)
    }

    @Test(arguments: refused)
    func refuses(_ c: Case) {
        guard case .error(let reason) = c.expected else {
            Issue.record("a refused case expects an error")
            return
        }
        #expect(throws: JSONParser.Error.self) { try JSONParser().parse(c.bytes) }
        do {
            let value = try JSONParser().parse(c.bytes)
            Issue.record("parsed as \(value)")
        } catch {
            #expect(error.reason == reason)
            #expect(error.offset >= 0 && error.offset <= c.bytes.count, "the offset is inside the text")
            #expect(!error.description.contains("\""), "the message quotes nothing of the input")
        }
    }

    /// Every kind of text is parsed the same whether it arrives as a contiguous array or as
    /// another collection (the framing hands over `ByteBuffer` views).
    @Test func nonContiguousInputParsesTheSame() throws {
        for c in Self.accepted + Self.refused {
            let contiguous = Result { () throws(JSONParser.Error) in try JSONParser().parse(c.bytes) }
            let lazy = Result { () throws(JSONParser.Error) in try JSONParser().parse(c.bytes.lazy.map { $0 }) }
            #expect(contiguous == lazy, "\(c.name)")
        }
    }

    @Test func depthLimitIsTheParsersSetting() throws {
        let text = String(repeating: "[", count: 10) + String(repeating: "]", count: 10)
        do {
            let value = try JSONParser(maximumDepth: 3).parse(text)
            Issue.record("parsed as \(value)")
        } catch {
            #expect(error.reason == .tooDeep && error.offset == 3)
        }
        #expect(try JSONParser(maximumDepth: 10).parse(text) == Self.nested(10))
        // Hundreds of thousands of brackets cost one error, not a stack overflow.
        #expect(throws: JSONParser.Error.self) { try JSONParser().parse(String(repeating: "[", count: 500_000)) }
    }

    @Test func duplicateNamesAreSeenAndParamsRefusesThem() throws {
        let object = try #require(try JSONParser().parse(#"{"b":0,"a":1,"c":2,"a":3}"#).objectValue)
        #expect(object.duplicateKey == "a")
        #expect(object["a"] == 1, "lookups see the first")
        let many = JSONObject((0..<40).map { (key: "k\($0)", value: JSON.int($0)) } + [(key: "k7", value: JSON.null)])
        #expect(many.duplicateKey == "k7", "also past the small-object path")
        let params = Params(object)
        _ = params.raw("a")
        _ = params.raw("b")
        _ = params.raw("c")
        #expect(throws: DomainError.invalidParams("a", "a appears more than once")) { try params.finish() }
    }

    /// Integer parameters take the number's exact value or refuse it: no rounding through a
    /// double, no fraction dropped, nothing past `Int`.
    @Test(arguments: [
        ("0", 0), ("-0", 0), ("42", 42), ("3.0", 3), ("3e2", 300), ("1E+2", 100), ("12.30e1", 123), ("100e-2", 1),
        ("0e5", 0), ("0.000e-5", 0), ("-0.0", 0), ("-7.00", -7),
        ("9223372036854775807", Int.max), ("-9223372036854775808", Int.min), ("922337203685477580.7e1", Int.max),
        ("9007199254740993", 9_007_199_254_740_993), ("9007199254740993.0", 9_007_199_254_740_993),
    ])
    func integersAreExact(text: String, value: Int) throws {
        #expect(try Self.number(text).intValue == value)
    }

    @Test(arguments: [
        "3.5", "0.1", "1e-1", "1e-999", "5.0000000000000000001", "9223372036854775808", "-9223372036854775809",
        "1e19", "1e999", "-1e999", "1e999999", "123456789012345678901234567890",
        "0." + String(repeating: "0", count: 400) + "1",
    ])
    func nonIntegersAndOutOfRangeAreNotIntegers(text: String) throws {
        #expect(try Self.number(text).intValue == nil)
    }

    @Test func integerParamsRefuseHugeAndFractionalNumbers() throws {
        for text in ["1e999", "1e-999", "2.5", "50.000000000000000001", "1e3"] {
            let object = try #require(try JSONParser().parse(#"{"limit": \#(text)}"#).objectValue)
            #expect(throws: DomainError.self, "\(text)") { try Params(object).listLimit() }
        }
        let object = try #require(try JSONParser().parse(#"{"limit": 5e1}"#).objectValue)
        #expect(try Params(object).listLimit() == 50)
    }

    // MARK: helpers

    static func number(_ text: String) throws -> JSONNumber {
        let value = try JSONParser().parse(text)
        guard case .number(let number) = value else { throw NotANumber() }
        return number
    }

    struct NotANumber: Error {}

    /// A string of the given scalars (Swift literals refuse noncharacters such as U+FFFF).
    static func scalars(_ values: UInt32...) -> String {
        String(String.UnicodeScalarView(values.map { Unicode.Scalar($0)! }))
    }

    static func nested(_ depth: Int) -> JSON {
        (0..<depth - 1).reduce(JSON.array([])) { inner, _ in .array([inner]) }
    }

    /// Ids are written in lower case, exactly as Foundation's string lowercased.
    @Test func uuidsAreLowercaseStrings() {
        for uuid in [UUID(uuid: (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 255))] + (0..<100).map({ _ in UUID() }) {
            #expect(uuid.json == .string(uuid.uuidString.lowercased()))
        }
    }
}
