import Crypto
import Foundation
import Testing

@testable import FieldCrypto

@Suite("AES-GCM sealing through OpenSSL")
struct AESGCMKeyTests {
    /// What `AESGCMKey` seals, swift-crypto (BoringSSL) opens, for every plaintext length
    /// from 0 to 100 bytes and authenticated data of several lengths; and a changed byte of
    /// the authenticated data or the tag makes it fail.
    @Test func sealsStandardAESGCM() throws {
        let key = SymmetricKey(size: .bits256)
        let sealer = AESGCMKey(key)
        var generator = SystemRandomNumberGenerator()
        func random(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) } }
        for length in 0...100 {
            let plaintext = random(length)
            let nonce = random(12)
            let aad = random(length % 3 == 0 ? 0 : 7 + length)
            var output: [UInt8] = [0xAA]  // appended to, not replaced
            try sealer.seal(plaintext, nonce: nonce, authenticating: aad, appendingTo: &output)
            #expect(output.count == 1 + length + 16)
            #expect(output[0] == 0xAA)
            let box = try AES.GCM.SealedBox(
                nonce: AES.GCM.Nonce(data: nonce), ciphertext: output[1..<(1 + length)], tag: output[(1 + length)...])
            #expect(Array(try AES.GCM.open(box, using: key, authenticating: aad)) == plaintext)
            var otherAAD = aad
            otherAAD.append(0)
            #expect(throws: (any Error).self) { try AES.GCM.open(box, using: key, authenticating: otherAAD) }
        }
    }

    /// The same key used from many threads at once: every envelope still opens.
    @Test func concurrentSealsUseSeparateContexts() async throws {
        let key = SymmetricKey(size: .bits256)
        let sealer = AESGCMKey(key)
        let failures = try await withThrowingTaskGroup(of: Int.self) { tasks in
            for task in 0..<8 {
                tasks.addTask {
                    var failures = 0
                    for i in 0..<500 {
                        let plaintext = Array("task \(task) value \(i)".utf8)
                        let nonce = [UInt8](repeating: UInt8(task), count: 4) + withUnsafeBytes(of: UInt64(i)) { Array($0) }
                        var output: [UInt8] = []
                        try sealer.seal(plaintext, nonce: nonce, authenticating: [UInt8(task)], appendingTo: &output)
                        let box = try AES.GCM.SealedBox(
                            nonce: AES.GCM.Nonce(data: nonce), ciphertext: output.dropLast(16), tag: output.suffix(16))
                        if (try? AES.GCM.open(box, using: key, authenticating: [UInt8(task)])).map(Array.init) != plaintext {
                            failures += 1
                        }
                    }
                    return failures
                }
            }
            return try await tasks.reduce(0, +)
        }
        #expect(failures == 0)
    }
}
