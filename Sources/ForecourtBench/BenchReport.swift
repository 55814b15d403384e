import Foundation

/// The outcome of one workload: the service through TLS, pgbench running the same SQL, and
/// for writes pgbench's TPC-B on the same cluster.
struct WorkloadResult: Codable, Sendable {
    let name: String
    let unit: String
    var service: Figures?
    var ceiling: Figures?
    var tpcb: Figures?
    var idle: IdleFigures?
    var note: String?

    init(
        name: String, unit: String, service: Figures? = nil, ceiling: Figures? = nil, tpcb: Figures? = nil,
        idle: IdleFigures? = nil, note: String? = nil
    ) {
        self.name = name
        self.unit = unit
        self.service = service
        self.ceiling = ceiling
        self.tpcb = tpcb
        self.idle = idle
        self.note = note
    }

    /// Service rate over the ceiling's.
    var ratio: Double? {
        guard let service, let ceiling, ceiling.rate > 0 else { return nil }
        return service.rate / ceiling.rate
    }

    var ratioToTPCB: Double? {
        guard let service, let tpcb, tpcb.rate > 0 else { return nil }
        return service.rate / tpcb.rate
    }

    enum CodingKeys: String, CodingKey {
        case name, unit, service, ceiling, tpcb, idle, note, ratio
        case ratioToTPCB = "ratio_to_tpcb"
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decode(String.self, forKey: .name)
        unit = try container.decode(String.self, forKey: .unit)
        service = try container.decodeIfPresent(Figures.self, forKey: .service)
        ceiling = try container.decodeIfPresent(Figures.self, forKey: .ceiling)
        tpcb = try container.decodeIfPresent(Figures.self, forKey: .tpcb)
        idle = try container.decodeIfPresent(IdleFigures.self, forKey: .idle)
        note = try container.decodeIfPresent(String.self, forKey: .note)
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(name, forKey: .name)
        try container.encode(unit, forKey: .unit)
        try container.encodeIfPresent(service, forKey: .service)
        try container.encodeIfPresent(ceiling, forKey: .ceiling)
        try container.encodeIfPresent(tpcb, forKey: .tpcb)
        try container.encodeIfPresent(idle, forKey: .idle)
        try container.encodeIfPresent(note, forKey: .note)
        try container.encodeIfPresent(ratio, forKey: .ratio)
        try container.encodeIfPresent(ratioToTPCB, forKey: .ratioToTPCB)
    }

    /// One line for the progress output.
    var summary: String {
        if let idle {
            return "\(idle.sessions) sessions (\(idle.refused) refused): \(String(format: "%.1f", idle.kibPerSession)) KiB each"
        }
        if let note { return note }
        var parts: [String] = []
        if let service { parts.append("service \(format(service.rate)) \(unit), p99 \(ms(service.p99Milliseconds))") }
        if let ceiling { parts.append("pgbench \(format(ceiling.rate))") }
        if let ratio { parts.append("ratio \(String(format: "%.2f", ratio))") }
        if let tpcb, let ratioToTPCB { parts.append("TPC-B \(format(tpcb.rate)), ratio \(String(format: "%.2f", ratioToTPCB))") }
        return parts.joined(separator: "; ")
    }
}

/// Everything one run measured.
struct BenchReport: Codable, Sendable {
    let date: String
    let cores: Int
    let groupOrders: Int
    let connections: Int
    let pipeline: Int
    let seconds: Int
    let workloads: [WorkloadResult]

    enum CodingKeys: String, CodingKey {
        case date, cores, connections, pipeline, seconds, workloads
        case groupOrders = "group_orders"
    }

    /// A Markdown table; with `baseline` (a smaller database), each read's cost relative to it.
    func table(baseline: BenchReport?) -> String {
        var lines = [
            "\(groupOrders) orders in the group, \(cores) cores, \(connections) connections × \(pipeline) in flight, \(seconds) s per phase, \(date)",
            "",
            "| workload | service | p50 ms | p99 ms | errors | pgbench, same SQL | p50 ms | p99 ms | ratio | TPC-B | ratio to TPC-B |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for result in workloads where result.idle == nil {
            guard let service = result.service else {
                lines.append("| `\(result.name)` | \(result.note ?? "-") | | | | | | | | | |")
                continue
            }
            var cells = ["`\(result.name)`", "\(format(service.rate)) \(result.unit)", ms(service.p50Milliseconds), ms(service.p99Milliseconds), "\(service.errors)"]
            if let ceiling = result.ceiling {
                cells += [format(ceiling.rate), ms(ceiling.p50Milliseconds), ms(ceiling.p99Milliseconds)]
            } else {
                cells += ["", "", ""]
            }
            cells.append(result.ratio.map { String(format: "%.2f", $0) } ?? "")
            cells.append(result.tpcb.map { format($0.rate) } ?? "")
            cells.append(result.ratioToTPCB.map { String(format: "%.2f", $0) } ?? "")
            lines.append("| " + cells.joined(separator: " | ") + " |")
        }
        for result in workloads {
            guard let idle = result.idle else { continue }
            lines.append("")
            lines.append(
                "idle: \(idle.sessions) authenticated TLS sessions (\(idle.refused) refused) took the service from "
                    + "\(idle.residentBeforeKiB / 1024) to \(idle.residentAfterKiB / 1024) MiB resident: "
                    + "\(String(format: "%.1f", idle.kibPerSession)) KiB per session"
                    + (result.note.map { " (\($0))" } ?? ""))
        }
        if let baseline {
            lines += [
                "",
                "Cost relative to \(baseline.groupOrders) orders (its rate over this run's; 1.00 is flat):",
                "",
                "| workload | \(baseline.groupOrders) orders | \(groupOrders) orders | cost × |",
                "|---|---:|---:|---:|",
            ]
            for result in workloads {
                guard let service = result.service, let before = baseline.workloads.first(where: { $0.name == result.name })?.service,
                    service.rate > 0
                else { continue }
                lines.append(
                    "| `\(result.name)` | \(format(before.rate)) | \(format(service.rate)) | \(String(format: "%.2f", before.rate / service.rate)) |")
            }
        }
        return lines.joined(separator: "\n")
    }
}

private func format(_ rate: Double) -> String { String(format: "%.0f", rate) }
private func ms(_ value: Double) -> String { String(format: "%.2f", value) }
