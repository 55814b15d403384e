#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Random 96-bit AES-GCM nonces from the operating system's CSPRNG, read a page at a time:
/// one read per 341 nonces instead of two `getrandom` calls per nonce, which otherwise dominate the
/// cost of sealing short fields. Each byte is handed out once and wiped from the buffer.
final class NonceSource: Sendable {
    static let nonceSize = 12
    private static let bufferSize = 4092  // a multiple of the nonce size

    private struct State {
        var buffer = [UInt8](repeating: 0, count: NonceSource.bufferSize)
        var offset = NonceSource.bufferSize
    }

    private let state = Mutex(State())

    /// The next nonce, never returned before.
    func next() -> [UInt8] {
        state.withLock { state in
            if state.offset == state.buffer.count {
                state.buffer.withUnsafeMutableBytes(Self.fillRandom)
                state.offset = 0
            }
            let range = state.offset..<(state.offset + Self.nonceSize)
            let nonce = Array(state.buffer[range])
            state.buffer.replaceSubrange(range, with: repeatElement(0, count: Self.nonceSize))
            state.offset += Self.nonceSize
            return nonce
        }
    }

    /// Fills `buffer` from the kernel's CSPRNG (`/dev/urandom`, the same source as
    /// `getrandom`, which Swift's Glibc module does not declare). Without randomness no nonce
    /// is safe, so a failure stops the process, as `SystemRandomNumberGenerator` does.
    private static func fillRandom(_ buffer: UnsafeMutableRawBufferPointer) {
        #if canImport(Darwin)
        arc4random_buf(buffer.baseAddress, buffer.count)
        #else
        let fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC)
        precondition(fd >= 0, "cannot open /dev/urandom: errno \(errno)")
        defer { close(fd) }
        var filled = 0
        while filled < buffer.count {
            let count = read(fd, buffer.baseAddress! + filled, buffer.count - filled)
            if count < 0 && errno == EINTR { continue }
            precondition(count > 0, "cannot read /dev/urandom: errno \(errno)")
            filled += count
        }
        #endif
    }
}
