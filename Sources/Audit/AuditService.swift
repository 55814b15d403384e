import ForecourtCore
import Foundation
import Postgres
import RPC
import Storage

/// One audit row: who did what, when, to which object. Never personal data.
public struct AuditEntry: Sendable, Equatable {
    public let seq: Int
    public let occurredAt: Date
    public let principalID: UUID?
    public let principalRole: String
    public let method: String
    public let objectType: String?
    public let objectID: UUID?
    public let outcome: String

    static let columns = "seq, occurred_at, principal_id, principal_role, method, object_type, object_id, outcome"

    init(row: PostgresRow) throws {
        seq = try row.decode(0)
        occurredAt = try row.decode(1)
        principalID = try row.decode(2)
        principalRole = try row.decode(3)
        method = try row.decode(4)
        objectType = try row.decode(5)
        objectID = try row.decode(6)
        outcome = try row.decode(7)
    }
}

extension AuditEntry: JSONRepresentable {
    public var json: JSON {
        [
            "seq": .int(seq), "occurred_at": occurredAt.json, "principal_id": principalID.json,
            "principal_role": .string(principalRole), "method": .string(method), "object_type": objectType.json,
            "object_id": objectID.json, "outcome": .string(outcome),
        ]
    }
}

/// `audit.list`: the group's audit log, oldest first, so that a reader can follow it with `after`.
public final class AuditService: Sendable {
    private let database: AppDatabase
    private let cursors: CursorCodec

    public init(database: AppDatabase, cursors: CursorCodec) {
        self.database = database
        self.cursors = cursors
    }

    public func list(caller: Principal, limit: Int, after: String?) async throws -> Page<AuditEntry> {
        let group = try caller.requireGroup()
        let scope = group.uuidString.lowercased()
        let position = try after.map { after -> Int in
            guard let seq = Int(try cursors.decode(after, list: "audit.list", scope: scope)) else {
                throw DomainError.invalidParams("after", "not a cursor returned by this list")
            }
            return seq
        } ?? 0
        let rows = try await database.transaction(.group(group), readOnly: true) { connection in
            try connection.query(
                """
                SELECT \(unsafeSQL: AuditEntry.columns) FROM forecourt.audit_log
                WHERE dealer_group_id = \(group) AND seq > \(position) ORDER BY seq LIMIT \(limit + 1)
                """
            ).rows.map(AuditEntry.init)
        }
        let items = Array(rows.prefix(limit))
        let next = rows.count > limit ? items.last.map { cursors.encode(String($0.seq), list: "audit.list", scope: scope) } : nil
        return Page(items: items, next: next)
    }
}
