import Foundation
import JSONRPC
import Testing

/// The writer's exact output for strings: plain runs copied whole, escapes between them.
@Suite struct JSONWriterTests {
    @Test(arguments: [
        ("", #""""#),
        ("plain text", #""plain text""#),
        ("a\"b", #""a\"b""#),
        ("\"", #""\"""#),
        ("\\\\", #""\\\\""#),
        ("line\nnext\r\tend\n", #""line\nnext\r\tend\n""#),
        ("\u{0}x\u{1F}", #""\u0000x\u001f""#),
        ("é€😀/\u{7F}", "\"é€😀/\u{7F}\""),
        ("ends with control\u{08}", #""ends with control\u0008""#),
    ])
    func writesStrings(_ input: String, _ expected: String) {
        #expect(JSONWriter.string(.string(input)) == expected)
        #expect(JSONWriter.string(.object(["k\n": .string(input)])) == "{\"k\\n\":\(expected)}")
    }

    @Test func writesSubstringBackedAndBridgedStrings() {
        let long = String(repeating: "abc\"", count: 300)
        let expected = "\"" + String(repeating: "abc\\\"", count: 300) + "\""
        #expect(JSONWriter.string(.string(long)) == expected)
        let sliced = String(long.dropFirst(4))
        #expect(JSONWriter.string(.string(sliced)) == "\"" + String(repeating: "abc\\\"", count: 299) + "\"")
    }
}
