import ForecourtApp
import ForecourtClient
import ForecourtCore
import Foundation
import Histogram
import RPC

/// The workloads of `forecourt-bench service` (docs/performance.md, "Method"), each a phase
/// through the TLS endpoint and, but for `idle`, pgbench running the same SQL.
enum Workload: String, CaseIterable, Sendable {
    /// `order.get` by id, random over the sample, with a group_admin key.
    case get
    /// `order.get` at low load: 2 connections × 1 in flight (latency without queueing).
    case getLowLoad = "get-2x1"
    /// `order.create` with a sales key (one dealer), a new idempotency key per call.
    case create
    /// `order.record_event` with the factory key: ETA revisions, each a real write.
    case recordEvent = "record_event"
    /// The 1000th page of `order.list` (10 a page, the group's newest first), group_admin.
    case listDeep = "list-deep"
    /// `track.lookup` with a portal key of the group: the sampled orders' VIN and name.
    case track
    /// `customer.upsert_batch`, 1000 new customers a call, 4 crm_sync clients × 1 in flight.
    case upsertBatch = "upsert_batch"
    /// A back office's day: get 50 %, record_event 25 %, list 10 %, timeline 5 %, create 5 %, track 5 %.
    case mix
    /// Authenticated TLS sessions held open doing nothing: the service's memory per session.
    case idle

    func run(_ environment: Environment) async throws -> WorkloadResult {
        let e = environment
        let sample = e.sample.orders
        switch self {
        case .get, .getLowLoad:
            let (count, depth) = self == .get ? (e.connections, e.pipeline) : (2, 1)
            let clients = try await e.endpoint.open(count, key: e.keys.groupAdmin)
            defer { Task { for client in clients { await client.close() } } }
            let service = try await Phase.measure(e, clients: clients, depth: depth) { worker, n in
                Call(client: clients[worker % clients.count], method: "order.get", params: ["id": sample[n % sample.count].id.json])
            }
            let pgbench = try e.ceiling.measure(
                .init(scripts: [("order-get.sql", 1)], clients: count, threads: min(count, 2), variables: e.variables),
                seconds: e.seconds, warmup: e.warmup)
            return WorkloadResult(name: rawValue, unit: "calls/s", service: service, ceiling: Figures(pgbench))

        case .create:
            let clients = try await e.endpoint.open(e.connections, key: e.keys.sales)
            defer { Task { for client in clients { await client.close() } } }
            let run = UUID().uuidString.prefix(8)
            let service = try await Phase.measure(e, clients: clients, depth: e.pipeline) { worker, n in
                Call(client: clients[worker % clients.count], method: "order.create", params: Self.createParams(sample[n % sample.count], key: "\(run)-\(worker)-\(n)"))
            }
            let pgbench = try e.ceiling.measure(
                .init(scripts: [("order-create.sql", 1)], clients: e.connections, threads: 2, variables: e.variables),
                seconds: e.seconds, warmup: e.warmup)
            return WorkloadResult(
                name: rawValue, unit: "calls/s", service: service, ceiling: Figures(pgbench), tpcb: try tpcb(e))

        case .recordEvent:
            let clients = try await e.endpoint.open(e.connections, key: e.keys.factory)
            defer { Task { for client in clients { await client.close() } } }
            let clock = Counter()
            let service = try await Phase.measure(e, clients: clients, depth: e.pipeline) { worker, n in
                Call(client: clients[worker % clients.count], method: "order.record_event", params: Self.etaParams(sample[n % sample.count], clock))
            }
            let pgbench = try e.ceiling.measure(
                .init(scripts: [("order-record-event.sql", 1)], clients: e.connections, threads: 2, variables: e.variables),
                seconds: e.seconds, warmup: e.warmup)
            return WorkloadResult(
                name: rawValue, unit: "calls/s", service: service, ceiling: Figures(pgbench), tpcb: try tpcb(e))

        case .listDeep:
            guard e.sample.deepPosition != nil else {
                return WorkloadResult(
                    name: rawValue, unit: "calls/s",
                    note: "the group has fewer than \(BenchSample.deepPage * BenchSample.deepLimit) orders")
            }
            let clients = try await e.endpoint.open(e.connections, key: e.keys.groupAdmin)
            defer { Task { for client in clients { await client.close() } } }
            // Walk to the 1000th page once; then ask for it again and again.
            var after: JSON = .null
            for _ in 1..<BenchSample.deepPage {
                let page = try await clients[0].call("order.list", params: ["limit": .int(BenchSample.deepLimit), "after": after])
                after = page["next"] ?? .null
            }
            let cursor = after
            let service = try await Phase.measure(e, clients: clients, depth: e.pipeline) { worker, _ in
                Call(client: clients[worker % clients.count], method: "order.list", params: ["limit": .int(BenchSample.deepLimit), "after": cursor])
            }
            let pgbench = try e.ceiling.measure(
                .init(scripts: [("order-list-deep.sql", 1)], clients: e.connections, threads: 2, variables: e.variables),
                seconds: e.seconds, warmup: e.warmup)
            return WorkloadResult(name: rawValue, unit: "calls/s", service: service, ceiling: Figures(pgbench))

        case .track:
            let clients = try await e.endpoint.open(e.connections, key: e.keys.portal)
            defer { Task { for client in clients { await client.close() } } }
            let service = try await Phase.measure(e, clients: clients, depth: e.pipeline) { worker, n in
                let order = sample[n % sample.count]
                return Call(
                    client: clients[worker % clients.count], method: "track.lookup",
                    params: ["vin_last8": .string(order.vinLast8), "full_name": .string(order.fullName)])
            }
            let pgbench = try e.ceiling.measure(
                .init(scripts: [("track-lookup.sql", 1)], clients: e.connections, threads: 2, variables: e.variables),
                seconds: e.seconds, warmup: e.warmup)
            return WorkloadResult(name: rawValue, unit: "calls/s", service: service, ceiling: Figures(pgbench))

        case .upsertBatch:
            let clients = try await e.endpoint.open(4, key: e.keys.crmSync)
            defer { Task { for client in clients { await client.close() } } }
            let run = UUID().uuidString.prefix(8)
            let service = try await Phase.measure(e, clients: clients, depth: 1, units: 1000) { worker, n in
                Call(client: clients[worker % clients.count], method: "customer.upsert_batch", params: Self.batch("\(run)-\(worker)-\(n)"))
            }
            let pgbench = try e.ceiling.measure(
                .init(scripts: [("customer-upsert-batch.sql", 1)], clients: 4, threads: 2, variables: e.variables),
                seconds: e.seconds, warmup: e.warmup)
            return WorkloadResult(name: rawValue, unit: "records/s", service: service, ceiling: Figures(pgbench, units: 1000))

        case .mix:
            let admins = try await e.endpoint.open(e.connections, key: e.keys.groupAdmin)
            let factory = try await e.endpoint.open(e.connections, key: e.keys.factory)
            let sales = try await e.endpoint.open(e.connections, key: e.keys.sales)
            let portal = try await e.endpoint.open(e.connections, key: e.keys.portal)
            defer { Task { for client in admins + factory + sales + portal { await client.close() } } }
            let clock = Counter()
            let run = UUID().uuidString.prefix(8)
            let service = try await Phase.measure(e, clients: admins, depth: e.pipeline) { worker, n in
                let order = sample[(n &* 7919) % sample.count]
                let connection = worker % e.connections
                // One draw in 20, by weight: the same proportions as the pgbench weights below.
                switch n % 20 {
                case 0..<10: return Call(client: admins[connection], method: "order.get", params: ["id": order.id.json])
                case 10..<15: return Call(client: factory[connection], method: "order.record_event", params: Self.etaParams(order, clock))
                case 15, 16: return Call(client: admins[connection], method: "order.list", params: ["limit": 50])
                case 17: return Call(client: admins[connection], method: "order.timeline", params: ["id": order.id.json])
                case 18: return Call(client: sales[connection], method: "order.create", params: Self.createParams(order, key: "\(run)-\(worker)-\(n)"))
                default:
                    return Call(
                        client: portal[connection], method: "track.lookup",
                        params: ["vin_last8": .string(order.vinLast8), "full_name": .string(order.fullName)])
                }
            }
            let pgbench = try e.ceiling.measure(
                .init(
                    scripts: [
                        ("order-get.sql", 10), ("order-record-event.sql", 5), ("order-list.sql", 2), ("order-timeline.sql", 1),
                        ("order-create.sql", 1), ("track-lookup.sql", 1),
                    ], clients: e.connections, threads: 2, variables: e.variables),
                seconds: e.seconds, warmup: e.warmup)
            return WorkloadResult(name: rawValue, unit: "calls/s", service: service, ceiling: Figures(pgbench))

        case .idle:
            guard let pid = e.serverPID else { return WorkloadResult(name: rawValue, unit: "", note: "no --server-pid") }
            // This process holds a descriptor per session too: its soft limit goes up to its hard one.
            if let limit = OpenFilesLimit.current(), limit.soft < UInt64(e.idleSessions + 256) {
                _ = OpenFilesLimit.set(OpenFilesLimit(soft: min(limit.hard, UInt64(e.idleSessions + 256)), hard: limit.hard))
            }
            let before = residentKiB(pid)
            // Opened 16 at a time (below the service's 32 unauthenticated connections per address).
            let opened = await withTaskGroup(of: [ForecourtClient].self) { group in
                var clients: [ForecourtClient] = []
                let workers = 16
                for worker in 0..<workers {
                    let count = e.idleSessions / workers + (worker < e.idleSessions % workers ? 1 : 0)
                    group.addTask {
                        var mine: [ForecourtClient] = []
                        for _ in 0..<count {
                            if let client = try? await e.endpoint.open(1, key: e.keys.groupAdmin).first { mine.append(client) }
                        }
                        return mine
                    }
                }
                for await batch in group { clients += batch }
                return clients
            }
            let clients = opened
            let refused = e.idleSessions - clients.count
            // Idle long enough for the sessions to have released what they keep only while busy.
            try await Task.sleep(for: .seconds(5))
            let after = residentKiB(pid)
            // Every session still answers.
            var answering = 0
            for client in clients.prefix(100) where (try? await client.call("system.ping")) == ["ok": true] { answering += 1 }
            for client in clients { await client.close() }
            let perSession = clients.isEmpty ? 0 : Double(after - before) / Double(clients.count)
            return WorkloadResult(
                name: rawValue, unit: "KiB/session",
                idle: IdleFigures(
                    sessions: clients.count, refused: refused, residentBeforeKiB: before, residentAfterKiB: after,
                    kibPerSession: perSession),
                note: "\(answering) of the first \(min(100, clients.count)) sessions answered a ping afterwards")
        }
    }

    /// TPC-B (pgbench's builtin) on its own database: the reference of the write targets.
    private func tpcb(_ e: Environment) throws -> Figures? {
        guard let database = e.tpcbDatabase else { return nil }
        let figures = try e.ceiling.measure(
            .init(scripts: [], clients: e.connections, threads: 2, variables: [:], database: database, builtin: "tpcb-like"),
            seconds: e.seconds, warmup: e.warmup)
        return Figures(figures)
    }

    static func createParams(_ order: BenchSample.Order, key: String) -> JSON {
        [
            "customer_id": order.customerID.json, "model": ["code": "BENCH", "year": 2027], "exterior_color": "White",
            "options": ["TOW"], "idempotency_key": .string("bench-\(key)"),
        ]
    }

    /// An ETA revision with an `occurred_at` later than any before it, so that it is applied.
    static func etaParams(_ order: BenchSample.Order, _ clock: Counter) -> JSON {
        let tick = clock.next()
        let at = etaBase.addingTimeInterval(Double(tick) / 1000)
        let day = 1 + tick % 28
        return [
            "id": order.id.json, "event": "eta", "reason": "other", "occurred_at": .string(RFC3339String.format(at)),
            "eta": .string("2028-02-\(day < 10 ? "0" : "")\(day)"),
        ]
    }

    private static let etaBase = Date().addingTimeInterval(-3600)

    /// 1000 new customers, every field set (the sizes of docs/performance.md, "Customers").
    static func batch(_ prefix: String) -> JSON {
        var records: [JSON] = []
        records.reserveCapacity(1000)
        for i in 0..<1000 {
            records.append([
                "external_ref": .string("ub-\(prefix)-\(i)"), "full_name": .string("Customer \(prefix) \(i)"),
                "email": .string("c\(i).\(prefix)@example.org"), "phone": .string("+44207\(String(format: "%07d", i))"),
                "address": [
                    "line1": .string("\(i) Long Street"), "line2": "Apartment 1", "city": "Manchester",
                    "region": "Greater Manchester", "postal_code": .string("M1 \(i % 10)AB"), "country": "GB",
                ],
                "notify": ["email": true, "sms": .bool(i % 2 == 0)],
                "source_updated_at": "2026-11-01T10:00:00Z",
            ])
        }
        return ["records": .array(records)]
    }
}

/// One call of a phase: which connection, which method, which parameters.
struct Call: Sendable {
    let client: ForecourtClient
    let method: String
    let params: JSON
}

/// Throughput and latency of one side of a workload.
struct Figures: Codable, Sendable {
    /// Units (calls, records) per second.
    let rate: Double
    let p50Milliseconds: Double
    let p99Milliseconds: Double
    let errors: Int

    enum CodingKeys: String, CodingKey {
        case rate, errors
        case p50Milliseconds = "p50_ms"
        case p99Milliseconds = "p99_ms"
    }

    init(rate: Double, histogram: Histogram<UInt64>, errors: Int) {
        self.rate = rate
        p50Milliseconds = Double(histogram.valueAtPercentile(50)) / 1000
        p99Milliseconds = Double(histogram.valueAtPercentile(99)) / 1000
        self.errors = errors
    }

    init(_ pgbench: (rate: Double, histogram: Histogram<UInt64>, failed: Int), units: Int = 1) {
        self.init(rate: pgbench.rate * Double(units), histogram: pgbench.histogram, errors: pgbench.failed)
    }
}

struct IdleFigures: Codable, Sendable {
    let sessions: Int
    let refused: Int
    let residentBeforeKiB: Int
    let residentAfterKiB: Int
    let kibPerSession: Double

    enum CodingKeys: String, CodingKey {
        case sessions, refused
        case residentBeforeKiB = "resident_before_kib"
        case residentAfterKiB = "resident_after_kib"
        case kibPerSession = "kib_per_session"
    }
}

/// The resident memory of a process, from /proc (0 where there is none).
func residentKiB(_ pid: Int32) -> Int {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
    for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
    }
    return 0
}

/// Runs calls for a warm-up and then a measured phase.
enum Phase {
    /// `clients.count × depth` workers call in a loop for `warmup`, then for `seconds` measured.
    /// `units` counts what one call carries (records of a batch) in the rate.
    static func measure(
        _ e: Environment, clients: [ForecourtClient], depth: Int, units: Int = 1,
        request: @escaping @Sendable (Int, Int) -> Call
    ) async throws -> Figures {
        let workers = clients.count * depth
        _ = try await run(clients: clients, workers: workers, seconds: e.warmup, firstCall: 0, request: request)
        let started = ContinuousClock.now
        // The measured phase's calls are numbered after the warm-up's, so that what a call
        // number names (an idempotency key, a batch's external refs) is new: with the same
        // numbers, a quarter of the measured `order.create` calls replayed a warm-up key
        // (an idempotent replay, a read) and upsert batches found their rows already there.
        let (histogram, errors) = try await run(
            clients: clients, workers: workers, seconds: e.seconds, firstCall: 1 << 40, request: request)
        let elapsed = started.duration(to: .now)
        let seconds = elapsed.inSeconds
        return Figures(rate: Double(histogram.totalCount) * Double(units) / seconds, histogram: histogram, errors: errors)
    }

    private static func run(
        clients: [ForecourtClient], workers: Int, seconds: Int, firstCall: Int,
        request: @escaping @Sendable (Int, Int) -> Call
    ) async throws -> (Histogram<UInt64>, Int) {
        guard seconds > 0 else { return (Histogram<UInt64>(highestTrackableValue: 60_000_000), 0) }
        let deadline = ContinuousClock.now + .seconds(seconds)
        return try await withThrowingTaskGroup(of: (Histogram<UInt64>, Int).self) { group in
            for worker in 0..<workers {
                // On the event loop of the worker's connection, as a client written with NIO would
                // run (docs/performance.md, "Method"): the request is written and the answer
                // taken on the thread that does the connection's I/O.
                group.addTask(executorPreference: clients[worker % clients.count].executor) {
                    // Microseconds, 1 µs to 60 s.
                    var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000)
                    var errors = 0
                    var n = firstCall &+ worker &* 104_729
                    while ContinuousClock.now < deadline {
                        let call = request(worker, n)
                        n += 1
                        let start = ContinuousClock.now
                        do {
                            _ = try await call.client.call(call.method, params: call.params)
                        } catch ForecourtClient.Error.connectionClosed {
                            throw ForecourtClient.Error.connectionClosed
                        } catch {
                            errors += 1
                            if errors == 1 { progress("    first error (\(call.method)): \(error)") }
                            continue
                        }
                        let elapsed = start.duration(to: .now)
                        let micros = elapsed.microseconds
                        _ = histogram.record(UInt64(max(1, micros)))
                    }
                    return (histogram, errors)
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
