import ArgumentParser
import ForecourtClient
import ForecourtCore
import Foundation
import Histogram
import RPC
import Synchronization

/// `forecourt-bench orders`: `order.get` and `order.record_event` throughput and latency through
/// the TLS endpoint, over N connections with P requests in flight on each (pipelined).
struct OrdersBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "orders",
        abstract: "Measure order.get and order.record_event throughput and p50/p99 latency.")

    @Option(help: "host:port of the server.") var connect = "127.0.0.1:7443"
    @Option(help: "CA certificate (PEM) to trust.") var ca: String?
    @Option(name: .customLong("sales-key"), help: "A sales key (creates the orders, reads them).") var salesKey: String
    @Option(name: .customLong("factory-key"), help: "A factory key (records the events).") var factoryKey: String
    @Option(name: .customLong("customer"), help: "A customer id of the sales key's group.") var customer: String
    @Option(help: "TLS connections.") var connections = 8
    @Option(help: "Requests in flight per connection.") var pipeline = 16
    @Option(help: "Orders to create first.") var orders = 200
    @Option(help: "Seconds per measured phase.") var seconds = 10
    @Option(help: "Seconds of warm-up before each phase.") var warmup = 2

    func run() async throws {
        let parts = connect.split(separator: ":")
        guard parts.count == 2, let port = Int(parts[1]) else { throw ValidationError("--connect: host:port") }
        let host = String(parts[0])
        func open(_ key: String) async throws -> [ForecourtClient] {
            var clients: [ForecourtClient] = []
            for _ in 0..<connections {
                let client = try await ForecourtClient.connect(host: host, port: port, caPath: ca)
                _ = try await client.authenticate(apiKey: key)
                clients.append(client)
            }
            return clients
        }
        let sales = try await open(salesKey)
        let factory = try await open(factoryKey)

        print("creating \(orders) orders ...")
        var ids: [String] = []
        for index in 0..<orders {
            let order = try await sales[index % sales.count].call(
                "order.create",
                params: [
                    "customer_id": .string(customer), "model": ["code": "BENCH", "year": 2027],
                    "exterior_color": "White", "idempotency_key": .string("bench-\(UUID().uuidString)"),
                ])
            guard let id = order["id"]?.stringValue else { throw ValidationError("order.create returned no id") }
            ids.append(id)
        }
        let orderIDs = ids

        print("connections=\(connections) pipeline=\(pipeline) orders=\(orders) seconds=\(seconds)")
        let get = try await measure("order.get", clients: sales) { _, n in
            ("order.get", ["id": .string(orderIDs[n % orderIDs.count])])
        }
        // ETA revisions: each one a real write (row lock, timeline row, version, audit, NOTIFY),
        // with occurred_at increasing per order, so no event is a repeat or late.
        let base = Date().addingTimeInterval(-86_400)
        let counter = Counter()
        let record = try await measure("order.record_event", clients: factory) { _, n in
            let sequence = counter.next()
            let at = base.addingTimeInterval(Double(sequence) / 1000)
            let day = 1 + sequence % 28
            return (
                "order.record_event",
                [
                    "id": .string(orderIDs[n % orderIDs.count]), "event": "eta", "reason": "other",
                    "occurred_at": .string(RFC3339String.format(at)),
                    "eta": .string("2027-02-\(day < 10 ? "0" : "")\(day)"),
                ]
            )
        }
        print("")
        print("| method | requests/s | p50 ms | p99 ms | errors |")
        print("|---|---|---|---|---|")
        for result in [get, record] { print(result.row) }
        for client in sales + factory { await client.close() }
    }

    struct Result {
        let method: String
        let count: UInt64
        let errors: Int
        let elapsed: Double
        let histogram: Histogram<UInt64>

        var row: String {
            let p50 = Double(histogram.valueAtPercentile(50)) / 1000
            let p99 = Double(histogram.valueAtPercentile(99)) / 1000
            let rate = String(format: "%.0f", Double(count) / elapsed)
            return "| `\(method)` | \(rate) | \(String(format: "%.2f", p50)) | \(String(format: "%.2f", p99)) | \(errors) |"
        }
    }

    /// Runs `pipeline` callers on each client for `warmup`, then `seconds` measured.
    func measure(
        _ label: String, clients: [ForecourtClient], request: @escaping @Sendable (Int, Int) -> (String, JSON)
    ) async throws -> Result {
        _ = try await phase(clients: clients, seconds: warmup, request: request)
        let started = ContinuousClock.now
        let (histogram, errors) = try await phase(clients: clients, seconds: seconds, request: request)
        let elapsed = started.duration(to: .now)
        let secondsElapsed = elapsed.inSeconds
        print("\(label): \(histogram.totalCount) calls, \(errors) errors")
        return Result(method: label, count: histogram.totalCount, errors: errors, elapsed: secondsElapsed, histogram: histogram)
    }

    func phase(
        clients: [ForecourtClient], seconds: Int, request: @escaping @Sendable (Int, Int) -> (String, JSON)
    ) async throws -> (Histogram<UInt64>, Int) {
        let deadline = ContinuousClock.now + .seconds(seconds)
        let depth = pipeline
        return try await withThrowingTaskGroup(of: (Histogram<UInt64>, Int).self) { group in
            for (c, client) in clients.enumerated() {
                for p in 0..<depth {
                    group.addTask {
                        // Microseconds, 1 µs to 60 s.
                        var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000)
                        var errors = 0
                        var n = c * 7919 + p * 104_729
                        while ContinuousClock.now < deadline {
                            let (method, params) = request(c, n)
                            n += 1
                            let start = ContinuousClock.now
                            do {
                                _ = try await client.call(method, params: params)
                            } catch ForecourtClient.Error.connectionClosed {
                                throw ForecourtClient.Error.connectionClosed
                            } catch {
                                errors += 1
                                continue
                            }
                            let elapsed = start.duration(to: .now)
                            let micros = elapsed.microseconds
                            _ = histogram.record(UInt64(max(1, micros)))
                        }
                        return (histogram, errors)
                    }
                }
            }
            var total = Histogram<UInt64>(highestTrackableValue: 60_000_000)
            var errors = 0
            for try await (histogram, failed) in group {
                total.add(histogram)
                errors += failed
            }
            return (total, errors)
        }
    }
}

/// A shared increasing counter.
final class Counter: Sendable {
    private let value = Mutex(0)

    func next() -> Int {
        value.withLock { value in
            value += 1
            return value
        }
    }
}

/// RFC 3339 with milliseconds, in UTC.
enum RFC3339String {
    static let style = Date.ISO8601FormatStyle(includingFractionalSeconds: true)

    static func format(_ date: Date) -> String { style.format(date) }
}
