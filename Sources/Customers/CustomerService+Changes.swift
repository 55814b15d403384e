import Audit
import ForecourtCore
import Foundation
import Postgres
import RPC
import Storage

/// One entry of `customer.changes`: a customer at its latest change, and who made it.
public struct CustomerChange: Sendable, Equatable {
    public let customer: Customer
    /// The principal whose change it was; nil for operator commands.
    public let origin: UUID?
}

extension CustomerChange: JSONRepresentable {
    /// The customer with `origin`; an erasure is the tombstone `{"id","external_ref","erased","version","origin"}`.
    public var json: JSON {
        if customer.erased {
            return [
                "id": customer.id.json, "external_ref": customer.externalRef.json, "erased": true,
                "version": .int(customer.version), "origin": origin.json,
            ]
        }
        guard case .object(var object) = customer.json else { return customer.json }
        object["origin"] = origin.json
        return .object(object)
    }
}

/// A page of `customer.changes`.
public struct CustomerChangePage: Sendable {
    public let items: [CustomerChange]
    /// The cursor to resume from; never nil (docs/protocol.md, "customer.changes").
    public let next: String
    /// Whether more changes are ready now.
    public let hasMore: Bool
}

extension CustomerChangePage: JSONRepresentable {
    public var json: JSON { ["items": items.json, "next": .string(next), "has_more": .bool(hasMore)] }
}

/// A position in the change feed: (transaction id, sequence) of the last change consumed.
struct ChangePosition: Comparable, Sendable {
    var xid: UInt64
    var seq: Int

    static let start = ChangePosition(xid: 0, seq: 0)

    static func < (a: ChangePosition, b: ChangePosition) -> Bool { (a.xid, a.seq) < (b.xid, b.seq) }

    var text: String { "\(xid).\(seq)" }

    init(xid: UInt64, seq: Int) {
        self.xid = xid
        self.seq = seq
    }

    init?(text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let xid = UInt64(parts[0]), let seq = Int(parts[1]), seq >= 0 else { return nil }
        self.init(xid: xid, seq: seq)
    }
}

extension CustomerService {
    static let changesList = "customer.changes"

    /// `customer.changes`: the group's customers changed after `after`, oldest change first.
    ///
    /// Complete under concurrent writers (docs/architecture.md, "The customer change feed"):
    /// every change stamps the row with its transaction's id (`change_xid`) and a sequence
    /// number, and a page only returns rows whose `change_xid` is below the `xmin` of the
    /// reading statement's snapshot. Every transaction below `xmin` has ended, and any later
    /// write gets a transaction id at or above it, so nothing can appear behind a cursor
    /// after it was handed out, however late a writer commits.
    public func changes(caller: Principal, after: String?, limit: Int) async throws -> CustomerChangePage {
        let group = try caller.requireGroup()
        let scope = group.uuidString.lowercased()
        var position = ChangePosition.start
        if let after {
            let text = try cursors.decode(after, list: Self.changesList, scope: scope)
            guard let decoded = ChangePosition(text: text) else {
                throw DomainError.invalidParams("after", "not a cursor returned by this list")
            }
            position = decoded
        }
        let from = position
        let (horizon, stored) = try await database.transaction(.group(group), principal: caller.id) { connection in
            // One statement, so the horizon and the rows come from the same snapshot.
            let rows = try connection.query(
                """
                WITH s AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS horizon)
                SELECT s.horizon::text, c.* FROM s LEFT JOIN LATERAL (
                    SELECT \(unsafeSQL: StoredCustomer.columns) FROM forecourt.customers AS t
                    WHERE t.dealer_group_id = \(group)
                      AND (t.change_xid, t.change_seq) > (\(String(from.xid))::xid8, \(from.seq))
                      AND t.change_xid < s.horizon
                    -- Qualified: an unqualified name would sort by the output column of that
                    -- name, and text order of transaction ids is not their order.
                    ORDER BY t.change_xid, t.change_seq
                    LIMIT \(limit + 1)
                ) c ON true
                """
            ).rows
            guard let first = rows.first, let horizon = UInt64(try first.decode(0, as: String.self)) else {
                throw PostgresError(.decoding, context: "snapshot horizon")
            }
            let stored = try rows.compactMap { row -> StoredCustomer? in
                // The LEFT JOIN gives one row of NULLs when nothing changed.
                guard try row.decode(1, as: UUID?.self) != nil else { return nil }
                return try StoredCustomer(row: row, offset: 1)
            }
            // The join keeps the subquery's order in practice; sorting here makes the
            // cursor's correctness independent of the plan.
            let sorted = stored.sorted { ($0.changeXID, $0.changeSeq) < ($1.changeXID, $1.changeSeq) }
            // Reads of personal data are audited (docs/security.md, "Audit"): the customers of
            // this page, erasures (which hold none) left out.
            try AuditLog.recordMany(
                connection, group: group, principal: caller, method: "customer.changes", objectType: "customer",
                objects: sorted.prefix(limit).filter { !$0.erased }.map { (id: $0.id, outcome: "ok") })
            return (horizon, sorted)
        }
        let hasMore = stored.count > limit
        let page = stored.prefix(limit)
        let crypto = crypto(group)
        let items = try page.map { CustomerChange(customer: try $0.open(crypto), origin: $0.changedBy) }
        var next = position
        if let last = page.last { next = max(next, ChangePosition(xid: last.changeXID, seq: last.changeSeq)) }
        if !hasMore {
            // Everything below the horizon has been returned: later changes have a
            // transaction id at or above it, so the cursor may move up to it, which keeps
            // the next read's range scan short even when this group is quiet.
            next = max(next, ChangePosition(xid: horizon, seq: 0))
        }
        return CustomerChangePage(
            items: items, next: cursors.encode(next.text, list: Self.changesList, scope: scope), hasMore: hasMore)
    }
}
