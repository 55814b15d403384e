import Foundation
import Testing

@testable import FieldCrypto

private let group = UUID(uuidString: "0b7e5a3c-1d2e-4f60-8a9b-0c1d2e3f4a5b")!
private let otherGroup = UUID(uuidString: "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a")!
private let row = UUID(uuidString: "11111111-2222-4333-8444-555555555555")!
private let otherRow = UUID(uuidString: "66666666-7777-4888-9999-aaaaaaaaaaaa")!

private func context(group: UUID = group, table: String = "customers", column: String = "email", row: UUID = row)
    -> FieldContext
{
    FieldContext(group: group, table: table, column: column, row: row)
}

@Suite("FieldCipher envelopes")
struct FieldCipherEnvelopeTests {
    let cipher = FieldCipher(keyring: .generate())

    @Test func roundTripOfStringAndBytes() throws {
        let envelope = try cipher.seal("anna.schmidt@example.de", context: context())
        #expect(try cipher.openString(envelope, context: context()) == "anna.schmidt@example.de")

        let bytes: [UInt8] = [0, 1, 2, 255, 254]
        #expect(try cipher.open(try cipher.seal(bytes, context: context()), context: context()) == bytes)

        let empty = try cipher.seal("", context: context())
        #expect(empty.count == FieldCipher.minimumEnvelopeSize)
        #expect(try cipher.openString(empty, context: context()) == "")
    }

    /// A record's fields sealed at once (one cipher context, one draw of nonces): each is the
    /// envelope `seal(_:context:)` would make, opens in its own column's context only, and has
    /// a nonce of its own; absent values stay absent.
    @Test func sealingSeveralFieldsAtOnce() throws {
        let columns = ["full_name", "email", "phone", "city"]
        let values: [String?] = ["Anna Schmidt", nil, "+4930123456", ""]
        let envelopes = try cipher.sealingKey(group: group).seal(values, table: "customers", columns: columns, row: row)
        #expect(envelopes.count == 4 && envelopes[1] == nil)
        var nonces: Set<[UInt8]> = []
        for (index, envelope) in envelopes.enumerated() {
            guard let envelope, let value = values[index] else { continue }
            #expect(envelope.count == FieldCipher.minimumEnvelopeSize + value.utf8.count)
            #expect(try cipher.openString(envelope, context: context(column: columns[index])) == value)
            #expect(throws: FieldCryptoError.authenticationFailed) {
                try cipher.open(envelope, context: context(column: columns[(index + 1) % columns.count]))
            }
            #expect(throws: FieldCryptoError.authenticationFailed) {
                try cipher.open(envelope, context: context(column: columns[index], row: otherRow))
            }
            nonces.insert(Array(envelope[5..<17]))
        }
        #expect(nonces.count == 3)
        #expect(try cipher.sealingKey(group: group).seal([nil, nil], table: "customers", columns: ["a", "b"], row: row) == [nil, nil])
    }

    /// The keys looked up once give what the per-call functions give.
    @Test func keysLookedUpOnceAgreeWithPerCallFunctions() {
        #expect(cipher.blindIndexKey(group: group, kind: .email).mac("anna@example.de")
            == cipher.blindIndex("anna@example.de", group: group, kind: .email))
        #expect(cipher.macKey(purpose: "test").mac([1, 2, 3]) == cipher.mac([1, 2, 3], purpose: "test"))
        #expect(cipher.verifyMAC(cipher.macKey(purpose: "test").mac([1, 2, 3]), for: [1, 2, 3], purpose: "test"))
    }

    @Test func envelopeLayout() throws {
        let plaintext = "+4930123456"
        let envelope = try cipher.seal(plaintext, context: context())
        #expect(envelope[0] == 0x01)
        #expect(Array(envelope[1..<5]) == [0, 0, 0, 1])
        #expect(envelope.count == 1 + 4 + 12 + plaintext.utf8.count + 16)
        #expect(try cipher.keyID(ofEnvelope: envelope) == 1)
        // The plaintext does not appear in the envelope.
        #expect(envelope.firstRange(of: Array(plaintext.utf8)) == nil)
    }

    @Test func equalPlaintextsGiveDifferentCiphertexts() throws {
        let first = try cipher.seal("same value", context: context())
        let second = try cipher.seal("same value", context: context())
        #expect(first != second)
        // In particular the nonces differ.
        #expect(first[5..<17] != second[5..<17])
    }

    @Test(arguments: [
        context(row: otherRow),
        context(column: "phone"),
        context(table: "dealers"),
        context(group: otherGroup),
    ])
    func envelopeMovedElsewhereFails(elsewhere: FieldContext) throws {
        let envelope = try cipher.seal("anna.schmidt@example.de", context: context())
        #expect(throws: FieldCryptoError.authenticationFailed) {
            try cipher.open(envelope, context: elsewhere)
        }
    }

    @Test func lengthPrefixesKeepContextsApart() throws {
        // Without length prefixes "ab"+"c" and "a"+"bc" would authenticate the same bytes.
        let envelope = try cipher.seal("x", context: context(table: "ab", column: "c"))
        #expect(throws: FieldCryptoError.authenticationFailed) {
            try cipher.open(envelope, context: context(table: "a", column: "bc"))
        }
    }

    @Test func everyTamperedByteFails() throws {
        let envelope = try cipher.seal("ok", context: context())
        for index in envelope.indices {
            var tampered = envelope
            tampered[index] ^= 0x01
            #expect(throws: FieldCryptoError.self, "byte \(index)") {
                try cipher.open(tampered, context: context())
            }
        }
        // A key id changed to one the keyring holds is still caught, by the header in the AAD.
        let rotated = FieldCipher(keyring: try cipher.keyring.rotated())
        var relabelled = envelope
        relabelled[4] = 2
        #expect(throws: FieldCryptoError.authenticationFailed) {
            try rotated.open(relabelled, context: context())
        }
    }

    @Test func truncatedOrForeignBytesAreMalformed() throws {
        let envelope = try cipher.seal("ok", context: context())
        #expect(throws: FieldCryptoError.malformedEnvelope) {
            try cipher.open(Array(envelope.prefix(FieldCipher.minimumEnvelopeSize - 1)), context: context())
        }
        #expect(throws: FieldCryptoError.malformedEnvelope) { try cipher.open([], context: context()) }
        var version2 = envelope
        version2[0] = 0x02
        #expect(throws: FieldCryptoError.malformedEnvelope) { try cipher.open(version2, context: context()) }
        // Dropping a byte from the middle keeps the length valid but breaks authentication.
        var shortened = envelope
        shortened.remove(at: 20)
        #expect(throws: FieldCryptoError.authenticationFailed) { try cipher.open(shortened, context: context()) }
    }

    @Test func unknownKeyIDIsReported() throws {
        let envelope = try FieldCipher(keyring: try Keyring.generate().rotated()).seal("x", context: context())
        #expect(throws: FieldCryptoError.unknownKeyID(2)) {
            try cipher.open(envelope, context: context())
        }
    }

    @Test func anotherKeyringCannotOpen() throws {
        let envelope = try cipher.seal("x", context: context())
        let stranger = FieldCipher(keyring: .generate())
        #expect(throws: FieldCryptoError.authenticationFailed) {
            try stranger.open(envelope, context: context())
        }
    }

    @Test func invalidUTF8IsAnErrorForOpenString() throws {
        let envelope = try cipher.seal([0xff, 0xfe], context: context())
        #expect(throws: FieldCryptoError.notUTF8) {
            try cipher.openString(envelope, context: context())
        }
    }

    @Test func concurrentUseIsSafe() async throws {
        let cipher = self.cipher
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            for index in 0..<64 {
                tasks.addTask {
                    let groupID = index.isMultiple(of: 2) ? group : otherGroup
                    let place = context(group: groupID)
                    let envelope = try cipher.seal("value \(index)", context: place)
                    #expect(try cipher.openString(envelope, context: place) == "value \(index)")
                }
            }
            try await tasks.waitForAll()
        }
    }
}

@Suite("Rotation")
struct RotationTests {
    @Test func newKeyEncryptsAndOldEnvelopesStillOpen() throws {
        let original = Keyring.generate()
        let before = FieldCipher(keyring: original)
        let old = try before.seal("before rotation", context: context())

        let rotated = try original.rotated()
        #expect(rotated.keys.map(\.id) == [1, 2])
        let after = FieldCipher(keyring: rotated)
        #expect(after.newestKeyID == 2)
        let new = try after.seal("after rotation", context: context())

        #expect(try after.keyID(ofEnvelope: old) == 1)
        #expect(try after.keyID(ofEnvelope: new) == 2)
        #expect(try after.needsReencryption(old))
        #expect(try !after.needsReencryption(new))
        #expect(try after.openString(old, context: context()) == "before rotation")
        #expect(try after.openString(new, context: context()) == "after rotation")
        // The old keyring does not know the new key.
        #expect(throws: FieldCryptoError.unknownKeyID(2)) { try before.open(new, context: context()) }
    }

    @Test func resealMovesToTheNewestKeyInTheSameContext() throws {
        let original = Keyring.generate()
        let old = try FieldCipher(keyring: original).seal("reencrypt me", context: context())
        let after = FieldCipher(keyring: try original.rotated())
        let resealed = try after.reseal(old, context: context())
        #expect(try after.keyID(ofEnvelope: resealed) == 2)
        #expect(try after.openString(resealed, context: context()) == "reencrypt me")
        #expect(throws: FieldCryptoError.authenticationFailed) {
            try after.reseal(old, context: context(row: otherRow))
        }
    }

    @Test func rotationKeepsOldKeysAndTheirBytes() throws {
        let original = Keyring.generate()
        let rotated = try original.rotated().rotated()
        #expect(rotated.keys.map(\.id) == [1, 2, 3])
        #expect(rotated.oldest.id == 1 && rotated.newest.id == 3)
        let bytes = { (key: Keyring.RootKey) in key.material.withUnsafeBytes { Array($0) } }
        #expect(bytes(rotated.oldest) == bytes(original.oldest))
        #expect(Set(rotated.keys.map(bytes)).count == 3)
    }
}

@Suite("Blind indexes and MACs")
struct BlindIndexTests {
    let cipher = FieldCipher(keyring: .generate())

    @Test func equalNormalisedInputsGiveEqualIndexes() throws {
        let first = try #require(Normalize.email("  Anna.Schmidt@Example.DE "))
        let second = try #require(Normalize.email("anna.schmidt@example.de"))
        let a = cipher.blindIndex(first, group: group, kind: .email)
        let b = cipher.blindIndex(second, group: group, kind: .email)
        #expect(a == b)
        #expect(a.count == 32)
        #expect(cipher.blindIndex("other@example.de", group: group, kind: .email) != a)
    }

    @Test func indexesDifferAcrossGroupsKindsAndKeyrings() {
        let value = "+4930123456"
        let base = cipher.blindIndex(value, group: group, kind: .phone)
        #expect(cipher.blindIndex(value, group: otherGroup, kind: .phone) != base)
        #expect(cipher.blindIndex(value, group: group, kind: .fullName) != base)
        #expect(cipher.blindIndex(value, group: group, kind: .email) != base)
        #expect(FieldCipher(keyring: .generate()).blindIndex(value, group: group, kind: .phone) != base)
    }

    @Test func candidatesCoverEveryKeyNewestFirst() throws {
        let original = Keyring.generate()
        let before = FieldCipher(keyring: original)
        let after = FieldCipher(keyring: try original.rotated())
        let stored = before.blindIndex("jose muller", group: group, kind: .fullName)
        let candidates = after.blindIndexCandidates("jose muller", group: group, kind: .fullName)
        #expect(candidates.count == 2)
        #expect(candidates[0] == after.blindIndex("jose muller", group: group, kind: .fullName))
        #expect(candidates[1] == stored)
        #expect(candidates[0] != candidates[1])
    }

    @Test func macVerifiesAndSurvivesRotation() throws {
        let data = Array("cursor:42".utf8)
        let original = Keyring.generate()
        let before = FieldCipher(keyring: original)
        let mac = before.mac(data, purpose: "changes-cursor")
        #expect(mac.count == 32)
        #expect(before.verifyMAC(mac, for: data, purpose: "changes-cursor"))

        let after = FieldCipher(keyring: try original.rotated())
        #expect(after.mac(data, purpose: "changes-cursor") == mac)
        #expect(after.verifyMAC(mac, for: data, purpose: "changes-cursor"))
    }

    @Test func macRejectsOtherDataPurposeTamperAndKeyring() {
        let data = Array("cursor:42".utf8)
        let mac = cipher.mac(data, purpose: "changes-cursor")
        #expect(!cipher.verifyMAC(mac, for: Array("cursor:43".utf8), purpose: "changes-cursor"))
        #expect(!cipher.verifyMAC(mac, for: data, purpose: "list-cursor"))
        var tampered = mac
        tampered[31] ^= 1
        #expect(!cipher.verifyMAC(tampered, for: data, purpose: "changes-cursor"))
        #expect(!cipher.verifyMAC(Array(mac.prefix(16)), for: data, purpose: "changes-cursor"))
        #expect(!FieldCipher(keyring: .generate()).verifyMAC(mac, for: data, purpose: "changes-cursor"))
    }
}
