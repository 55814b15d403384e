import FieldCrypto
import ForecourtCore
import Foundation
import Postgres
import RPC
import Storage

/// `track.lookup`: a customer follows their order with the last 8 VIN characters and their name.
///
/// The transaction runs in the `.portal` scope: row-level security admits only orders whose VIN
/// ends with the given characters (in the key's group, if it has one), their timeline, and
/// their customers' rows, of which only the name's blind index is read. Names are compared as
/// blind indexes of the normalised name (case, accents and spacing do not matter).
///
/// A wrong name and an unknown VIN take the same path (one read, the blind indexes, one
/// failure counted) and give the same -32003. Failures are counted per `vin_last8` in
/// `track_lookup_failures`, a table every instance shares: after `failureLimit` failures in
/// `window`, every lookup of that `vin_last8` is -32006 until the window ends.
public final class TrackingService: Sendable {
    public static let failureLimit = 5
    public static let window: Duration = .seconds(15 * 60)

    private let database: AppDatabase
    private let cipher: FieldCipher

    public init(database: AppDatabase, cipher: FieldCipher) {
        self.database = database
        self.cipher = cipher
    }

    private enum Outcome: Sendable {
        case found(JSON)
        case notFound
        case limited(retryAfterMilliseconds: Int)
    }

    private static let notFound = DomainError(.notFound, "no order matches this VIN and name")

    public func lookup(caller: Principal, vinLast8: String, fullName: String) async throws -> JSON {
        let windowSeconds = Int(Self.window.components.seconds)
        let cipher = self.cipher
        let outcome = try await database.transaction(.portal(group: caller.dealerGroupID, vinLast8: vinLast8)) { connection -> Outcome in
            let counter = try connection.query(
                """
                SELECT failures, (extract(epoch FROM (window_started_at + make_interval(secs => \(windowSeconds)) - now())) * 1000)::int8
                FROM forecourt.track_lookup_failures WHERE vin_last8 = \(vinLast8) FOR UPDATE
                """
            ).first
            if let counter {
                let failures: Int = try counter.decode(0)
                let remaining: Int = try counter.decode(1)
                if failures >= Self.failureLimit, remaining > 0 { return .limited(retryAfterMilliseconds: remaining) }
            }
            let candidates = try connection.query(
                """
                SELECT o.dealer_group_id, o.id, c.name_bidx FROM forecourt.orders o
                JOIN forecourt.customers c ON c.dealer_group_id = o.dealer_group_id AND c.id = o.customer_id
                WHERE o.vin_last8 = \(vinLast8)
                """
            ).rows
            var match: (group: UUID, id: UUID)?
            if candidates.isEmpty {
                // The same work as for a wrong name, so timing tells the two apart as little as possible.
                _ = cipher.blindIndexCandidates(fullName, group: UUID(), kind: .fullName)
            }
            for row in candidates {
                let group: UUID = try row.decode(0)
                let id: UUID = try row.decode(1)
                let stored: [UInt8]? = try row.decode(2)
                let wanted = cipher.blindIndexCandidates(fullName, group: group, kind: .fullName)
                if let stored, wanted.contains(where: { Self.constantTimeEqual($0, stored) }), match == nil {
                    match = (group, id)
                }
            }
            if let match {
                return .found(try Self.tracking(connection, group: match.group, id: match.id))
            }
            try connection.query(
                """
                INSERT INTO forecourt.track_lookup_failures AS t (vin_last8, window_started_at, failures)
                VALUES (\(vinLast8), now(), 1)
                ON CONFLICT (vin_last8) DO UPDATE SET
                    failures = CASE WHEN t.window_started_at + make_interval(secs => \(windowSeconds)) > now()
                        THEN t.failures + 1 ELSE 1 END,
                    window_started_at = CASE WHEN t.window_started_at + make_interval(secs => \(windowSeconds)) > now()
                        THEN t.window_started_at ELSE now() END
                """)
            return .notFound
        }
        switch outcome {
        case .found(let json): return json
        case .notFound: throw Self.notFound
        case .limited(let retry): throw DomainError.rateLimited(retryAfterMilliseconds: retry)
        }
    }

    /// Only the fields docs/protocol.md lists: nothing about the customer.
    private static func tracking(_ connection: PostgresConnection, group: UUID, id: UUID) throws -> JSON {
        guard let order = try OrderService.load(connection, group: group, id: id) else { throw notFound }
        var reachedAt: [OrderStage: Date] = [.ordered: order.createdAt]
        for row in try connection.query(
            """
            SELECT event, min(occurred_at) FROM forecourt.order_events
            WHERE dealer_group_id = \(group) AND order_id = \(id) AND NOT late
            GROUP BY event
            """
        ).rows {
            let name: String = try row.decode(0)
            if let stage = OrderStage(rawValue: name), stage != .cancelled, stage != .ordered {
                reachedAt[stage] = try row.decode(1)
            }
        }
        let reached = reachedAt.keys.max() ?? .ordered
        let stages: [JSON] = StageReducer.states(current: order.stage, reached: reached).map { stage, state in
            ["stage": .string(stage.rawValue), "state": .string(state), "at": state == "pending" ? .null : reachedAt[stage].json]
        }
        return [
            "order_number": .string(order.orderNumber),
            "model": ["code": .string(order.modelCode), "year": .int(order.modelYear), "trim": order.modelTrim.json],
            "stage": .string(order.stage.rawValue), "on_hold": .bool(order.onHold), "eta": order.eta.json,
            "delayed": .bool(order.delayed), "forecast": order.forecast.json, "stages": .array(stages),
        ]
    }

    private static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for (x, y) in zip(a, b) { difference |= x ^ y }
        return difference == 0
    }
}
