import ForecourtCore
import Foundation
import Testing

@testable import FieldCrypto

/// A fresh empty directory for one test, removed afterwards.
private func withTemporaryDirectory<T>(_ body: (String) throws -> T) throws -> T {
    let path = FileManager.default.temporaryDirectory
        .appendingPathComponent("fieldcrypto-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try body(path)
}

private func mode(of path: String) throws -> Int {
    let attributes = try FileManager.default.attributesOfItem(atPath: path)
    return try #require(attributes[.posixPermissions] as? Int) & 0o777
}

private func setMode(_ mode: Int, of path: String) throws {
    try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
}

private func base64Keys(_ keyring: Keyring) -> [String] {
    keyring.keys.map { key in key.material.withUnsafeBytes { Data($0).base64EncodedString() } }
}

@Suite("Keyring files")
struct KeyringFileTests {
    @Test func createNewWritesMode0600AndLoadsBack() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/keyring.json"
            let keyring = try Keyring.generate().rotated()
            try keyring.createNew(at: path)
            #expect(try mode(of: path) == 0o600)
            let loaded = try Keyring.load(path: path)
            #expect(loaded.keys.map(\.id) == [1, 2])
            #expect(base64Keys(loaded) == base64Keys(keyring))
            #expect(
                Int(loaded.newest.createdAt.timeIntervalSince1970)
                    == Int(keyring.newest.createdAt.timeIntervalSince1970))
            // Nothing but the keyring is left in the directory.
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["keyring.json"])
        }
    }

    @Test func fileFollowsTheDocumentedFormat() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/keyring.json"
            try Keyring.generate().createNew(at: path)
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
            #expect(object["format"] as? String == "forecourt-keyring/1")
            let keys = try #require(object["keys"] as? [[String: Any]])
            #expect(keys.count == 1)
            #expect(keys[0]["id"] as? Int == 1)
            #expect(Keyring.parseTimestamp(try #require(keys[0]["created_at"] as? String)) != nil)
            #expect(Data(base64Encoded: try #require(keys[0]["key"] as? String))?.count == 32)
        }
    }

    @Test(arguments: [0o644, 0o640, 0o604, 0o660, 0o606, 0o666, 0o700 | 0o044])
    func loadRefusesGroupOrOtherAccess(fileMode: Int) throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/keyring.json"
            let keyring = Keyring.generate()
            try keyring.createNew(at: path)
            try setMode(fileMode, of: path)
            let expected = FieldCryptoError.keyringPermissionsTooOpen(path: path, mode: UInt32(fileMode))
            #expect(throws: expected) { try Keyring.load(path: path) }
            let description = expected.description
            #expect(description.contains(path))
            #expect(description.contains(FieldCryptoError.octal(UInt32(fileMode))))
            #expect(!description.contains(base64Keys(keyring)[0]))
        }
    }

    @Test func the0644MessageNamesPathAndMode() throws {
        let error = FieldCryptoError.keyringPermissionsTooOpen(path: "/etc/forecourt/keyring.json", mode: 0o644)
        #expect(error.description.contains("/etc/forecourt/keyring.json"))
        #expect(error.description.contains("0644"))
    }

    @Test(arguments: [0o600, 0o400])
    func loadAcceptsOwnerOnlyModes(fileMode: Int) throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/keyring.json"
            try Keyring.generate().createNew(at: path)
            try setMode(fileMode, of: path)
            #expect(try Keyring.load(path: path).keys.count == 1)
        }
    }

    @Test func createNewNeverOverwrites() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/keyring.json"
            let first = Keyring.generate()
            try first.createNew(at: path)
            #expect(throws: FieldCryptoError.keyringExists(path: path)) {
                try Keyring.generate().createNew(at: path)
            }
            #expect(base64Keys(try Keyring.load(path: path)) == base64Keys(first))

            // Not even an empty file is replaced.
            let empty = directory + "/empty.json"
            #expect(FileManager.default.createFile(atPath: empty, contents: Data()))
            #expect(throws: FieldCryptoError.keyringExists(path: empty)) {
                try Keyring.generate().createNew(at: empty)
            }
            #expect(try Data(contentsOf: URL(fileURLWithPath: empty)).isEmpty)
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory).sorted() == ["empty.json", "keyring.json"])
        }
    }

    @Test func writeReplacesAtomicallyWithMode0600() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/keyring.json"
            let original = Keyring.generate()
            try original.createNew(at: path)
            try setMode(0o644, of: path)  // even a file that was too open is replaced by a 0600 one
            let rotated = try original.rotated()
            try rotated.write(to: path)
            #expect(try mode(of: path) == 0o600)
            let loaded = try Keyring.load(path: path)
            #expect(loaded.keys.map(\.id) == [1, 2])
            #expect(base64Keys(loaded) == base64Keys(rotated))
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["keyring.json"])
        }
    }

    @Test func rotateFileAddsAKeyAndKeepsTheOldOnes() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/keyring.json"
            let original = Keyring.generate()
            try original.createNew(at: path)
            let rotated = try Keyring.rotateFile(at: path)
            #expect(rotated.keys.map(\.id) == [1, 2])
            let loaded = try Keyring.load(path: path)
            #expect(base64Keys(loaded) == base64Keys(rotated))
            #expect(base64Keys(loaded)[0] == base64Keys(original)[0])
            #expect(try mode(of: path) == 0o600)
        }
    }

    @Test func rotateFileRefusesAnOpenFile() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/keyring.json"
            try Keyring.generate().createNew(at: path)
            try setMode(0o644, of: path)
            #expect(throws: FieldCryptoError.keyringPermissionsTooOpen(path: path, mode: 0o644)) {
                try Keyring.rotateFile(at: path)
            }
            #expect(try Keyring.decode(Data(contentsOf: URL(fileURLWithPath: path))).keys.count == 1)
        }
    }

    @Test func concurrentRotationsLoseNoKey() async throws {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("fieldcrypto-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/keyring.json"
        try Keyring.generate().createNew(at: path)
        let rotations = 12
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            for _ in 0..<rotations {
                tasks.addTask { _ = try Keyring.rotateFile(at: path) }
            }
            try await tasks.waitForAll()
        }
        let loaded = try Keyring.load(path: path)
        #expect(loaded.keys.map(\.id) == Array(1...UInt32(rotations + 1)))
        #expect(Set(base64Keys(loaded)).count == rotations + 1)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["keyring.json"])
    }

    @Test func writeIntoMissingDirectoryFailsWithPath() throws {
        let path = "/nonexistent-\(UUID().uuidString)/keyring.json"
        #expect(throws: FieldCryptoError.keyringWriteFailed(path: path, errno: ENOENT)) {
            try Keyring.generate().write(to: path)
        }
        #expect(throws: FieldCryptoError.keyringWriteFailed(path: path, errno: ENOENT)) {
            try Keyring.generate().createNew(at: path)
        }
    }

    @Test func loadReportsMissingFileAndDirectory() throws {
        try withTemporaryDirectory { directory in
            let missing = directory + "/missing.json"
            let error = #expect(throws: FieldCryptoError.keyringUnreadable(path: missing, errno: ENOENT)) {
                try Keyring.load(path: missing)
            }
            #expect(error?.description == "keyring file \(missing) cannot be read: No such file or directory (errno 2)")
            try setMode(0o700, of: directory)
            #expect(throws: FieldCryptoError.keyringNotRegularFile(path: directory)) {
                try Keyring.load(path: directory)
            }
        }
    }

    @Test(arguments: [
        "",
        "not json",
        #"{"format":"forecourt-keyring/2","keys":[{"id":1,"created_at":"2026-12-02T04:22:05Z","key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}]}"#,
        #"{"format":"forecourt-keyring/1","keys":[]}"#,
        #"{"format":"forecourt-keyring/1"}"#,
        #"{"format":"forecourt-keyring/1","keys":[{"id":0,"created_at":"2026-12-02T04:22:05Z","key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}]}"#,
        #"{"format":"forecourt-keyring/1","keys":[{"id":-1,"created_at":"2026-12-02T04:22:05Z","key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}]}"#,
        #"{"format":"forecourt-keyring/1","keys":[{"id":1,"created_at":"2026-12-02T04:22:05Z","key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="}]}"#,
        #"{"format":"forecourt-keyring/1","keys":[{"id":1,"created_at":"2026-12-02T04:22:05Z","key":"not base64!"}]}"#,
        #"{"format":"forecourt-keyring/1","keys":[{"id":1,"created_at":"yesterday","key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}]}"#,
        #"{"format":"forecourt-keyring/1","keys":[{"id":1,"created_at":"2026-12-02T04:22:05Z","key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="},{"id":1,"created_at":"2026-12-02T04:22:05Z","key":"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}]}"#,
    ])
    func malformedDocumentsAreRefused(document: String) throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/keyring.json"
            #expect(FileManager.default.createFile(atPath: path, contents: Data(document.utf8), attributes: [.posixPermissions: 0o600]))
            let error = #expect(throws: FieldCryptoError.self) { try Keyring.load(path: path) }
            guard case let .keyringMalformed(errorPath, _) = error else {
                Issue.record("expected keyringMalformed, got \(String(describing: error))")
                return
            }
            #expect(errorPath == path)
            let description = error?.description ?? ""
            #expect(description.contains(path))
            #expect(!description.contains("AAAAAAAA") && !description.contains("AQAAAAAA"))
        }
    }

    @Test func wellFormedDocumentLoadsWithKeysSortedById() throws {
        let document = #"""
            {"format":"forecourt-keyring/1","keys":[
              {"id":7,"created_at":"2026-12-02T05:00:00.250Z","key":"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="},
              {"id":3,"created_at":"2026-12-01T04:22:05Z","key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}]}
            """#
        let keyring = try Keyring.decode(Data(document.utf8))
        #expect(keyring.keys.map(\.id) == [3, 7])
        #expect(keyring.oldest.id == 3 && keyring.newest.id == 7)
        #expect(try keyring.rotated().newest.id == 8)
    }

    @Test func descriptionsNeverShowKeyMaterial() {
        let keyring = Keyring.generate()
        let secret = base64Keys(keyring)[0]
        let hex = keyring.keys[0].material.withUnsafeBytes { $0.hexString }
        for text in [
            String(describing: keyring), String(reflecting: keyring), "\(keyring.keys)",
            String(reflecting: keyring.keys[0]), String(describing: FieldCipher(keyring: keyring)),
        ] {
            #expect(!text.contains(secret))
            #expect(!text.contains(hex))
        }
    }

    @Test func rotatedAddsIncreasingIdsAndRefusesOverflow() throws {
        let keyring = try Keyring.generate().rotated().rotated()
        #expect(keyring.keys.map(\.id) == [1, 2, 3])
        let last = try Keyring.decode(Data(#"{"format":"forecourt-keyring/1","keys":[{"id":4294967295,"created_at":"2026-12-02T04:22:05Z","key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}]}"#.utf8))
        #expect(throws: FieldCryptoError.self) { try last.rotated() }
    }
}
