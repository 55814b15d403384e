import ArgumentParser

/// `forecourt-bench`: load generators against a running `forecourt serve` (not tests: they
/// print figures; see docs/performance.md and the scripts/bench-* scripts).
@main
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forecourt-bench",
        abstract: "Load generators for a running Forecourt endpoint.",
        subcommands: [OrdersBenchmark.self])
}
