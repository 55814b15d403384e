import ArgumentParser

/// `forecourt-bench`: measurements that are not tests (figures go to docs/performance.md).
@main
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forecourt-bench",
        abstract: "Benchmarks of Forecourt against a migrated database (FORECOURT_DATABASE_URL).",
        subcommands: [CustomersBench.self]
    )
}
