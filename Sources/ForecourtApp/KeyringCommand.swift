import ArgumentParser
import Customers
import FieldCrypto
import Foundation
import Notifications

/// `forecourt keyring`: management of the field-encryption keyring.
///
/// Output names files and key ids only; key bytes are never printed.
struct KeyringCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keyring",
        abstract: "Manage the keys that encrypt personal fields.",
        discussion: """
            The keyring is a JSON file readable by its owner only (mode 0600). Its path comes \
            from the command's option or, without one, from FORECOURT_KEYRING.
            """,
        subcommands: [Generate.self, Rotate.self, Reencrypt.self]
    )

    /// The environment variable that names the keyring file.
    static let environmentVariable = "FORECOURT_KEYRING"

    /// The path given on the command line, else the one in the environment.
    static func keyringPath(_ option: String?, optionName: String) throws -> String {
        if let option, !option.isEmpty {
            return option
        }
        if let path = ProcessInfo.processInfo.environment[environmentVariable], !path.isEmpty {
            return path
        }
        throw ValidationError("no keyring path: pass \(optionName) PATH or set \(environmentVariable)")
    }

    /// `forecourt keyring generate`
    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a new keyring with one key (mode 0600); never overwrites an existing file."
        )

        @Option(
            name: .long,
            help: ArgumentHelp("Where to write the keyring (default: $FORECOURT_KEYRING).", valueName: "path")
        )
        var output: String?

        func run() throws {
            let path = try KeyringCommand.keyringPath(output, optionName: "--output")
            let keyring = Keyring.generate()
            try keyring.createNew(at: path)
            print("wrote keyring \(path) (key id \(keyring.newest.id))")
        }
    }

    /// `forecourt keyring rotate`
    struct Rotate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a key that encrypts from now on; older keys stay to decrypt older fields.",
            discussion: """
                The file is rewritten atomically. Restart every server so all of them know the \
                new key, then run `forecourt keyring reencrypt` to move old fields to it.
                """
        )

        @Option(
            name: .long,
            help: ArgumentHelp("The keyring file to rotate (default: $FORECOURT_KEYRING).", valueName: "path")
        )
        var keyring: String?

        func run() throws {
            let path = try KeyringCommand.keyringPath(keyring, optionName: "--keyring")
            let rotated = try Keyring.rotateFile(at: path)
            print("rotated keyring \(path): new key id \(rotated.newest.id) (keys \(rotated.keys.map(\.id)))")
        }
    }

    /// `forecourt keyring reencrypt`
    struct Reencrypt: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Rewrite every field sealed under an older key under the newest one, online, in batches.",
            discussion: """
                Run it after `rotate`, once every server uses the new keyring. Each batch is a short \
                transaction of its own, so the service keeps running; the command is resumable (it \
                picks the rows whose key is older than the newest) and prints a progress line per batch. \
                Blind indexes and content MACs are recomputed under the newest key too, and webhook \
                signing secrets are resealed.
                """
        )

        @OptionGroup var database: DatabaseOptions

        @Option(
            name: .long,
            help: ArgumentHelp("The keyring file (default: $FORECOURT_KEYRING).", valueName: "path")
        )
        var keyring: String?

        @Option(name: .customLong("batch-size"), help: "Rows per transaction.")
        var batchSize = 500

        func validate() throws {
            guard (1...10_000).contains(batchSize) else { throw ValidationError("--batch-size must be 1 to 10000") }
        }

        func run() throws {
            let path = try KeyringCommand.keyringPath(keyring, optionName: "--keyring")
            let cipher = FieldCipher(keyring: try Keyring.load(path: path))
            let connection = try database.connect()
            defer { connection.close() }
            print("re-encrypting customers under key id \(cipher.newestKeyID)")
            let summary = try CustomerReencryption.run(connection: connection, cipher: cipher, batchSize: batchSize) { progress in
                let group = progress.group.uuidString.lowercased()
                print(
                    "group \(group): \(progress.groupRewritten) rewritten; total \(progress.totalRewritten) rewritten, \(progress.failed) failed")
            }
            print("done: \(summary.rewritten) customers rewritten under key id \(cipher.newestKeyID)")
            let webhooks = try WebhookReencryption.run(connection: connection, cipher: cipher, batchSize: batchSize)
            print("done: \(webhooks.rewritten) webhook secrets rewritten under key id \(cipher.newestKeyID)")
            for id in summary.failedIDs { printError("customer \(id.uuidString.lowercased()): envelopes do not open; left as is") }
            for id in webhooks.failedIDs { printError("webhook \(id.uuidString.lowercased()): secret does not open; left as is") }
            if !summary.failedIDs.isEmpty || !webhooks.failedIDs.isEmpty { throw ExitCode.failure }
        }
    }
}
