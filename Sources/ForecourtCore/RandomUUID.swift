import Foundation

extension UUID {
    /// A random (version 4) UUID, its 122 random bits from the standard library's system
    /// generator (`getrandom(2)` on Linux: no file descriptor).
    ///
    /// Foundation's `UUID()` on Linux opens, reads and closes `/dev/urandom` each time: several
    /// system calls per id, which showed in the profile of every call that makes one (the
    /// correlation id the dispatcher made per request, an order's id, a batch's thousand
    /// customer ids; docs/performance.md). Use this for ids made per request.
    public static func random() -> UUID {
        var generator = SystemRandomNumberGenerator()
        var words = (generator.next() as UInt64, generator.next() as UInt64)
        return withUnsafeMutableBytes(of: &words) { raw in
            raw[6] = (raw[6] & 0x0F) | 0x40
            raw[8] = (raw[8] & 0x3F) | 0x80
            return UUID(uuid: raw.load(as: uuid_t.self))
        }
    }
}
