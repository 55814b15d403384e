import ForecourtCore
import Foundation
import Testing

@Suite struct UUIDTextTests {
    @Test func parsesAndFormatsAsFoundationDoes() {
        for _ in 0..<2_000 {
            let id = UUID.random()
            #expect(id.lowercasedText == id.uuidString.lowercased())
            #expect(UUID(text: id.uuidString) == id)
            #expect(UUID(text: id.uuidString.lowercased()) == id)
            #expect(UUID(text: Substring(id.lowercasedText)) == id)
        }
        let mixed = "6ba7B810-9DAD-11d1-80b4-00C04FD430C8"
        #expect(UUID(text: mixed) == UUID(uuidString: mixed))
        #expect(UUID(text: mixed) != nil)
    }

    @Test(arguments: [
        "", "6ba7b810-9dad-11d1-80b4-00c04fd430c", "6ba7b810-9dad-11d1-80b4-00c04fd430c8a",
        "6ba7b8109dad-11d1-80b4-00c04fd430c8a", "6ba7b810-9dad-11d1-80b4_00c04fd430c8",
        "6ba7b810-9dad-11d1-80b4-00c04fd430cg", "g ba7b810-9dad-11d1-80b4-00c04fd430c8",
        " 6ba7b810-9dad-11d1-80b4-00c04fd430c", "6ba7b810-9dad-11d1-80b4-00c04fd430c\u{e9}",
        "{6ba7b810-9dad-11d1-80b4-00c04fd430c8}", "6ba7b810+9dad-11d1-80b4-00c04fd430c8",
    ])
    func refusesAnythingButTheTextForm(_ text: String) {
        // Stricter than Foundation, whose `sscanf` takes " 6ba7b810-…-00c04fd430c" (a leading
        // space, 35 digits) for a UUID.
        #expect(UUID(text: text) == nil)
    }
}
