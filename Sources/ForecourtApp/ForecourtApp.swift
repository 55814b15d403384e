import ArgumentParser

/// `forecourt`: the service, its operator commands and a client (docs/operations.md).
public struct ForecourtCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "forecourt",
        abstract: "Vehicle-order back office for dealer groups: a JSON-RPC service over TLS on PostgreSQL.",
        subcommands: [
            DevCommand.self, ServeCommand.self, MigrateCommand.self, GroupCommand.self, KeyCommand.self,
            KeyringCommand.self, AnalystCommand.self, CallCommand.self,
        ]
    )

    public init() {}
}
