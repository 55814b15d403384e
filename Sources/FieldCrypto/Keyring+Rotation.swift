import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

extension Keyring {
    /// Adds a key to the keyring file at `path` and returns the rotated keyring.
    ///
    /// The file is loaded (with the usual mode and format checks), `rotated()`, and written
    /// back atomically, all under an exclusive `flock` on the file, so two rotations at once
    /// cannot both add "key n+1" with different bytes and lose one of them. Because `write(to:)`
    /// replaces the file, a rotation that waited for the lock checks that the path still names
    /// the file it locked and starts over if not.
    public static func rotateFile(at path: String, now: Date = Date()) throws -> Keyring {
        while true {
            let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
            guard fd >= 0 else {
                throw FieldCryptoError.keyringUnreadable(path: path, errno: errno)
            }
            defer { close(fd) }
            while flock(fd, LOCK_EX) != 0 {
                guard errno == EINTR else {
                    throw FieldCryptoError.keyringUnreadable(path: path, errno: errno)
                }
            }
            var locked = stat()
            var current = stat()
            guard fstat(fd, &locked) == 0 else {
                throw FieldCryptoError.keyringUnreadable(path: path, errno: errno)
            }
            guard stat(path, &current) == 0 else {
                throw FieldCryptoError.keyringUnreadable(path: path, errno: errno)
            }
            guard locked.st_dev == current.st_dev, locked.st_ino == current.st_ino else {
                continue  // replaced by another rotation while we waited; lock the new file
            }
            let rotated = try load(path: path).rotated(now: now)
            try rotated.write(to: path)
            return rotated
        }
    }
}
