import Foundation

/// The row-level-security scope of one transaction (docs/architecture.md, "Tenancy").
///
/// `Storage` turns a scope into transaction-local PostgreSQL settings that the policies of
/// migrations/ read; no scope, no rows.
public enum AccessScope: Sendable, Hashable {
    /// The rows of one dealer group.
    case group(UUID)
    /// Factory feed: read orders and order events of every group.
    case factory
    /// Customer tracking: orders whose VIN ends with `vinLast8`, in one group or all.
    case portal(group: UUID?, vinLast8: String)
    /// Authentication: the one API key whose hash is given.
    case authentication(keyHash: [UInt8])
    /// The notification dispatcher: reads the queue of every group and takes or gives back
    /// leases on pending notifications, nothing else (migrations/0009_delivery.sql). Messages
    /// are rendered and outcomes recorded in each notification's own `.group` scope.
    case delivery
    /// The revocation watcher: keys of every group revoked in the last minutes (ids only are read).
    case revocations
    /// Purges: rows of every group past their retention, and nothing younger.
    case maintenance

    /// The scope a principal's ordinary calls run in.
    public static func of(_ principal: Principal) throws -> AccessScope {
        if principal.role == .factory { return .factory }
        return .group(try principal.requireGroup())
    }

    /// The `(name, value)` pairs set with `set_config(name, value, true)` at the start of
    /// the transaction.
    public var settings: [(name: String, value: String)] {
        switch self {
        case .group(let id):
            return [("forecourt.dealer_group_id", id.lowercasedText)]
        case .factory:
            return [("forecourt.scope", "factory")]
        case .portal(let group, let vinLast8):
            var settings: [(name: String, value: String)] = [
                ("forecourt.scope", "portal"), ("forecourt.vin_last8", vinLast8),
            ]
            // Not `dealer_group_id`: that would admit every row of the group, not just the match.
            if let group { settings.append(("forecourt.portal_group", group.lowercasedText)) }
            return settings
        case .authentication(let keyHash):
            return [("forecourt.scope", "auth"), ("forecourt.key_hash", keyHash.hexString)]
        case .delivery:
            return [("forecourt.scope", "delivery")]
        case .revocations:
            return [("forecourt.scope", "revocations")]
        case .maintenance:
            return [("forecourt.scope", "maintenance")]
        }
    }
}
