import ArgumentParser

/// `forecourt-bench`: measurements that are not tests; they print figures (docs/performance.md,
/// run through the scripts/bench-* scripts).
@main
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forecourt-bench",
        abstract: "Benchmarks of Forecourt: the service beside its pgbench ceiling (scripts/bench), customers in process.",
        subcommands: [ServiceBench.self, CustomersBench.self]
    )
}
