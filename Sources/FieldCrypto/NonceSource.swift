import COpenSSL
import Synchronization

/// Random 96-bit AES-GCM nonces from OpenSSL's CSPRNG (`RAND_bytes`: a DRBG seeded and reseeded
/// from `getrandom(2)`, which needs no file descriptor), read a page at a time: one call per
/// 341 nonces, which otherwise dominate the cost of sealing short fields. Each byte is handed
/// out once and wiped from the buffer.
///
/// No randomness means no safe nonce, so a failure to get it is an error for the one seal that
/// needed it (the call fails, -32603), never a crash of the process; the next seal tries again.
final class NonceSource: Sendable {
    static let nonceSize = 12
    private static let bufferSize = 4092  // a multiple of the nonce size

    private struct State {
        var buffer = [UInt8](repeating: 0, count: NonceSource.bufferSize)
        var offset = NonceSource.bufferSize
    }

    private let state = Mutex(State())
    /// Fills a buffer with random bytes, or returns false. Replaced by tests to simulate failure.
    private let fill: @Sendable (UnsafeMutableRawBufferPointer) -> Bool

    init(fill: @escaping @Sendable (UnsafeMutableRawBufferPointer) -> Bool = NonceSource.randomBytes) {
        self.fill = fill
    }

    /// The next nonce, never returned before.
    /// - Throws: `FieldCryptoError.randomUnavailable` when the CSPRNG fails.
    func next() throws(FieldCryptoError) -> [UInt8] {
        try state.withLock { (state: inout State) throws(FieldCryptoError) -> [UInt8] in
            if state.offset == state.buffer.count {
                guard state.buffer.withUnsafeMutableBytes(fill) else { throw FieldCryptoError.randomUnavailable }
                state.offset = 0
            }
            let range = state.offset..<(state.offset + Self.nonceSize)
            let nonce = Array(state.buffer[range])
            state.buffer.replaceSubrange(range, with: repeatElement(0, count: Self.nonceSize))
            state.offset += Self.nonceSize
            return nonce
        }
    }

    /// The most nonces one `next(count:)` hands out.
    static let batchLimit = bufferSize / nonceSize

    /// `count` nonces, never returned before, one after the other in one array (a record's
    /// fields take theirs in one lock, not one lock each). Bytes left in the buffer that are
    /// too few for all of them are wiped and skipped, never handed out.
    /// - Throws: `FieldCryptoError.randomUnavailable` when the CSPRNG fails.
    func next(count: Int) throws(FieldCryptoError) -> [UInt8] {
        precondition((1...Self.batchLimit).contains(count), "1 to \(Self.batchLimit) nonces at a time")
        let size = count * Self.nonceSize
        return try state.withLock { (state: inout State) throws(FieldCryptoError) -> [UInt8] in
            if state.buffer.count - state.offset < size {
                state.buffer.replaceSubrange(state.offset..., with: repeatElement(0, count: state.buffer.count - state.offset))
                state.offset = state.buffer.count
                guard state.buffer.withUnsafeMutableBytes(fill) else { throw FieldCryptoError.randomUnavailable }
                state.offset = 0
            }
            let range = state.offset..<(state.offset + size)
            let nonces = Array(state.buffer[range])
            state.buffer.replaceSubrange(range, with: repeatElement(0, count: size))
            state.offset += size
            return nonces
        }
    }

    /// OpenSSL's `RAND_bytes`: 1 on success.
    static func randomBytes(_ buffer: UnsafeMutableRawBufferPointer) -> Bool {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return true }
        return RAND_bytes(base.assumingMemoryBound(to: UInt8.self), Int32(buffer.count)) == 1
    }
}
