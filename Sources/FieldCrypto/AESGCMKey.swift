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
        let start = output.count
        output.append(contentsOf: repeatElement(0, count: plaintext.count + Self.tagSize))
        let ctx = context.pointer
        let sealed: Bool = output.withUnsafeMutableBufferPointer { out in
            let ciphertext = out.baseAddress! + start
            var written: Int32 = 0
            guard nonce.withUnsafeBufferPointer({ EVP_EncryptInit_ex(ctx, nil, nil, nil, $0.baseAddress) }) == 1,
                aad.withUnsafeBufferPointer({ EVP_EncryptUpdate(ctx, nil, &written, $0.baseAddress, Int32($0.count)) }) == 1
            else { return false }
            if !plaintext.isEmpty {
                guard plaintext.withUnsafeBufferPointer({
                    EVP_EncryptUpdate(ctx, ciphertext, &written, $0.baseAddress, Int32($0.count))
                }) == 1, written == Int32(plaintext.count) else { return false }
            }
            var final: Int32 = 0
            guard EVP_EncryptFinal_ex(ctx, ciphertext + plaintext.count, &final) == 1, final == 0 else { return false }
            return EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, Int32(Self.tagSize), ciphertext + plaintext.count) == 1
        }
        guard sealed else {
            output.removeSubrange(start...)
            throw FieldCryptoError.encryptionFailed
        }
        reusable = true
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
