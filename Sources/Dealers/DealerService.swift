import Audit
import ForecourtCore
import Foundation
import Postgres
import Storage

/// `dealer.*`: the dealers of the caller's group.
public final class DealerService: Sendable {
    private let database: AppDatabase
    private let cursors: CursorCodec

    public init(database: AppDatabase, cursors: CursorCodec) {
        self.database = database
        self.cursors = cursors
    }

    public struct NewDealer: Sendable {
        public var code: String
        public var name: String
        public var region: String?
        public var timezone: String?
    }

    public struct DealerPatch: Sendable {
        public var id: UUID
        public var version: Int
        public var name: String?
        public var region: Patch<String>
        public var timezone: Patch<String>
    }

    public func create(caller: Principal, _ new: NewDealer) async throws -> Dealer {
        let group = try caller.requireGroup()
        do {
            return try await database.transaction(.group(group), principal: caller.id) { connection in
                let id = UUID()
                let row = try connection.query(
                    """
                    INSERT INTO forecourt.dealers (dealer_group_id, id, code, name, region, timezone)
                    VALUES (\(group), \(id), \(new.code), \(new.name), \(new.region), \(new.timezone))
                    RETURNING \(unsafeSQL: Dealer.columns)
                    """
                ).first
                guard let row else { throw DomainError.notFound("dealer") }
                try AuditLog.record(
                    connection, group: group, principal: caller, method: "dealer.create", objectType: "dealer", objectID: id)
                return try Dealer(row: row)
            }
        } catch let error as DomainError where error.code == .conflict {
            // Codes are unique across the service; the message names nothing of the owner.
            throw DomainError.conflict("this dealer code is already registered")
        }
    }

    public func get(caller: Principal, id: UUID) async throws -> Dealer {
        let group = try caller.requireGroup()
        let dealer = try await database.transaction(.group(group), readOnly: true) { connection in
            try connection.query("SELECT \(unsafeSQL: Dealer.columns) FROM forecourt.dealers WHERE dealer_group_id = \(group) AND id = \(id)")
                .first.map(Dealer.init)
        }
        guard let dealer else { throw DomainError.notFound("dealer") }
        return dealer
    }

    public func list(caller: Principal, limit: Int, after: String?) async throws -> Page<Dealer> {
        let group = try caller.requireGroup()
        let scope = group.uuidString.lowercased()
        let position = try after.map { try cursors.decode($0, list: "dealer.list", scope: scope) }
        let dealers = try await database.transaction(.group(group), readOnly: true) { connection in
            try connection.query(
                """
                SELECT \(unsafeSQL: Dealer.columns) FROM forecourt.dealers
                WHERE dealer_group_id = \(group) AND (\(position)::text IS NULL OR code > \(position))
                ORDER BY code LIMIT \(limit + 1)
                """
            ).rows.map(Dealer.init)
        }
        let items = Array(dealers.prefix(limit))
        let next = dealers.count > limit ? items.last.map { cursors.encode($0.code, list: "dealer.list", scope: scope) } : nil
        return Page(items: items, next: next)
    }

    public func update(caller: Principal, _ patch: DealerPatch) async throws -> Dealer {
        let group = try caller.requireGroup()
        return try await database.transaction(.group(group), principal: caller.id) { connection in
            let current = try connection.query(
                "SELECT \(unsafeSQL: Dealer.columns) FROM forecourt.dealers WHERE dealer_group_id = \(group) AND id = \(patch.id) FOR UPDATE"
            ).first.map(Dealer.init)
            guard let current else { throw DomainError.notFound("dealer") }
            guard current.version == patch.version else { throw DomainError.staleVersion() }
            let name = patch.name ?? current.name
            let region = patch.region.applied(to: current.region)
            let timezone = patch.timezone.applied(to: current.timezone)
            // Only a real change moves the version.
            if name == current.name, region == current.region, timezone == current.timezone { return current }
            let row = try connection.query(
                """
                UPDATE forecourt.dealers SET name = \(name), region = \(region), timezone = \(timezone),
                    version = version + 1, updated_at = now()
                WHERE dealer_group_id = \(group) AND id = \(patch.id)
                RETURNING \(unsafeSQL: Dealer.columns)
                """
            ).first
            guard let row else { throw DomainError.notFound("dealer") }
            try AuditLog.record(
                connection, group: group, principal: caller, method: "dealer.update", objectType: "dealer", objectID: patch.id)
            return try Dealer(row: row)
        }
    }
}
