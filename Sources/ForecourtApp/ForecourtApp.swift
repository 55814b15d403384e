import ArgumentParser

/// The `forecourt` command line.
public struct ForecourtCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "forecourt",
        abstract: "Forecourt: the vehicle-order back office for dealer groups."
    )
    public init() {}
}
