import Audit
import ForecourtCore
import Foundation
import Postgres
import RPC

/// An API key as stored: the principal it stands for, never its secret.
public struct KeyRecord: Sendable {
    public let id: UUID
    public let role: Role
    public let dealerGroupID: UUID?
    public let dealerID: UUID?
    public let label: String
    public let prefix: String
    public let createdAt: Date
    public let revokedAt: Date?

    public var principal: Principal {
        Principal(id: id, role: role, dealerGroupID: dealerGroupID, dealerID: dealerID, label: label)
    }

    static let columns = "id, role, dealer_group_id, dealer_id, label, key_prefix, created_at, revoked_at"

    init(row: PostgresRow) throws {
        id = try row.decode(0)
        let roleName: String = try row.decode(1)
        guard let role = Role(rawValue: roleName) else { throw PostgresError(.decoding, context: "role") }
        self.role = role
        dealerGroupID = try row.decode(2)
        dealerID = try row.decode(3)
        label = try row.decode(4)
        prefix = try row.decode(5)
        createdAt = try row.decode(6)
        revokedAt = try row.decode(7)
    }

    /// Inserts a key. Used by `key.create` (in a group-scoped transaction) and by the
    /// operator's `forecourt key create` (owner connection), so both make identical rows.
    public static func insert(
        _ connection: PostgresConnection,
        role: Role,
        group: UUID?,
        dealer: UUID?,
        label: String,
        keyHash: [UInt8],
        prefix: String,
        createdBy: UUID?
    ) throws -> KeyRecord {
        let result = try connection.query(
            """
            INSERT INTO forecourt.api_keys (id, role, dealer_group_id, dealer_id, label, key_prefix, key_hash, created_by)
            VALUES (\(UUID()), \(role.rawValue), \(group), \(dealer), \(label), \(prefix), \(keyHash), \(createdBy))
            RETURNING \(unsafeSQL: columns)
            """)
        guard let row = result.first else { throw PostgresError(.other) }
        return try KeyRecord(row: row)
    }
}

extension KeyRecord {
    /// Every key, or those of one group, oldest first (the operator's `forecourt key list`,
    /// on the owner's connection).
    public static func all(_ connection: PostgresConnection, group: UUID?) throws -> [KeyRecord] {
        try connection.query(
            """
            SELECT \(unsafeSQL: columns) FROM forecourt.api_keys
            WHERE \(group)::uuid IS NULL OR dealer_group_id = \(group)
            ORDER BY created_at, id
            """
        ).rows.map(KeyRecord.init)
    }

    /// Revokes any key, of a group or of none (the operator's `forecourt key revoke`, on the
    /// owner's connection), with an audit row for a group's key. Returns the key and whether
    /// this call revoked it, or nil when there is no such key.
    public static func revoke(_ connection: PostgresConnection, id: UUID) throws -> (KeyRecord, Bool)? {
        try connection.transaction { connection -> (KeyRecord, Bool)? in
            let updated = try connection.query(
                """
                UPDATE forecourt.api_keys SET revoked_at = now() WHERE id = \(id) AND revoked_at IS NULL
                RETURNING \(unsafeSQL: columns)
                """
            ).first.map(KeyRecord.init)
            guard let updated else {
                return try connection.query("SELECT \(unsafeSQL: columns) FROM forecourt.api_keys WHERE id = \(id)")
                    .first.map { (try KeyRecord(row: $0), false) }
            }
            if let group = updated.dealerGroupID {
                try AuditLog.record(
                    connection, group: group, principal: nil, method: "key.revoke", objectType: "api_key", objectID: id)
            }
            return (updated, true)
        }
    }
}

extension Principal: JSONRepresentable {
    public var json: JSON {
        [
            "id": id.json, "role": .string(role.rawValue), "dealer_group_id": dealerGroupID.json,
            "dealer_id": dealerID.json, "label": .string(label),
        ]
    }
}

extension KeyRecord: JSONRepresentable {
    public var json: JSON {
        [
            "id": id.json, "role": .string(role.rawValue), "dealer_group_id": dealerGroupID.json,
            "dealer_id": dealerID.json, "label": .string(label), "prefix": .string(prefix),
            "created_at": createdAt.json, "revoked_at": revokedAt.json,
        ]
    }
}
