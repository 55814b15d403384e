import ArgumentParser

/// `forecourt-bench`: measurements that are not tests; they print figures (docs/performance.md,
/// run through the scripts/bench-* scripts).
@main
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forecourt-bench",
        abstract: "Benchmarks of Forecourt: customers against a migrated database, orders against a running endpoint.",
        subcommands: [CustomersBench.self, OrdersBenchmark.self]
    )
}
