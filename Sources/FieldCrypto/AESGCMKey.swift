import COpenSSL
import Crypto
import Foundation
import Synchronization

/// One AES-256-GCM key for sealing, through OpenSSL's EVP interface, with its expanded key
/// schedule kept in reusable cipher contexts.
///
/// swift-crypto's `AES.GCM.seal` builds a new BoringSSL context (key expansion, GHASH tables)
/// and several Swift buffers for every call: about 4 µs, against 0.35 µs for encrypting a
/// 30-byte field with a context that is already keyed. A CRM batch of 1000 customers seals
/// 9000 fields. Opening stays with swift-crypto: envelopes are standard AES-GCM, and a test
/// opens what this seals with swift-crypto for every length up to a few blocks.
///
/// A context is used by one thread at a time: `seal` takes one from the idle list (or makes
/// one), and puts it back afterwards unless the list is full or the context failed.
final class AESGCMKey: Sendable {
    static let tagSize = 16

    /// An `EVP_CIPHER_CTX *`, only ever used by the thread that took it from `idle`.
    private struct Context: @unchecked Sendable {
        let pointer: OpaquePointer
    }

    private let key: SymmetricKey
    private let idle = Mutex<[Context]>([])
    /// Idle contexts kept per key; more threads than this make and free their own.
    private static let idleLimit = max(2, min(ProcessInfo.processInfo.activeProcessorCount, 8))

    init(_ key: SymmetricKey) {
        precondition(key.bitCount == 256, "AES-256 needs a 32-byte key")
        self.key = key
    }

    deinit {
        for context in idle.withLock({ $0 }) { EVP_CIPHER_CTX_free(context.pointer) }
    }

    /// Appends the ciphertext of `plaintext` and then the 16-byte tag to `output`.
    func seal(_ plaintext: [UInt8], nonce: [UInt8], authenticating aad: [UInt8], appendingTo output: inout [UInt8]) throws {
        precondition(nonce.count == 12, "AES-GCM nonces are 96 bits here")
        try withSealer { sealer in
            try plaintext.withUnsafeBytes { plaintext in
                try nonce.withUnsafeBytes { nonce in
                    try aad.withUnsafeBytes { aad in
                        try sealer.seal(plaintext, nonce: nonce, authenticating: aad, appendingTo: &output)
                    }
                }
            }
        }
    }

    /// Runs `body` with one keyed context for as many seals as it makes (a record's fields):
    /// one take from the idle list and one return, not one per field. The context goes back
    /// to the list only if every seal succeeded.
    func withSealer<Result>(_ body: (Sealer) throws -> Result) throws -> Result {
        let context = try idle.withLock({ $0.popLast() }) ?? makeContext()
        var reusable = false
        defer {
            let kept = reusable && idle.withLock { idle in
                guard idle.count < Self.idleLimit else { return false }
                idle.append(context)
                return true
            }
            if !kept { EVP_CIPHER_CTX_free(context.pointer) }
        }
        let result = try body(Sealer(context: context.pointer))
        reusable = true
        return result
    }

    /// A keyed context lent to one thread by `withSealer`, for the duration of its body only.
    struct Sealer {
        fileprivate let context: OpaquePointer

        /// Appends the ciphertext of `plaintext` and then the 16-byte tag to `output`.
        func seal(
            _ plaintext: UnsafeRawBufferPointer, nonce: UnsafeRawBufferPointer, authenticating aad: UnsafeRawBufferPointer,
            appendingTo output: inout [UInt8]
        ) throws {
            precondition(nonce.count == 12, "AES-GCM nonces are 96 bits here")
            let start = output.count
            output.append(contentsOf: repeatElement(0, count: plaintext.count + AESGCMKey.tagSize))
            let ctx = context
            let sealed: Bool = output.withUnsafeMutableBufferPointer { out in
                let ciphertext = out.baseAddress! + start
                var written: Int32 = 0
                guard EVP_EncryptInit_ex(ctx, nil, nil, nil, nonce.baseAddress!.assumingMemoryBound(to: UInt8.self)) == 1,
                    aad.isEmpty
                        || EVP_EncryptUpdate(
                            ctx, nil, &written, aad.baseAddress!.assumingMemoryBound(to: UInt8.self), Int32(aad.count)) == 1
                else { return false }
                if !plaintext.isEmpty {
                    guard EVP_EncryptUpdate(
                        ctx, ciphertext, &written, plaintext.baseAddress!.assumingMemoryBound(to: UInt8.self),
                        Int32(plaintext.count)) == 1, written == Int32(plaintext.count)
                    else { return false }
                }
                var final: Int32 = 0
                guard EVP_EncryptFinal_ex(ctx, ciphertext + plaintext.count, &final) == 1, final == 0 else { return false }
                return EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, Int32(AESGCMKey.tagSize), ciphertext + plaintext.count) == 1
            }
            guard sealed else {
                output.removeSubrange(start...)
                throw FieldCryptoError.encryptionFailed
            }
        }
    }

    /// A context keyed with `key`, its nonce left for each seal to set.
    private func makeContext() throws -> Context {
        guard let pointer = EVP_CIPHER_CTX_new() else { throw FieldCryptoError.encryptionFailed }
        let keyed = key.withUnsafeBytes { bytes in
            EVP_EncryptInit_ex(pointer, EVP_aes_256_gcm(), nil, bytes.bindMemory(to: UInt8.self).baseAddress, nil)
        }
        guard keyed == 1 else {
            EVP_CIPHER_CTX_free(pointer)
            throw FieldCryptoError.encryptionFailed
        }
        return Context(pointer: pointer)
    }
}
