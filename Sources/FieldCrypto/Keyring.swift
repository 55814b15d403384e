import Crypto
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The versioned root keys that protect personal fields.
///
/// Each root key has an increasing `id`, 32 random bytes and a creation time. The newest key
/// encrypts new fields and computes blind indexes; older keys stay so that fields sealed
/// under them still open until `forecourt keyring reencrypt` has rewritten them. The oldest
/// key also keys the MACs of cursors (see `FieldCipher.mac(_:purpose:)`), so keys are only
/// ever added, never removed.
///
/// On disk a keyring is a JSON file, readable by its owner only:
///
/// ```json
/// {"format":"forecourt-keyring/1","keys":[{"id":1,"created_at":"2026-12-02T04:22:05Z","key":"<base64>"}]}
/// ```
///
/// A `Keyring` is an immutable value; `rotated()` returns a new one.
public struct Keyring: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The `format` member of the file this code reads and writes.
    public static let format = "forecourt-keyring/1"

    /// Keyring files larger than this are refused unread: a real one is a few hundred bytes
    /// per key.
    static let maximumFileSize = 1 << 20

    /// One root key. Its bytes are not public and never printed.
    public struct RootKey: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
        /// The key id stored in every envelope sealed under this key.
        public let id: UInt32
        /// When the key was made.
        public let createdAt: Date
        /// The 32 key bytes.
        let material: SymmetricKey

        public var description: String { "RootKey(id: \(id), createdAt: \(createdAt), material: <redacted>)" }
        public var debugDescription: String { description }
        public var customMirror: Mirror { Mirror(self, children: ["id": id, "createdAt": createdAt]) }
    }

    /// The root keys, oldest (smallest id) first; never empty.
    public let keys: [RootKey]

    /// Makes a keyring from keys that are already validated; sorts them by id.
    init(keys: [RootKey]) {
        precondition(!keys.isEmpty, "a keyring has at least one key")
        self.keys = keys.sorted { $0.id < $1.id }
    }

    /// The key that encrypts new fields and computes blind indexes.
    public var newest: RootKey { keys[keys.count - 1] }

    /// The first key of the keyring; it keys MACs so they survive rotation.
    public var oldest: RootKey { keys[0] }

    /// The key with this id, if the keyring holds it.
    public func key(id: UInt32) -> RootKey? {
        keys.first { $0.id == id }
    }

    /// A new keyring with one fresh random key, id 1.
    public static func generate(now: Date = Date()) -> Keyring {
        Keyring(keys: [RootKey(id: 1, createdAt: now, material: SymmetricKey(size: .bits256))])
    }

    /// This keyring plus one fresh random key, with the next id, which becomes the newest.
    /// Throws only when the key ids are exhausted (the newest id is `UInt32.max`).
    public func rotated(now: Date = Date()) throws -> Keyring {
        let (next, overflow) = newest.id.addingReportingOverflow(1)
        guard !overflow else {
            throw FieldCryptoError.keyringMalformed(path: nil, reason: "key ids are exhausted")
        }
        return Keyring(keys: keys + [RootKey(id: next, createdAt: now, material: SymmetricKey(size: .bits256))])
    }

    public var description: String { "Keyring(keyIDs: \(keys.map(\.id)), material: <redacted>)" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["keyIDs": keys.map(\.id)]) }
}

// MARK: - File format

extension Keyring {
    private struct FileDocument: Decodable {
        let format: String
        let keys: [FileKey]
    }

    private struct FileKey: Decodable {
        let id: UInt32
        let created_at: String
        let key: String
    }

    /// Parses and validates a keyring document. `path` only labels errors.
    static func decode(_ data: Data, path: String? = nil) throws -> Keyring {
        func malformed(_ reason: String) -> FieldCryptoError {
            .keyringMalformed(path: path, reason: reason)
        }
        let document: FileDocument
        do {
            document = try JSONDecoder().decode(FileDocument.self, from: data)
        } catch {
            // DecodingError text can quote the document; keep only a fixed phrase.
            throw malformed("not a \(format) JSON document (a member is missing or has the wrong type)")
        }
        guard document.format == format else {
            throw malformed("unsupported format (expected \(format))")
        }
        guard !document.keys.isEmpty else {
            throw malformed("it holds no keys")
        }
        var seen = Set<UInt32>()
        var keys: [RootKey] = []
        for entry in document.keys {
            guard entry.id >= 1 else {
                throw malformed("key id 0 is not allowed")
            }
            guard seen.insert(entry.id).inserted else {
                throw malformed("key id \(entry.id) appears more than once")
            }
            guard let bytes = Data(base64Encoded: entry.key), bytes.count == 32 else {
                throw malformed("key \(entry.id) is not 32 bytes of base64")
            }
            guard let createdAt = parseTimestamp(entry.created_at) else {
                throw malformed("key \(entry.id) has a created_at that is not an ISO 8601 time")
            }
            keys.append(RootKey(id: entry.id, createdAt: createdAt, material: SymmetricKey(data: bytes)))
        }
        return Keyring(keys: keys)
    }

    /// The file contents: one key per line, in id order.
    func encoded() -> Data {
        // Written by hand so members keep the documented order; no value here needs escaping
        // (integers, ISO 8601 times, base64).
        let lines = keys.map { key in
            let material = key.material.withUnsafeBytes { Data($0).base64EncodedString() }
            return "    {\"id\": \(key.id), \"created_at\": \"\(Self.formatTimestamp(key.createdAt))\", "
                + "\"key\": \"\(material)\"}"
        }
        let text = "{\n  \"format\": \"\(Self.format)\",\n  \"keys\": [\n"
            + lines.joined(separator: ",\n") + "\n  ]\n}\n"
        return Data(text.utf8)
    }

    static func formatTimestamp(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle())
    }

    static func parseTimestamp(_ text: String) -> Date? {
        if let date = try? Date.ISO8601FormatStyle().parse(text) {
            return date
        }
        return try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text)
    }
}

// MARK: - Files

extension Keyring {
    /// Reads the keyring file at `path`.
    ///
    /// Refuses a file that group or other may read or write (its mode must be 0600 or
    /// stricter), a path that is not a regular file, and a malformed document. The mode is
    /// checked on the opened file, so it is the file actually read.
    public static func load(path: String) throws -> Keyring {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else {
            throw FieldCryptoError.keyringUnreadable(path: path, errno: errno)
        }
        defer { close(fd) }

        var status = stat()
        guard fstat(fd, &status) == 0 else {
            throw FieldCryptoError.keyringUnreadable(path: path, errno: errno)
        }
        let mode = UInt32(status.st_mode)
        guard mode & 0o170000 == 0o100000 else {
            throw FieldCryptoError.keyringNotRegularFile(path: path)
        }
        guard mode & 0o077 == 0 else {
            throw FieldCryptoError.keyringPermissionsTooOpen(path: path, mode: mode & 0o7777)
        }

        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw FieldCryptoError.keyringUnreadable(path: path, errno: errno)
            }
            if count == 0 { break }
            data.append(contentsOf: buffer[0..<count])
            guard data.count <= maximumFileSize else {
                throw FieldCryptoError.keyringMalformed(path: path, reason: "file is larger than 1 MiB")
            }
        }
        return try decode(data, path: path)
    }

    /// Replaces the file at `path` with this keyring, atomically: the keyring is written to a
    /// temporary file (mode 0600) in the same directory, flushed, and renamed over `path`, so
    /// a reader sees either the old file or the new one, never a partial one.
    public func write(to path: String) throws {
        let temporary = try Self.writeTemporaryFile(encoded(), beside: path)
        guard rename(temporary, path) == 0 else {
            let code = errno
            unlink(temporary)
            throw FieldCryptoError.keyringWriteFailed(path: path, errno: code)
        }
        Self.syncDirectory(containing: path)
    }

    /// Writes this keyring to `path` (mode 0600) only if nothing is there yet; an existing
    /// file, even an empty one, is left untouched and `keyringExists` is thrown.
    ///
    /// The complete file is written under a temporary name and hard-linked into place, which
    /// fails atomically when `path` exists. Where the file system has no hard links the file
    /// is created with `O_EXCL` instead.
    public func createNew(at path: String) throws {
        let data = encoded()
        let temporary = try Self.writeTemporaryFile(data, beside: path)
        defer { unlink(temporary) }
        if link(temporary, path) != 0 {
            let code = errno
            switch code {
            case EEXIST:
                throw FieldCryptoError.keyringExists(path: path)
            case EPERM, ENOTSUP, EOPNOTSUPP, EXDEV:
                try Self.writeFile(data, at: path, reportingAs: path, existsIsError: true)
            default:
                throw FieldCryptoError.keyringWriteFailed(path: path, errno: code)
            }
        }
        Self.syncDirectory(containing: path)
    }

    /// Writes `data` to a new file beside `path` and returns the temporary file's path.
    private static func writeTemporaryFile(_ data: Data, beside path: String) throws -> String {
        let (directory, name) = split(path)
        let suffix = (0..<8).map { _ in String(UInt8.random(in: 0...255), radix: 16) }.joined()
        let temporary = directory + "/." + name + ".tmp-" + suffix
        try writeFile(data, at: temporary, reportingAs: path, existsIsError: false)
        return temporary
    }

    /// Creates `target` (which must not exist) with mode 0600, writes `data` and flushes it to
    /// disk. On failure nothing is left at `target`.
    private static func writeFile(_ data: Data, at target: String, reportingAs path: String, existsIsError: Bool) throws {
        let fd = open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            let code = errno
            if code == EEXIST && existsIsError {
                throw FieldCryptoError.keyringExists(path: path)
            }
            throw FieldCryptoError.keyringWriteFailed(path: path, errno: code)
        }
        var failure: Int32? = nil
        // The umask can only remove bits, but make the mode explicit anyway.
        if fchmod(fd, 0o600) != 0 { failure = errno }
        if failure == nil {
            failure = data.withUnsafeBytes { raw -> Int32? in
                var offset = 0
                while offset < raw.count {
                    let written = posixWrite(fd, raw.baseAddress! + offset, raw.count - offset)
                    if written < 0 {
                        if errno == EINTR { continue }
                        return errno
                    }
                    offset += written
                }
                return nil
            }
        }
        if failure == nil && fsync(fd) != 0 { failure = errno }
        if close(fd) != 0 && failure == nil { failure = errno }
        if let failure {
            unlink(target)
            throw FieldCryptoError.keyringWriteFailed(path: path, errno: failure)
        }
    }

    /// Flushes the directory entry of a rename or link; best effort, as not every file system
    /// supports it.
    private static func syncDirectory(containing path: String) {
        let fd = open(split(path).directory, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = fsync(fd)
        close(fd)
    }

    private static func split(_ path: String) -> (directory: String, name: String) {
        guard let slash = path.lastIndex(of: "/") else { return (".", path) }
        let directory = String(path[..<slash])
        return (directory.isEmpty ? "/" : directory, String(path[path.index(after: slash)...]))
    }
}

/// `write(2)`; inside `Keyring` the name `write` means `Keyring.write(to:)`.
private func posixWrite(_ fd: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int {
    write(fd, bytes, count)
}
