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
/// A wrong name and an unknown VIN take the same path (one read, the blind indexes of one
/// group, whose derived keys are cached either way, one failure counted) and give the same
/// -32003. Failures are counted in tables every instance shares (docs/architecture.md,
/// "Tracking"):
/// - per `vin_last8` within the portal key's scope (its group, or every group for a global
///   key): after `Limits.failuresPerVIN` failures in `Limits.window`, every lookup of that
///   `vin_last8` in that scope is -32006 until the window ends;
/// - per portal key, whatever the VIN: after `Limits.failuresPerPrincipal`, every lookup of
///   that key is -32006 until its window ends.
///
/// The count is atomic: a failure is counted before it is answered (`INSERT ... ON CONFLICT
/// DO UPDATE ... RETURNING`, which serialises on the counter row, or on its insertion when it
/// does not exist yet), and one whose count passes a limit is answered -32006, so a burst of
/// concurrent guesses learns at most the limit's worth of answers. A match re-reads both
/// counters with `FOR SHARE`, which waits for failures still being counted.
public final class TrackingService: Sendable {
    public struct Limits: Sendable {
        /// Failures per `vin_last8` and portal scope within `window`.
        public var failuresPerVIN = 5
        /// Failures per portal key within `window`, over every VIN.
        public var failuresPerPrincipal = 300
        /// At least the 15 minutes that the purge policy of migrations/0006 assumes.
        public var window: Duration = .seconds(15 * 60)

        public init() {}
    }

    /// Kept for callers that name the contract's figure.
    public static let failureLimit = Limits().failuresPerVIN
    public static let window = Limits().window

    /// The group whose blind-index key an unknown VIN's name is hashed under: fixed, so the
    /// unknown-VIN path costs what a wrong name costs (a cached derived key) and never fills
    /// the cipher's key cache with keys of random groups.
    static let unknownVINGroup = UUID(uuidString: "6b1d3f5e-0c1a-4d7e-9a51-7e2f0d8c4b93")!

    private let database: AppDatabase
    private let cipher: FieldCipher
    public let limits: Limits

    public init(database: AppDatabase, cipher: FieldCipher, limits: Limits = Limits()) {
        self.database = database
        self.cipher = cipher
        self.limits = limits
    }

    private enum Outcome: Sendable {
        case found(JSON)
        case notFound
        case limited(retryAfterMilliseconds: Int)
    }

    private static let notFound = DomainError(.notFound, "no order matches this VIN and name")

    public func lookup(caller: Principal, vinLast8: String, fullName: String) async throws -> JSON {
        let limits = self.limits
        let windowSeconds = Int(limits.window.components.seconds)
        let cipher = self.cipher
        let group = caller.dealerGroupID
        let principal = caller.id
        let outcome = try await database.transaction(.portal(group: group, vinLast8: vinLast8), principal: principal) {
            connection -> Outcome in
            // The counters as they stand (no lock): a limited caller is answered before any work.
            // The candidates are read in the same round trip (with the transaction's start).
            let first = try connection.queries([
                Self.limitedQuery(group: group, vinLast8: vinLast8, principal: principal, limits: limits, lock: false),
                """
                SELECT o.dealer_group_id, o.id, c.name_bidx FROM forecourt.orders o
                JOIN forecourt.customers c ON c.dealer_group_id = o.dealer_group_id AND c.id = o.customer_id
                WHERE o.vin_last8 = \(vinLast8)
                """,
            ])
            if let wait = try Self.wait(first[0]) {
                return .limited(retryAfterMilliseconds: wait)
            }
            let candidates = first[1].rows
            var match: (group: UUID, id: UUID)?
            if candidates.isEmpty {
                // The same work as for a wrong name, so timing tells the two apart as little as possible.
                _ = cipher.blindIndexCandidates(fullName, group: Self.unknownVINGroup, kind: .fullName)
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
                // Failures counted meanwhile by concurrent lookups are waited for and seen; the
                // order and its stage dates are read in the same round trip, with COMMIT.
                let last = try connection.commit(
                    returning: [
                        Self.limitedQuery(group: group, vinLast8: vinLast8, principal: principal, limits: limits, lock: true)
                    ] + Self.trackingQueries(group: match.group, id: match.id))
                if let wait = try Self.wait(last[0]) {
                    return .limited(retryAfterMilliseconds: wait)
                }
                return .found(try Self.tracking(order: last[1], stages: last[2]))
            }
            // Counted first, answered after: a failure past a limit learns nothing of its guess.
            // Both counters and COMMIT: one round trip.
            let counted = try connection.commit(returning: [
                """
                INSERT INTO forecourt.track_lookup_failures AS t (dealer_group_id, vin_last8, window_started_at, failures)
                VALUES (\(group), \(vinLast8), now(), 1)
                ON CONFLICT (dealer_group_id, vin_last8) DO UPDATE SET
                    failures = CASE WHEN t.window_started_at + make_interval(secs => \(windowSeconds)) > now()
                        THEN t.failures + 1 ELSE 1 END,
                    window_started_at = CASE WHEN t.window_started_at + make_interval(secs => \(windowSeconds)) > now()
                        THEN t.window_started_at ELSE now() END
                RETURNING failures, \(unsafeSQL: Self.remainingMilliseconds(windowSeconds))
                """,
                """
                INSERT INTO forecourt.track_lookup_budgets AS t (principal_id, dealer_group_id, window_started_at, failures)
                VALUES (\(principal), \(group), now(), 1)
                ON CONFLICT (principal_id) DO UPDATE SET
                    failures = CASE WHEN t.window_started_at + make_interval(secs => \(windowSeconds)) > now()
                        THEN t.failures + 1 ELSE 1 END,
                    window_started_at = CASE WHEN t.window_started_at + make_interval(secs => \(windowSeconds)) > now()
                        THEN t.window_started_at ELSE now() END
                RETURNING failures, \(unsafeSQL: Self.remainingMilliseconds(windowSeconds))
                """,
            ])
            let (perVIN, perPrincipal) = (counted[0].first, counted[1].first)
            var wait: Int?
            for (row, limit) in [(perVIN, limits.failuresPerVIN), (perPrincipal, limits.failuresPerPrincipal)] {
                guard let row else { continue }
                let failures: Int = try row.decode(0)
                let remaining: Int = try row.decode(1)
                if failures > limit { wait = max(wait ?? 0, max(remaining, 1)) }
            }
            if let wait { return .limited(retryAfterMilliseconds: wait) }
            return .notFound
        }
        switch outcome {
        case .found(let json): return json
        case .notFound: throw Self.notFound
        case .limited(let retry): throw DomainError.rateLimited(retryAfterMilliseconds: retry)
        }
    }

    /// `window_started_at + window - now()` in milliseconds, for `RETURNING` and reads.
    private static func remainingMilliseconds(_ windowSeconds: Int) -> String {
        "(extract(epoch FROM (window_started_at + make_interval(secs => \(windowSeconds)) - now())) * 1000)::int8"
    }

    /// The counters of this lookup, for `wait`. With `lock`, the rows are read `FOR SHARE`,
    /// which waits for concurrent failures being counted.
    private static func limitedQuery(group: UUID?, vinLast8: String, principal: UUID, limits: Limits, lock: Bool) -> PostgresQuery {
        let windowSeconds = Int(limits.window.components.seconds)
        let remaining = remainingMilliseconds(windowSeconds)
        let locking = lock ? " FOR SHARE" : ""
        return
            """
            WITH per_vin AS (
                SELECT failures, \(unsafeSQL: remaining) AS remaining FROM forecourt.track_lookup_failures
                WHERE dealer_group_id IS NOT DISTINCT FROM \(group)::uuid AND vin_last8 = \(vinLast8)\(unsafeSQL: locking)
            ), per_principal AS (
                SELECT failures, \(unsafeSQL: remaining) AS remaining FROM forecourt.track_lookup_budgets
                WHERE principal_id = \(principal)\(unsafeSQL: locking)
            )
            SELECT failures, remaining, \(limits.failuresPerVIN) FROM per_vin
            UNION ALL
            SELECT failures, remaining, \(limits.failuresPerPrincipal) FROM per_principal
            """
    }

    /// How long the caller must wait, if a counter of `limitedQuery`'s result is at its limit.
    private static func wait(_ counters: PostgresResult) throws -> Int? {
        var wait: Int?
        for row in counters.rows {
            let failures: Int = try row.decode(0)
            let remaining: Int = try row.decode(1)
            let limit: Int = try row.decode(2)
            if failures >= limit, remaining > 0 { wait = max(wait ?? 0, remaining) }
        }
        return wait
    }

    /// The order, and when it reached each stage: the reads of `tracking`.
    private static func trackingQueries(group: UUID, id: UUID) -> [PostgresQuery] {
        [
            OrderService.loadQuery(group: group, id: id),
            """
            SELECT event, min(occurred_at) FROM forecourt.order_events
            WHERE dealer_group_id = \(group) AND order_id = \(id) AND NOT late
            GROUP BY event
            """,
        ]
    }

    /// Only the fields docs/protocol.md lists: nothing about the customer.
    private static func tracking(order rows: PostgresResult, stages events: PostgresResult) throws -> JSON {
        guard let order = try rows.first.map(Order.init) else { throw notFound }
        var reachedAt: [OrderStage: Date] = [.ordered: order.createdAt]
        for row in events.rows {
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
