import Audit
import ForecourtCore
import Foundation
import Postgres

/// Why a key cannot be made as asked. `key.create` reports it as -32602 on `dealer_id` (or
/// `label`); `forecourt key create` as a usage error on `--group`, `--dealer` or `--label`.
public struct KeyRequestError: Error, Equatable, CustomStringConvertible {
    public enum Parameter: Sendable, Equatable {
        case group, dealer, label
    }

    public let parameter: Parameter
    public let message: String

    public var description: String { message }
}

extension KeyRecord {
    /// The rules of a key's shape, the same for `key.create` and `forecourt key create`: factory
    /// keys span every group, every other role but `portal` needs one; `dealer_manager` and
    /// `sales` keys, and only they, are tied to a dealer; a label of 1 to 200 characters.
    public static func validate(role: Role, group: UUID?, dealer: UUID?, label: String) throws(KeyRequestError) {
        if role.mustBeGlobal, group != nil {
            throw KeyRequestError(parameter: .group, message: "\(role.rawValue) keys span every group")
        }
        if !role.mayBeGlobal, group == nil {
            throw KeyRequestError(parameter: .group, message: "required for \(role.rawValue) keys")
        }
        if role.isDealerScoped, dealer == nil {
            throw KeyRequestError(parameter: .dealer, message: "required for \(role.rawValue) keys")
        }
        if !role.isDealerScoped, dealer != nil {
            throw KeyRequestError(parameter: .dealer, message: "\(role.rawValue) keys are not tied to a dealer")
        }
        guard (1...200).contains(label.count) else {
            throw KeyRequestError(parameter: .label, message: "1 to 200 characters")
        }
    }

    /// Makes a key that `validate` accepted, inside the caller's transaction: its dealer must be
    /// one of its group's, and the key is audited in its group (a key with no group has no
    /// group log to be audited in). `createdBy` is nil for the operator's command line.
    public static func create(
        _ connection: PostgresConnection, role: Role, group: UUID?, dealer: UUID?, label: String, keyHash: [UInt8],
        prefix: String, createdBy: Principal?
    ) throws -> KeyRecord {
        if let dealer, let group {
            let exists = try connection.query(
                "SELECT 1 FROM forecourt.dealers WHERE dealer_group_id = \(group) AND id = \(dealer)")
            guard exists.count == 1 else {
                throw KeyRequestError(parameter: .dealer, message: "no such dealer in this group")
            }
        }
        let record = try insert(
            connection, role: role, group: group, dealer: dealer, label: label, keyHash: keyHash, prefix: prefix,
            createdBy: createdBy?.id)
        if let group {
            try AuditLog.record(
                connection, group: group, principal: createdBy, method: "key.create", objectType: "api_key",
                objectID: record.id)
        }
        return record
    }
}
